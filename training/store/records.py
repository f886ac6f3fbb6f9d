"""Typed rows. The store returns these, never raw tuples or dicts."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, ClassVar


def _loads(value: str | None, default: Any) -> Any:
    if value is None or value == "":
        return type(default)() if isinstance(default, (dict, list)) else default
    if value == "{}":  # the common case, without the parser
        return {}
    return json.loads(value)


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


class _Row:
    json_fields: ClassVar[dict[str, Any]] = {}
    bool_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_row(cls, row: sqlite3.Row, **extra: Any):
        keys = row.keys()
        values: dict[str, Any] = {}
        for name in _field_names(cls):
            if name in extra:
                values[name] = extra[name]
            elif name in keys:
                value = row[name]
                if name in cls.json_fields:
                    value = _loads(value, cls.json_fields[name])
                elif name in cls.bool_fields:
                    value = bool(value)
                values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class Project(_Row):
    id: int
    name: str
    kind: str  # summarize | prompt | qa (store/annotation.py: KINDS)
    k: int
    overlap: int
    instructions: str = ""
    allow_ties: bool = False
    require_critique_lowest: bool = False
    show_rewards: bool = False
    active_reward_model: int | None = None
    active_policy_model: int | None = None
    templates: dict | None = None
    created: str = ""
    context_fields: list = field(default_factory=list)  # meta keys shown under the document's text
    bool_fields: ClassVar = ("allow_ties", "require_critique_lowest", "show_rewards")
    json_fields: ClassVar = {"templates": None, "context_fields": []}


@dataclass(frozen=True)
class Candidate(_Row):
    id: int
    document_id: int
    position: int
    text: str
    source: str = "import"
    gen_params: dict = field(default_factory=dict)
    json_fields: ClassVar = {"gen_params": {}}


@dataclass(frozen=True)
class Document(_Row):
    id: int
    project_id: int
    ext_id: str
    title: str
    text: str
    meta: dict = field(default_factory=dict)
    reference: str | None = None
    n_rankings: int = 0
    candidates: tuple[Candidate, ...] = ()
    json_fields: ClassVar = {"meta": {}}


@dataclass(frozen=True)
class Annotator(_Row):
    id: int
    name: str
    role: str  # annotator | admin (people) | source (what an import credits)
    active: bool = True
    created: str = ""
    token_prefix: str = ""  # the public part of the current token: a session signed in with another ends
    bool_fields: ClassVar = ("active",)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_source(self) -> bool:
        return self.role == "source"


@dataclass(frozen=True)
class Ranking(_Row):
    """`order` holds groups of candidate ids, best first; a group of more than one is a tie."""

    id: int
    document_id: int
    annotator_id: int
    order: list[list[int]]
    seconds: float | None
    version: int
    current: bool
    created: str
    bool_fields: ClassVar = ("current",)

    @property
    def ranks(self) -> dict[int, int]:
        """candidate id -> rank (1 = best; tied candidates share a rank)."""
        return {cid: i + 1 for i, group in enumerate(self.order) for cid in group}

    @classmethod
    def from_row(cls, row: sqlite3.Row, **extra: Any):
        return super().from_row(row, order=json.loads(row["order_json"]), **extra)


@dataclass(frozen=True)
class Critique(_Row):
    id: int
    candidate_id: int
    annotator_id: int
    text: str
    span_start: int | None
    span_end: int | None
    version: int
    current: bool
    created: str
    bool_fields: ClassVar = ("current",)


@dataclass(frozen=True)
class Refinement(_Row):
    id: int
    critique_id: int
    text: str
    generator: str | None
    variant: str
    scores: dict
    ensemble_score: float | None
    rm_score: float | None
    selector: str | None
    selected: bool
    accepted: bool | None
    reviewed_by: int | None
    reviewed_at: str | None
    created: str
    json_fields: ClassVar = {"scores": {}}
    bool_fields: ClassVar = ("selected",)


@dataclass(frozen=True)
class Job(_Row):
    id: int
    kind: str
    project_id: int | None
    config: dict
    status: str  # queued | running | done | failed | cancelled
    step: int
    total: int
    metrics: list
    log: str
    error: str | None
    pid: int | None
    worker: str | None
    heartbeat: str | None
    cancel_requested: bool
    result: dict
    created_by: int | None
    created: str
    started: str | None
    finished: str | None
    json_fields: ClassVar = {"config": {}, "metrics": [], "result": {}}
    bool_fields: ClassVar = ("cancel_requested",)


@dataclass(frozen=True)
class ModelRecord(_Row):
    id: int
    kind: str  # reward | policy | ilf
    name: str | None
    path: str
    base_model: str | None
    project_id: int | None
    job_id: int | None
    data_snapshot: dict
    metrics: dict
    card: dict
    created: str
    json_fields: ClassVar = {"data_snapshot": {}, "metrics": {}, "card": {}}


@dataclass(frozen=True)
class TokenRewards(_Row):
    candidate_id: int
    model_id: int
    tokens: list[str]
    rewards: list[float]
    score: float | None
    json_fields: ClassVar = {"tokens": [], "rewards": []}


@dataclass(frozen=True)
class EvalRound(_Row):
    id: int
    name: str
    source_project_id: int
    project_id: int | None  # the blind K=2 project (None until the outputs exist)
    model_a: str
    model_b: str
    model_a_id: int | None
    model_b_id: int | None
    judge_model_id: int | None
    job_id: int | None
    status: str  # generating | open | closed | failed
    documents: list  # ids of the source documents
    config: dict
    judge: dict  # blind document id -> {"a": score, "b": score} from the judge reward model
    result: dict  # written when the round is closed
    created_by: int | None
    created: str
    closed: str | None
    json_fields: ClassVar = {"documents": [], "config": {}, "judge": {}, "result": {}}
