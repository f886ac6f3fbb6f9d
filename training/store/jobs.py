"""The jobs queue: submit, claim (conditional UPDATE), progress, heartbeat, cancel, finish.

A job's life: `queued` -> `running` (a worker claimed it) -> `done` | `failed` | `cancelled`.
Claiming is one conditional UPDATE inside BEGIN IMMEDIATE, so two workers never run one job.
A running job's worker writes a heartbeat every few seconds; a job whose heartbeat is older
than the timeout belonged to a dead worker and `fail_stale` marks it failed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from ..errors import NotFound, ValidationError
from .base import StoreBase, now
from .records import Job

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")
LOG_MAX_CHARS = 200_000  # keep the tail of very chatty logs


class JobsMixin(StoreBase):
    def submit(self, kind: str, config: dict, project: str | int | None = None,
               created_by: int | None = None) -> Job:
        """Queue a job. `config` must already be validated (training.jobs.kinds.submit_job does it)."""
        kind = (kind or "").strip()
        if not kind:
            raise ValidationError("job kind: must not be empty")
        project_id = None if project is None else self.get_project(project).id
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO jobs (kind, project_id, config, status, created_by, created)"
                " VALUES (?,?,?, 'queued', ?,?)",
                (kind, project_id, json.dumps(config, default=str), created_by, now()),
            )
        return self.get_job(cur.lastrowid)

    def claim_next(self, worker_id: str, pid: int) -> Job | None:
        """Take the oldest queued job for this worker, or None. Never gives one job to two workers."""
        if self.scalar("SELECT 1 FROM jobs WHERE status = 'queued' LIMIT 1") is None:
            return None  # idle polls stay read-only: no write lock taken while annotators save
        ts = now()
        with self.tx() as c:
            cur = c.execute(
                "UPDATE jobs SET status = 'running', worker = ?, pid = ?, started = ?, heartbeat = ?"
                " WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1)"
                " AND status = 'queued' RETURNING id",
                (worker_id, pid, ts, ts),
            )
            row = cur.fetchone()
            cur.fetchall()  # finish the statement before COMMIT
        if row is None:
            return None
        return self.get_job(row[0])

    def report(self, job_id: int, step: int | None = None, total: int | None = None,
               metrics: list[dict] | None = None, log_lines: list[str] | None = None) -> bool:
        """Write progress and a heartbeat for a running job; return True when it should stop: a
        cancel was requested, or it is not running any more (e.g. marked failed after a heartbeat gap).

        `metrics` rows ({"step": 3, "loss": 0.7, ...}) are appended to the job's metrics list;
        `log_lines` to its log.
        """
        sets = ["heartbeat = :hb"]
        params: dict = {"id": job_id, "hb": now()}
        if step is not None:
            sets.append("step = :step")
            params["step"] = int(step)
        if total is not None:
            sets.append("total = :total")
            params["total"] = int(total)
        if log_lines:
            sets.append("log = substr(log || :log, -:logmax)")
            params["log"] = "".join(line.rstrip("\n") + "\n" for line in log_lines)
            params["logmax"] = LOG_MAX_CHARS
        with self.tx() as c:
            row = c.execute("SELECT cancel_requested, metrics FROM jobs WHERE id = ? AND status = 'running'",
                            (job_id,)).fetchone()
            if row is None:
                return True
            if metrics:  # append inside the write transaction: no other writer in between
                sets.append("metrics = :metrics")
                params["metrics"] = json.dumps(json.loads(row["metrics"] or "[]") + list(metrics), default=float)
            c.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = :id", params)
        return bool(row["cancel_requested"])

    def append_log(self, job_id: int, message: str) -> None:
        """Add a line to a job's log (any status: the worker logs the outcome after finishing)."""
        with self.tx() as c:
            c.execute("UPDATE jobs SET log = substr(log || ?, -?) WHERE id = ?",
                      (message.rstrip("\n") + "\n", LOG_MAX_CHARS, job_id))

    def request_cancel(self, job_id: int) -> Job:
        """Cancel a job: a queued one at once; a running one at its next step (the worker sees the flag)."""
        job = self.get_job(job_id)
        if job.status in FINAL:
            raise ValidationError(f"job {job_id} is already {job.status}; only queued or running jobs can be cancelled")
        with self.tx() as c:
            c.execute(
                "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished = ?"
                " WHERE id = ? AND status = 'queued'", (now(), job_id))
            c.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'", (job_id,))
        return self.get_job(job_id)

    def finish(self, job_id: int, status: str, error: str | None = None, result: dict | None = None) -> bool:
        """Close a running job with done/failed/cancelled. Returns False when it was not running
        any more (e.g. another worker already marked it failed after a heartbeat gap)."""
        if status not in FINAL:
            raise ValidationError(f"status: {status!r} is not one of {', '.join(FINAL)}")
        with self.tx() as c:
            cur = c.execute(
                "UPDATE jobs SET status = ?, error = ?, result = ?, finished = ? WHERE id = ? AND status = 'running'",
                (status, error, json.dumps(result or {}, default=str), now(), job_id),
            )
        return cur.rowcount == 1

    def fail_stale(self, heartbeat_timeout_s: float) -> list[int]:
        """Mark running jobs whose heartbeat is older than the timeout failed (their worker died)."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=heartbeat_timeout_s)).isoformat(
            timespec="milliseconds")
        ts = now()
        with self.tx() as c:
            rows = c.execute(
                "SELECT id, worker, pid, heartbeat FROM jobs WHERE status = 'running'"
                " AND (heartbeat IS NULL OR heartbeat < ?)", (cutoff,)).fetchall()
            for r in rows:
                msg = (f"worker {r['worker']} (pid {r['pid']}) stopped sending heartbeats "
                       f"(last {r['heartbeat']}, timeout {heartbeat_timeout_s:g}s): it probably died; "
                       "submit the job again")
                c.execute(
                    "UPDATE jobs SET status = 'failed', error = ?, finished = ?, log = log || ?"
                    " WHERE id = ? AND status = 'running'", (msg, ts, msg + "\n", r["id"]))
        return [r["id"] for r in rows]

    def get_job(self, job_id: int) -> Job:
        row = self.one("SELECT * FROM jobs WHERE id = ?", (int(job_id),))
        if row is None:
            raise NotFound(f"job {job_id} does not exist (see: tokenwise jobs list)")
        return Job.from_row(row)

    def list_jobs(self, status: str | None = None, project: str | int | None = None,
                  kind: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs, newest first, optionally filtered."""
        where, params = [], []
        if status is not None:
            if status not in STATUSES:
                raise ValidationError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
            where.append("status = ?")
            params.append(status)
        if project is not None:
            where.append("project_id = ?")
            params.append(self.get_project(project).id)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        return [Job.from_row(r) for r in self.all(sql, (*params, int(limit)))]
