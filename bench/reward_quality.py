"""Test accuracy of Tokenwise's token-level reward model against TRL's RewardTrainer, the
sequence-level baseline and the "longer wins" / "shorter wins" baselines, in one run.

Data: QA-Feedback dev (bench/qa_feedback.py): pairwise human preferences over 4 answers to 500
questions, split by question (document) into train / validation / test with the trainer's own
`split_lists`. Every learned system gets the same training pairs (a seeded sample of the train
split), backbone, token budget (document truncated first, the answer kept), epochs, batch size,
learning rate and schedule, dropout (off while training, as both trainers default to, unless
--keep-dropout) and activation checkpointing (off unless --gradient-checkpointing: TRL's
RewardConfig turns it on by default); validation picks the epoch of each; the test split
chose nothing and is the only figure reported (pairwise accuracy, n, 95% Wilson interval). Each
system runs in its own process, so peak memory (max RSS on the CPU, allocator peak on a GPU) is
its own. On the CPU max RSS also counts what the C allocator keeps: at the same tensor shapes a
bare transformers training loop peaks where Tokenwise does, and MALLOC_MMAP_THRESHOLD_=131072
lowers both by a fifth; compare peaks of one process kind, or on a GPU.

    python bench/reward_quality.py --backbone minilm --quick --json-out /tmp/rq.json
    python bench/reward_quality.py --backbone smollm2 --device cuda --dtype bf16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import qa_feedback

SYSTEMS = ("tokenwise-avg", "tokenwise-min", "tokenwise-max", "tokenwise-sum", "tokenwise-seq", "trl")


def arguments(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="minilm", help="minilm, smollm2, or a local folder")
    ap.add_argument("--file", default=None, help="a preference file in any import format (default: QA-Feedback); "
                                                 "split by document text like QA-Feedback's questions")
    ap.add_argument("--systems", default="tokenwise-avg,tokenwise-min,tokenwise-seq,trl",
                    help=f"comma-separated, of {', '.join(SYSTEMS)} (length baselines always run)")
    ap.add_argument("--train-pairs", type=int, default=800, help="training pairs sampled from the train split")
    ap.add_argument("--val-pairs", type=int, default=200, help="validation pairs (choose the epoch)")
    ap.add_argument("--test-pairs", type=int, default=0, help="cap on test pairs (0: the whole test split)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per optimiser step")
    ap.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (linear warm-up over 10%%, then decay)")
    ap.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm clip, both trainers")
    ap.add_argument("--max-length", type=int, default=192, help="tokens per input (document + answer)")
    ap.add_argument("--max-candidate-length", type=int, default=160, help="answer tokens kept")
    ap.add_argument("--keep-dropout", action="store_true",
                    help="both trainers keep the backbone's dropout while training (both turn it off by default)")
    ap.add_argument("--gradient-checkpointing", action="store_true",
                    help="both trainers recompute activations in the backward pass (TRL's own default is on: "
                         "without this flag TRL is run with it off, like Tokenwise's default)")
    ap.add_argument("--quick", action="store_true", help="a small budget: 200 train / 100 val / 200 test pairs, 1 epoch")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help="bf16: autocast on a GPU")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", default=None, help="also write the final JSON here")
    ap.add_argument("--parallel", type=int, default=1, help="systems trained at once (one process each)")
    ap.add_argument("--save-dir", default=None,
                    help="save each Tokenwise model to DIR/BACKBONE-SYSTEM (bench/reward_localization.py reads them)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # run one system, print its row
    args = ap.parse_args(argv)
    if args.quick:
        args.train_pairs, args.val_pairs, args.test_pairs, args.epochs = 200, 100, 200, 1
    return args


def data(args):
    from training.rewards.trainer import Split, split_lists

    if args.file:  # any preference file Tokenwise imports (TRL pairs, sff, ratings, ...): one list per judgment
        from training.rewards.trainer import lists_from_file

        lists = lists_from_file(args.file)
    else:
        lists = qa_feedback.preference_lists(qa_feedback.rows())
    split = split_lists(lists, 0.2, 0.2, args.seed)
    rng = random.Random(args.seed)
    pick = lambda xs, n: rng.sample(xs, min(n, len(xs))) if n else xs
    return Split(pick(split.train, args.train_pairs), pick(split.val, args.val_pairs), pick(split.test, args.test_pairs))


def config(args, system: str):
    from training.rewards.config import RewardConfig

    return RewardConfig(base_model=args.backbone, aggregation="avg" if system in ("tokenwise-seq", "trl")
                        else system.split("-")[1], baseline=system == "tokenwise-seq", epochs=args.epochs,
                        lr=args.lr, warmup_fraction=0.1, batch_size=args.batch_size,
                        max_length=args.max_length, max_candidate_length=args.max_candidate_length,
                        patience=0, seed=args.seed, device=args.device, bf16=args.dtype == "bf16",
                        grad_clip=args.grad_clip, threads=args.threads, val_fraction=0.2, test_fraction=0.2,
                        gradient_checkpointing=args.gradient_checkpointing, disable_dropout=not args.keep_dropout)


def run_tokenwise(args, split, system: str) -> dict:
    from training.rewards.trainer import fit_and_test

    cfg = config(args, system)
    t0 = time.monotonic()
    rm, m = fit_and_test(args.backbone, split, cfg)
    if args.save_dir:
        rm.save_pretrained(Path(args.save_dir) / f"{Path(args.backbone).name}-{system}",
                           card={"config": vars(cfg), "metrics": m, "split_seed": args.seed})
    return {"test_accuracy": m["test_pairwise_accuracy"], "n_test": m["test_pairs"], "ci_low": m["test_ci_low"],
            "ci_high": m["test_ci_high"], "val_accuracy": m["val_pairwise_accuracy"], "best_epoch": m["best_epoch"],
            "train_s": m["train_seconds"], "total_s": round(time.monotonic() - t0, 1),
            "doc_truncated": m["doc_truncated"], "cand_truncated": m["cand_truncated"]}


def run_trl(args, split) -> dict:
    """TRL's RewardTrainer on AutoModelForSequenceClassification, the same encoded inputs (document
    truncated first, answer kept: TRL itself would drop every pair longer than max_length)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig as TRLConfig
    from trl import RewardTrainer

    from training.lm import resolve
    from training.rewards.model import TokenRewardModel
    from training.stats import wilson_interval

    cfg = config(args, "trl")
    probe = TokenRewardModel.from_base(args.backbone, cfg)  # its encode(): the same truncation as Tokenwise
    tok = probe.tokenizer
    tail = [tok.eos_token_id] if probe.arch == "causal" and tok.eos_token_id is not None else []

    def ids(doc, cand):
        return probe.encode(doc, cand).input_ids + tail

    def pairs(lists):
        rows = []
        for x in lists:
            best, worse = (0, 1) if x.ranks[0] < x.ranks[1] else (1, 0)
            rows.append({"chosen_ids": ids(x.document, x.candidates[best]),
                         "rejected_ids": ids(x.document, x.candidates[worse])})
        return Dataset.from_list(rows)

    train, val, test = pairs(split.train), pairs(split.val), pairs(split.test)
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(resolve(args.backbone), num_labels=1)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    out = tempfile.mkdtemp(prefix="tw-trl-")
    targs = TRLConfig(output_dir=out, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
                      per_device_eval_batch_size=16, learning_rate=cfg.lr, warmup_steps=cfg.warmup_fraction,
                      lr_scheduler_type="linear", max_grad_norm=cfg.grad_clip, seed=args.seed, max_length=None,
                      eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
                      metric_for_best_model="eval_loss", save_total_limit=1, report_to="none", logging_steps=25,
                      use_cpu=args.device == "cpu", bf16=args.dtype == "bf16", disable_tqdm=True,
                      dataloader_num_workers=0, save_only_model=True,
                      gradient_checkpointing=args.gradient_checkpointing, disable_dropout=not args.keep_dropout)
    trainer = RewardTrainer(model=model, args=targs, train_dataset=train, eval_dataset=val, processing_class=tok)
    t0 = time.monotonic()
    trainer.train()
    train_s = time.monotonic() - t0
    val_acc = trainer.evaluate()["eval_accuracy"]
    model = trainer.model.eval()
    dev = next(model.parameters()).device
    correct = 0
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
        for i in range(0, len(test), 16):
            chunk = test[i:i + 16]
            seqs = chunk["chosen_ids"] + chunk["rejected_ids"]
            n = max(len(s) for s in seqs)
            x = torch.tensor([s + [tok.pad_token_id] * (n - len(s)) for s in seqs], device=dev)
            mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs], device=dev)
            logits = model(input_ids=x, attention_mask=mask).logits.float().squeeze(-1)
            k = len(chunk["chosen_ids"])
            correct += int((logits[:k] > logits[k:]).sum())
    lo, hi = wilson_interval(correct, len(test))
    return {"test_accuracy": correct / len(test), "n_test": len(test), "ci_low": lo, "ci_high": hi,
            "val_accuracy": val_acc, "train_s": round(train_s, 1), "total_s": round(time.monotonic() - t0, 1)}


def one(args) -> None:
    """Child process: train and test one system, print its row as JSON."""
    import torch

    from training.device import pick_device

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    split = data(args)
    row = run_trl(args, split) if args.one == "trl" else run_tokenwise(args, split, args.one)
    row["peak_mb"] = round(qa_feedback.peak_memory_mb(device), 1)
    print("ROW " + json.dumps({"system": args.one, "backbone": args.backbone, **row}), flush=True)


def main() -> None:
    args = arguments()
    if args.one:
        return one(args)
    from training.rewards.trainer import length_baselines
    from training.stats import wilson_interval

    split = data(args)
    print(f"QA-Feedback: {len(split.train)} train / {len(split.val)} validation / {len(split.test)} test pairs "
          f"(split by question, seed {args.seed}); backbone {args.backbone}; {args.epochs} epoch(s) x batch "
          f"{args.batch_size}, lr {args.lr}, {args.max_length} tokens (answer up to "
          f"{args.max_candidate_length}); device {args.device} {args.dtype}; torch threads {args.threads}; both trainers "
          f"with dropout {'on' if args.keep_dropout else 'off'}, activation checkpointing "
          f"{'on' if args.gradient_checkpointing else 'off'}", flush=True)
    rows = []
    lengths = length_baselines(split.test)
    pairs = sum(1 for x in split.test if x.ranks[0] != x.ranks[1])
    for name in ("longer_wins", "shorter_wins"):
        acc = lengths[name]
        lo, hi = wilson_interval(round(acc * pairs), pairs)
        rows.append({"system": name.replace("_", "-"), "backbone": "-", "test_accuracy": acc, "n_test": pairs,
                     "ci_low": lo, "ci_high": hi, "train_s": 0.0, "peak_mb": 0.0})
    child = [sys.executable, str(Path(__file__).resolve())] + [a for a in sys.argv[1:]]
    systems = args.systems.split(",")
    for system in systems:
        if system not in SYSTEMS:
            sys.exit(f"--systems: {system!r} is not one of {', '.join(SYSTEMS)}")
    t0 = time.monotonic()
    running, queue = [], list(systems)
    while queue or running:
        while queue and len(running) < max(1, args.parallel):
            system = queue.pop(0)
            running.append((system, subprocess.Popen(child + ["--one", system], stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE, text=True)))
        system, p = running.pop(0)
        stdout, stderr = p.communicate()
        got = [ln[4:] for ln in stdout.splitlines() if ln.startswith("ROW ")]
        if p.returncode or not got:
            print(f"  {system}: FAILED\n{stderr[-3000:]}", flush=True)
            continue
        row = json.loads(got[-1])
        rows.append(row)
        print(f"  {system}: test {row['test_accuracy']:.3f} (val {row.get('val_accuracy', float('nan')):.3f}) "
              f"{row['train_s']}s train, {time.monotonic() - t0:.0f}s since start", flush=True)
    print()
    print("| system | backbone | test pairwise acc | n | 95% CI | val acc | train s | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for x in rows:
        val = x.get("val_accuracy")
        print(f"| {x['system']} | {x['backbone']} | {x['test_accuracy']:.3f} | {x['n_test']} | "
              f"{x['ci_low']:.3f}-{x['ci_high']:.3f} | {'-' if val is None else f'{val:.3f}'} | {x['train_s']} "
              f"| {x['peak_mb']} |")
    out = {"bench": "reward_quality", "args": {k: v for k, v in vars(args).items() if k != "one"}, "rows": rows}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
