"""What a running job reports through: progress rows, log lines and a heartbeat in its jobs row.

    progress = JobProgress(store.path, job.id, stop_event=stop)
    progress.start_heartbeat(5.0)
    logging.getLogger("training").addHandler(JobLogHandler(progress))
    ...  # the runner calls progress.step(i, n, loss=...) and progress.log("...")
    progress.close()

`JobProgress` is the worker's implementation of training.progress.Progress; its `step()` raises
Cancelled when the dashboard cancelled the job and WorkerStopping when the worker was told to stop.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from training.progress import Cancelled
from training.store import Store

log = logging.getLogger(__name__)


class WorkerStopping(Cancelled):
    """Raised at a step boundary when the worker process was asked to stop (SIGTERM/SIGINT)."""


class JobProgress:
    """Writes step/total/metrics/log lines and a heartbeat to the job's row.

    It opens its OWN connection (the runner uses the worker's store at the same time) and is
    shared by the runner's thread and a heartbeat thread under a lock. Writes are throttled to
    one per `interval` seconds; metrics rows are buffered between writes, and thinned to about
    MAX_ROWS per job (every stride-th step, the last step, and any row with new metric names such
    as an evaluation). `step()` raises Cancelled once the dashboard asked to cancel (or the job
    is no longer running), WorkerStopping when the worker stops.
    """

    MAX_ROWS = 2000

    def __init__(self, db: str, job_id: int, *, interval: float = 1.0,
                 stop_event: threading.Event | None = None):
        self.job_id = job_id
        self.interval = interval
        self.stop_event = stop_event or threading.Event()
        self.cancelled = threading.Event()
        self._store = Store(db, migrate=False)
        self._lock = threading.RLock()
        self._metrics: list[dict] = []
        self._lines: list[str] = []
        self._step: int | None = None
        self._total: int | None = None
        self._last_flush = 0.0
        self._beat_stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_step = (0, 0)
        self._last_keys: frozenset = frozenset()

    # Progress protocol
    def step(self, step: int, total: int, **metrics: float) -> None:
        self._check()
        with self._lock:
            self._step, self._total = int(step), int(total)
            self.last_step = (int(step), int(total))
            stride = max(1, -(-int(total) // self.MAX_ROWS))
            keys = frozenset(metrics)
            keep = step % stride == 0 or step >= total or keys != self._last_keys
            if metrics and keep:
                self._last_keys = keys
                row = {"step": int(step)}
                for k, v in metrics.items():
                    try:
                        row[k] = float(v)
                    except (TypeError, ValueError):
                        row[k] = str(v)
                self._metrics.append(row)
            due = time.monotonic() - self._last_flush >= self.interval or step >= total
        if due:
            self.flush()
        self._check()

    def log(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with self._lock:
            self._lines.append(f"{stamp} {message}")

    # machinery
    def _check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled(f"job {self.job_id} was cancelled")
        if self.stop_event.is_set():
            raise WorkerStopping(f"the worker was asked to stop during job {self.job_id}")

    def flush(self) -> None:
        """Write what is buffered and a heartbeat; learn whether a cancel was requested."""
        failed = None
        with self._lock:
            metrics, self._metrics = self._metrics, []
            lines, self._lines = self._lines, []
            try:
                cancel = self._store.report(self.job_id, self._step, self._total, metrics, lines)
            except Exception as e:  # noqa: BLE001 - a busy database must not kill the job; retry next time
                self._metrics = metrics + self._metrics
                self._lines = lines + self._lines
                failed, cancel = e, False
            else:
                self._last_flush = time.monotonic()
        if failed is not None:  # logged outside the lock: our own log handler takes it too
            log.warning("job %s: could not write progress (%s); retrying", self.job_id, failed)
        if cancel:
            self.cancelled.set()

    def start_heartbeat(self, every: float) -> None:
        """A thread that flushes (heartbeat + buffered rows) every `every` s, even inside a long step."""
        def beat():
            while not self._beat_stop.wait(every):
                self.flush()

        self._thread = threading.Thread(target=beat, name=f"heartbeat-job-{self.job_id}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._beat_stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
        self._store.close()


class JobLogHandler(logging.Handler):
    """Sends the library's log records (logger "training") into the running job's log."""

    def __init__(self, progress: JobProgress):
        super().__init__(level=logging.INFO)
        self.progress = progress
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.progress.log(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)
