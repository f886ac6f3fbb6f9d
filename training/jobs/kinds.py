"""The job kinds the worker runs: one table (KINDS) of config class + runner per kind.

    from training.jobs.kinds import submit_job
    job = submit_job(store, "reward", {"epochs": 2}, project="demo")   # validated, then queued

Each kind is a config dataclass (the same one the CLI uses, fields with help text) and a runner
in training.jobs.runners. `submit_job` validates the settings with training.forms BEFORE the job
is queued, so a bad value is refused with a message naming the field; the worker calls `run_job`.
Config classes are named as "module:Class" and imported when asked for: the dashboard imports
this module to draw forms and must not pull in torch.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.access import check_path_text, inside_data_folder
from training.errors import ValidationError
from training.forms import FieldSpec, build_config, describe, to_dict
from training.jobs.runners import (
    JobContext,
    models_root,
    run_eval_round,
    run_generate,
    run_ilf_build,
    run_ilf_refine,
    run_ilf_select,
    run_policy,
    run_reward,
    run_score,
    run_selftest,
    run_sft,
)
from training.lm import ALIASES, hub_name, in_hub_cache
from training.store import Job, Store


@dataclass(frozen=True)
class JobKind:
    name: str
    title: str
    description: str
    config_ref: str  # "module:Class", imported when asked for
    run: Callable[[JobContext], dict]
    needs_project: bool = True
    # settings that name files or folders: "read" / "write" (a path), "model" (an alias such as
    # smollm2, or a folder). From the dashboard they must lie inside the data folder.
    paths: tuple[tuple[str, str], ...] = ()

    def config_class(self):
        module, _, cls = self.config_ref.partition(":")
        return getattr(importlib.import_module(module), cls)


KINDS: dict[str, JobKind] = {k.name: k for k in [
    JobKind("reward", "Train reward model",
            "Learn a token-level reward model from the project's rankings (ListMLE over aggregated token rewards).",
            "training.rewards.config:RewardConfig", run_reward, paths=(("base_model", "model"),)),
    JobKind("score", "Score candidates",
            "Compute per-token rewards of every candidate with a reward model (for heatmaps and selection).",
            "training.jobs.runners:ScoreConfig", run_score),
    JobKind("policy", "Train policy",
            "Train the LM with the token-level reward: reward-weighted MLE on references, or REINFORCE.",
            "training.policy.config:PolicyConfig", run_policy,
            paths=(("base_model", "model"), ("reward_model", "model"))),
    JobKind("ilf_refine", "ILF: refine",
            "Sample refinements of each critiqued output from a refinement LM given the critique.",
            "training.ilf.config:RefineConfig", run_ilf_refine, paths=(("model", "model"),)),
    JobKind("ilf_select", "ILF: select",
            ("Score the refinements (PMI by default; InstructRM, reward model, ensemble, embeddings or random) and "
             "select the best per critique."),
            "training.ilf.config:SelectConfig", run_ilf_select,
            paths=(("model", "model"), ("reward_model", "model"))),
    JobKind("ilf_build", "ILF: build dataset",
            "Write the accepted (or selected) refinements as a prompt/completion file for SFT.",
            "training.ilf.config:DatasetConfig", run_ilf_build),
    JobKind("sft", "SFT (finetune)",
            "Finetune an LM on prompt/completion rows (an ILF dataset; empty file = the project's accepted "
            "refinements); the checkpoint is registered as an ilf model.",
            "training.ilf.finetune_config:FinetuneConfig", run_sft,
            paths=(("file", "read"), ("out", "write"), ("base", "model"))),
    JobKind("generate", "Generate candidates",
            "Run a model (the active policy or any model path) on the project's documents and add new "
            "candidates for annotators to rank.",
            "training.ilf.generate:GenerateConfig", run_generate, paths=(("model", "model"),)),
    JobKind("eval_round", "Evaluation round (blind A/B)",
            "Two models answer the same held-out documents; a blind K=2 project opens for annotators, "
            "with the judge reward model's verdict beside theirs.",
            "training.evaluation.config:RoundConfig", run_eval_round,
            paths=(("model_a", "model"), ("model_b", "model"))),
    JobKind("selftest", "Self-test (no model)",
            "Sleeps through a few steps: checks that a worker is running and the dashboard follows it.",
            "training.jobs.runners:SelftestConfig", run_selftest, needs_project=False),
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
               created_by: int | None = None, data_root: Path | None = None) -> Job:
    """Validate the settings, then queue the job. Nothing is queued when a value is refused.

    data_root: the dashboard passes the data folder; every path setting must then lie inside it
    (or, for a model, inside the models folder or be an alias) and is stored as an absolute path.
    """
    k = get_kind(kind)
    if data_root is not None:
        values = confine_paths(k, values or {}, data_root, models_root(store.path))
    config = validate(kind, values)
    if k.needs_project and project is None:
        raise ValidationError(f"project: a {kind} job needs a project (--project NAME)")
    for name, use in k.paths:
        if use == "write" and getattr(config, name, ""):
            check_output_folder(store, name, getattr(config, name))
    return store.submit(kind, to_dict(config), project=project, created_by=created_by)


def check_output_folder(store: Store, field: str, value: str) -> None:
    """A job's output folder must not be the database's folder (or one above it), nor a registered
    model's folder or one inside it: a job writes its files there and would overwrite them."""
    check_path_text(value, field)
    path = Path(value).expanduser().resolve()
    db_folder = Path(store.path).resolve().parent
    if path == db_folder or path in db_folder.parents:
        raise ValidationError(f"{field}: {value} holds the database; give the job a folder of its own "
                              "(e.g. models/NAME)")
    for m in store.list_models():
        held = Path(m.path).expanduser().resolve()
        if path == held or held in path.parents:
            raise ValidationError(f"{field}: {value} is the folder of model #{m.id} ({m.kind}) or inside it; the job "
                                  "would write over that model: choose a new folder")


def confine_paths(kind: JobKind, values: dict, data_root: Path, models: Path) -> dict:
    """The values with every path setting made absolute inside the data folder (ValidationError
    otherwise). Empty values keep their meaning (the kind's default); model aliases stay."""
    out = dict(values)
    for name, use in kind.paths:
        value = str(out.get(name) or "").strip()
        if not value or (use == "model" and (value in ALIASES or value.isdigit())):  # an alias or a registry id
            continue
        path = inside_data_folder(value, data_root, field=name, also=(models,) if use == "model" else ())
        if use == "model" and not Path(path).exists():  # said now, not when the worker fails on it
            if hub_name(value) and in_hub_cache(value):
                path = value  # a Hugging Face model this server has downloaded already
            else:
                raise ValidationError(
                    f"{name}: {value!r} is not a folder in the data folder {Path(data_root).resolve()}"
                    + (" nor a model in this server's Hugging Face cache (download it there first, or save it "
                       "into the data folder)" if hub_name(value) else "")
                    + "; or choose a registered model or an alias (" + ", ".join(sorted(ALIASES)) + ")")
        out[name] = path
    return out


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


def _jsonable(obj):
    """A runner's result as JSON values (dataclasses as dicts, anything else as its text)."""
    if dataclasses.is_dataclass(obj):
        return to_dict(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
