"""Training page presets: real config values for every kind, refused when unknown."""

from __future__ import annotations

import pytest

from training.errors import ValidationError
from training.forms import to_dict
from training.jobs import presets as P
from training.jobs.kinds import KINDS, kind_fields, validate


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_preset_is_a_valid_config_of_its_kind(kind):
    fields = {f.name for f in kind_fields(kind)}
    if kind in P.BACKBONE:
        assert P.BACKBONE[kind] in fields
    for preset in P.presets_of(kind):
        values = P.preset_values(kind, preset)
        assert set(values) <= fields, (kind, preset)
        config = to_dict(validate(kind, values))  # the worker would accept it
        assert {k: config[k] for k in values} == values


def test_presets_differ_in_size_and_standard_is_the_defaults():
    assert P.presets_of("reward") == ("quick", "standard", "thorough")
    assert P.preset_values("reward", "standard") == {}
    assert P.preset_values("reward", "quick")["epochs"] < to_dict(validate("reward", {}))["epochs"]
    assert P.preset_values("reward", "thorough")["epochs"] > to_dict(validate("reward", {}))["epochs"]
    assert P.preset_values("reward", "quick", backbone="minilm")["base_model"] == "minilm"
    assert P.presets_of("score") == ("standard",)
    assert P.preset_values("score", "standard", backbone="x") == {}  # no backbone field
    assert P.describe_preset("selftest", "quick") == "steps=5, seconds_per_step=0.2"
    assert P.describe_preset("policy", "standard") == "the defaults"


def test_unknown_preset_is_refused():
    with pytest.raises(ValidationError, match="preset: 'huge' is not one of quick, standard, thorough"):
        P.preset_values("reward", "huge")
