"""Blind A/B evaluation rounds: is the model that came out better than the one that went in?

    job = start_round(store, "news", {"name": "r1", "model_a": "7", "model_b": "smollm2"})
    # the worker runs run_round: both models answer the same held-out documents (greedy), the
    # judge reward model scores both answers, and a blind K=2 project "eval-r1" opens for people
    res = round_results(store, store.get_round("r1"))   # win rate with a 95% interval, ties, ...
    close_round(store, rnd.id)                          # writes the verdict to both models' cards

Blindness: the blind project's candidates carry the model only in their `source` ("A:<label>"),
which no annotator page and no export shows; the order of the two answers is shuffled per
document (and again per annotator by the Annotate page).
Reading the results needs no torch: the judge's scores are computed once, in the job.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from dataclasses import dataclass, field

from training.errors import ValidationError
from training.evaluation.config import RoundConfig
from training.progress import Progress, ensure
from training.stats import wilson_interval
from training.store import EvalRound, NewDocument, Store
from training.store.base import NAME_MAX, checked_name

log = logging.getLogger(__name__)

SIDES = ("A", "B")
INSTRUCTIONS = ("Which of the two outputs is better? Rank it first; if they are equally good, "
                "give both the same rank.")
EMPTY = "(the model wrote nothing)"


# -- 1. which models, which documents ----------------------------------------------------------
def resolve_model(store: Store, ref: str) -> tuple[str, str, int | None]:
    """(what to load, a label for admins, registry id or None) of "7", a folder or a name."""
    ref = ref.strip()
    if ref.isdigit():
        rec = store.get_model(int(ref))
        return rec.path, rec.name or f"{rec.kind} model {rec.id}", rec.id
    return ref, ref, None


def resolve_pair(store: Store, project, cfg: RoundConfig) -> list[tuple[str, str, int | None]]:
    """Both models as (what to load, label, registry id); empty settings take the project's active
    policy (A) and the base model A was trained from (B)."""
    ref_a = cfg.model_a
    if not ref_a:
        if project.active_policy_model is None:
            raise ValidationError(f"model_a: project {project.name!r} has no active policy; name a model "
                                  "(a registry id, a folder or a name such as smollm2)")
        ref_a = str(project.active_policy_model)
    a = resolve_model(store, ref_a)
    ref_b = cfg.model_b
    if not ref_b:
        base = store.get_model(a[2]).base_model if a[2] is not None else None
        if not base:
            raise ValidationError("model_b: the first model has no recorded base model; name the second model")
        ref_b = base
    b = resolve_model(store, ref_b)
    if a[0] == b[0]:
        raise ValidationError(f"model_b: both sides would load {a[0]!r}; a round compares two models")
    return [a, b]


def trained_documents(store: Store, model_id: int | None) -> set[int]:
    """Documents a registered model was trained on, as far as its data snapshot says."""
    if model_id is None:
        return set()
    snap = store.get_model(model_id).data_snapshot or {}
    docs = {int(d) for d in snap.get("document_ids", [])}
    ranking_ids = snap.get("ranking_ids") or []
    if ranking_ids:
        docs |= store.documents_of_rankings(ranking_ids)
    return docs


def blind_order(n: int) -> list[bool]:
    """For each of n pairs, whether A's answer is stored (and so numbered) first: from the OS's
    randomness, never from the seed, since with the seed and the round's name (both visible) an
    annotator could otherwise work out which answer is which model's."""
    rng = random.SystemRandom()
    return [rng.random() < 0.5 for _ in range(n)]


def pick_documents(store: Store, project, cfg: RoundConfig, exclude: set[int]) -> list:
    docs = [d for d in store.documents(project.id, with_candidates=False) if d.id not in exclude]
    if not docs:
        raise ValidationError(f"project {project.name!r} has no documents that the models were not trained on")
    random.Random(cfg.seed).shuffle(docs)
    return sorted(docs[: cfg.documents], key=lambda d: d.id)


def start_round(store: Store, project: str | int, values: dict, created_by: int | None = None,
                data_root=None):
    """Check the settings (and that the names are free), then queue the round's job."""
    from training.jobs.kinds import submit_job

    cfg = RoundConfig(**values)
    p = store.get_project(project)
    if cfg.name:
        check_name_free(store, cfg.name)
    resolve_pair(store, p, cfg)  # an unknown registry id or a missing default is refused now, not in the worker
    return submit_job(store, "eval_round", values, project=p.name, created_by=created_by, data_root=data_root)


def check_name_free(store: Store, name: str) -> None:
    checked_name("round", name)
    if len(blind_project_name(name)) > NAME_MAX:  # the blind project is made at the end of the job
        raise ValidationError(f"name: at most {NAME_MAX - len(blind_project_name(''))} characters (annotators "
                              f"see the round as the project {blind_project_name('<name>')!r})")
    if any(r.name == name and not (r.status == "failed" and r.project_id is None) for r in store.list_rounds()):
        raise ValidationError(f"name: a round called {name!r} exists already")  # (a failed one's name is free)
    if any(x.name == blind_project_name(name) for x in store.list_projects()):
        raise ValidationError(f"name: the project {blind_project_name(name)!r} exists already; choose another name")


def blind_project_name(round_name: str) -> str:
    return f"eval-{round_name}"


# -- 2. the job: answers, the judge, the blind project ---------------------------------------
def run_round(store: Store, project: str | int, cfg: RoundConfig, progress: Progress | None = None,
              job_id: int | None = None, created_by: int | None = None) -> dict:
    """Generate both models' answers, score them with the judge, and open the blind project."""
    import torch

    from training.device import pick_device
    from training.ilf.generate import GenerateConfig, generate_outputs
    from training.lm import load_lm

    progress = ensure(progress)
    p = store.get_project(project)
    models = resolve_pair(store, p, cfg)
    name = cfg.name or f"round-{job_id}" if job_id is not None else cfg.name
    if not name:
        raise ValidationError("name: give the round a name")
    check_name_free(store, name)
    cfg = dataclasses.replace(cfg, name=name)
    exclude = set()
    if cfg.exclude_trained:
        for _, _, mid in models:
            exclude |= trained_documents(store, mid)
    docs = pick_documents(store, p, cfg, exclude)
    judge_id = cfg.judge_model or p.active_reward_model
    rnd = store.create_round(cfg.name, source_project=p.id, model_a=models[0][0], model_b=models[1][0],
                             documents=[d.id for d in docs], model_a_id=models[0][2], model_b_id=models[1][2],
                             judge_model_id=judge_id, config={**vars(cfg), "labels": [m[1] for m in models]},
                             created_by=created_by)
    if job_id is not None:
        store.update_round(rnd.id, job_id=job_id)
    progress.log(f"round {cfg.name!r}: {len(docs)} documents of {p.name!r} "
                 f"({len(exclude)} left out as training data); A = {models[0][1]}, B = {models[1][1]}")
    gen = GenerateConfig(num_candidates=1, do_sample=False, max_new_tokens=cfg.max_new_tokens,
                         max_input_tokens=cfg.max_input_tokens, prompt=cfg.prompt, seed=cfg.seed,
                         device=cfg.device, only_open=False)
    device = pick_device(cfg.device)
    n_batches = -(-len(docs) // gen.batch_size)
    total = 2 * n_batches + 1
    answers: list[list[str]] = []
    try:
        for k, (path, label, _) in enumerate(models):
            torch.manual_seed(cfg.seed)
            lm = load_lm(path, device=device)
            outs = generate_outputs(lm, p, docs, gen, on_batch=lambda _b, _o, done, _t, k=k: progress.step(
                k * n_batches + done, total))
            answers.append([o[0] if o and o[0] else EMPTY for o in outs])
            del lm
            progress.log(f"{SIDES[k]} ({label}) answered {len(docs)} documents")
        judge = _judge(store, judge_id, p, docs, answers, device)
        progress.step(total - 1, total)
        new_docs = []
        for d, a, b, a_first in zip(docs, *answers, blind_order(len(docs))):
            pair = [("A", a), ("B", b)] if a_first else [("B", b), ("A", a)]
            shown = {f: (d.meta or {})[f] for f in p.context_fields if f in (d.meta or {})}  # only what
            new_docs.append(NewDocument(str(d.id), d.text, [t for _, t in pair], title=d.title, meta=shown,  # people saw
                                        sources=[f"{side}:{models[SIDES.index(side)][1]}" for side, _ in pair]))
        rnd = store.open_round(rnd.id, blind_project_name(cfg.name), p.kind, INSTRUCTIONS, new_docs, judge,
                               overlap=cfg.overlap, context_fields=p.context_fields)
    except BaseException:
        store.update_round(rnd.id, status="failed")
        raise
    progress.step(total, total)
    progress.log(f"round {cfg.name!r} is open: annotators rank project {blind_project_name(cfg.name)!r}")
    return {"round_id": rnd.id, "project": blind_project_name(cfg.name), "documents": len(docs),
            "judge_model": judge_id, "excluded_trained": len(exclude)}


def _judge(store: Store, judge_id: int | None, project, docs, answers, device) -> dict:
    """{source document id: {"A": score, "B": score}} from the judge reward model ({} without one)."""
    if judge_id is None:
        return {}
    from training.data.context import project_context
    from training.rewards.model import TokenRewardModel
    from training.rewards.scoring import score_texts

    rm = TokenRewardModel.load(store.get_model(judge_id).path, device=device)
    out = {}
    for d, a, b in zip(docs, *answers):
        (_, _, sa), (_, _, sb) = score_texts(rm, project_context(project, d), [a, b])
        out[str(d.id)] = {"A": sa, "B": sb}
    return out


# -- 3. results, as answers come in (no torch) ------------------------------------------------
@dataclass
class RoundResult:
    judgments: int = 0  # current rankings of the blind project
    wins: dict = field(default_factory=lambda: {"A": 0, "B": 0, "tie": 0})
    win_rate_a: float = float("nan")  # A's wins / decided judgments (ties left out)
    ci95: tuple[float, float] = (float("nan"), float("nan"))
    documents: int = 0  # documents with at least one judgment
    preferred_docs: dict = field(default_factory=lambda: {"A": 0, "B": 0, "tie": 0})  # by majority
    agreement: float = float("nan")  # share of annotator pairs on one document who agree
    agreement_pairs: int = 0
    judge: dict = field(default_factory=lambda: {"A": 0, "B": 0, "tie": 0})  # the judge's verdicts
    judge_agrees: float = float("nan")  # share of documents with a human majority where the judge agrees
    disagreements: list = field(default_factory=list)  # [{"document", "title", "people", "judge"}]

    def summary(self, label_a: str, label_b: str) -> str:
        if not self.documents:
            return "no judgments yet"
        lo, hi = self.ci95
        rate = "n/a" if math.isnan(self.win_rate_a) else f"{self.win_rate_a:.0%} (95% {lo:.0%}–{hi:.0%})"
        return (f"{label_a} preferred to {label_b} on {self.preferred_docs['A']} of {self.documents} documents "
                f"({self.preferred_docs['tie']} tied); judgment win rate {rate}, "
                f"{self.wins['tie']} of {self.judgments} judgments tied")


def _outcome(ranks: dict[int, int], side_of: dict[int, str]) -> str:
    by_side = {side_of[c]: r for c, r in ranks.items() if c in side_of}
    if len(by_side) < 2 or by_side["A"] == by_side["B"]:
        return "tie"
    return "A" if by_side["A"] < by_side["B"] else "B"


def round_results(store: Store, rnd: EvalRound) -> RoundResult:
    res = RoundResult()
    if rnd.project_id is None:
        return res
    docs = store.documents(rnd.project_id)
    side_of = {c.id: c.source.split(":", 1)[0] for d in docs for c in d.candidates}
    by_doc = store.rankings_of([d.id for d in docs])
    agree_pairs = judged = judge_agree = 0
    for d in docs:
        outcomes = [_outcome(r.ranks, side_of) for r in by_doc.get(d.id, [])]
        if not outcomes:
            continue
        res.documents += 1
        res.judgments += len(outcomes)
        for o in outcomes:
            res.wins[o] += 1
        for i in range(len(outcomes)):
            for j in range(i + 1, len(outcomes)):
                res.agreement_pairs += 1
                agree_pairs += outcomes[i] == outcomes[j]
        a, b = outcomes.count("A"), outcomes.count("B")
        people = "A" if a > b else "B" if b > a else "tie"
        res.preferred_docs[people] += 1
        scores = rnd.judge.get(d.ext_id)
        if not scores:
            continue
        verdict = "A" if scores["A"] > scores["B"] else "B" if scores["B"] > scores["A"] else "tie"
        res.judge[verdict] += 1
        if people != "tie":
            judged += 1
            judge_agree += verdict == people
            if verdict != people:
                res.disagreements.append({"document": d.id, "title": d.title, "people": people, "judge": verdict})
    if res.agreement_pairs:
        res.agreement = agree_pairs / res.agreement_pairs
    if judged:
        res.judge_agrees = judge_agree / judged
    decided = res.wins["A"] + res.wins["B"]
    if decided:
        res.win_rate_a = res.wins["A"] / decided
        res.ci95 = wilson_interval(res.wins["A"], decided)
    return res


# -- 4. closing: the verdict goes on both models' cards ---------------------------------------
def card_note(rnd: EvalRound) -> str:
    """Where closing a round writes its result: the registered models' cards (a folder or name that
    is not in the registry has no card)."""
    labels = rnd.config.get("labels") or [rnd.model_a, rnd.model_b]
    carded = [f"{side} ({label})" for side, label, mid in zip("AB", labels, (rnd.model_a_id, rnd.model_b_id))
              if mid is not None]
    if not carded:
        return "neither model is in the registry, so no model card gets it: the result stays with the round"
    return f"written to the model card of {' and '.join(carded)}"


def close_round(store: Store, round_id: int) -> EvalRound:
    rnd = store.get_round(round_id)
    if rnd.status != "open":
        raise ValidationError(f"round {rnd.name!r} is {rnd.status}; only an open round can be closed")
    res = round_results(store, rnd)
    if not res.judgments:
        raise ValidationError(f"round {rnd.name!r} has no judgments yet; nothing to write to the cards")
    labels = rnd.config.get("labels") or [rnd.model_a, rnd.model_b]
    result = {"judgments": res.judgments, "wins": res.wins, "win_rate_a": res.win_rate_a, "ci95": list(res.ci95),
              "documents": res.documents, "preferred_docs": res.preferred_docs, "agreement": res.agreement,
              "judge": res.judge, "judge_agrees": res.judge_agrees,
              "summary": res.summary(labels[0], labels[1])}
    for side, mid, other in (("A", rnd.model_a_id, labels[1]), ("B", rnd.model_b_id, labels[0])):
        if mid is None:
            continue
        mine = "A" if side == "A" else "B"
        theirs = "B" if side == "A" else "A"
        rate = res.win_rate_a if side == "A" else 1 - res.win_rate_a
        lo, hi = res.ci95 if side == "A" else (1 - res.ci95[1], 1 - res.ci95[0])
        entry = {"round": rnd.name, "vs": other, "preferred_on": res.preferred_docs[mine],
                 "lost_on": res.preferred_docs[theirs], "tied_on": res.preferred_docs["tie"],
                 "documents": res.documents, "win_rate": rate, "ci95": [lo, hi], "judgments": res.judgments,
                 "summary": f"preferred to {other} on {res.preferred_docs[mine]} of {res.documents} documents"
                            + ("" if math.isnan(rate) else f" (win rate {rate:.0%}, 95% {lo:.0%}–{hi:.0%})"),
                 "closed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        rec = store.get_model(mid)
        store.update_model_metrics(mid, {"eval_rounds": [*rec.metrics.get("eval_rounds", []), entry]})
    return store.update_round(rnd.id, status="closed", result=result,
                              closed=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
