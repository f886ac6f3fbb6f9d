"""Presets of the Training page's short form: quick / standard / thorough per job kind.

    values = preset_values("reward", "quick", backbone="minilm")   # config values, validated later
    describe_preset("reward", "quick")                              # 'epochs=1, max_steps=40, ...'

A preset is a few real config values on top of the kind's defaults (standard = the defaults);
every other field stays at its default and can be changed under "Advanced". The backbone
(the model a kind starts from) is its own field of the short form: BACKBONE names the config
field that holds it. Kinds without a size knob (score, ilf_select, ilf_build) have only
"standard". tests/test_presets.py checks every preset against its kind's config.
"""

from __future__ import annotations

from training.errors import ValidationError

PRESET_NAMES = ("quick", "standard", "thorough")

# job kind -> the config field that names the model it starts from
BACKBONE: dict[str, str] = {
    "reward": "base_model", "policy": "base_model", "ilf_refine": "model", "ilf_select": "model",
    "sft": "base", "generate": "model", "eval_round": "model_a",
}

PRESETS: dict[str, dict[str, dict]] = {
    "reward": {"quick": {"epochs": 1, "max_steps": 40, "max_length": 256},
               "standard": {},
               "thorough": {"epochs": 8, "patience": 3, "refit": True}},
    "policy": {"quick": {"steps": 10}, "standard": {}, "thorough": {"steps": 200}},
    "ilf_refine": {"quick": {"n": 2, "max_new_tokens": 48}, "standard": {},
                   "thorough": {"n": 8, "max_new_tokens": 96}},
    "sft": {"quick": {"max_steps": 20}, "standard": {}, "thorough": {"epochs": 3, "eval_every": 50}},
    "generate": {"quick": {"limit": 10}, "standard": {}, "thorough": {"num_candidates": 4}},
    "eval_round": {"quick": {"documents": 8}, "standard": {}, "thorough": {"documents": 50, "overlap": 2}},
    "selftest": {"quick": {"steps": 5, "seconds_per_step": 0.2}, "standard": {"steps": 20, "seconds_per_step": 0.5},
                 "thorough": {"steps": 60, "seconds_per_step": 1.0}},
}


def presets_of(kind: str) -> tuple[str, ...]:
    """The preset names a kind offers, in order (just 'standard' when it has no size knob)."""
    return tuple(PRESETS[kind]) if kind in PRESETS else ("standard",)


def preset_values(kind: str, preset: str, backbone: str | None = None) -> dict:
    """The config values a preset sets (and the backbone, when given and the kind has one)."""
    if preset not in presets_of(kind):
        raise ValidationError(f"preset: {preset!r} is not one of {', '.join(presets_of(kind))} for a {kind} job")
    values = dict(PRESETS.get(kind, {}).get(preset, {}))
    if backbone is not None and kind in BACKBONE:
        values[BACKBONE[kind]] = backbone
    return values


def describe_preset(kind: str, preset: str) -> str:
    """'epochs=1, max_steps=40, max_length=256', or 'the defaults'."""
    values = preset_values(kind, preset)
    return ", ".join(f"{k}={v}" for k, v in values.items()) if values else "the defaults"
