"""Scoring speed of the token-level reward model against its floor, a bare backbone forward.

Synthetic candidates of exactly --cand-tokens tokens after a --doc-tokens document, K per list.
Three timings over the same candidates, in one run:
  bare forward   AutoModel.from_pretrained(backbone) on the already-tokenised batch, inference_mode
                 (the floor: no tokenising, no head, no aggregation);
  scoring        training.rewards.scoring.score_texts: tokenise + truncate, forward, head, bounded
                 per-token rewards, the aggregated score, Python lists out (what `tokenwise score` does);
  training       tokens/s of a few optimiser steps (token-level AVG and the sequence baseline).
The ratio scoring / bare forward is the overhead Tokenwise adds (target <= 1.5). On a GPU also
tokens/s and the fraction of the card's dense bf16 peak (about 2 N FLOPs per scored token, 6 N
per trained token, N = non-embedding parameters).

    python bench/reward_speed.py --quick --json-out /tmp/speed.json
    python bench/reward_speed.py --backbone smollm2 --device cuda --dtype bf16 --json-out /tmp/speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}  # dense, no sparsity
WORDS = ["the", "council", "voted", "to", "replace", "a", "car", "park", "with", "a", "covered", "market", "hall",
         "after", "residents", "asked", "for", "more", "space", "and", "the", "plan", "costs", "four", "million",
         "pounds", "over", "two", "years"]


def text_of(tok, n_tokens: int, rng: random.Random) -> str:
    """Text that tokenises to exactly n_tokens tokens (decoding a cut id list, then checked)."""
    words = [rng.choice(WORDS) for _ in range(n_tokens * 2)]
    ids = tok(" ".join(words), add_special_tokens=False, verbose=False)["input_ids"][:n_tokens]
    return tok.decode(ids)


def timed_pair(a, b, repeats: int, sync) -> tuple[float, float]:
    """Median seconds of a() and of b(), calls interleaved (a, b, a, b, ...) after one warm-up
    each, so a machine whose load changes during the run slows both alike."""
    ta, tb = [], []
    a()
    b()
    for _ in range(repeats):
        for fn, out in ((a, ta), (b, tb)):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="minilm", help="minilm, smollm2, a folder, or 'tiny' (a tiny GPT-2)")
    ap.add_argument("--cand-tokens", type=int, default=128)
    ap.add_argument("--doc-tokens", type=int, default=64)
    ap.add_argument("--candidates", type=int, default=16, help="candidates per scoring call (one document)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=3, help="timed training steps per variant (0: skip)")
    ap.add_argument("--batch-size", type=int, default=4, help="lists of 2 per training step")
    ap.add_argument("--quick", action="store_true", help="fewer repeats, 2 training steps")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.train_steps = 3, min(args.train_steps, 2)

    import torch
    from transformers import AutoModel

    from training.device import pick_device
    from training.lm import resolve
    from training.rewards.config import RewardConfig
    from training.rewards.model import TokenRewardModel
    from training.rewards.scoring import score_texts
    from training.rewards.trainer import RankedList, fit

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    bf16 = args.dtype == "bf16" and device.type == "cuda"
    base = args.backbone
    if base == "tiny":
        from training.data.tiny import make_tiny_model

        base = str(make_tiny_model("causal", Path("/tmp") / "tokenwise-bench-tiny"))
    max_length = args.doc_tokens + args.cand_tokens + 8
    cfg = RewardConfig(base_model=base, max_length=max_length, max_candidate_length=args.cand_tokens, patience=0,
                       device=str(device), bf16=bf16, epochs=1, batch_size=args.batch_size, lr=5e-5)
    torch.manual_seed(0)
    rm = TokenRewardModel.from_base(base, cfg).to(device).eval()
    tok = rm.tokenizer
    n_params = sum(p.numel() for n, p in rm.backbone.named_parameters() if "embed" not in n and "wte" not in n
                   and "wpe" not in n)
    rng = random.Random(0)
    doc = text_of(tok, args.doc_tokens, rng)
    cands = [text_of(tok, args.cand_tokens, rng) for _ in range(args.candidates)]
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    peak = next((v for k, v in PEAK_BF16.items() if k in torch.cuda.get_device_name(device)), None) \
        if device.type == "cuda" else None
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"backbone {args.backbone} ({n_params / 1e6:.1f}M non-embedding parameters, arch {rm.arch}), device "
          f"{device}{gpu} {args.dtype}, torch threads {args.threads}; {args.candidates} candidates of "
          f"{args.cand_tokens} tokens after a {args.doc_tokens}-token document", flush=True)

    # 1. the floor: a bare AutoModel forward over the same, already tokenised batch
    bare = AutoModel.from_pretrained(resolve(base), dtype=torch.bfloat16 if bf16 else torch.float32)
    bare = bare.to(device).eval()
    batch = rm.collate([rm.encode(doc, c) for c in cands])
    inputs = {k: v for k, v in batch.items() if k not in ("positions", "cand_mask")}
    seq_tokens = int(batch["attention_mask"].sum())

    def bare_forward():
        with torch.inference_mode():
            bare(**inputs)

    # 2. Tokenwise scoring, end to end from text, timed alternately with the floor
    bare_s, score_s = timed_pair(bare_forward, lambda: score_texts(rm, doc, cands), args.repeats, sync)
    ratio = score_s / bare_s
    row = {"bench": "reward_speed", "backbone": args.backbone, "device": str(device) + gpu, "dtype": args.dtype,
           "threads": args.threads, "candidates": args.candidates, "tokens_per_candidate": seq_tokens / len(cands),
           "score_ms_per_candidate": 1000 * score_s / len(cands), "bare_forward_ms": 1000 * bare_s / len(cands),
           "ratio": ratio, "score_tokens_per_s": seq_tokens / score_s, "bare_tokens_per_s": seq_tokens / bare_s}
    if peak:
        row["score_fraction_of_bf16_peak"] = 2 * n_params * seq_tokens / score_s / peak

    # 3. training throughput, token-level and sequence-level
    if args.train_steps:
        lists = [RankedList(doc, (text_of(tok, args.cand_tokens, rng), text_of(tok, args.cand_tokens, rng)), (1, 2),
                            group=str(i)) for i in range(args.batch_size * (args.train_steps + 1))]
        for name, baseline in (("train_tokens_per_s", False), ("baseline_train_tokens_per_s", True)):
            torch.manual_seed(0)
            t = TokenRewardModel.from_base(base, cfg, sequence_level=baseline)
            one = RewardConfig(**{**vars(cfg), "max_steps": 1})
            fit(t, lists[: args.batch_size], [], one)  # warm-up step
            m = fit(t, lists[args.batch_size:], [], RewardConfig(**{**vars(cfg), "max_steps": args.train_steps}))
            row[name] = m["train_tokens_per_s"]
            if peak and not baseline:
                row["train_fraction_of_bf16_peak"] = 6 * n_params * m["train_tokens_per_s"] / peak

    print()
    print("| what | ms per candidate | tokens/s |" + (" % of bf16 peak |" if peak else ""))
    print("|---|---|---|" + ("---|" if peak else ""))
    print(f"| bare AutoModel forward (inference_mode) | {row['bare_forward_ms']:.2f} | {row['bare_tokens_per_s']:.0f} |"
          + (" - |" if peak else ""))
    print(f"| Tokenwise scoring (score_texts) | {row['score_ms_per_candidate']:.2f} | {row['score_tokens_per_s']:.0f} |"
          + (f" {100 * row['score_fraction_of_bf16_peak']:.2f}% |" if peak else ""))
    if args.train_steps:
        print(f"| training, token-level AVG | - | {row['train_tokens_per_s']:.0f} |"
              + (f" {100 * row['train_fraction_of_bf16_peak']:.2f}% |" if peak else ""))
        print(f"| training, sequence baseline | - | {row['baseline_train_tokens_per_s']:.0f} |" + (" - |" if peak else ""))
    print(f"scoring / bare forward = {ratio:.2f}x (target <= 1.5x)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(row, indent=2))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
