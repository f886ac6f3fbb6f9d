"""QA-Feedback (Wu et al. 2023) for the reward benches: preference lists and error spans.

../shared/datasets/qa_feedback_finegrained/dev_feedback.json: 500 questions, each with passages,
4 predicted answers, 6 pairwise human preferences (0 = no preference, dropped) over the answer
pairs (1,2) (1,3) (1,4) (2,3) (2,4) (3,4), and fine-grained error spans (character offsets into
prediction 1) under feedback.errors. Every list is one preference (K = 2); a list's document is
the question and the start of its passages, so `split_lists` groups a question's pairs together.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# ../shared/datasets from the main checkout, ../../shared from a worktree under wt/; or $TOKENWISE_DATASETS
_ROOTS = [Path(os.environ["TOKENWISE_DATASETS"])] if os.environ.get("TOKENWISE_DATASETS") else []
_ROOTS += [ROOT.parent / "shared" / "datasets", ROOT.parents[1] / "shared" / "datasets"]
DATA = next((r / "qa_feedback_finegrained" / "dev_feedback.json" for r in _ROOTS
             if (r / "qa_feedback_finegrained").is_dir()), _ROOTS[0] / "qa_feedback_finegrained" / "dev_feedback.json")
PAIRS = [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]


def rows() -> list[dict]:
    if not DATA.is_file():
        sys.exit(f"QA-Feedback not found at {DATA}")
    return json.loads(DATA.read_text())


def context(row: dict, chars: int = 2000) -> str:
    passages = " ".join(" ".join(p[1:]) for p in row["passages"])
    return f"Question: {row['question']}\nPassages: {passages[:chars]}"


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


def corrected(row: dict) -> str:
    """The human-corrected answer 1 ("" when there is none)."""
    return ((row.get("feedback") or {}).get("corrected-prediction") or "").strip()


def preference_lists(data: list[dict], chars: int = 2000, context_of=None):
    """One RankedList per non-zero preference between two different answers (context:
    `context_of(row)`, by default the question and `chars` characters of the passages)."""
    from training.rewards.trainer import RankedList

    context_of = context_of or (lambda r: context(r, chars))
    out = []
    for r in data:
        for (a, b), pref in zip(PAIRS, r["preference"]):
            ca, cb = r[f"prediction {a}"], r[f"prediction {b}"]
            if pref == 0 or ca == cb:
                continue
            out.append(RankedList(context_of(r), (ca, cb), (1, 2) if pref == 1 else (2, 1), group=r["question"]))
    return out


def correction_lists(data: list[dict], chars: int = 2000, context_of=None):
    """The human correction ranked above the answer 1 it corrects (an edit is a preference too),
    for every question whose correction differs from answer 1."""
    from training.rewards.trainer import RankedList

    context_of = context_of or (lambda r: context(r, chars))
    return [RankedList(context_of(r), (corrected(r), r["prediction 1"]), (1, 2), group=r["question"])
            for r in data if corrected(r) and corrected(r) != r["prediction 1"].strip()]


def rouge_l(pred: str, gold: str) -> float:
    """ROUGE-L F-measure of `pred` against `gold` (rouge-score, stemmed)."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(gold, pred)["rougeL"].fmeasure


def rouge_lists(data: list[dict], chars: int = 2000, context_of=None):
    """A known preference in place of the people's: each question's different answers in one list
    (K = 4, or fewer where answers repeat), ranked by ROUGE-L against its ASQA gold answer (ties, to
    4 decimals, share a rank). A reward model can learn this from the question, passages and answer
    alone only as far as they predict the gold answer's wording; what it adds is a check of the
    training algorithms where the target is known."""
    from training.rewards.trainer import RankedList

    context_of = context_of or (lambda r: context(r, chars))
    out = []
    for r in data:
        answers = list(dict.fromkeys(r[f"prediction {i}"] for i in range(1, 5)))
        scores = [round(rouge_l(a, r["gold"]), 4) for a in answers]
        if len(set(scores)) < 2:
            continue
        ranks = tuple(1 + sum(t > s for t in scores) for s in scores)
        out.append(RankedList(context_of(r), tuple(answers), ranks, group=r["question"]))
    return out


def rouge_best(row: dict) -> str:
    """The answer with the highest ROUGE-L against the gold answer (the lowest number on ties)."""
    answers = [row[f"prediction {i}"] for i in range(1, 5)]
    scores = [rouge_l(a, row["gold"]) for a in answers]
    return answers[scores.index(max(scores))]


def peak_memory_mb(device) -> float:
    """Peak memory of this process so far: CUDA allocator peak on a GPU, max RSS on the CPU."""
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_answer(row: dict) -> str:
    """The answer that wins most of its human pairwise comparisons (the lowest number on ties)."""
    wins = [0] * 4
    for (a, b), pref in zip(PAIRS, row["preference"]):
        if pref == 1:
            wins[a - 1] += 1
        elif pref == 2:
            wins[b - 1] += 1
    return row[f"prediction {wins.index(max(wins)) + 1}"]


def main() -> None:
    """The data set as the benches see it: what they train and test on, beside the length baselines."""
    from training.rewards.trainer import length_baselines

    data = rows()
    lists = preference_lists(data)
    no_pref = sum(p == 0 for r in data for p in r["preference"])
    spans = sum(bool((r.get("feedback") or {}).get("errors")) for r in data)
    corrected = sum(bool((r.get("feedback") or {}).get("corrected-prediction")) for r in data)
    lengths = length_baselines(lists)
    figures = {"questions": len(data), "pairs": len(lists), "no_preference": no_pref,
               "answer1_with_error_spans": spans, "answer1_corrected": corrected,
               "longer_wins": round(lengths["longer_wins"], 4), "shorter_wins": round(lengths["shorter_wins"], 4)}
    print(f"QA-Feedback at {DATA}")
    print("| figure | value |\n|---|---|")
    for k, v in figures.items():
        print(f"| {k.replace('_', ' ')} | {v} |")
    print(json.dumps({"bench": "qa_feedback", **figures}))


if __name__ == "__main__":
    main()
