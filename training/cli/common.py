"""Helpers shared by the command modules: --db, config flags, JSON output, progress bars.

    add_db(p); add_config_flags(p, RewardConfig)             # in a group's register()
    config = config_from_args(RewardConfig, args)            # in its command, checked by training.forms
    with tqdm_progress("reward model") as bar: train_reward(..., progress=bar)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from training.errors import ValidationError
from training.forms import build_config, describe

DEFAULT_DB = "tokenwise.db"


def add_db(p: argparse.ArgumentParser, used: bool = True) -> None:
    """--db PATH on every command (README: every command takes it); `used=False` for the few that
    open no database, so a script can pass --db to any command."""
    p.set_defaults(db_default=DEFAULT_DB, db_used=used)  # what a missing --db means here (training/cli/__init__.py main)
    p.add_argument("--db", default=None, metavar="PATH",  # None: the one before the command, else DEFAULT_DB
                   help=f"SQLite database (default ./{DEFAULT_DB})" if used
                   else "accepted by every command; this one does not open a database")


# what a file name's suffix means for `export --out` and `ilf build --out` (no suffix: jsonl)
OUT_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


def out_format(out: str | None, fmt: str | None) -> str:
    """The format to write: --format when given, else the one --out's suffix names. A suffix that
    names no format we write (x.csv) is refused rather than silently getting JSONL."""
    if fmt:
        return fmt
    if not out:
        return "jsonl"
    suffix = Path(out).suffix.lower()
    if suffix and suffix not in OUT_SUFFIXES:
        raise ValidationError(f"--out {out}: {suffix} is not a format Tokenwise writes; name the file "
                              f"{', '.join(OUT_SUFFIXES)} or pass --format")
    return OUT_SUFFIXES.get(suffix, "jsonl")


def finite(obj: Any) -> Any:
    """`obj` with NaN and infinities as None (null): JSON has no NaN, and strict parsers refuse it."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    json.dump(finite(obj), sys.stdout, ensure_ascii=False, default=str, allow_nan=False)
    sys.stdout.write("\n")


# Short spellings the issues use for some config fields.
ALIASES = {"base_model": ["--base"], "aggregation": ["--agg"]}


def add_config_flags(p: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One flag per field of a config dataclass, with its help text (--no-X for booleans).

    Defaults are None so that an absent flag keeps the dataclass default; `config_from_args`
    then checks every value through training.forms, which names the bad flag.
    """
    for spec in describe(cls):
        if spec.name in skip or spec.hidden:
            continue
        flags = [f"--{spec.name.replace('_', '-')}", *ALIASES.get(spec.name, [])]
        help_ = f"{spec.help} (default: {spec.default})".replace("%", "%%")  # argparse %-formats help
        if spec.type == "bool":
            p.add_argument(*flags, dest=spec.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            kind = {"int": int, "float": float}.get(spec.type, str)
            p.add_argument(*flags, dest=spec.name, type=kind, default=None, choices=spec.choices,
                           metavar=None if spec.choices else spec.type.upper(), help=help_)


def config_from_args(cls, args: argparse.Namespace, **extra):
    """Build and validate a config dataclass from parsed flags (plus `extra` values)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if getattr(args, f.name, None) is not None}
    values.update({k: v for k, v in extra.items() if v is not None})
    return build_config(cls, values, where="--")


def tqdm_progress(desc: str):
    """A progress bar for a command, used as `with tqdm_progress("scoring") as bar: ...`."""
    from training.progress import TqdmProgress

    return TqdmProgress(desc)
