"""Pick the device and dtype: CUDA with bf16 autocast when a GPU is there, the CPU otherwise."""

from __future__ import annotations

import contextlib
import os

import torch


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


def set_threads(n: int | None = None) -> int:
    """Set torch's CPU threads explicitly (TOKENWISE_THREADS, else n, else 1) and return it."""
    n = int(os.environ.get("TOKENWISE_THREADS", n or 1))
    torch.set_num_threads(n)
    return n
