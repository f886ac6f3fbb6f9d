"""Do low token rewards fall where humans marked errors? AUROC on QA-Feedback's error spans.

A token-level reward model is trained on QA-Feedback's pairwise preferences (the train split of
`split_lists`, split by question; validation picks the epoch), or read from `--from-dir`, where
bench/reward_quality.py --save-dir left it (same data, seed and split). It then scores prediction
1 of every held-out (test) question, whose error spans (`feedback.errors`, character offsets) were
marked by people and never seen in training. A token is an error token when its characters overlap
a span. Reported per backbone and aggregation:

  auroc          P(reward of an error token < reward of a clean token), pooled over all answers;
  within_auroc   the same inside each answer (answers with both kinds of token), averaged: where in
                 an answer the model puts its low rewards, not which answers it dislikes;
  control_auroc  the pooled AUROC after moving each answer's error labels to a random place in
                 the same answer (a circular shift: same number of error tokens per answer), so
                 only the between-answer part is left; the gap to `auroc` is localisation.

    python bench/reward_localization.py --backbones minilm --aggs avg,min --from-dir /tmp/rw/models
    python bench/reward_localization.py --quick --json-out /tmp/loc.json      # trains its own models
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import qa_feedback


def auroc(scores: list[float], labels: list[bool]) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U / n+ n-)."""
    pairs = sorted(zip(scores, labels))
    ranks, i = [0.0] * len(pairs), 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    if not pos or not neg:
        return float("nan")
    return (sum(r for r, (_, y) in zip(ranks, pairs) if y) - pos * (pos + 1) / 2) / (pos * neg)


def token_labels(tokens: list[str], spans: list[tuple[int, int]]) -> list[bool]:
    """Each token covers the characters after the previous one's (tokens join to the kept text):
    True when that range overlaps an error span [start, end)."""
    out, pos = [], 0
    for t in tokens:
        a, b = pos, pos + len(t)
        out.append(any(a < e and b > s for s, e in spans) and bool(t.strip()))
        pos = b
    return out


def arguments(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", default="minilm,smollm2")
    ap.add_argument("--aggs", default="avg,min")
    ap.add_argument("--from-dir", default=None, help="models saved by reward_quality.py --save-dir (else train)")
    ap.add_argument("--train-pairs", type=int, default=300)
    ap.add_argument("--val-pairs", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--max-candidate-length", type=int, default=160)
    ap.add_argument("--quick", action="store_true", help="200 train / 100 val pairs, 1 epoch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.train_pairs, args.val_pairs, args.epochs = 200, 100, 1
    return args


def model_for(args, backbone: str, agg: str, split):
    """A saved model from --from-dir, or one trained now on the same split."""
    import reward_quality

    from training.rewards.model import TokenRewardModel
    from training.rewards.trainer import fit_and_test

    saved = Path(args.from_dir or "/nonexistent") / f"{Path(backbone).name}-tokenwise-{agg}"
    if saved.is_dir():  # trained by reward_quality.py: its own training seconds
        card = TokenRewardModel.read_card(saved)
        return TokenRewardModel.load(saved, device=args.device), card["metrics"]["train_seconds"]
    qargs = reward_quality.arguments(["--backbone", backbone, "--epochs", str(args.epochs), "--batch-size",
                                      str(args.batch_size), "--max-length", str(args.max_length),
                                      "--max-candidate-length", str(args.max_candidate_length), "--device",
                                      args.device, "--dtype", args.dtype, "--threads", str(args.threads),
                                      "--seed", str(args.seed)])
    t0 = time.monotonic()
    rm, _ = fit_and_test(backbone, split, reward_quality.config(qargs, f"tokenwise-{agg}"))
    return rm, time.monotonic() - t0


def main() -> None:
    args = arguments()
    import torch

    from training.rewards.scoring import score_texts
    from training.rewards.trainer import Split, document_key, split_lists

    torch.set_num_threads(args.threads)
    data = qa_feedback.rows()
    lists = qa_feedback.preference_lists(data)
    split = split_lists(lists, 0.2, 0.2, args.seed)  # the same split as reward_quality.py
    rng = random.Random(args.seed)
    train = rng.sample(split.train, min(args.train_pairs, len(split.train)))
    val = rng.sample(split.val, min(args.val_pairs, len(split.val)))
    test_keys = {document_key(x) for x in split.test}
    held = [r for r in data if " ".join(qa_feedback.context(r).lower().split()) in test_keys]
    n_err = sum(1 for r in held if r["feedback"]["errors"])
    print(f"QA-Feedback: trained on {len(train)} pairs (validation {len(val)}), scoring prediction 1 of "
          f"{len(held)} held-out questions ({n_err} with error spans); device {args.device} {args.dtype}, "
          f"torch threads {args.threads}", flush=True)
    rows = []
    for backbone in args.backbones.split(","):
        for agg in args.aggs.split(","):
            rm, train_s = model_for(args, backbone, agg, Split(train, val, []))
            scores, labels, shifted, within = [], [], [], []
            t0 = time.monotonic()
            for r in held:
                (tokens, rewards, _), = score_texts(rm, qa_feedback.context(r), [r["prediction 1"]])
                spans = [(int(e["start"]), int(e["end"])) for e in r["feedback"]["errors"]]
                y = token_labels(tokens, spans)
                neg = [-x for x in rewards]  # low reward = predicted error
                k = rng.randrange(len(y)) if y else 0
                scores += neg
                labels += y
                shifted += y[k:] + y[:k]
                if any(y) and not all(y):
                    within.append(auroc(neg, y))
            row = {"backbone": backbone, "agg": agg, "auroc": auroc(scores, labels),
                   "control_auroc": auroc(scores, shifted),
                   "within_auroc": sum(within) / len(within) if within else float("nan"),
                   "n_tokens": len(labels), "n_error_tokens": sum(labels), "n_answers_within": len(within),
                   "train_s": round(train_s, 1), "score_s": round(time.monotonic() - t0, 1)}
            rows.append(row)
            print(f"  {backbone} {agg}: AUROC {row['auroc']:.3f} (control {row['control_auroc']:.3f}, "
                  f"within answers {row['within_auroc']:.3f})", flush=True)
    print()
    print("| backbone | agg | AUROC (pooled) | control (shuffled spans) | within-answer AUROC | error tokens / tokens "
          "| train s | score s |")
    print("|---|---|---|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['backbone']} | {x['agg']} | {x['auroc']:.3f} | {x['control_auroc']:.3f} | {x['within_auroc']:.3f} "
              f"| {x['n_error_tokens']} / {x['n_tokens']} | {x['train_s']} | {x['score_s']} |")
    out = {"bench": "reward_localization", "rows": rows}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
