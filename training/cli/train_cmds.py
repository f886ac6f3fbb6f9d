"""Commands of this group (filled in by the issue that owns them)."""

from __future__ import annotations


def register(sub) -> None:
    pass
