"""The only owner of SQL in Tokenwise.

    from training.store import Store
    with Store("tokenwise.db") as s:
        s.create_project("news", kind="summarize", k=4, overlap=2)

One mixin per concept (annotation, people, jobs, registry, refinements, evaluation rounds,
search); `Store` joins them.
"""

from .annotation import KINDS as PROJECT_KINDS
from .annotation import AnnotationMixin, NewDocument, QueueProgress, ranking_groups
from .base import StoreBase, now
from .imports import ImportRow, ImportsMixin, ItemJudgment, StagedImport
from .jobs import JobsMixin
from .migrations import SCHEMA_VERSION
from .people import ROLES, SOURCE, PeopleMixin
from .records import (
    Annotator,
    Candidate,
    Critique,
    Document,
    EvalRound,
    Job,
    ModelRecord,
    Project,
    Ranking,
    Refinement,
    TokenRewards,
)
from .refinements import CritiqueItem, RefinementsMixin
from .registry import RegistryMixin
from .rounds import RoundsMixin
from .search import SearchMixin


class Store(AnnotationMixin, ImportsMixin, PeopleMixin, JobsMixin, RegistryMixin, RefinementsMixin, RoundsMixin,
            SearchMixin, StoreBase):
    """A Tokenwise database. Open one per thread or process; use as a context manager.

    Opening one also removes the rows of imports whose process died (store/imports.py)."""

    def __init__(self, path, *, migrate: bool = True, **kw):
        super().__init__(path, migrate=migrate, **kw)
        if migrate:
            self.clean_stale_imports()


__all__ = [
    "PROJECT_KINDS",
    "ROLES",
    "SCHEMA_VERSION",
    "SOURCE",
    "Annotator",
    "Candidate",
    "Critique",
    "CritiqueItem",
    "Document",
    "EvalRound",
    "ImportRow",
    "ItemJudgment",
    "Job",
    "ModelRecord",
    "NewDocument",
    "Project",
    "QueueProgress",
    "Ranking",
    "Refinement",
    "StagedImport",
    "Store",
    "StoreBase",
    "TokenRewards",
    "now",
    "ranking_groups",
]
