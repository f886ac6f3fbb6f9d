"""Train, evaluate and apply the token-level reward model (DESIGN.md, Algorithm 1).

    rec = train_reward(store, "demo", RewardConfig(base_model=path), "models/rm")  # -> ModelRecord
    evaluate_reward("models/rm", "pairs.jsonl")          # {"pairwise_accuracy", "kendall_tau", "n"}
    score_project(store, rec.id, "demo")                 # fills the token_rewards cache

Training, top to bottom:
  1. one list per current (document, annotator) ranking; lists with no untied pair are dropped;
  2. lists split by normalised document text into train / validation / test (seeded), so no
     document is on two sides; below MIN_TEST_LISTS lists there is no test split (small data);
  3. each step: a batch of lists of similar length -> per-token rewards -> aggregated scores e(y)
     (Lbar = mean candidate length of each list) -> ListMLE of the human order (ties shuffled);
     logged: loss, pairwise accuracy, margin, mean/std of the scores;
  4. AdamW with linear warm-up and decay, gradient clipping, bf16 autocast on CUDA; after each
     epoch the validation ListMLE picks the best epoch, `patience` epochs without a better one stop
     training; optionally a refit on train + validation for the chosen number of epochs;
  5. the test split is scored once: its pairwise accuracy with n and a 95% Wilson interval, beside
     the "longer wins" / "shorter wins" baselines, is the figure reported everywhere;
  6. the checkpoint is saved with a card and registered in the `models` table.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from training.data.context import project_context
from training.device import autocast, pick_device, set_threads
from training.errors import NotFound, ValidationError
from training.lm import disable_dropout, set_checkpointing
from training.progress import Progress, ensure
from training.rewards.config import MIN_TEST_LISTS, RewardConfig
from training.rewards.losses import list_mle, mean_kendall_tau, pairwise_accuracy
from training.rewards.model import Encoded, TokenRewardModel
from training.rewards.report import headline, small_data_warning
from training.stats import wilson_interval
from training.store import ModelRecord, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankedList:
    """One annotator's ranking of one document: candidates and their ranks (1 = best, ties equal)."""

    document: str
    candidates: tuple[str, ...]
    ranks: tuple[int, ...]
    group: str = ""  # what the split is by (document id / prompt)
    ranking_id: int | None = None
    annotator_id: int | None = None
    candidate_ids: tuple[int, ...] = ()


# -- 1. data ------------------------------------------------------------------------------
def lists_from_store(store: Store, project: str | int) -> list[RankedList]:
    p = store.get_project(project)
    docs = {d.id: d for d in store.documents(p.id)}
    out = []
    for r in store.rankings(p.id):
        doc = docs[r.document_id]
        texts = {c.id: c.text for c in doc.candidates}
        ids = [c for group in r.order for c in group if c in texts]
        ranks = r.ranks
        if len({ranks[c] for c in ids}) < 2:
            continue
        out.append(RankedList(project_context(p, doc), tuple(texts[c] for c in ids),
                              tuple(ranks[c] for c in ids), group=str(doc.id), ranking_id=r.id,
                              annotator_id=r.annotator_id, candidate_ids=tuple(ids)))
    return out


def lists_from_file(path: str | Path, fmt: str = "auto") -> list[RankedList]:
    """Ranked lists from a file of any preference format Tokenwise imports (training/data/formats.py:
    TRL pairs, implicit-prompt dialogues, summarize-from-feedback, ratings, two-answer rows; JSONL,
    JSON, CSV or Parquet, .gz too), one list per judgment; or Tokenwise's own ranking exports:
    {"prompt"|"text"|"document": ..., "ranking_texts": [[best...], [...]]} or
    {"prompt", "candidates": [...], "ranks": [1, 2, ...]}.
    """
    from training.data.context import document_context
    from training.data.formats import read_items
    from training.data.sources import records

    path = Path(path)
    if not path.exists():
        raise NotFound(f"evaluation file {str(path)!r} does not exist")
    first = next((obj for _, obj in records(path) if isinstance(obj, dict)), None)
    if first is not None and ("ranking_texts" in first or ("candidates" in first and "ranks" in first)):
        return _ranking_rows(path)
    _, items = read_items(path, fmt)
    out = []
    for it in items:
        context = document_context("summarize" if it.title else "prompt", it.title, it.text)
        for j in it.judgments:
            if len(set(j.ranks)) > 1:
                out.append(RankedList(context, tuple(it.candidates), tuple(j.ranks), group=context))
    return out


def _ranking_rows(path: Path) -> list[RankedList]:
    from training.data.sources import records

    out = []
    for i, row in records(path):
        if not isinstance(row, dict):
            raise ValidationError(f"{path}: line {i}: not a JSON object")
        prompt = next((row[k] for k in ("prompt", "text", "document", "post") if isinstance(row.get(k), str)), "")
        if "ranking_texts" in row:
            cands, ranks = [], []
            for r, group in enumerate(row["ranking_texts"], 1):
                cands += list(group)
                ranks += [r] * len(group)
            out.append(RankedList(prompt, tuple(cands), tuple(ranks), group=prompt))
        elif "candidates" in row and "ranks" in row:
            out.append(RankedList(prompt, tuple(row["candidates"]), tuple(int(x) for x in row["ranks"]), group=prompt))
        else:
            raise ValidationError(f"{path}: line {i}: expected ranking_texts, or candidates and ranks")
    return out


def document_key(x: RankedList) -> str:
    """What the split groups by: the normalised document text (case and whitespace folded), so
    rows that share a source text never land on two sides; the explicit group when there is no text."""
    text = " ".join(x.document.lower().split())
    return text or f"group:{x.group}"


@dataclass(frozen=True)
class Split:
    train: list[RankedList]
    val: list[RankedList]
    test: list[RankedList]  # empty when there are fewer than MIN_TEST_LISTS lists

    @property
    def small_data(self) -> bool:
        return not self.test


def split_lists(lists: list[RankedList], val_fraction: float, test_fraction: float = 0.0, seed: int = 0,
                min_test_lists: int = MIN_TEST_LISTS) -> Split:
    """Seeded split by document (`document_key`) into train / validation / test.

    Every list of a document lands on one side. With fewer than `min_test_lists` lists there is
    no test split (too few to report a figure), only train / validation.
    """
    keys = sorted({document_key(x) for x in lists})
    random.Random(seed).shuffle(keys)
    if len(lists) < min_test_lists:
        test_fraction = 0.0

    def take(fraction: float, left: int) -> int:
        n = round(len(keys) * fraction)
        return min(max(n, 1), left - 1) if fraction > 0 and left >= 2 else 0

    n_test = take(test_fraction, len(keys))
    n_val = take(val_fraction, len(keys) - n_test)
    side = {k: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, k in enumerate(keys)}
    by = {"train": [], "val": [], "test": []}
    for x in lists:
        by[side[document_key(x)]].append(x)
    return Split(by["train"], by["val"], by["test"])


def length_baselines(lists: list[RankedList]) -> dict:
    """Pairwise accuracy of "longer wins" and "shorter wins" (characters; equal lengths count as wrong)."""
    out = {}
    for name, sign in (("longer_wins", 1.0), ("shorter_wins", -1.0)):
        correct = total = 0
        for x in lists:
            s = torch.tensor([[sign * len(c) for c in x.candidates]], dtype=torch.float64)
            c, t = pairwise_accuracy(s, torch.tensor([x.ranks]))
            correct, total = correct + c, total + t
        out[name] = correct / total if total else float("nan")
    return out


def data_sha256(lists: list[RankedList]) -> str:
    h = hashlib.sha256()
    for x in sorted(lists, key=lambda x: (x.ranking_id or 0, x.group, x.candidates)):
        h.update(json.dumps([x.ranking_id, x.annotator_id, x.document, x.candidates, x.ranks],
                            ensure_ascii=False).encode())
    return h.hexdigest()


# -- 2. batches -------------------------------------------------------------------------------
class Encoder:
    """Caches rm.encode per (document, candidate) and counts truncations."""

    def __init__(self, rm: TokenRewardModel):
        self.rm, self.cache = rm, {}
        self.doc_truncated = self.cand_truncated = 0

    def __call__(self, document: str, candidate: str) -> Encoded:
        key = (document, candidate)
        if key not in self.cache:
            e = self.rm.encode(document, candidate)
            self.doc_truncated += e.doc_truncated
            self.cand_truncated += e.cand_truncated
            self.cache[key] = e
        return self.cache[key]


def list_batch(rm: TokenRewardModel, enc: Encoder, lists: list[RankedList]):
    """(model batch, Lbar per row [B], ranks [N, K], mask [N, K], row index [N, K])."""
    items, lbar, index = [], [], []
    k = max(len(x.candidates) for x in lists)
    for x in lists:
        es = [enc(x.document, c) for c in x.candidates]
        mean_len = sum(len(e.positions) for e in es) / len(es)
        index.append(list(range(len(items), len(items) + len(es))) + [0] * (k - len(es)))
        items += es
        lbar += [mean_len] * len(es)
    batch = rm.collate(items)
    device = batch["input_ids"].device
    ranks = torch.tensor([list(x.ranks) + [10**6] * (k - len(x.ranks)) for x in lists], device=device)
    mask = torch.tensor([[True] * len(x.ranks) + [False] * (k - len(x.ranks)) for x in lists], device=device)
    return batch, torch.tensor(lbar, dtype=torch.float32, device=device), ranks, mask, torch.tensor(index, device=device)


def list_scores(rm: TokenRewardModel, batch, lbar, index, device) -> torch.Tensor:
    with autocast(device, enabled=getattr(rm, "_bf16", True)):
        flat = rm.scores(batch, lbar)
    return flat.float()[index]


# -- 3. evaluation ----------------------------------------------------------------------------
@torch.no_grad()
def evaluate_lists(rm: TokenRewardModel, enc: Encoder, lists: list[RankedList], batch_size: int = 8,
                   seed: int = 0) -> dict:
    """Held-out ListMLE (fixed tie order), pairwise accuracy over untied pairs, mean Kendall tau."""
    if not lists:
        return {"loss": float("nan"), "pairwise_accuracy": float("nan"), "kendall_tau": float("nan"), "n": 0}
    was_training = rm.training
    rm.eval()
    device = rm.head.out.weight.device
    gen = torch.Generator().manual_seed(seed)
    loss_sum, correct, total, tau_sum = 0.0, 0, 0, 0.0
    for i in range(0, len(lists), batch_size):
        chunk = lists[i:i + batch_size]
        batch, lbar, ranks, mask, index = list_batch(rm, enc, chunk)
        s = list_scores(rm, batch, lbar, index, device)
        loss_sum += list_mle(s, ranks, mask, generator=gen).item() * len(chunk)
        c, t = pairwise_accuracy(s, ranks, mask)
        correct, total = correct + c, total + t
        tau_sum += mean_kendall_tau(s.cpu(), ranks.cpu(), mask.cpu()) * len(chunk)
    rm.train(was_training)
    return {"loss": loss_sum / len(lists), "pairwise_accuracy": correct / total if total else float("nan"),
            "kendall_tau": tau_sum / len(lists), "n": len(lists), "pairs": total, "correct": correct}


# -- 4. training ------------------------------------------------------------------------------
def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then linear decay to 0 at `total` (step counts from 0)."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(total - warmup, 1))


def length_batches(lists: list[RankedList], enc: Encoder, batch_size: int, rng: random.Random
                   ) -> list[list[RankedList]]:
    """Batches of lists of similar length (less padding), in a random order: shuffle, sort within
    windows of 50 batches by the longest encoded input, cut into batches, shuffle the batches."""
    order = lists[:]
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for i in range(0, len(order), window):
        chunk = sorted(order[i:i + window],
                       key=lambda x: max(len(enc(x.document, c).input_ids) for c in x.candidates))
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def step_metrics(s: torch.Tensor, ranks: torch.Tensor, mask: torch.Tensor) -> dict:
    """Pairwise accuracy, mean margin (better minus worse score over untied pairs), score mean/std."""
    s, mask = s.detach().float(), mask.to(torch.bool)
    better = (ranks.unsqueeze(-1) < ranks.unsqueeze(-2)) & mask.unsqueeze(-1) & mask.unsqueeze(-2)
    diff = s.unsqueeze(-1) - s.unsqueeze(-2)
    c, t = pairwise_accuracy(s, ranks, mask)
    flat = s[mask]
    return {"correct": c, "pairs": t, "accuracy": c / t if t else float("nan"),
            "margin": float(diff[better].mean()) if t else float("nan"),
            "score_mean": float(flat.mean()), "score_std": float(flat.std()) if flat.numel() > 1 else 0.0}


def fit(rm: TokenRewardModel, train: list[RankedList], val: list[RankedList], config: RewardConfig,
        progress: Progress | None = None) -> dict:
    """The training loop over ranked lists (no database): returns metrics.

    With validation lists, the epoch with the lowest validation ListMLE is kept (rm holds its
    weights) and training stops after `patience` epochs without a better one. Without, rm holds
    the last epoch's weights. Test lists never come here.
    """
    progress = ensure(progress)
    if not train:
        raise ValidationError("fit: no training lists")
    device = pick_device(config.device)
    rm.to(device).train()
    rm._bf16 = config.bf16
    if config.disable_dropout:
        disable_dropout(rm.backbone)
    if config.gradient_checkpointing:
        set_checkpointing(rm.backbone, True)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    enc = Encoder(rm)
    opt = torch.optim.AdamW([p for p in rm.parameters() if p.requires_grad], lr=config.lr,
                            weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    warmup = int(total * config.warmup_fraction)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: lr_factor(i, total, warmup))
    history, best, best_state, best_epoch, bad_epochs, final = [], math.inf, None, 0, 0, {}
    step = tokens = 0
    eval_seconds = 0.0
    t0 = time.monotonic()
    for epoch in range(1, config.epochs + 1):
        losses, correct, pairs = [], 0, 0
        for chunk in length_batches(train, enc, config.batch_size, rng):
            batch, lbar, ranks, mask, index = list_batch(rm, enc, chunk)
            s = list_scores(rm, batch, lbar, index, device)
            loss = list_mle(s, ranks, mask, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(rm.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            step += 1
            tokens += int(batch["attention_mask"].sum()) + int(batch.get("decoder_attention_mask", torch.zeros(1)).sum())
            losses.append(loss.item())
            m = step_metrics(s, ranks, mask)
            correct, pairs = correct + m.pop("correct"), pairs + m.pop("pairs")
            progress.step(step, total, loss=losses[-1], epoch=epoch, lr=sched.get_last_lr()[0], **m)
            if config.max_steps and step >= config.max_steps:
                break
        row = {"epoch": epoch, "step": step, "loss": sum(losses) / max(len(losses), 1),
               "train_pairwise_accuracy": correct / pairs if pairs else float("nan")}
        if val:
            t_eval = time.monotonic()
            held = evaluate_lists(rm, enc, val, seed=config.seed)
            eval_seconds += time.monotonic() - t_eval
            row.update({"val_loss": held["loss"], "val_pairwise_accuracy": held["pairwise_accuracy"],
                        "val_kendall_tau": held["kendall_tau"]})
        row["seconds"] = round(time.monotonic() - t0, 2)
        history.append(row)
        progress.step(step, total, **{k: v for k, v in row.items() if k.startswith("val_") or k == "epoch"})
        progress.log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        stop = bool(config.max_steps and step >= config.max_steps)
        if val and (held["loss"] < best - 1e-6 or best_state is None):
            best, bad_epochs, final, best_epoch = held["loss"], 0, held, epoch
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in rm.state_dict().items()})
        elif val:
            bad_epochs += 1
            if config.patience and bad_epochs >= config.patience:
                progress.log(f"early stop after epoch {epoch}: no better validation loss for {bad_epochs} epochs")
                stop = True
        if stop:
            break
    if best_state is not None:
        rm.load_state_dict(best_state)  # the best epoch's weights; `final` holds its validation metrics
    else:
        best_epoch = len(history)
    rm.eval()
    if config.gradient_checkpointing:
        set_checkpointing(rm.backbone, False)
    seconds = time.monotonic() - t0
    train_seconds = seconds - eval_seconds
    return {
        "history": history, "steps": step, "epochs_run": len(history), "best_epoch": best_epoch,
        "train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2), "train_tokens": tokens,
        "train_tokens_per_s": round(tokens / train_seconds, 1) if train_seconds > 0 else None,
        "val_loss": final.get("loss"), "val_pairwise_accuracy": final.get("pairwise_accuracy"),
        "val_kendall_tau": final.get("kendall_tau"), "val_lists": len(val), "train_lists": len(train),
        "doc_truncated": enc.doc_truncated, "cand_truncated": enc.cand_truncated, "device": str(device),
    }


def fit_and_test(base_model: str, split: Split, config: RewardConfig, progress: Progress | None = None
                 ) -> tuple[TokenRewardModel, dict]:
    """A fresh model on `base_model`, fitted on split.train with split.val choosing the epoch
    (then, with `config.refit`, refitted from scratch on train + val for that many epochs), and
    measured once on split.test: `test_*` metrics with a 95% Wilson interval, and the length
    baselines on the same test lists. The test lists are read only after training ends."""
    progress = ensure(progress)
    torch.manual_seed(config.seed)  # the head's initialisation
    rm = TokenRewardModel.from_base(base_model, config)
    metrics = fit(rm, split.train, split.val, config, progress)
    if config.refit and split.val:
        epochs = metrics["best_epoch"]
        progress.log(f"refit on train + validation for {epochs} epoch(s)")
        torch.manual_seed(config.seed)
        rm = TokenRewardModel.from_base(base_model, config)
        again = fit(rm, split.train + split.val, [],
                    dataclasses.replace(config, epochs=epochs, patience=0), progress)
        metrics.update(refit_epochs=epochs, refit_seconds=again["train_seconds"],
                       train_seconds=round(metrics["train_seconds"] + again["train_seconds"], 2))
    metrics["test_lists"] = len(split.test)
    metrics["small_data"] = split.small_data
    if split.test:
        metrics.update(test_metrics(rm, split.test, seed=config.seed))
    return rm, metrics


def test_metrics(rm: TokenRewardModel, lists: list[RankedList], seed: int = 0) -> dict:
    """A trained model measured once on held-out lists: `test_*` figures with a 95% Wilson interval,
    beside "longer wins" / "shorter wins" on the same lists."""
    m = evaluate_lists(rm, Encoder(rm), lists, seed=seed)
    lo, hi = wilson_interval(m["correct"], m["pairs"])
    lengths = length_baselines(lists)
    return {"test_pairwise_accuracy": m["pairwise_accuracy"], "test_pairs": m["pairs"], "test_ci_low": lo,
            "test_ci_high": hi, "test_kendall_tau": m["kendall_tau"], "test_loss": m["loss"],
            "test_longer_wins": lengths["longer_wins"], "test_shorter_wins": lengths["shorter_wins"],
            "above_length_baseline": m["pairwise_accuracy"] - max(lengths.values())}


def train_reward(store: Store, project: str | int, config: RewardConfig, out_dir: str | Path,
                 progress: Progress | None = None, job_id: int | None = None) -> ModelRecord:
    """Train on a project's current rankings, save to out_dir, register in `models`."""
    progress = ensure(progress)
    set_threads(config.threads)
    p = store.get_project(project)
    lists = lists_from_store(store, p.id)
    if len(lists) < 2:
        raise ValidationError(
            f"project {p.name!r}: {len(lists)} usable ranking(s); training needs at least 2 rankings "
            "with an untied pair (rank more documents on the Annotate page)")
    split = split_lists(lists, config.val_fraction, config.test_fraction, config.seed)
    progress.log(f"reward model on {config.base_model}: {len(split.train)} training lists, "
                 f"{len(split.val)} validation, {len(split.test)} test (split by document)")
    if split.small_data:
        progress.log(small_data_warning({"train_lists": len(lists)}))
    rm, metrics = fit_and_test(config.base_model, split, config, progress)
    try:
        from training.annotation.agreement import project_agreement

        ag = project_agreement(store, p.id)
        metrics["agreement_alpha"] = None if ag.alpha != ag.alpha else ag.alpha
        metrics["agreement_shared_documents"] = ag.n_shared_documents
    except Exception as e:  # noqa: BLE001 -- agreement is a report beside the model, never a reason to fail
        log.warning("agreement statistics not computed: %s", e)
    names = {a.id: a.name for a in store.list_annotators()}
    snapshot = {
        "ranking_ids": [x.ranking_id for x in lists],
        "val_document_ids": sorted({int(x.group) for x in split.val}),
        "test_document_ids": sorted({int(x.group) for x in split.test}),
        "annotators": sorted({names.get(x.annotator_id, str(x.annotator_id)) for x in lists}),
        "n_lists": len(lists), "sha256": data_sha256(lists),
    }
    card = {"kind": "reward", "project": p.name, "config": dataclasses.asdict(config), "metrics": metrics,
            "quality": headline(metrics),  # the test figure, or the small-data warning
            "data": snapshot, "trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    card.update(rm.card())
    out = rm.save_pretrained(out_dir, card=card)
    rec = store.add_model("reward", str(Path(out).resolve()), base_model=config.base_model, project=p.id,
                          job_id=job_id, name=f"{p.name}-reward-{config.aggregation}"
                          + ("-baseline" if config.baseline else ""),
                          data_snapshot=snapshot, metrics=metrics, card=card)
    progress.log(f"saved reward model {rec.id} to {out}: {headline(metrics)}")
    return rec


# -- 5. evaluation from a file and scoring ---------------------------------------------------
def evaluate_reward(model_dir: str | Path, file: str | Path, batch_size: int = 8, device: str = "auto") -> dict:
    """Pairwise accuracy and Kendall tau of a saved reward model on TRL pairs or ranking lists."""
    rm = TokenRewardModel.load(model_dir, device=pick_device(device))
    lists = [x for x in lists_from_file(file) if len(set(x.ranks)) >= 2]
    m = evaluate_lists(rm, Encoder(rm), lists, batch_size=batch_size)
    return {"pairwise_accuracy": m["pairwise_accuracy"], "kendall_tau": m["kendall_tau"], "n": m["n"],
            "pairs": m.get("pairs", 0), "loss": m["loss"]}
