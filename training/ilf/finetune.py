"""Supervised finetuning on an ILF dataset (DESIGN.md, Algorithm 2, step 5).

    result = finetune(FinetuneConfig(file="ilf-sft.jsonl", base="smollm2", out="ckpt/ilf"))
    result["metrics"]["eval_loss"], result["model_id"]

`finetune` reads top to bottom: read_rows -> load (model, device) -> prepare_data (split, encode)
-> train_loop -> save (checkpoint, card, registry).

Causal LMs read prompt + completion + eos and learn the completion (the prompt's tokens weigh
`prompt_loss_weight`, 0 by default); seq2seq LMs read the prompt and learn the completion.
A held-out split gives loss and perplexity (per completion token). The checkpoint is written
with save_pretrained plus `ilf_card.json` (base, data sha256, critique ids, config, metrics).
One process uses one device (CUDA with bf16 autocast when there, else the CPU). Several GPUs go
through Hugging Face accelerate, not a home-made launcher:

    accelerate launch --num_processes 4 -m training.cli train sft --file ilf.jsonl --base M --out DIR

(WORLD_SIZE > 1 switches the loop to an `Accelerator`: DDP model, one shard of rows per process,
the main process saves.) Multi-GPU has not been run here: no GPU machine was available.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.device import autocast, pick_device, set_threads
from training.errors import NotFound, ValidationError
from training.ilf.finetune_config import FinetuneConfig
from training.progress import Progress, ensure

log = logging.getLogger(__name__)

CARD = "ilf_card.json"


# -- 1. data --------------------------------------------------------------------------------
def read_rows(path: str | Path) -> list[dict]:
    """Rows of a JSONL or Parquet file; each needs non-empty string `prompt` and `completion`."""
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"dataset file {str(p)!r} does not exist; build one with: tokenwise ilf build ...")
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(p).to_pylist()
    else:
        rows = []
        for ln, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValidationError(f"{p}: line {ln}: not valid JSON ({e.msg})") from None
    for i, r in enumerate(rows, 1):
        for key in ("prompt", "completion"):
            if not isinstance(r.get(key), str) or (key == "completion" and not r[key].strip()):
                raise ValidationError(f"{p}: row {i}: field {key!r} must be a non-empty string")
    if not rows:
        raise ValidationError(f"{p}: no rows")
    return rows


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_rows(rows: list[dict], eval_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    n_eval = 0 if eval_fraction <= 0 or len(rows) < 2 else max(1, round(eval_fraction * len(rows)))
    return [rows[i] for i in idx[n_eval:]], [rows[i] for i in idx[:n_eval]]


def encode_row(tok, prompt: str, completion: str, max_length: int, seq2seq: bool,
               prompt_loss_weight: float = 0.0) -> dict:
    """Token ids and per-target weights of one row. The completion keeps its start up to half the
    window; the prompt loses its start (its end carries the cue)."""
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    comp = tok(completion, add_special_tokens=False)["input_ids"] + eos
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    truncated = False
    if seq2seq:
        if len(comp) > max_length:
            comp, truncated = comp[: max_length - len(eos)] + eos, True
        if len(prompt_ids) > max_length:
            prompt_ids, truncated = prompt_ids[-max_length:], True
        return {"input_ids": prompt_ids, "labels": comp, "truncated": truncated}
    cap = max(1, max_length // 2)
    if len(comp) > cap and len(prompt_ids) + len(comp) > max_length:
        comp, truncated = comp[: cap - len(eos)] + eos, True
    room = max_length - len(comp)
    if len(prompt_ids) > room:
        prompt_ids, truncated = prompt_ids[len(prompt_ids) - room:], True
    ids = prompt_ids + comp
    # weights[t] is the weight of predicting ids[t] (the first token has no prediction: 0)
    weights = [0.0] + [prompt_loss_weight] * (len(prompt_ids) - 1) + [1.0] * len(comp)
    if not prompt_ids:
        weights = [0.0] + [1.0] * (len(comp) - 1)
    completion_mask = [0.0] * len(prompt_ids) + [1.0] * len(comp)
    if not prompt_ids:
        completion_mask[0] = 0.0
    return {"input_ids": ids, "weights": weights, "completion_mask": completion_mask, "truncated": truncated}


def collate(rows: list[dict], pad_id: int, seq2seq: bool, device) -> dict:
    def pad(seqs, value, dtype=torch.long):
        n = max(len(s) for s in seqs)
        return torch.tensor([list(s) + [value] * (n - len(s)) for s in seqs], dtype=dtype, device=device)

    batch = {"input_ids": pad([r["input_ids"] for r in rows], pad_id),
             "attention_mask": pad([[1] * len(r["input_ids"]) for r in rows], 0)}
    if seq2seq:
        batch["labels"] = pad([r["labels"] for r in rows], -100)
        batch["weights"] = (batch["labels"] != -100).float()
        batch["completion_mask"] = batch["weights"]
    else:
        batch["weights"] = pad([r["weights"] for r in rows], 0.0, torch.float)
        batch["completion_mask"] = pad([r["completion_mask"] for r in rows], 0.0, torch.float)
    return batch


# -- 2. the loss (pure) ---------------------------------------------------------------------
def weighted_token_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor):
    """(sum_t w_t * CE(logits_t, y_t), sum_t w_t): the caller divides. Targets with w=0 may be anything."""
    ce = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), targets.clamp(min=0).reshape(-1), reduction="none")
    w = weights.reshape(-1).float()
    return (ce * w).sum(), w.sum()


def batch_loss(model, batch: dict, seq2seq: bool, key: str = "weights"):
    """(weighted loss sum, weight sum) of a batch; key='completion_mask' gives completion-only."""
    if seq2seq:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       labels=batch["labels"]).logits
        return weighted_token_loss(logits, batch["labels"], batch[key])
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return weighted_token_loss(logits[:, :-1], batch["input_ids"][:, 1:], batch[key][:, 1:])


@torch.no_grad()
def evaluate(model, rows: list[dict], cfg: FinetuneConfig, pad_id: int, seq2seq: bool, device) -> float:
    """Mean loss per completion token on `rows` (nan when there are none)."""
    if not rows:
        return float("nan")
    model.eval()
    total, weight = 0.0, 0.0
    for i in range(0, len(rows), cfg.batch_size):
        batch = collate(rows[i:i + cfg.batch_size], pad_id, seq2seq, device)
        with autocast(device, cfg.bf16):
            s, w = batch_loss(model, batch, seq2seq, key="completion_mask")
        total, weight = total + float(s), weight + float(w)
    model.train()
    return total / max(weight, 1e-9)


# -- 3. the steps of a run: load, data, loop, save ------------------------------------------
@dataclass
class _Run:
    """The loaded model and where it runs (one process; `acc` under accelerate)."""

    model: Any
    tok: Any
    seq2seq: bool
    pad_id: int
    max_len: int  # cfg.max_length, capped at a causal model's position embeddings
    device: torch.device
    acc: Any = None  # accelerate.Accelerator or None


@dataclass
class _Data:
    rows: list[dict]  # the file's rows (the card lists their critique ids)
    train: list[dict]  # encoded rows (this process's shard under accelerate)
    eval: list[dict]
    truncated: int
    total_steps: int


@dataclass
class _Trained:
    steps: int
    history: list[dict]
    last_loss: float
    eval_start: float
    eval_loss: float
    seconds: float


def finetune(cfg: FinetuneConfig, *, progress: Progress | None = None, store=None, project=None,
             job_id: int | None = None) -> dict:
    """Finetune cfg.base on cfg.file, save to cfg.out; register it in `store` when given.

    Returns {"out", "metrics", "card", "model_id"}.
    """
    progress = ensure(progress)
    threads = set_threads(cfg.threads)
    if not cfg.file:
        raise ValidationError("file: a dataset file is required (tokenwise ilf build ... --out FILE)")
    if not cfg.out:
        raise ValidationError("out: a folder for the checkpoint is required")
    rows = read_rows(cfg.file)
    run = load(cfg)
    data = prepare_data(run, rows, cfg)
    trained = train_loop(run, data, cfg, progress)
    return save(run, data, trained, cfg, threads, progress, store=store, project=project, job_id=job_id)


def load(cfg: FinetuneConfig) -> _Run:
    """The model and tokenizer on their device. Under `accelerate launch` (WORLD_SIZE > 1) or with
    cfg.accelerate, Hugging Face accelerate places the model (DDP across GPUs)."""
    from training.lm import load_lm

    acc = None
    if cfg.accelerate or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import Accelerator

        acc = Accelerator(cpu=pick_device(cfg.device).type == "cpu")
        device = acc.device
    else:
        device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    lm = load_lm(cfg.base, device=device)
    model, tok = lm.model, lm.tokenizer
    max_len = cfg.max_length
    pos = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if pos and not lm.seq2seq:
        max_len = min(max_len, int(pos))
    return _Run(model=model, tok=tok, seq2seq=lm.seq2seq, max_len=max_len, device=device, acc=acc,
                pad_id=tok.pad_token_id if tok.pad_token_id is not None else 0)


def prepare_data(run: _Run, rows: list[dict], cfg: FinetuneConfig) -> _Data:
    """Split, encode, shard (each process its equal share under accelerate) and count the steps."""
    train_rows, eval_rows = split_rows(rows, cfg.eval_fraction, cfg.seed)

    def encode(rs):
        return [encode_row(run.tok, r["prompt"], r["completion"], run.max_len, run.seq2seq, cfg.prompt_loss_weight)
                for r in rs]

    train, held_out = encode(train_rows), encode(eval_rows)
    if not train:
        raise ValidationError(f"{cfg.file}: no rows left for training after the held-out split")
    truncated = sum(e["truncated"] for e in train + held_out)
    acc = run.acc
    if acc is not None and acc.num_processes > 1:  # equal shards, so every process takes the same steps
        n = math.ceil(len(train) / acc.num_processes) * acc.num_processes
        train = [train[i % len(train)] for i in range(n)][acc.process_index::acc.num_processes]
    steps_per_epoch = math.ceil(math.ceil(len(train) / cfg.batch_size) / cfg.grad_accum)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    return _Data(rows=rows, train=train, eval=held_out, truncated=truncated, total_steps=total)


def train_loop(run: _Run, data: _Data, cfg: FinetuneConfig, progress: Progress) -> _Trained:
    """AdamW with linear warm-up; each optimizer step sums grad_accum batches, weighted per token."""
    opt = torch.optim.AdamW([p for p in run.model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0)
    acc = run.acc
    if acc is not None:
        run.model, opt = acc.prepare(run.model, opt)
    model, total = run.model, data.total_steps
    eval_start = evaluate(model, data.eval, cfg, run.pad_id, run.seq2seq, run.device)
    progress.log(f"sft: {len(data.train)} train / {len(data.eval)} held-out rows, {total} steps on "
                 f"{run.device}; held-out loss {eval_start:.4f}")
    model.train()
    rng = random.Random(cfg.seed)
    step, t0, history, last_loss, eval_loss = 0, time.time(), [], float("nan"), eval_start
    while step < total:
        order = list(range(len(data.train)))
        rng.shuffle(order)
        batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        for g in range(0, len(batches), cfg.grad_accum):
            parts = [collate([data.train[i] for i in b], run.pad_id, run.seq2seq, run.device)
                     for b in batches[g:g + cfg.grad_accum]]
            weight = sum(float(p["weights"].sum()) for p in parts)
            loss_sum = 0.0
            for batch in parts:
                with autocast(run.device, cfg.bf16):
                    s, _ = batch_loss(model, batch, run.seq2seq)
                loss = s / max(weight, 1e-9)
                acc.backward(loss) if acc is not None else loss.backward()
                loss_sum += float(s.detach())
            if cfg.grad_clip:
                clip = acc.clip_grad_norm_ if acc is not None else torch.nn.utils.clip_grad_norm_
                clip(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            last_loss = loss_sum / max(weight, 1e-9)
            metrics = {"loss": last_loss, "ppl": math.exp(min(last_loss, 50)), "lr": sched.get_last_lr()[0]}
            if data.eval and ((cfg.eval_every and step % cfg.eval_every == 0) or step == total):
                eval_loss = evaluate(model, data.eval, cfg, run.pad_id, run.seq2seq, run.device)
                metrics.update(eval_loss=eval_loss, eval_ppl=math.exp(min(eval_loss, 50)))
            history.append({"step": step, **metrics})
            progress.step(step, total, **metrics)
            if step >= total:
                break
    return _Trained(steps=step, history=history, last_loss=last_loss, eval_start=eval_start,
                    eval_loss=eval_loss, seconds=round(time.time() - t0, 2))


def save(run: _Run, data: _Data, trained: _Trained, cfg: FinetuneConfig, threads: int, progress: Progress,
         *, store=None, project=None, job_id: int | None = None) -> dict:
    """save_pretrained + ilf_card.json into cfg.out (main process only), registered when a store is given."""
    out = Path(cfg.out)
    model, acc = run.model, run.acc
    if acc is not None:
        acc.wait_for_everyone()
        model = acc.unwrap_model(model)
        if not acc.is_main_process:  # only the main process writes and registers
            return {"out": str(out), "metrics": {}, "card": {}, "model_id": None}
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    run.tok.save_pretrained(out)
    critique_ids = sorted({int(r["critique_id"]) for r in data.rows if r.get("critique_id") is not None})
    metrics = {
        "train_loss": trained.last_loss, "eval_loss_start": trained.eval_start, "eval_loss": trained.eval_loss,
        "eval_ppl": math.exp(min(trained.eval_loss, 50)) if data.eval else None,
        "steps": trained.steps, "rows_train": len(data.train), "rows_eval": len(data.eval),
        "truncated_rows": data.truncated, "seconds": trained.seconds, "device": str(run.device),
        "threads": threads, "processes": acc.num_processes if acc is not None else 1,
    }
    card = {
        "kind": "ilf", "base_model": str(cfg.base), "data_file": str(cfg.file), "data_sha256": file_sha256(cfg.file),
        "critique_ids": critique_ids, "config": dataclasses.asdict(cfg), "metrics": metrics,
        "history": trained.history, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / CARD).write_text(json.dumps(card, indent=2, default=str))
    model_id = None
    if store is not None:
        snapshot = {"file": str(cfg.file), "sha256": card["data_sha256"], "critique_ids": critique_ids}
        model_id = store.add_model("ilf", str(out), base_model=str(cfg.base), project=project, job_id=job_id,
                                   data_snapshot=snapshot, metrics=metrics,
                                   card={k: v for k, v in card.items() if k != "history"}).id
    progress.log(f"sft: saved {out} (held-out loss {trained.eval_start:.4f} -> {trained.eval_loss:.4f})")
    return {"out": str(out), "metrics": metrics, "card": card, "model_id": model_id}
