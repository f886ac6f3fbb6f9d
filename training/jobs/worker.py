"""The background worker: claim queued jobs from the database and run them one at a time.

    tokenwise worker --db tokenwise.db        (or `tokenwise serve`, which starts one)

One worker process runs one job at a time; run one worker per GPU, each seeing its own device
(`CUDA_VISIBLE_DEVICES=1 tokenwise worker --db ...`). The loop:
1. on start, mark failed the running jobs whose worker died: a worker process on this host
   that no longer exists, or any job whose heartbeat is older than the timeout;
2. claim the oldest queued job (a conditional UPDATE: two workers never get the same job);
3. run its kind's runner with a JobProgress (step/total/metrics/log + a heartbeat thread);
4. record the outcome: done (with its result), failed (message; traceback in the log), or
   cancelled (the dashboard asked; the runner stopped at its next step);
5. SIGTERM/SIGINT: the running job stops at its next step and is marked failed ("interrupted"),
   then the worker exits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback

from training.errors import TokenwiseError
from training.jobs.kinds import run_job
from training.jobs.progress import JobLogHandler, JobProgress, WorkerStopping
from training.progress import Cancelled
from training.store import Job, Store

log = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_S = 120.0


def _install_signals(stop: threading.Event) -> list:
    """SIGTERM/SIGINT set `stop`; returns what to restore. Only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return []

    def handler(signum, _frame):
        log.warning("worker: got signal %s; stopping after the current step", signum)
        stop.set()

    old = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        old.append((sig, signal.signal(sig, handler)))
    return old


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _fail_running(store: Store, which, reason) -> list[int]:
    """Mark failed the running jobs for which which(job) holds; reason(job) is the message start."""
    failed = []
    for j in store.list_jobs(status="running", limit=10_000):
        if which(j):
            msg = f"{reason(j)} while running this job (at step {j.step}/{j.total}); submit the job again"
            if store.finish(j.id, "failed", error=msg):
                store.append_log(j.id, msg)
                failed.append(j.id)
    return failed


def fail_dead_local(store: Store, host: str) -> list[int]:
    """Mark failed the running jobs of workers on this host whose process is gone (no need to
    wait for their heartbeat to go stale: a restarted `tokenwise serve` recovers at once)."""
    return _fail_running(
        store, lambda j: bool(j.worker and j.pid and j.worker.rsplit(":", 1)[0] == host and not _alive(j.pid)),
        lambda j: f"worker {j.worker} (pid {j.pid}) is gone: it stopped")


def fail_jobs_of_worker(store: Store, pid: int, how: str) -> list[int]:
    """Mark failed the running jobs of the worker process `pid` on this host, which just died
    (`how`: e.g. "the worker (pid 12) was killed by signal 9 (SIGKILL)"); `tokenwise serve` calls it."""
    host = socket.gethostname()
    return _fail_running(store, lambda j: j.pid == pid and bool(j.worker) and j.worker.rsplit(":", 1)[0] == host,
                         lambda j: how)


def run_one(store: Store, job: Job, *, stop: threading.Event | None = None,
            heartbeat_interval: float = 5.0, report_interval: float = 1.0) -> str:
    """Run one claimed job to its end and record the outcome; returns the final status."""
    progress = JobProgress(store.path, job.id, interval=report_interval, stop_event=stop)
    handler = JobLogHandler(progress)
    lib_logger = logging.getLogger("training")
    old_level = lib_logger.level
    lib_logger.addHandler(handler)
    if lib_logger.getEffectiveLevel() > logging.INFO:
        lib_logger.setLevel(logging.INFO)
    progress.log(f"job {job.id} ({job.kind}) started by {job.worker} (pid {job.pid})")
    progress.start_heartbeat(heartbeat_interval)
    status, error, result = "done", None, None
    t0 = time.monotonic()
    try:
        result = run_job(store, job, progress)
    except WorkerStopping:
        step, total = progress.last_step
        status, error = "failed", (f"interrupted: the worker was stopped at step {step}/{total}; "
                                   "submit the job again")
    except Cancelled:
        step, total = progress.last_step
        status, error = "cancelled", None
        progress.log(f"cancelled at step {step}/{total}")
    except TokenwiseError as e:  # a message written for people: it is the whole story (no traceback in the log)
        status, error = "failed", str(e)
        log.debug("job %s failed", job.id, exc_info=True)
    except Exception as e:  # noqa: BLE001 - any error of the job is the job's, not the worker's
        status, error = "failed", f"{type(e).__name__}: {e}"
        progress.log(traceback.format_exc())
    finally:
        lib_logger.removeHandler(handler)
        lib_logger.setLevel(old_level)
        progress.log(f"{status} after {time.monotonic() - t0:.1f}s" + (f": {error}" if error else ""))
        progress.close()
    if not store.finish(job.id, status, error=error, result=result):
        log.warning("job %s was no longer running when it ended (%s); left as it is", job.id, status)
        return store.get_job(job.id).status
    log.info("job %s (%s): %s%s", job.id, job.kind, status, f": {error}" if error else "")
    return status


def run_worker(db: str, once: bool = False, poll: float = 1.0,
               heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S, heartbeat_interval: float | None = None,
               worker_id: str | None = None, stop: threading.Event | None = None,
               idle_exit: float | None = None) -> int:
    """Claim and run jobs until stopped; return how many jobs ran.

    once: run at most one job (none when the queue is empty), then return.
    idle_exit: return after this many seconds with an empty queue (tests, batch use).
    """
    stop = stop or threading.Event()
    restore = _install_signals(stop)
    host = socket.gethostname()
    worker_id = worker_id or f"{host}:{os.getpid()}"
    if heartbeat_interval is None:
        heartbeat_interval = max(0.2, min(5.0, heartbeat_timeout / 4))
    ran = 0
    store = Store(db)
    try:
        stale = fail_dead_local(store, host) + store.fail_stale(heartbeat_timeout)
        if stale:
            log.warning("worker %s: marked stale job(s) %s failed (their worker stopped)", worker_id, stale)
        last_stale_check = time.monotonic()
        idle_since = time.monotonic()
        log.info("worker %s: polling %s every %.1fs", worker_id, db, poll)
        while not stop.is_set():
            job = store.claim_next(worker_id, os.getpid())
            if job is None:
                if once:
                    break
                if idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                    break
                if time.monotonic() - last_stale_check >= heartbeat_timeout / 2:
                    store.fail_stale(heartbeat_timeout)
                    last_stale_check = time.monotonic()
                stop.wait(poll)
                continue
            log.info("worker %s: running job %s (%s)", worker_id, job.id, job.kind)
            run_one(store, job, stop=stop, heartbeat_interval=heartbeat_interval)
            ran += 1
            idle_since = time.monotonic()
            if once:
                break
    finally:
        store.close()
        for sig, old in restore:
            signal.signal(sig, old)
    return ran
