"""The worker: runs jobs once each, records errors, cancels, survives a killed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from training.jobs.kinds import submit_job
from training.jobs.worker import run_worker
from training.store import Store

WORKER = """
import sys
from training.jobs.worker import run_worker
n = run_worker(sys.argv[1], poll=0.05, heartbeat_timeout=float(sys.argv[2]), idle_exit=float(sys.argv[3]),
               worker_id=sys.argv[4] if len(sys.argv) > 4 else None)
print(n)
"""


def start_worker(db: str, heartbeat_timeout: float = 2.0, idle_exit: float = 1.0,
                 worker_id: str | None = None) -> subprocess.Popen:
    extra = [worker_id] if worker_id else []
    return subprocess.Popen([sys.executable, "-c", WORKER, db, str(heartbeat_timeout), str(idle_exit), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, timeout: float = 30.0, what: str = "condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_runs_jobs_records_metrics_and_errors(store):
    ok = submit_job(store, "selftest", {"steps": 3, "seconds_per_step": 0})
    bad = submit_job(store, "selftest", {"steps": 5, "seconds_per_step": 0, "fail_at_step": 2})
    assert run_worker(store.path, poll=0.01, idle_exit=0) == 2
    j = store.get_job(ok.id)
    assert (j.status, j.step, j.total, j.error) == ("done", 3, 3, None)
    assert [m["step"] for m in j.metrics] == [1, 2, 3] and all("elapsed_s" in m for m in j.metrics)
    assert j.result["steps"] == 3 and "done after" in j.log
    j = store.get_job(bad.id)
    assert j.status == "failed" and j.step == 1
    assert j.error == "RuntimeError: selftest: failing at step 2 as configured (fail_at_step=2)"
    assert "Traceback (most recent call last)" in j.log  # the traceback goes to the log
    assert run_worker(store.path, once=True) == 0  # empty queue: once returns at once


def test_cancel_stops_a_running_job_at_its_next_step(store):
    job = submit_job(store, "selftest", {"steps": 200, "seconds_per_step": 0.05})
    t = threading.Thread(target=run_worker, args=(store.path,), kwargs={"once": True, "poll": 0.01})
    t.start()
    wait_for(lambda: store.get_job(job.id).step >= 2, what="two steps")
    store.request_cancel(job.id)
    t.join(timeout=20)
    assert not t.is_alive()
    j = store.get_job(job.id)
    assert j.status == "cancelled" and j.error is None
    assert 2 <= j.step < 200 and "cancelled at step" in j.log


def test_heartbeat_thread_beats_during_a_long_step(store):
    job = submit_job(store, "selftest", {"steps": 1, "seconds_per_step": 1.5})
    t = threading.Thread(target=run_worker, args=(store.path,),
                         kwargs={"once": True, "heartbeat_timeout": 1.0, "heartbeat_interval": 0.2})
    t.start()
    first = wait_for(lambda: store.get_job(job.id).heartbeat if store.get_job(job.id).status == "running" else None,
                     what="the job to start")
    wait_for(lambda: store.get_job(job.id).heartbeat != first, timeout=5, what="a heartbeat inside the step")
    assert store.get_job(job.id).step == 0  # still inside step 1
    t.join(timeout=20)
    assert store.get_job(job.id).status == "done"


def test_sigkill_recovery_stale_job_failed_queued_job_runs(db_path):
    with Store(db_path) as s:
        slow = submit_job(s, "selftest", {"steps": 500, "seconds_per_step": 0.05})
    # a worker on "another machine": only its heartbeat can tell that it died
    proc = start_worker(db_path, heartbeat_timeout=1.0, idle_exit=30, worker_id="gpu-box:4242")
    with Store(db_path) as s:
        wait_for(lambda: s.get_job(slow.id).step >= 2, what="the worker to start the slow job")
        queued = submit_job(s, "selftest", {"steps": 2, "seconds_per_step": 0})
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert s.get_job(slow.id).status == "running"  # nobody knows yet
        assert s.get_job(queued.id).status == "queued"
        time.sleep(1.2)  # let the dead worker's heartbeat go stale
        assert run_worker(db_path, poll=0.01, idle_exit=0, heartbeat_timeout=1.0) == 1
        j = s.get_job(slow.id)
        assert j.status == "failed" and "stopped sending heartbeats" in j.error and j.step < 500
        assert s.get_job(queued.id).status == "done"  # the queued job was not lost
        assert s.scalar("PRAGMA integrity_check") == "ok"


def test_sigterm_stops_after_the_current_step(db_path):
    with Store(db_path) as s:
        slow = submit_job(s, "selftest", {"steps": 500, "seconds_per_step": 0.05})
        later = submit_job(s, "selftest", {"steps": 1, "seconds_per_step": 0})
    proc = start_worker(db_path, heartbeat_timeout=5.0, idle_exit=30)
    with Store(db_path) as s:
        wait_for(lambda: s.get_job(slow.id).step >= 2, what="the worker to start the slow job")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out.strip() == "1"
        j = s.get_job(slow.id)
        assert j.status == "failed" and j.error.startswith("interrupted: the worker was stopped at step")
        assert s.get_job(later.id).status == "queued"  # left for the next worker


def test_two_worker_processes_run_each_job_once(db_path):
    with Store(db_path) as s:
        ids = [submit_job(s, "selftest", {"steps": 1, "seconds_per_step": 0.02}).id for _ in range(30)]
    procs = [start_worker(db_path, heartbeat_timeout=5.0, idle_exit=0.5) for _ in range(2)]
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        counts.append(int(out.strip()))
    assert sum(counts) == len(ids)
    with Store(db_path) as s:
        jobs = s.list_jobs(limit=100)
        assert sorted(j.id for j in jobs) == ids
        assert all(j.status == "done" for j in jobs)
        assert all(j.log.count("started by") == 1 for j in jobs)  # run exactly once


def test_a_library_error_is_recorded_as_its_message(store, project):
    job = submit_job(store, "score", {}, project="p")  # the project has no reward model
    assert run_worker(store.path, once=True) == 1
    j = store.get_job(job.id)
    assert j.status == "failed"
    assert j.error == "model_id: project p has no active reward model; pass model_id or mark one active on the Models page"
    assert "Traceback" not in j.log and j.error in j.log  # a message for people: no Python traceback shown


def test_job_progress_thins_long_metric_series_and_keeps_eval_rows(store):
    from training.jobs.progress import JobProgress

    job = store.submit("selftest", {})
    store.claim_next("w", os.getpid())
    progress = JobProgress(store.path, job.id, interval=60)
    total = 10_000
    for step in range(1, total + 1):
        metrics = {"loss": 1.0 / step}
        if step in (2500, 7777):
            metrics["eval_loss"] = 0.5
        progress.step(step, total, **metrics)
    progress.log("end")
    progress.close()
    j = store.get_job(job.id)
    steps = [m["step"] for m in j.metrics]
    assert (j.step, j.total) == (total, total) and j.log.endswith("end\n")
    assert 2000 <= len(steps) <= 2010 and steps == sorted(steps) and steps[-1] == total
    assert [m["step"] for m in j.metrics if "eval_loss" in m] == [2500, 7777]


def test_a_killed_local_worker_is_noticed_without_waiting_for_the_timeout(db_path):
    with Store(db_path) as s:
        slow = submit_job(s, "selftest", {"steps": 500, "seconds_per_step": 0.05})
    proc = start_worker(db_path, heartbeat_timeout=120, idle_exit=30)
    with Store(db_path) as s:
        wait_for(lambda: s.get_job(slow.id).step >= 1, what="the worker to start the slow job")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert run_worker(db_path, once=True, heartbeat_timeout=120) == 0  # heartbeat still fresh
        j = s.get_job(slow.id)
        assert j.status == "failed" and f"(pid {proc.pid}) is gone" in j.error
        assert j.log.rstrip().endswith("submit the job again")
