"""training.forms: config dataclasses -> form fields; values checked, bad ones refused by name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from training.errors import ValidationError
from training.forms import build_config, coerce, describe, load_config_file, parse_set, to_dict


@dataclass
class DemoConfig:
    lr: float = field(default=5e-5, metadata={"help": "learning rate", "min": 0.0, "max": 1.0})
    epochs: int = field(default=1, metadata={"help": "passes over the data", "min": 1})
    aggregate: Literal["sum", "avg", "max", "min"] = field(default="avg", metadata={"help": "token aggregation"})
    loss: str = field(default="listmle", metadata={"help": "loss", "choices": ["listmle", "pairwise"]})
    shuffle: bool = field(default=True, metadata={"help": "shuffle the lists"})
    base_model: str = field(default="", metadata={"help": "backbone path"})
    max_steps: int | None = field(default=None, metadata={"help": "stop early"})
    layers: list = field(default_factory=list, metadata={"help": "layers to train"})

    def __post_init__(self):
        if self.max_steps is not None and self.max_steps < self.epochs:
            raise ValueError("max_steps: must be at least epochs")


def test_describe_reads_types_help_bounds_and_choices():
    specs = {s.name: s for s in describe(DemoConfig)}
    assert list(specs) == ["lr", "epochs", "aggregate", "loss", "shuffle", "base_model", "max_steps", "layers"]
    assert (specs["lr"].type, specs["lr"].min, specs["lr"].max, specs["lr"].help) == ("float", 0.0, 1.0, "learning rate")
    assert specs["epochs"].type == "int" and specs["epochs"].default == 1
    assert specs["aggregate"].type == "str" and specs["aggregate"].choices == ("sum", "avg", "max", "min")
    assert specs["loss"].choices == ("listmle", "pairwise")
    assert specs["shuffle"].type == "bool"
    assert specs["max_steps"].optional and specs["max_steps"].type == "int"
    assert specs["layers"].type == "list" and specs["layers"].default == []


def test_build_config_converts_cli_strings():
    cfg = build_config(DemoConfig, parse_set(["lr=1e-3", "epochs=3", "aggregate=max", "shuffle=false",
                                              "max_steps=10", "layers=a,b"]))
    assert cfg == DemoConfig(lr=1e-3, epochs=3, aggregate="max", shuffle=False, max_steps=10, layers=["a", "b"])
    # typed values from JSON or a form pass through; missing keys keep defaults
    cfg = build_config(DemoConfig, {"lr": 0.5, "epochs": 2.0, "max_steps": None})
    assert (cfg.lr, cfg.epochs, cfg.max_steps, cfg.loss) == (0.5, 2, None, "listmle")
    assert to_dict(cfg)["lr"] == 0.5


@pytest.mark.parametrize("values, message", [
    ({"lr": "fast"}, "lr: must be a number, got 'fast'"),
    ({"lr": -1}, "lr: must be at least 0.0"),
    ({"lr": 2}, "lr: must be at most 1.0"),
    ({"lr": "nan"}, "lr: must be a finite number"),
    ({"epochs": "1.5"}, "epochs: must be a whole number"),
    ({"epochs": 0}, "epochs: must be at least 1"),
    ({"epochs": True}, "epochs: must be a whole number"),
    ({"aggregate": "median"}, "aggregate: 'median' is not one of sum, avg, max, min"),
    ({"loss": "hinge"}, "loss: 'hinge' is not one of listmle, pairwise"),
    ({"shuffle": "maybe"}, "shuffle: must be true or false"),
    ({"layers": "[1,"}, "layers: must be a JSON list"),
    ({"epochz": 3}, "epochz: unknown setting; known settings are lr, epochs"),
    ({"max_steps": 1, "epochs": 2}, "max_steps: must be at least epochs"),
])
def test_build_config_refuses_bad_values_naming_the_field(values, message):
    with pytest.raises(ValidationError) as e:
        build_config(DemoConfig, values, where="reward config: ")
    assert str(e.value).startswith("reward config: ")
    assert message in str(e.value)


def test_coerce_optional_and_required():
    @dataclass
    class Needs:
        path: str = field(metadata={"help": "where"})
        n: int | None = None

    specs = {s.name: s for s in describe(Needs)}
    assert specs["path"].required
    with pytest.raises(ValidationError, match="path: a value is required"):
        build_config(Needs, {})
    assert coerce(specs["n"], "none") is None
    assert coerce(specs["n"], "") is None
    assert coerce(specs["n"], " 7 ") == 7
    assert build_config(Needs, {"path": "x", "n": "none"}).n is None


def test_parse_set_and_config_file(tmp_path):
    assert parse_set(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ValidationError, match="--set 'lr': write it as key=value"):
        parse_set(["lr"])
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"lr": 0.1}))
    assert load_config_file(f) == {"lr": 0.1}
    f.write_text("[1]")
    with pytest.raises(ValidationError, match="must hold a JSON object"):
        load_config_file(f)
    f.write_text("{bad")
    with pytest.raises(ValidationError, match="not valid JSON: line 1"):
        load_config_file(f)
    with pytest.raises(ValidationError, match="no such file"):
        load_config_file(tmp_path / "missing.json")


def test_every_job_kind_config_round_trips_through_its_form():
    from training.jobs.kinds import KINDS

    for name, kind in KINDS.items():
        cls = kind.config_class()
        specs = describe(cls)
        assert specs and all(s.help for s in specs), f"{name}: every setting needs help text"
        cfg = build_config(cls, {})
        stored = to_dict(cfg)
        assert build_config(cls, stored) == cfg
        # what a form sends: every value as text
        as_text = {s.name: (json.dumps(stored[s.name]) if s.type in ("list", "dict") else
                            "" if stored[s.name] is None else str(stored[s.name])) for s in specs}
        assert build_config(cls, as_text) == cfg, name
