"""Job kinds the worker runs, and the Progress that writes to the jobs table.

Each kind is a config dataclass (the same one the CLI uses, fields with help text) and a runner
`run(ctx) -> result dict`. `submit_job` validates the settings with training.forms BEFORE the
job is queued, so a bad value is refused with a message naming the field.

    from training.jobs.kinds import submit_job
    job = submit_job(store, "reward", {"epochs": 2}, project="demo")

Kinds whose module is not installed yet (or fails to import) are listed as unavailable rather
than breaking the worker. Config classes are imported lazily: the dashboard imports this module
to draw forms and must not pull in torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.errors import NotFound, ValidationError
from training.forms import FieldSpec, build_config, describe, to_dict
from training.progress import Cancelled
from training.store import Job, Project, Store

log = logging.getLogger(__name__)


class WorkerStopping(Cancelled):
    """Raised at a step boundary when the worker process was asked to stop (SIGTERM/SIGINT)."""


# -- the Progress a running job reports through --------------------------------------------
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


# -- what a runner gets ---------------------------------------------------------------------
@dataclass
class JobContext:
    store: Store
    job: Job
    project: Project | None
    config: Any
    progress: Any
    out_dir: Path  # where a kind that writes a model puts it (created on demand)


def models_root(db: str) -> Path:
    """Where jobs save checkpoints: TOKENWISE_MODELS, else a `models/` folder beside the database."""
    env = os.environ.get("TOKENWISE_MODELS")
    return Path(env) if env else Path(db).resolve().parent / "models"


def _torch_threads() -> None:
    from training.device import set_threads

    set_threads()


# -- the kinds ----------------------------------------------------------------------------
@dataclass
class SelftestConfig:
    """A cheap job that exercises the worker: it sleeps through its steps and reports them."""

    steps: int = field(default=5, metadata={"help": "number of steps", "min": 1, "max": 100_000})
    seconds_per_step: float = field(default=0.2, metadata={
        "help": "how long each step sleeps (seconds)", "min": 0.0, "max": 600.0})
    fail_at_step: int = field(default=0, metadata={
        "help": "raise an error at this step (0 = never): shows how a failed job looks", "min": 0})


def run_selftest(ctx: JobContext) -> dict:
    cfg: SelftestConfig = ctx.config
    ctx.progress.log(f"selftest: {cfg.steps} steps of {cfg.seconds_per_step:g}s")
    t0 = time.monotonic()
    for step in range(1, cfg.steps + 1):
        time.sleep(cfg.seconds_per_step)
        if step == cfg.fail_at_step:
            raise RuntimeError(f"selftest: failing at step {step} as configured (fail_at_step={cfg.fail_at_step})")
        ctx.progress.step(step, cfg.steps, elapsed_s=time.monotonic() - t0)
    return {"steps": cfg.steps, "seconds": round(time.monotonic() - t0, 3)}


@dataclass
class ScoreConfig:
    """Score every candidate of the project with a reward model (fills the token-reward cache)."""

    model_id: int | None = field(default=None, metadata={
        "help": "reward model id from the registry (empty = the project's active reward model)", "min": 1})
    batch_size: int = field(default=8, metadata={"help": "candidates per forward pass", "min": 1, "max": 1024})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu, cuda"})


def _project_model(ctx: JobContext, model_id: int | None, kind: str) -> int:
    if model_id is not None:
        return int(model_id)
    attr = "active_reward_model" if kind == "reward" else "active_policy_model"
    mid = getattr(ctx.project, attr, None) if ctx.project else None
    if mid is None:
        raise ValidationError(
            f"model_id: project {ctx.project.name if ctx.project else '?'} has no active {kind} model; "
            "pass model_id or mark one active on the Models page")
    return int(mid)


def run_score(ctx: JobContext) -> dict:
    _torch_threads()
    from training.rewards.scoring import score_project

    model_id = _project_model(ctx, ctx.config.model_id, "reward")
    out = _call(score_project, ctx.store, model_id, ctx.project.name, ctx.config.batch_size, ctx.progress,
                device=ctx.config.device)
    return {"model_id": model_id, "scored": out if isinstance(out, (int, float)) else _jsonable(out)}


def run_reward(ctx: JobContext) -> dict:
    _torch_threads()
    from training.rewards.trainer import train_reward

    rec = _call(train_reward, ctx.store, ctx.project.name, ctx.config, ctx.out_dir,
                progress=ctx.progress, job_id=ctx.job.id)
    out = {"model_id": rec.id, "path": rec.path, "metrics": rec.metrics}
    if ctx.store.get_project(ctx.project.id).active_reward_model is None:
        # the project's first reward model becomes its active one (heatmaps, selection)
        ctx.store.update_project(ctx.project.id, active_reward_model=rec.id)
        out["activated"] = True
        if rec.metrics.get("small_data"):  # made active, but never silently: say why not to trust it
            out["small_data"] = True
            ctx.progress.log(f"WARNING: reward model {rec.id} is now the active one, but it learned from "
                             "too few rankings to be measured; rank more documents and train again")
    if ctx.config.score_after:
        from training.rewards.scoring import score_project

        ctx.progress.log(f"scoring the candidates of {ctx.project.name} with reward model {rec.id}")
        out["scored"] = score_project(ctx.store, rec.id, ctx.project.name, ctx.config.batch_size,
                                      ctx.progress, device=ctx.config.device)
    return out


def run_generate(ctx: JobContext) -> dict:
    _torch_threads()
    from training.ilf.generate import generate_candidates

    return generate_candidates(ctx.store, ctx.project.name, ctx.config, progress=ctx.progress)


def run_policy(ctx: JobContext) -> dict:
    _torch_threads()
    from training.policy import trainer as policy

    out = _call(policy.train_policy, ctx.store, ctx.project.name, ctx.config, ctx.out_dir,
                progress=ctx.progress, job_id=ctx.job.id)
    if hasattr(out, "id") and hasattr(out, "path"):  # a ModelRecord
        return {"model_id": out.id, "path": out.path, "metrics": out.metrics}
    return _jsonable(out)


def run_ilf_refine(ctx: JobContext) -> dict:
    _torch_threads()
    from training.ilf.pipeline import refine

    return refine(ctx.store, ctx.project.name, ctx.config, progress=ctx.progress)


def run_ilf_select(ctx: JobContext) -> dict:
    _torch_threads()
    from training.ilf.pipeline import select

    return select(ctx.store, ctx.project.name, ctx.config, progress=ctx.progress)


def run_ilf_build(ctx: JobContext) -> dict:
    """Write the project's ILF dataset to a JSONL file in the job's folder (for an SFT job)."""
    import json

    from training.ilf.pipeline import build_dataset

    rows = build_dataset(ctx.store, ctx.project.name, variant=ctx.config.variant, include=ctx.config.include)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.out_dir / f"ilf-{ctx.config.variant}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    ctx.progress.step(1, 1, rows=float(len(rows)))
    ctx.progress.log(f"wrote {len(rows)} rows to {path}; finetune on it with an SFT job (file={path})")
    return {"file": str(path), "rows": len(rows), "variant": ctx.config.variant, "include": ctx.config.include}


def run_sft(ctx: JobContext) -> dict:
    """SFT on `file`; with no file, on the project's accepted ILF refinements (sft variant)."""
    _torch_threads()
    from training.ilf.finetune import finetune

    cfg = ctx.config
    changes = {}
    if not cfg.file:
        built = run_ilf_build(dataclasses.replace(ctx, config=_dataset_defaults()))
        changes["file"] = built["file"]
    if not cfg.out:
        changes["out"] = str(ctx.out_dir / "model")
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
    out = _call(finetune, cfg, progress=ctx.progress, store=ctx.store, project=ctx.project.name, job_id=ctx.job.id)
    return {"model_id": out.get("model_id"), "path": out.get("out"), "metrics": out.get("metrics", {})}


def _dataset_defaults():
    from training.ilf.config import DatasetConfig

    return DatasetConfig()


def _call(fn: Callable, *args, **kwargs):
    """Call fn, dropping keyword arguments it does not take (e.g. job_id on an older trainer)."""
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return to_dict(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


@dataclass(frozen=True)
class JobKind:
    name: str
    title: str
    description: str
    config_ref: str  # "module:Class", imported lazily
    run: Callable[[JobContext], dict]
    needs_project: bool = True
    requires: tuple[str, ...] = ()  # modules the runner imports (checked by available())

    def config_class(self):
        module, _, cls = self.config_ref.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as e:
            raise NotFound(f"job kind {self.name!r} is not available: {self.config_ref} ({e})") from None

    def available(self) -> bool:
        if any(importlib.util.find_spec(m) is None for m in self.requires):
            return False
        try:
            self.config_class()
            return True
        except NotFound:
            return False


KINDS: dict[str, JobKind] = {k.name: k for k in [
    JobKind("reward", "Train reward model",
            "Learn a token-level reward model from the project's rankings (ListMLE over aggregated token rewards).",
            "training.rewards.config:RewardConfig", run_reward, requires=("training.rewards.trainer",)),
    JobKind("score", "Score candidates",
            "Compute per-token rewards of every candidate with a reward model (for heatmaps and selection).",
            "training.jobs.kinds:ScoreConfig", run_score, requires=("training.rewards.trainer",)),
    JobKind("policy", "Train policy",
            "Train the LM with the token-level reward: reward-weighted MLE on references, or REINFORCE.",
            "training.policy.config:PolicyConfig", run_policy, requires=("training.policy.trainer",)),
    JobKind("ilf_refine", "ILF: refine",
            "Sample refinements of each critiqued output from a refinement LM given the critique.",
            "training.ilf.config:RefineConfig", run_ilf_refine, requires=("training.ilf.pipeline",)),
    JobKind("ilf_select", "ILF: select",
            "Score the refinements (InstructRM, reward model, embeddings or random) and select the best per critique.",
            "training.ilf.config:SelectConfig", run_ilf_select, requires=("training.ilf.pipeline",)),
    JobKind("ilf_build", "ILF: build dataset",
            "Write the accepted (or selected) refinements as a prompt/completion file for SFT.",
            "training.ilf.config:DatasetConfig", run_ilf_build, requires=("training.ilf.pipeline",)),
    JobKind("sft", "SFT (finetune)",
            "Finetune an LM on prompt/completion rows (an ILF dataset; empty file = the project's accepted "
            "refinements); the checkpoint is registered as an ilf model.",
            "training.ilf.finetune_config:FinetuneConfig", run_sft, requires=("training.ilf.finetune",)),
    JobKind("generate", "Generate candidates",
            "Run a model (the active policy or any model path) on the project's documents and add new "
            "candidates for annotators to rank.",
            "training.ilf.generate:GenerateConfig", run_generate),
    JobKind("selftest", "Self-test (no model)",
            "Sleeps through a few steps: checks that a worker is running and the dashboard follows it.",
            "training.jobs.kinds:SelftestConfig", run_selftest, needs_project=False),
]}


def get_kind(name: str) -> JobKind:
    if name not in KINDS:
        raise ValidationError(f"job kind: {name!r} is not one of {', '.join(KINDS)}")
    return KINDS[name]


def kind_fields(name: str) -> list[FieldSpec]:
    """The form fields of a kind's config (for the dashboard and `tokenwise jobs kinds`)."""
    return describe(get_kind(name).config_class())


def validate(kind: str, values: dict | None) -> Any:
    """A validated config instance for `kind`; ValidationError names the bad field."""
    k = get_kind(kind)
    return build_config(k.config_class(), values, where=f"{kind} config: ")


def submit_job(store: Store, kind: str, values: dict | None = None, project: str | int | None = None,
               created_by: int | None = None) -> Job:
    """Validate the settings, then queue the job. Nothing is queued when a value is refused."""
    k = get_kind(kind)
    if not k.available():
        raise ValidationError(f"job kind {kind!r} is not available yet in this installation "
                              f"(needs {', '.join(k.requires) or k.config_ref})")
    config = validate(kind, values)
    if k.needs_project and project is None:
        raise ValidationError(f"project: a {kind} job needs a project (--project NAME)")
    return store.submit(kind, to_dict(config), project=project, created_by=created_by)


def run_job(store: Store, job: Job, progress) -> dict:
    """Run a claimed job in this process; returns the runner's result dict (raises on failure)."""
    k = get_kind(job.kind)
    config = validate(job.kind, job.config)
    project = store.get_project(job.project_id) if job.project_id is not None else None
    if k.needs_project and project is None:
        raise ValidationError(f"project: job {job.id} ({job.kind}) has no project")
    ctx = JobContext(store=store, job=job, project=project, config=config, progress=progress,
                     out_dir=models_root(store.path) / f"{job.kind}-job{job.id}")
    result = k.run(ctx)
    return _jsonable(result or {})
