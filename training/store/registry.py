"""The model registry (checkpoints and their cards) and the per-token reward cache."""

from __future__ import annotations

from .base import StoreBase


class RegistryMixin(StoreBase):
    pass
