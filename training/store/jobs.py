"""The jobs queue: submit, claim (conditional UPDATE), progress, heartbeat, cancel, finish."""

from __future__ import annotations

from .base import StoreBase


class JobsMixin(StoreBase):
    pass
