"""ILF refinements of critiques: store, score, select, review."""

from __future__ import annotations

from .base import StoreBase


class RefinementsMixin(StoreBase):
    pass
