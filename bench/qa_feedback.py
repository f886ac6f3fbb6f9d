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


def preference_lists(data: list[dict]):
    """One RankedList per non-zero preference between two different answers."""
    from training.rewards.trainer import RankedList

    out = []
    for r in data:
        for (a, b), pref in zip(PAIRS, r["preference"]):
            ca, cb = r[f"prediction {a}"], r[f"prediction {b}"]
            if pref == 0 or ca == cb:
                continue
            out.append(RankedList(context(r), (ca, cb), (1, 2) if pref == 1 else (2, 1), group=r["question"]))
    return out


def peak_memory_mb(device) -> float:
    """Peak memory of this process so far: CUDA allocator peak on a GPU, max RSS on the CPU."""
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
