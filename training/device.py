"""Pick the device, dtype and CPU threads: CUDA with bf16 autocast when a GPU is there, the CPU otherwise.

    device = pick_device("auto")            # cuda when available, else cpu
    with autocast(device, enabled=True): ...
    set_threads(config.threads)             # explicit n wins; 0 = TOKENWISE_THREADS, else 1
"""

from __future__ import annotations

import contextlib
import os

import torch

from training.errors import ValidationError


def pick_device(requested: str = "auto") -> torch.device:
    """`auto` means cuda when available, else cpu. Anything else is passed to torch.device."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA (when the GPU supports it); a no-op context on the CPU."""
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_threads(n: int | None = 0) -> int:
    """The thread count a config's `threads` means: an explicit n > 0 wins; 0 (or None) means the
    TOKENWISE_THREADS environment variable, else 1."""
    if n:
        return int(n)
    env = os.environ.get("TOKENWISE_THREADS", "").strip()
    if not env:
        return 1
    try:
        value = int(env)
    except ValueError:
        raise ValidationError(f"TOKENWISE_THREADS: must be a whole number, got {env!r}") from None
    if value < 1:
        raise ValidationError(f"TOKENWISE_THREADS: must be at least 1, got {value}")
    return value


def set_threads(n: int | None = 0) -> int:
    """Set torch's CPU threads to `resolve_threads(n)` and return it (every trainer calls it)."""
    n = resolve_threads(n)
    torch.set_num_threads(n)
    return n
