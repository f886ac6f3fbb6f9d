"""The Data page's logic: find documents (filters, full-text search) and open one with everything.

    rows = browse(store, project, viewer, BrowseFilter(query="bridge", status="model_disagrees"))
    view = document_view(store, rows[0].document_id, viewer)

Two measures make the list more than a table of rows:
  disagreement  the mean Kendall tau between the annotators who ranked a document (1 = they agree,
                -1 = opposite orders); "high disagreement" is tau below HIGH_DISAGREEMENT;
  model_tau     Kendall tau between the active reward model's scores and the people's consensus
                order (mean rank per candidate); below 0 the model contradicts the people, which
                makes the model a second reader that points at suspect labels (or at its own
                mistakes). Sorting by it puts the strongest contradictions first.
An annotator sees only documents they ranked or critiqued, and only their own entries on them;
an admin sees every document and every entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from training.annotation.agreement import kendall_tau
from training.annotation.context import context_of
from training.annotation.drafts import display_order, letter
from training.errors import NotFound, ValidationError
from training.store import Annotator, Project, Store

STATUSES = ("all", "unranked", "ranked", "high_disagreement", "model_disagrees")
SORTS = ("document", "disagreement", "model_contradiction", "search")
HIGH_DISAGREEMENT = 0.5  # mean pairwise tau under this: the annotators disagree a lot


@dataclass(frozen=True)
class BrowseFilter:
    query: str = ""
    annotator_id: int | None = None  # admins: only documents this annotator ranked or critiqued
    status: str = "all"
    sort: str = "document"
    limit: int = 200

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValidationError(f"status: {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.sort not in SORTS:
            raise ValidationError(f"sort: {self.sort!r} is not one of {', '.join(SORTS)}")


@dataclass(frozen=True)
class Row:
    document_id: int
    ext_id: str
    title: str
    snippet: str
    rankings: int
    disagreement: float  # mean pairwise tau between annotators (nan with fewer than 2 rankings)
    model_tau: float  # the active reward model against the people's consensus (nan: not scored)


def _nan_last(x: float) -> float:
    return math.inf if math.isnan(x) else x


def consensus_ranks(rankings) -> dict[int, float]:
    """candidate id -> its mean rank over the rankings (1 = best)."""
    sums: dict[int, list[float]] = {}
    for r in rankings:
        for cid, rank in r.ranks.items():
            sums.setdefault(cid, []).append(rank)
    return {cid: sum(v) / len(v) for cid, v in sums.items()}


def disagreement(rankings) -> float:
    taus = [kendall_tau(a.ranks, b.ranks) for i, a in enumerate(rankings) for b in rankings[i + 1:]]
    taus = [t for t in taus if not math.isnan(t)]
    return sum(taus) / len(taus) if taus else math.nan


def model_tau(rankings, scores: dict[int, float]) -> float:
    """Kendall tau between the model's order (higher score = better) and the people's."""
    people = consensus_ranks(rankings)
    shared = {c: -scores[c] for c in people if c in scores}  # as ranks: lower is better
    return kendall_tau(shared, people) if len(shared) >= 2 else math.nan


def browse(store: Store, project: Project, viewer: Annotator, f: BrowseFilter) -> list[Row]:
    """The documents of `project` that `viewer` may see and `f` selects, in `f.sort` order."""
    if f.query.strip():
        ids = store.search_documents(project.id, f.query, limit=max(f.limit * 5, 1000))
        if not ids:
            return []
        docs = {d.id: d for d in store.documents(project.id, with_candidates=False) if d.id in set(ids)}
        order = [i for i in ids if i in docs]
    else:
        docs = {d.id: d for d in store.documents(project.id, with_candidates=False)}
        order = sorted(docs)
    allowed = None
    if not viewer.is_admin:
        allowed = store.documents_touched_by(project.id, viewer.id)
    elif f.annotator_id is not None:
        allowed = store.documents_touched_by(project.id, f.annotator_id)
    if allowed is not None:
        order = [i for i in order if i in allowed]
    by_doc = store.rankings_of(order) if order else {}
    if not viewer.is_admin:  # an annotator's view holds their own entries only
        by_doc = {d: [r for r in rs if r.annotator_id == viewer.id] for d, rs in by_doc.items()}
    scores = (store.candidate_scores(project.active_reward_model, project.id)
              if project.active_reward_model is not None else {})
    rows = []
    for i in order:
        d, rs = docs[i], by_doc.get(i, [])
        row = Row(i, d.ext_id, d.title, " ".join(d.text.split())[:160], len(rs),
                  disagreement(rs) if viewer.is_admin else math.nan, model_tau(rs, scores) if rs else math.nan)
        if f.status == "unranked" and row.rankings:
            continue
        if f.status == "ranked" and not row.rankings:
            continue
        if f.status == "high_disagreement" and not row.disagreement < HIGH_DISAGREEMENT:
            continue
        if f.status == "model_disagrees" and not row.model_tau < 0:
            continue
        rows.append(row)
    if f.sort == "disagreement":
        rows.sort(key=lambda r: _nan_last(r.disagreement))
    elif f.sort == "model_contradiction":
        rows.sort(key=lambda r: _nan_last(r.model_tau))
    elif f.sort == "document":
        rows.sort(key=lambda r: r.document_id)
    return rows[: f.limit]


@dataclass
class CandidateView:
    id: int
    text: str
    source: str
    model_score: float | None
    ranks: dict[str, int] = field(default_factory=dict)  # annotator name -> rank
    critiques: list[tuple[str, str]] = field(default_factory=list)  # (annotator, text)
    refinements: list[dict] = field(default_factory=list)


@dataclass
class DocumentView:
    id: int
    ext_id: str
    title: str
    text: str
    reference: str | None
    candidates: list[CandidateView]
    disagreement: float
    model_tau: float
    context: list[tuple[str, str]] = field(default_factory=list)  # the project's shown fields (context_of)


def candidate_names(viewer: Annotator, document_id: int, candidate_ids: list[int]) -> dict[int, str]:
    """{candidate id: name}, in the order to show them: for an admin the stored order, numbered
    ("1", as exports count them, on every admin page alike); for an annotator their own letters in
    the order their Annotate page showed them ("A"), so a rank they gave reads the same everywhere."""
    if viewer.is_admin:
        return {cid: str(i + 1) for i, cid in enumerate(candidate_ids)}
    return {cid: letter(i) for i, cid in enumerate(display_order(viewer.id, document_id, list(candidate_ids)))}


def labelled_candidates(view: DocumentView, viewer: Annotator) -> list[tuple[str, CandidateView]]:
    """(label, candidate) in the order to show them ("Candidate 1" for an admin, "Candidate A" for
    an annotator: candidate_names)."""
    by_id = {c.id: c for c in view.candidates}
    return [(f"Candidate {name}", by_id[cid]) for cid, name in candidate_names(viewer, view.id, list(by_id)).items()]


def document_view(store: Store, document_id: int, viewer: Annotator) -> DocumentView:
    """One document with its candidates, every ranking and critique the viewer may see, the
    refinements of those critiques, and the active reward model's scores."""
    doc = store.get_document(document_id)
    project = store.get_project(doc.project_id)
    if not viewer.is_admin and document_id not in store.documents_touched_by(project.id, viewer.id):
        raise NotFound(f"document {document_id} is not one of yours")
    names = {a.id: a.name for a in store.list_annotators()}
    rankings = store.rankings_of([doc.id]).get(doc.id, [])
    if not viewer.is_admin:
        rankings = [r for r in rankings if r.annotator_id == viewer.id]
    scores = (store.candidate_scores(project.active_reward_model, project.id)
              if project.active_reward_model is not None else {})
    cands = {c.id: CandidateView(c.id, c.text, c.source if viewer.is_admin else "", scores.get(c.id))
             for c in doc.candidates}
    for r in rankings:
        for cid, rank in r.ranks.items():
            if cid in cands:
                cands[cid].ranks[names.get(r.annotator_id, str(r.annotator_id))] = rank
    items = store.critique_items(project.id, annotator=None if viewer.is_admin else viewer)
    for it in items:
        if it.document.id != doc.id or it.candidate.id not in cands:
            continue
        cv = cands[it.candidate.id]
        cv.critiques.append((it.annotator, it.critique.text))
        cv.refinements += [{"text": x.text, "selected": x.selected, "accepted": x.accepted,
                            "score": x.ensemble_score} for x in it.refinements]
    return DocumentView(doc.id, doc.ext_id, doc.title, doc.text, doc.reference, list(cands.values()),
                        disagreement(rankings) if viewer.is_admin else math.nan, model_tau(rankings, scores),
                        context_of(doc.meta, project.context_fields))
