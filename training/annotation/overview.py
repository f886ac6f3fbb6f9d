"""What the Overview page shows for a project: counts, activity over time, models, next steps.

    from training.annotation.overview import project_summary, next_steps
    summary = project_summary(store, "demo")
    for line in next_steps(summary): print(line)

Pure reads through the store; the page only renders. `next_steps` turns the counts into what an
admin should do next ("no reward model yet: start one on the Training page").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from training.annotation.agreement import project_agreement
from training.store import ModelRecord, Store


def usable_pairs(order: list[list[int]]) -> int:
    """Ordered (untied) candidate pairs in one ranking: groups best first, a group is a tie."""
    sizes = [len(g) for g in order]
    return sum(sizes[i] * sum(sizes[i + 1:]) for i in range(len(sizes)))


@dataclass
class Summary:
    project: str
    kind: str
    documents: int
    complete: int
    rankings: int
    usable_rankings: int  # rankings with at least one untied pair (what the reward model learns from)
    pairs: int
    critiques: int
    refinements: int = 0
    critiques_without_refinements: int = 0
    unselected: int = 0  # critiques with refinements but none selected
    unreviewed: int = 0  # selected refinements no one has reviewed
    accepted: int = 0
    activity: list[dict] = field(default_factory=list)  # {"created", "what": ranking|critique}
    reward_models: list[ModelRecord] = field(default_factory=list)
    policy_models: list[ModelRecord] = field(default_factory=list)
    active_reward: ModelRecord | None = None
    active_policy: ModelRecord | None = None
    rankings_since_reward: int | None = None  # since the newest reward model was trained
    scored_candidates: int = 0  # by the active reward model
    candidates: int = 0
    alpha: float = math.nan
    shared_documents: int = 0
    running_jobs: int = 0
    queued_jobs: int = 0


def project_summary(store: Store, project: str | int) -> Summary:
    p = store.get_project(project)
    pr = store.progress(p.id)
    rankings = store.rankings(p.id)
    critiques = store.critiques(p.id)
    pairs = [usable_pairs(r.order) for r in rankings]
    s = Summary(
        project=p.name, kind=p.kind, documents=pr.documents, complete=pr.complete, rankings=len(rankings),
        usable_rankings=sum(1 for n in pairs if n), pairs=sum(pairs), critiques=len(critiques),
        activity=[{"created": r.created, "what": "ranking"} for r in rankings]
        + [{"created": c.created, "what": "critique"} for c in critiques],
    )
    s.candidates = sum(len(d.candidates) for d in store.documents(p.id))
    models = store.list_models(project=p.id)
    s.reward_models = [m for m in models if m.kind == "reward"]
    s.policy_models = [m for m in models if m.kind in ("policy", "ilf")]
    if p.active_reward_model is not None:
        s.active_reward = store.get_model(p.active_reward_model)
        s.scored_candidates = _scored(store, s.active_reward.id, p.id)
    if p.active_policy_model is not None:
        s.active_policy = store.get_model(p.active_policy_model)
    if s.reward_models:
        newest = s.reward_models[0].created
        s.rankings_since_reward = sum(1 for r in rankings if r.created > newest)
    items = store.critique_items(p.id)
    s.refinements = sum(len(it.refinements) for it in items)
    s.critiques_without_refinements = sum(1 for it in items if not it.refinements)
    s.unselected = sum(1 for it in items if it.refinements and it.selected is None)
    s.unreviewed = sum(1 for it in items if it.selected is not None and not it.reviewed)
    s.accepted = sum(1 for it in items if it.accepted is not None)
    ag = project_agreement(store, p.id)
    s.alpha, s.shared_documents = ag.alpha, ag.n_shared_documents
    s.running_jobs = len(store.list_jobs(status="running", project=p.id))
    s.queued_jobs = len(store.list_jobs(status="queued", project=p.id))
    return s


def _scored(store: Store, model_id: int, project_id: int) -> int:
    ids = [c.id for d in store.documents(project_id) for c in d.candidates]
    return len(store.token_rewards(model_id, ids)) if ids else 0


def next_steps(s: Summary) -> list[str]:
    """What to do next, most important first (plain sentences naming the page to go to)."""
    out: list[str] = []
    if s.documents == 0:
        return [("no documents yet: import a file on the Projects page (or: tokenwise import FILE --project "
                f"{s.project})")]
    if s.running_jobs or s.queued_jobs:
        out.append(f"{s.running_jobs} job(s) running and {s.queued_jobs} queued: follow them on the Training page")
    left = s.documents - s.complete
    if s.usable_rankings < 2:
        out.append(f"{s.usable_rankings} usable ranking(s): a reward model needs at least 2; "
                   "annotators rank documents on the Annotate page")
    elif not s.reward_models:
        out.append(f"no reward model yet: start one on the Training page ({s.usable_rankings} rankings, "
                   f"{s.pairs} ordered pairs ready)")
    elif s.rankings_since_reward:
        out.append(f"{s.rankings_since_reward} new ranking(s) since the reward model was trained: "
                   "train a new one on the Training page")
    if s.reward_models and s.active_reward is None:
        out.append("no active reward model: mark one active on the Models page (heatmaps and selection use it)")
    elif s.active_reward is not None and s.scored_candidates < s.candidates:
        out.append(f"{s.candidates - s.scored_candidates} candidate(s) not scored by the active reward model: "
                   "start a 'Score candidates' job on the Training page")
    if s.critiques_without_refinements:
        out.append(f"{s.critiques_without_refinements} critique(s) without refinements: start an ILF refine job")
    if s.unselected:
        out.append(f"{s.unselected} critique(s) with refinements but none selected: start an ILF select job")
    if s.unreviewed:
        out.append(f"{s.unreviewed} selected refinement(s) not reviewed yet: reviewers use the Review page")
    if s.accepted and not s.policy_models:
        out.append(f"{s.accepted} accepted refinement(s) and no finetuned model: start an SFT job")
    if s.active_policy is not None:
        out.append(f"active policy {s.active_policy.name or s.active_policy.id}: generate new candidates "
                   "with it on the Training page so annotators rank its outputs")
    if left > 0:
        out.append(f"{left} document(s) still below the overlap of their project")
    if not out:
        out.append("nothing pressing: every document is complete and the models are up to date")
    return out
