"""One parser for config dataclasses: CLI `--set key=value`, JSON config files and dashboard forms.

A config is a dataclass whose fields carry their help text (TRL style):

    lr: float = field(default=5e-5, metadata={"help": "AdamW learning rate", "min": 0.0})

Optional metadata keys: "help", "choices" (a list), "min" / "max" (inclusive bounds),
"hidden" (not shown in forms). `typing.Literal[...]` annotations also give choices.
`describe(cls)` turns the dataclass into `FieldSpec`s (what a form draws); `build_config(cls,
values)` checks every value (type, bounds, choices, unknown keys) and raises ValidationError
naming the field, so a bad value is refused before a job is queued. A config's `__post_init__`
calls `check_values(self)`, so one built in code is checked by the same rules.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.errors import ValidationError

TYPES = ("bool", "int", "float", "str", "list", "dict")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # bool | int | float | str | list | dict
    default: Any
    help: str = ""
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    optional: bool = False  # None is allowed
    required: bool = False  # no default
    hidden: bool = False


def _unwrap(tp) -> tuple[Any, bool]:
    """(inner type, optional?) for `X | None` / Optional[X]."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], optional
        return args, optional
    return tp, False


def _type_name(tp) -> tuple[str, tuple | None]:
    if typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
        return _type_name(type(choices[0]))[0], tuple(choices)
    if isinstance(tp, list):  # a union of several types: take the first usable one
        return _type_name(tp[0])
    origin = typing.get_origin(tp) or tp
    if origin is bool:
        return "bool", None
    if origin is int:
        return "int", None
    if origin is float:
        return "float", None
    if origin in (list, tuple):
        return "list", None
    if origin is dict:
        return "dict", None
    return "str", None


def describe(cls) -> list[FieldSpec]:
    """The form fields of a config dataclass, in declaration order."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        inner, optional = _unwrap(hints.get(f.name, str))
        tname, choices = _type_name(inner)
        md = dict(f.metadata or {})
        if md.get("choices") is not None:
            choices = tuple(md["choices"])
        if f.default is not dataclasses.MISSING:
            default, required = f.default, False
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default, required = f.default_factory(), False  # type: ignore[misc]
        else:
            default, required = None, True
        specs.append(FieldSpec(
            name=f.name, type=tname, default=default, help=str(md.get("help", "")), choices=choices,
            min=md.get("min"), max=md.get("max"), optional=optional or default is None and not required,
            required=required, hidden=bool(md.get("hidden", False)),
        ))
    return specs


def _fail(where: str, name: str, msg: str):
    raise ValidationError(f"{where}{name}: {msg}")


def coerce(spec: FieldSpec, value: Any, where: str = "") -> Any:
    """Check and convert one value (a string from the CLI, or a typed value from JSON/forms)."""
    name = spec.name
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")
                         and spec.type != "str"):
        if spec.optional:
            return None
        _fail(where, name, "a value is required")
    if isinstance(value, str) and value.strip() == "" and spec.optional:
        return None
    t = spec.type
    if t == "bool":
        if isinstance(value, bool):
            out = value
        elif isinstance(value, (int, float)) and value in (0, 1):
            out = bool(value)
        elif isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            out = value.strip().lower() in ("true", "yes", "1", "on")
        else:
            _fail(where, name, f"must be true or false, got {value!r}")
    elif t == "int":
        try:
            if isinstance(value, bool):
                raise ValueError  # noqa: TRY004 - reported as a bad value below
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                out = int(value)
            else:
                out = int(str(value).strip())
        except ValueError:
            _fail(where, name, f"must be a whole number, got {value!r}")
    elif t == "float":
        try:
            if isinstance(value, bool):
                raise ValueError  # noqa: TRY004 - reported as a bad value below
            out = float(value if not isinstance(value, str) else value.strip())
        except ValueError:
            _fail(where, name, f"must be a number, got {value!r}")
        if not math.isfinite(out):
            _fail(where, name, f"must be a finite number, got {value!r}")
    elif t == "list":
        out = value
        if isinstance(value, str):
            s = value.strip()
            try:
                out = json.loads(s) if s.startswith("[") else [x.strip() for x in s.split(",") if x.strip()]
            except json.JSONDecodeError as e:
                _fail(where, name, f"must be a JSON list or comma-separated values ({e})")
        if isinstance(out, tuple):
            out = list(out)
        if not isinstance(out, list):
            _fail(where, name, f"must be a list, got {value!r}")
    elif t == "dict":
        out = value
        if isinstance(value, str):
            try:
                out = json.loads(value)
            except json.JSONDecodeError as e:
                _fail(where, name, f"must be a JSON object ({e})")
        if not isinstance(out, dict):
            _fail(where, name, f"must be a JSON object, got {value!r}")
    else:
        out = value if isinstance(value, str) else str(value)
    if spec.choices is not None and out not in spec.choices:
        _fail(where, name, f"{out!r} is not one of {', '.join(map(str, spec.choices))}")
    if t in ("int", "float"):
        if spec.min is not None and out < spec.min:
            _fail(where, name, f"must be at least {spec.min}, got {out}")
        if spec.max is not None and out > spec.max:
            _fail(where, name, f"must be at most {spec.max}, got {out}")
    return out


def build_config(cls, values: dict | None = None, *, where: str = ""):
    """A validated `cls` instance from `values` (missing keys keep their defaults).

    Unknown keys, wrong types, values outside bounds or choices raise ValidationError naming
    the field; so does a ValueError/ValidationError from the dataclass's own __post_init__.
    """
    values = dict(values or {})
    specs = {s.name: s for s in describe(cls)}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ValidationError(
            f"{where}{unknown[0]}: unknown setting; known settings are {', '.join(specs)}")
    kwargs = {}
    for name, spec in specs.items():
        if name in values:
            kwargs[name] = coerce(spec, values[name], where)
        elif spec.required:
            _fail(where, name, "a value is required")
    try:
        return cls(**kwargs)
    except ValidationError as e:
        raise ValidationError(f"{where}{e}") from None
    except (ValueError, TypeError) as e:
        raise ValidationError(f"{where}{e}") from None


def check_values(config) -> None:
    """Check every field of a config instance against its declaration (type, bounds, choices).

    A config's `__post_init__` calls it, so a config built in code is held to the same rules as
    one parsed from flags or a form; ValidationError names the field."""
    for spec in describe(type(config)):
        coerce(spec, getattr(config, spec.name))


def to_dict(config) -> dict:
    """A config instance as a JSON-able dict (what a job stores)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def parse_set(pairs: list[str] | None) -> dict[str, str]:
    """`["lr=1e-4", "epochs=2"]` -> {"lr": "1e-4", "epochs": "2"}; values stay strings for coerce."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--set {pair!r}: write it as key=value, e.g. --set lr=1e-4")
        out[key.strip()] = value
    return out


def load_config_file(path: str | Path) -> dict:
    """A JSON object of settings from a file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ValidationError(f"--config {p}: no such file") from None
    except json.JSONDecodeError as e:
        raise ValidationError(f"--config {p}: not valid JSON: line {e.lineno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"--config {p}: must hold a JSON object of settings")
    return data


PROMPT_FIELDS = ("title", "text", "instructions")


def check_prompt_template(template: str, name: str = "prompt") -> None:
    """A document prompt template (generation, policy training, evaluation rounds) fills: only the
    placeholders {title}, {text} and {instructions}, braces doubled for a literal one."""
    if not template:
        return
    try:
        template.format(**dict.fromkeys(PROMPT_FIELDS, ""))
    except (KeyError, IndexError, ValueError) as e:
        what = (f"{{{e.args[0]}}} is not a placeholder it knows" if isinstance(e, KeyError)
                else "a positional placeholder such as {0} or {} has no value" if isinstance(e, IndexError)
                else f"not a valid template ({e})")
        raise ValidationError(f"{name}: {what}; use {{title}}, {{text}}, {{instructions}}, and {{{{ }}}} for a "
                              "literal brace") from None
