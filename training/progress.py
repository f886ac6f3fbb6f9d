"""How long-running work reports progress, and how it learns it was cancelled.

    progress = ensure(progress)                 # in a trainer: None becomes a NullProgress
    progress.step(step, total, loss=0.42)       # may raise Cancelled at a step boundary
    progress.log("saved models/rm")

Every trainer takes `progress: Progress | None`. The CLI passes a `TqdmProgress` (a bar on the
terminal, a context manager); the worker passes a training.jobs.progress.JobProgress, which writes
step/total/metrics and a heartbeat to the jobs table and raises `Cancelled` when the dashboard
asked to stop.
"""

from __future__ import annotations

import logging
from typing import Protocol, Self

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a trainer's loop (at a step boundary) when its job was cancelled."""


class Progress(Protocol):
    def step(self, step: int, total: int, **metrics: float | str) -> None:
        """Report that `step` of `total` is done, with any metrics (phase="scoring candidates":
        what the steps count, when not training steps); may raise Cancelled."""

    def log(self, message: str) -> None:
        """A line for the job's log."""


class NullProgress:
    def step(self, step: int, total: int, **metrics: float) -> None:
        pass

    def log(self, message: str) -> None:
        log.info(message)


class TqdmProgress:
    """A tqdm bar on stderr; metrics shown as the bar's postfix. A context manager that closes
    the bar however the block ends:

        with TqdmProgress("reward model") as bar:
            train_reward(store, "demo", config, "models/rm", progress=bar)
    """

    def __init__(self, desc: str = "", disable: bool | None = None):
        from tqdm.auto import tqdm

        self._bar = tqdm(desc=desc, total=0, disable=disable, dynamic_ncols=True)

    def step(self, step: int, total: int, **metrics: float) -> None:
        if self._bar.total != total:
            self._bar.total = total
        self._bar.n = step
        if metrics:
            self._bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in metrics.items()},
                                  refresh=False)
        self._bar.refresh()

    def log(self, message: str) -> None:
        self._bar.write(message)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ensure(progress: Progress | None) -> Progress:
    return progress if progress is not None else NullProgress()
