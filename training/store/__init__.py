"""The only owner of SQL in Tokenwise.

    from training.store import Store
    with Store("tokenwise.db") as s:
        s.create_project("news", kind="summarize", k=4, overlap=2)

One mixin per concept (annotation, people, jobs, registry, refinements, evaluation rounds); `Store` joins them.
"""

from .annotation import AnnotationMixin, NewDocument, QueueProgress, ranking_groups
from .base import StoreBase, now
from .jobs import JobsMixin
from .migrations import SCHEMA_VERSION
from .people import ROLES, PeopleMixin
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


class Store(AnnotationMixin, PeopleMixin, JobsMixin, RegistryMixin, RefinementsMixin, RoundsMixin, StoreBase):
    """A Tokenwise database. Open one per thread or process; use as a context manager."""


__all__ = [
    "ROLES",
    "SCHEMA_VERSION",
    "Annotator",
    "Candidate",
    "Critique",
    "CritiqueItem",
    "Document",
    "EvalRound",
    "Job",
    "ModelRecord",
    "NewDocument",
    "Project",
    "QueueProgress",
    "Ranking",
    "Refinement",
    "Store",
    "StoreBase",
    "TokenRewards",
    "now",
    "ranking_groups",
]
