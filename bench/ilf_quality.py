"""How well does each ILF selector prefer a human-corrected output over the original one?

    python bench/ilf_quality.py --instructrm-n 12 --shepherd-n 6 --threads 1

QA-Feedback (FineGrainedRLHF dev_feedback.json): the original output is `prediction 1`; the
critique is written from the annotators' error spans (type, quoted span, explanation) and their
missing-info sentences; the human-corrected output is `corrected-prediction`. Both texts are stored
as refinements of the critique in a temporary database, every selector scores them through
training.ilf.select.select, and we count how often the corrected one scores higher (ties count half).

Shepherd (human_data_for_model.jsonl) has critiques but no corrected outputs, so it gives no
pairs: we only report what InstructRM says about the criticised original ("does it incorporate
the feedback?": it should say no, score < 0.5) — a negatives-only check.

Models: InstructRM = SmolLM2-135M-Instruct (offline, training.lm.offline_model), embedding =
all-MiniLM-L6-v2 (offline), random = seeded. Everything runs on the CPU unless a GPU is there.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "datasets"

from training.device import pick_device, set_threads
from training.ilf.config import SelectConfig
from training.ilf.select import score_of, select
from training.ilf.templates import load_templates
from training.store import NewDocument, Store

PHRASES = {
    "Irrelevant": "Remove this irrelevant part",
    "Wrong-Grounding": "This is not what the passages say",
    "Unverifiable": "This cannot be verified from the passages",
    "Redundant": "This repeats earlier information",
    "Incoherent": "This does not make sense",
}
MISSING = {"Missing-Answer": "Add the missing answer", "Missing-Major-Auxiliary": "Add this important information",
           "Missing-Minor-Auxiliary": "Add this detail"}


def qa_critique(r: dict) -> str:
    """A plain-language critique of prediction 1 from QA-Feedback's fine-grained annotations."""
    pred, fb, parts = r["prediction 1"], r["feedback"], []
    for e in sorted(fb["errors"], key=lambda e: e["start"]):
        span = " ".join(pred[e["start"]:e["end"]].split())
        line = f'{PHRASES.get(e["error type"], e["error type"])}: "{span}"'
        parts.append(line + (f" ({e['explanation'].strip()})" if e.get("explanation", "").strip() else "") + ".")
    for m in fb["missing-info"]:
        passage = r["passages"][m["passage_id"] - 1]  # passage ids count from 1; sentence ids index the list
        sents = " ".join(" ".join(passage[s].split()) for s in m["sentence_id"] if s < len(passage))
        parts.append(f'{MISSING.get(m["error type"], "Add")}: "{sents}".')
    return " ".join(parts)


def load_qa(n: int, seed: int) -> list[dict]:
    rows = json.loads((DATA / "qa_feedback_finegrained" / "dev_feedback.json").read_text())
    rows = [r for r in rows if (r["feedback"].get("corrected-prediction") or "").strip()
            and r["feedback"]["corrected-prediction"].strip() != r["prediction 1"].strip() and qa_critique(r)]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def load_shepherd(n: int, seed: int) -> list[dict]:
    rows = [json.loads(x) for x in (DATA / "shepherd_critiques" / "human_data_for_model.jsonl").read_text().splitlines()
            if x.strip()]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def build_db(path: str, qa: list[dict], shep: list[dict]) -> dict:
    """Import both sets as critiques with their refinements; return {critique_id: (orig_id, corrected_id)}."""
    s = Store(path)
    s.create_project("qa", kind="summarize", k=2)
    s.create_project("shepherd", kind="summarize", k=2)
    ann, _ = s.add_annotator("dataset")
    s.add_documents("qa", [NewDocument(
        f"qa{i}", "\n".join(f"{p[0]}: {' '.join(' '.join(x.split()) for x in p[1:])}" for p in r["passages"]),
        [r["prediction 1"], r["prediction 2"]], title=r["question"]) for i, r in enumerate(qa)])
    s.add_documents("shepherd", [NewDocument(f"sh{i}", r["question"], [r["answer"].strip(), "(none)"],
                                             title=r["dataset"]) for i, r in enumerate(shep)])
    pairs, originals = {}, {}
    for d, r in zip(s.documents("qa"), qa):
        k = s.save_critique(ann, d.candidates[0].id, qa_critique(r))
        o, c = s.add_refinements(k.id, [r["prediction 1"], r["feedback"]["corrected-prediction"]], "dataset")
        pairs[k.id] = (o.id, c.id)
    for d, r in zip(s.documents("shepherd"), shep):
        k = s.save_critique(ann, d.candidates[0].id, r["feedback"])
        originals[k.id] = s.add_refinements(k.id, [r["answer"].strip()], "dataset")[0].id
    s.close()
    return {"qa": pairs, "shepherd": originals}


def win_rate(score: dict[int, float], pairs: dict) -> tuple[float, float]:
    """(share of pairs where the corrected output scores higher, ties half; its standard error)."""
    wins = [1.0 if score[c] > score[o] else 0.5 if score[c] == score[o] else 0.0 for o, c in pairs.values()]
    p = sum(wins) / len(wins)
    return p, math.sqrt(max(p * (1 - p), 1e-12) / len(wins))


def scores_of(s: Store, project: str, selector: str, critique_ids=None) -> dict[int, float]:
    refs = [r for it in s.critique_items(project, critique_ids=critique_ids) for r in it.refinements]
    return {r.id: score_of({"ensemble_score": r.ensemble_score, "rm_score": r.rm_score, "scores": r.scores},
                               selector) for r in refs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qa-n", type=int, default=481, help="QA-Feedback pairs for the cheap selectors (481 = all)")
    ap.add_argument("--instructrm-n", type=int, default=12,
                    help="QA-Feedback pairs scored by InstructRM (a subset of the above: ~1 min each on 1 CPU thread)")
    ap.add_argument("--shepherd-n", type=int, default=6, help="Shepherd critiques (negatives only, InstructRM)")
    ap.add_argument("--selectors", default="instructrm,embedding,random")
    ap.add_argument("--instructrm-model", default="smollm2")
    ap.add_argument("--max-text-chars", type=int, default=400, help="characters of the passages in a prompt")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    selectors = args.selectors.split(",")
    qa = load_qa(args.qa_n, args.seed)
    shep = load_shepherd(args.shepherd_n if "instructrm" in selectors else 0, args.seed)
    tmp = tempfile.TemporaryDirectory(prefix="ilf_quality_")
    db = str(Path(tmp.name) / "bench.db")
    ids = build_db(db, qa, shep)
    sub_ids = list(ids["qa"])[: args.instructrm_n]
    sub = {k: ids["qa"][k] for k in sub_ids}
    print(f"QA-Feedback pairs: {len(qa)} (InstructRM on the first {len(sub)}); Shepherd critiques: {len(shep)}; "
          f"threads={threads}; device={pick_device('auto')}; passages cut to {args.max_text_chars} chars")
    s = Store(db)
    table, shep_row, lm = [], None, None
    for sel in selectors:
        variants = [("embedding (output+feedback)", "output+feedback"), ("embedding (feedback)", "feedback")] \
            if sel == "embedding" else [(sel, "output+feedback")]
        for label, target in variants:
            cfg = SelectConfig(selector=sel, model=args.instructrm_model if sel == "instructrm" else "",
                               embedding_target=target, max_text_chars=args.max_text_chars,
                               batch_size=args.batch_size, seed=args.seed)
            if sel == "instructrm" and lm is None:
                from training.lm import load_lm

                lm = load_lm(args.instructrm_model, device=pick_device("auto"))
            crit = sub_ids if sel == "instructrm" else None
            t0 = time.time()
            select(s, "qa", cfg, lm=lm, critique_ids=crit)
            secs = time.time() - t0
            score = scores_of(s, "qa", sel, crit)
            full = win_rate(score, ids["qa"]) if crit is None else None
            table.append({"selector": label, "all": full, "subset": win_rate(score, sub), "seconds": secs})
            if sel == "instructrm":
                for name in [t["name"] for t in load_templates()["instructrm"]]:
                    per = {i: r.scores[name] for it in s.critique_items("qa", critique_ids=crit) for r in it.refinements
                           for i in [r.id]}
                    table.append({"selector": f"  instructrm/{name}", "all": None, "subset": win_rate(per, sub),
                                  "seconds": None})
                if shep:
                    t0 = time.time()
                    select(s, "shepherd", cfg, lm=lm)
                    sh = [r.ensemble_score for it in s.critique_items("shepherd") for r in it.refinements]
                    shep_row = {"n": len(sh), "mean": sum(sh) / len(sh),
                                "below": sum(x < 0.5 for x in sh) / len(sh), "seconds": time.time() - t0}
    s.close()
    tmp.cleanup()

    def fmt(x):
        return f"{x[0]:.3f} ± {x[1]:.3f}" if x else "-"

    print("\nQA-Feedback: share of pairs where the human-corrected answer scores above the original "
          "(prediction 1); ± one standard error")
    print(f"{'selector':32s} {f'all ({len(qa)})':>16s} {f'subset ({len(sub)})':>16s} {'seconds':>9s}")
    for row in table:
        secs = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
        print(f"{row['selector']:32s} {fmt(row['all']):>16s} {fmt(row['subset']):>16s} {secs:>9s}")
    if shep_row:
        print("\nShepherd (no corrected outputs): InstructRM asked whether the criticised original "
              "incorporates its feedback (it should say no)")
        print(f"n={shep_row['n']}  mean p(yes)={shep_row['mean']:.3f}  share scored < 0.5={shep_row['below']:.3f}"
              f"  ({shep_row['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
