"""What annotators read beside a document's text: the fields of its meta that the project shows
(`Project.context_fields`), e.g. the passages a QA answer should come from.

    context_of(doc.meta, ["passages"])  ->  [("passages", "Bloom (Troye Sivan album)\\n...")]

Imported data keeps every column it does not map in meta, in whatever shape the file had: a
string, a list of strings (sentences), a list of lists (passages: a title and its sentences), a
dict. `field_text` turns any of them into plain text, one item per line and a blank line between
groups, so it can be shown as written (never as Markdown or HTML).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

FIELD_MAX_CHARS = 20_000  # a field longer than this is cut, with a note saying how much is left out


def field_text(value: Any) -> str:
    """Plain text of a meta value: strings as they are, lists one item per line (nested ones as
    blocks with a blank line between), dicts as "key: value" lines, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        parts = [field_text(v) for v in value]
        nested = any(isinstance(v, list | tuple | dict) for v in value)
        return ("\n\n" if nested else "\n").join(p for p in parts if p)
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            text = field_text(v)
            if text:
                lines.append(f"{k}:\n{text}" if "\n" in text else f"{k}: {text}")
        return "\n".join(lines)
    return json.dumps(value, default=str)


def context_of(meta: dict | None, fields: Iterable[str], max_chars: int = FIELD_MAX_CHARS
               ) -> list[tuple[str, str]]:
    """(field, text) for each of `fields` that the document has and that is not empty, in the
    order given; a text past `max_chars` is cut and says how many characters were left out."""
    meta = meta or {}
    out = []
    for name in fields:
        text = field_text(meta.get(name))
        if not text:
            continue
        if len(text) > max_chars:
            text = f"{text[:max_chars]}\n… ({len(text) - max_chars:,} more characters not shown)"
        out.append((name, text))
    return out
