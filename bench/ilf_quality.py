"""Does ILF help with the offline model? Selectors that prefer a human correction, refinements that get closer.

    python bench/ilf_quality.py --n 300 --refine-n 60 --refine-samples 3 --threads 2   # the full run (33 min, 2 cores)
    python bench/ilf_quality.py --quick                                 # 40 questions, 20 refinements

Data: QA-Feedback (FineGrainedRLHF dev_feedback.json, 500 questions; 481 where the annotators'
corrected answer differs from `prediction 1`). Each question is a critique item: the document is the
question (title) and its passages (cut to --max-text-chars), the critiqued output is prediction 1,
and the critique is the human feedback (error spans with their type and explanation, missing-info
sentences) written as plain text. The first --n questions (seeded shuffle) are the evaluation set;
the reward model learns only from the others.

Selection: both the original and the human-corrected answer are stored as refinements of the
critique; each selector scores them through training.ilf.select.score_items, and we count how
often the corrected one scores higher (ties count half; random = 0.5). Rows: PMI (how much the
critique raises SmolLM2's log-likelihood of the answer under the refinement prompt: log p(answer |
output, critique) - log p(answer | output), the two prompts `refine` samples from), InstructRM with the
raw p(yes)/(p(yes)+p(no)) ensemble and calibrated against the same question asked of the original
output (one run gives both), the token-level reward model (MiniLM, trained here on the other
questions: corrected > prediction 1 and the human preferences among predictions 1-4), the ensemble
of both, MiniLM embedding similarity, random, and "shorter wins" as a peer baseline.

Refinement: SmolLM2-135M-Instruct refines prediction 1 of the first --refine-n questions through
training.ilf.refine.refine (chat template, post-processing, drop rules). Reported: the share of kept
refinements whose token F1 with the human correction is above the original's (the copy-the-original
control is never above itself: 0 by construction; its mean F1 is the bar), the mean F1 of both,
what the drop rules removed, and the share of kept refinements that still read as text about the
rewriting (a looser check than the drop rule: such words anywhere). With --refine-samples > 1,
the same figures for the refinement each question's selector picks (--pick, default PMI) against a
seeded random pick among the same kept refinements: does selection find the better rewrites?
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT / "bench"))
from qa_feedback import DATA, corrected, correction_lists, preference_lists, qa_critique

from training.data.context import document_context
from training.device import pick_device, set_threads
from training.ilf.config import RefineConfig, SelectConfig
from training.ilf.refine import refine
from training.ilf.select import ensemble_scores, score_items, score_of
from training.ilf.templates import load_templates
from training.store import NewDocument, Store

# Looser than templates.drop_reason (first sentence only): such words anywhere in a kept refinement.
META_WORDS = re.compile(r"\b(?:feedback|rewrit\w*|revised|improved (?:version|output|answer)|here(?:'s| is)|"
                        r"the original (?:output|answer|text)|the given (?:output|answer))\b", re.IGNORECASE)


def passages(r: dict) -> str:
    return "\n".join(f"{p[0]}: {' '.join(' '.join(x.split()) for x in p[1:])}" for p in r["passages"])


def split_questions(n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(evaluation rows: the first n usable questions of a seeded shuffle, every other question)."""
    rows = json.loads(DATA.read_text())
    random.Random(seed).shuffle(rows)
    usable = [r for r in rows if corrected(r) and corrected(r) != r["prediction 1"].strip() and qa_critique(r)]
    ev = usable[:n]
    held = {r["question"] for r in ev}
    return ev, [r for r in rows if r["question"] not in held]


def token_f1(a: str, b: str) -> float:
    """SQuAD-style token F1 (lowercase, punctuation dropped)."""
    ta, tb = (re.sub(r"[^\w\s]", " ", x.lower()).split() for x in (a, b))
    common = sum((Counter(ta) & Counter(tb)).values())
    if not common:
        return 0.0
    p, r = common / len(ta), common / len(tb)
    return 2 * p * r / (p + r)


def win_rate(wins: list[float]) -> tuple[float, float]:
    p = sum(wins) / len(wins)
    return p, math.sqrt(max(p * (1 - p), 1e-12) / len(wins))


def build_db(path: str, ev: list[dict], refine_n: int, max_chars: int) -> dict:
    """Project "qa": one critique per question with two refinements (original, corrected);
    project "refine": the first refine_n questions' critiques, no refinements yet."""
    s = Store(path)
    t = load_templates()
    qa_templates = {"instructions": {"summarize": t["instructions"]["qa"]},
                    "baseline_instructions": {"summarize": t["baseline_instructions"]["qa"]}}
    ann, _ = s.add_annotator("qa-feedback")
    pairs = {}
    for name, rows in (("qa", ev), ("refine", ev[:refine_n])):
        s.create_project(name, kind="summarize", k=2)
        s.update_project(name, templates=qa_templates)
        s.add_documents(name, [NewDocument(f"{name}{i}", passages(r)[:max_chars], [r["prediction 1"], r["prediction 2"]],
                                           title=r["question"]) for i, r in enumerate(rows)])
        for d, r in zip(s.documents(name), rows):
            k = s.save_critique(ann, d.candidates[0].id, qa_critique(r))
            if name == "qa":
                o, c = s.add_refinements(k.id, [r["prediction 1"], corrected(r)], "dataset")
                pairs[k.id] = (o.id, c.id)
    s.close()
    return pairs


def train_reward_model(train_rows: list[dict], args):
    """A MiniLM token-level reward model from the non-evaluation questions."""
    from training.lm import minilm_path
    from training.rewards.config import RewardConfig
    from training.rewards.model import TokenRewardModel
    from training.rewards.trainer import fit, split_lists

    def doc(r):
        return document_context("summarize", r["question"], passages(r)[:args.max_text_chars])

    lists = correction_lists(train_rows, context_of=doc)
    if args.rm_data != "corrected":
        lists += preference_lists(train_rows, context_of=doc)
    split = split_lists(lists, 0.1, seed=args.seed)  # by question: a question's lists stay on one side
    train, val = split.train, split.val[:48]  # early-stopping lists: a few, evaluation is not free on this CPU
    cfg = RewardConfig(base_model=str(minilm_path()), aggregation=args.rm_aggregation, max_steps=args.rm_steps,
                       epochs=max(1, -(-args.rm_steps * 8 // len(train))), batch_size=8, max_length=args.rm_max_length,
                       max_candidate_length=args.rm_max_length - 32, patience=0, seed=args.seed, device="auto", score_after=False)
    rm = TokenRewardModel.from_base(cfg.base_model, cfg)
    t0 = time.monotonic()
    m = fit(rm, train, val, cfg)
    rm.eval()
    info = {"lists": len(train), "data": args.rm_data, "val_lists": len(val), "steps": m.get("steps"), "seconds": round(time.monotonic() - t0, 1),
            "val_pairwise_accuracy": m.get("val_pairwise_accuracy"), "aggregation": args.rm_aggregation}
    return rm, info


class Every:
    """A Progress that prints every k-th step to stderr (the bench's heartbeat)."""

    def __init__(self, label: str, k: int = 10):
        self.label, self.k, self.t0 = label, k, time.monotonic()

    def step(self, step: int, total: int, **metrics) -> None:
        if step and (step % self.k == 0 or step == total):
            print(f"  {self.label}: {step}/{total} ({time.monotonic() - self.t0:.0f} s)", file=sys.stderr, flush=True)

    def log(self, message: str) -> None:
        print(f"  {self.label}: {message}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="evaluation questions (of 481 usable)")
    ap.add_argument("--instructrm-n", type=int, default=300,
                    help="evaluation pairs scored by InstructRM and the ensemble (a prefix of --n)")
    ap.add_argument("--refine-n", type=int, default=100, help="questions refined (a prefix of the evaluation set)")
    ap.add_argument("--refine-samples", type=int, default=1, help="refinements sampled per question")
    ap.add_argument("--quick", action="store_true", help="40 questions, 20 refined, 40 reward-model steps")
    ap.add_argument("--selectors", default="pmi,instructrm,reward,ensemble,embedding,random,shorter")
    ap.add_argument("--pick", default="pmi", help="selector that picks among --refine-samples refinements")
    ap.add_argument("--model", default="smollm2", help="the InstructRM and refinement LM")
    ap.add_argument("--max-text-chars", type=int, default=400, help="characters of the passages in a prompt")
    ap.add_argument("--rm-steps", type=int, default=60, help="reward-model training steps (8 lists each)")
    ap.add_argument("--rm-aggregation", default="avg")
    ap.add_argument("--rm-max-length", type=int, default=160, help="reward model: tokens of context + answer")
    ap.add_argument("--rm-data", default="corrected", choices=("corrected", "all"),
                    help="reward model lists: corrected > prediction 1 only, or also the preferences among predictions")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.quick:
        args.n, args.refine_n, args.rm_steps = min(args.n, 40), min(args.refine_n, 20), min(args.rm_steps, 40)
        args.instructrm_n = min(args.instructrm_n, 40)
    threads = set_threads(args.threads)
    selectors = args.selectors.split(",")
    ev, rest = split_questions(args.n, args.seed)
    tmp = tempfile.TemporaryDirectory(prefix="ilf_quality_")
    db = str(Path(tmp.name) / "bench.db")
    pairs = build_db(db, ev, args.refine_n, args.max_text_chars)
    s = Store(db)
    items = s.critique_items("qa")
    print(f"QA-Feedback: {len(pairs)} evaluation pairs, {len(rest)} other questions for the reward model, "
          f"{min(args.instructrm_n, len(pairs)) if {'instructrm', 'ensemble'} & set(selectors) else 0} of them "
          f"scored by InstructRM, {args.refine_n} refined; passages cut to {args.max_text_chars} chars; torch threads={threads}; "
          f"device={pick_device('auto')}; CPU shared with other jobs (load {os.getloadavg()[0]:.1f})", flush=True)

    from training.lm import load_lm

    need_lm = bool({"pmi", "instructrm", "ensemble"} & set(selectors)) or args.refine_n > 0
    lm = load_lm(args.model, device=pick_device("auto")) if need_lm else None
    rows, scored, seconds, notes, rm = [], {}, {}, [], None
    lm_items = items[:args.instructrm_n]  # InstructRM (and the ensemble) on a prefix: ~2 CPU s a pair here
    lm_pairs = {it.critique.id: pairs[it.critique.id] for it in lm_items}

    def run(name, cfg, subset, **kw):
        t0 = time.monotonic()
        scored[name] = score_items(s, "qa", subset, cfg, progress=Every(name), **kw)
        seconds[name] = time.monotonic() - t0

    def add(label, value, secs, on=pairs):
        wins = [1.0 if value(c) > value(o) else 0.5 if value(c) == value(o) else 0.0 for o, c in on.values()]
        p, se = win_rate(wins)
        rows.append({"selector": label, "pairs": len(wins), "prefers_corrected": round(p, 4), "se": round(se, 4),
                     "s_per_pair": None if secs is None else round(secs / len(wins), 3)})
        print(f"  {label}: {p:.3f} ± {se:.3f} of {len(wins)} pairs", file=sys.stderr, flush=True)

    base = {"max_text_chars": args.max_text_chars, "batch_size": args.batch_size, "seed": args.seed}
    texts = {r.id: r.text for it in items for r in it.refinements}
    if "shorter" in selectors:
        add("shorter wins (peer baseline)", lambda i: -len(texts[i]), 0.0)
    if "pmi" in selectors:
        run("pmi", SelectConfig(selector="pmi", **base), items, lm=lm)
        add("pmi (feedback vs no feedback)", lambda i: scored["pmi"][i]["scores"]["pmi"], seconds["pmi"])
        if len(lm_pairs) < len(pairs):
            add("pmi (InstructRM subset)", lambda i: scored["pmi"][i]["scores"]["pmi"], None, lm_pairs)
    if "random" in selectors:
        run("random", SelectConfig(selector="random", **base), items)
        add("random", lambda i: scored["random"][i]["scores"]["random"], seconds["random"])
    if "embedding" in selectors:
        run("embedding", SelectConfig(selector="embedding", **base), items)
        add("embedding", lambda i: scored["embedding"][i]["scores"]["embedding"], seconds["embedding"])
    if {"reward", "ensemble"} & set(selectors):
        rm, info = train_reward_model(rest, args)
        notes.append(f"reward model: MiniLM, {info['lists']} lists ({info['data']}) from the other questions, "
                     f"{info['steps']} steps, {info['seconds']} s to train, held-out (those questions) pairwise "
                     f"accuracy {info['val_pairwise_accuracy']}, aggregation {info['aggregation']}")
        print("  " + notes[-1], file=sys.stderr, flush=True)
        run("reward", SelectConfig(selector="reward", **base), items, rm=rm)
        add("reward model", lambda i: scored["reward"][i]["rm_score"], seconds["reward"])
        if len(lm_pairs) < len(pairs):
            add("reward model (InstructRM subset)", lambda i: scored["reward"][i]["rm_score"], None, lm_pairs)
    if {"instructrm", "ensemble"} & set(selectors):
        run("instructrm", SelectConfig(selector="instructrm", calibration="original", **base), lm_items, lm=lm)
        irm = scored["instructrm"]
        add("instructrm raw", lambda i: irm[i]["scores"]["instructrm_raw"], seconds["instructrm"], lm_pairs)
        add("instructrm calibrated", lambda i: irm[i]["ensemble_score"], seconds["instructrm"], lm_pairs)
        for t in load_templates()["instructrm"]:
            add(f"  instructrm/{t['name']} (calibrated)", lambda i, n=t["name"]: irm[i]["scores"][n], None, lm_pairs)
        if "reward" in scored:
            ens = ensemble_scores(irm, scored["reward"], lm_items)
            add("ensemble (instructrm + reward)", lambda i: score_of(ens[i], "ensemble"),
                seconds["instructrm"] + seconds["reward"] * len(lm_items) / len(items), lm_pairs)

    refine_out = None
    if args.refine_n:
        t0 = time.monotonic()
        counts = refine(s, "refine", RefineConfig(model=args.model, n=args.refine_samples, baseline_n=0,
                                                  max_text_chars=args.max_text_chars, seed=args.seed),
                        lm=lm, progress=Every("refine"))
        secs = time.monotonic() - t0
        by_q = {r["question"]: r for r in ev}
        closer, f1_ref, f1_orig, meta, examples = [], [], [], 0, []
        for it in s.critique_items("refine"):
            r = by_q[it.document.title]
            base_f1 = token_f1(r["prediction 1"], corrected(r))
            for ref in it.refinements:
                f = token_f1(ref.text, corrected(r))
                closer.append(f > base_f1)
                f1_ref.append(f)
                f1_orig.append(base_f1)
                meta += bool(META_WORDS.search(ref.text))
                if len(examples) < 4:
                    examples.append((r["prediction 1"], it.critique.text, ref.text, base_f1, f))
        n = len(closer)
        refine_out = {"closer_than_original": round(sum(closer) / n, 4) if n else None,
                      "meta_text_share": round(meta / n, 4) if n else None, "n": n,
                      "questions": args.refine_n, "samples": counts["samples"], "dropped": counts["dropped"],
                      "preambles_stripped": counts["preambles_stripped"],
                      "mean_f1_refinement": round(sum(f1_ref) / n, 4) if n else None,
                      "mean_f1_original": round(sum(f1_orig) / n, 4) if n else None,
                      "s_per_refinement": round(secs / max(counts["samples"], 1), 2)}
        several = [it for it in s.critique_items("refine") if len(it.refinements) > 1]
        if several:  # the selector's pick among each question's kept refinements, against a random pick
            t0 = time.monotonic()
            got = score_items(s, "refine", several, SelectConfig(selector=args.pick, **base), lm=lm, rm=rm)
            rng, picks = random.Random(args.seed), {"selected": [], "random pick": [], "best (oracle)": []}
            for it in several:
                r = by_q[it.document.title]
                base_f1 = token_f1(r["prediction 1"], corrected(r))
                f1 = {x.id: token_f1(x.text, corrected(r)) for x in it.refinements}
                chosen = max(it.refinements, key=lambda x: (score_of(got[x.id], args.pick), -x.id))
                for key, f in (("selected", f1[chosen.id]), ("random pick", f1[rng.choice(it.refinements).id]),
                               ("best (oracle)", max(f1.values()))):
                    picks[key].append((f > base_f1, f))
            refine_out["picks"] = {k: {"closer_than_original": round(sum(c for c, _ in v) / len(v), 4),
                                       "mean_f1": round(sum(f for _, f in v) / len(v), 4), "questions": len(v)}
                                   for k, v in picks.items()}
            refine_out["pick_selector"], refine_out["pick_seconds"] = args.pick, round(time.monotonic() - t0, 1)
    s.close()
    tmp.cleanup()

    print("\nSelection: share of pairs where the human-corrected answer scores above the original "
          "(prediction 1); ties half; ± one standard error")
    print(f"| {'selector':32s} | pairs | prefers corrected | s per pair |")
    print(f"|{'-' * 34}|-------|-------------------|------------|")
    for r in rows:
        sp = "" if r["s_per_pair"] is None else f"{r['s_per_pair']:.3f}"
        print(f"| {r['selector']:32s} | {r['pairs']:5d} | {r['prefers_corrected']:.3f} ± {r['se']:.3f}     | {sp:>10s} |")
    for note in notes:
        print(note)
    if refine_out:
        o = refine_out
        print(f"\nRefinement ({args.model}, {args.refine_samples} sample(s) per question, {o['questions']} questions): "
              f"{o['n']} kept of {o['samples']} samples; dropped {o['dropped']}; preambles stripped "
              f"{o['preambles_stripped']}; {o['s_per_refinement']} s per sample")
        print("| output | closer to the correction than the original (token F1) | mean F1 with the correction |"
              " meta text |")
        print("|---|---|---|---|")
        print(f"| refinement (kept) | {o['closer_than_original']} | {o['mean_f1_refinement']} | {o['meta_text_share']} |")
        print(f"| copy the original (control) | 0.0 | {o['mean_f1_original']} | 0.0 |")
        for k, v in o.get("picks", {}).items():
            print(f"| {k} ({o['pick_selector']}, {v['questions']} questions with 2+ kept) | {v['closer_than_original']} |"
                  f" {v['mean_f1']} | |")
        for orig, crit, ref, a, b in examples:
            print(f"\n  original (F1 {a:.2f}): {orig[:160]}\n  critique: {crit[:160]}\n  refinement (F1 {b:.2f}): {ref[:200]}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory {peak:.0f} MB")
    out_rows = [{k: r[k] for k in ("selector", "pairs", "prefers_corrected", "s_per_pair")} for r in rows
                if not r["selector"].startswith("  ")]
    print(json.dumps({"bench": "ilf_quality", "rows": out_rows,
                      "refine": {k: refine_out[k] for k in ("closer_than_original", "meta_text_share", "n", "picks")
                                 if k in refine_out}
                      if refine_out else None}))


if __name__ == "__main__":
    main()
