"""What each job kind does: one `run_<kind>(ctx) -> result dict` per kind, and the two configs
that belong to no other package (SelftestConfig, ScoreConfig).

    ctx = JobContext(store, job, project, config, progress, out_dir=models_root(store.path) / "reward-job3")
    result = run_reward(ctx)      # {"model_id", "path", "metrics", ...}, stored as the job's result

Runners import their trainer when they run (the dashboard imports this module through
training.jobs.kinds to draw forms, and must not pull in torch). A runner that uses torch sets
the thread count first: TOKENWISE_THREADS, else 1 (a config's own `threads` wins in its trainer).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.errors import ValidationError
from training.store import Job, Project, Store


@dataclass
class JobContext:
    """What a runner gets: the worker's store, the job, its project, its validated config."""

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


# -- selftest -------------------------------------------------------------------------------
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


# -- reward model: train, score -------------------------------------------------------------
@dataclass
class ScoreConfig:
    """Score every candidate of the project with a reward model (fills the token-reward cache)."""

    model_id: int | None = field(default=None, metadata={
        "help": "reward model id from the registry (empty = the project's active reward model)", "min": 1})
    batch_size: int = field(default=8, metadata={"help": "candidates per forward pass", "min": 1, "max": 1024})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu, cuda"})


def _active_reward_model(ctx: JobContext, model_id: int | None) -> int:
    if model_id is not None:
        return int(model_id)
    if ctx.project.active_reward_model is None:
        raise ValidationError(
            f"model_id: project {ctx.project.name} has no active reward model; "
            "pass model_id or mark one active on the Models page")
    return int(ctx.project.active_reward_model)


def run_score(ctx: JobContext) -> dict:
    _torch_threads()
    from training.rewards.scoring import score_project

    model_id = _active_reward_model(ctx, ctx.config.model_id)
    scored = score_project(ctx.store, model_id, ctx.project.name, ctx.config.batch_size, ctx.progress,
                           device=ctx.config.device)
    return {"model_id": model_id, "scored": scored}


def run_reward(ctx: JobContext) -> dict:
    _torch_threads()
    from training.rewards.trainer import train_reward

    rec = train_reward(ctx.store, ctx.project.name, ctx.config, ctx.out_dir, progress=ctx.progress,
                       job_id=ctx.job.id)
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


# -- policy and generation ------------------------------------------------------------------
def run_policy(ctx: JobContext) -> dict:
    _torch_threads()
    from training.policy.trainer import train_policy

    rec = train_policy(ctx.store, ctx.project.name, ctx.config, ctx.out_dir, progress=ctx.progress,
                       job_id=ctx.job.id)
    return {"model_id": rec.id, "path": rec.path, "metrics": rec.metrics}


def run_generate(ctx: JobContext) -> dict:
    _torch_threads()
    from training.ilf.generate import generate_candidates

    return generate_candidates(ctx.store, ctx.project.name, ctx.config, progress=ctx.progress)


def run_eval_round(ctx: JobContext) -> dict:
    _torch_threads()
    from training.evaluation.rounds import run_round

    return run_round(ctx.store, ctx.project.name, ctx.config, progress=ctx.progress, job_id=ctx.job.id,
                     created_by=ctx.job.created_by)


# -- ILF: refine, select, build, finetune ---------------------------------------------------
def run_ilf_refine(ctx: JobContext) -> dict:
    _torch_threads()
    from training.ilf.refine import refine

    return refine(ctx.store, ctx.project.name, ctx.config, progress=ctx.progress)


def run_ilf_select(ctx: JobContext) -> dict:
    _torch_threads()
    from training.ilf.select import select

    return select(ctx.store, ctx.project.name, ctx.config, progress=ctx.progress)


def run_ilf_build(ctx: JobContext) -> dict:
    """Write the project's ILF dataset to a JSONL file in the job's folder (for an SFT job)."""
    from training.ilf.dataset import build_dataset

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
    from training.ilf.config import DatasetConfig
    from training.ilf.finetune import finetune

    cfg = ctx.config
    changes = {}
    if not cfg.file:
        changes["file"] = run_ilf_build(dataclasses.replace(ctx, config=DatasetConfig()))["file"]
    if not cfg.out:
        changes["out"] = str(ctx.out_dir / "model")
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
    out = finetune(cfg, progress=ctx.progress, store=ctx.store, project=ctx.project.name, job_id=ctx.job.id)
    return {"model_id": out["model_id"], "path": out["out"], "metrics": out["metrics"]}
