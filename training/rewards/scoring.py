"""Apply a trained reward model: per-token rewards and sequence scores of candidates.

    score_texts(rm, context, ["a summary", "another"])   # [(tokens, rewards, score), ...]
    score_project(store, model_id, "demo")               # fills the token_rewards cache

Both go through `score_encoded`, one batched forward whose rewards are bounded exactly as in
training (`losses.bound_rewards`) and whose scores use each list's Lbar.
"""

from __future__ import annotations

import torch

from training.data.context import project_context
from training.device import autocast, pick_device
from training.errors import ValidationError
from training.progress import Progress, ensure
from training.rewards.losses import bound_rewards
from training.rewards.model import Encoded, TokenRewardModel
from training.store import Store


@torch.inference_mode()
def score_encoded(rm: TokenRewardModel, encoded: list[Encoded], lbars: list[float]
                  ) -> list[tuple[list[str], list[float], float]]:
    """(tokens, rewards, score) per encoded candidate; `lbars[i]` is the Lbar of candidate i's list."""
    batch = rm.collate(encoded)
    dev = batch["input_ids"].device
    with autocast(dev):
        raw = rm.raw(batch).float()
    scores = rm.scores(batch, torch.tensor(lbars, device=dev, dtype=torch.float32), raw=raw)
    rewards = bound_rewards(raw)
    return [(e.tokens, rewards[i, :len(e.positions)].tolist(), float(scores[i])) for i, e in enumerate(encoded)]


def score_texts(rm: TokenRewardModel, document: str, candidates: list[str]) -> list[tuple[list[str], list[float], float]]:
    """(tokens, rewards, score) for each candidate of one document (scores with Lbar of this list)."""
    es = [rm.encode(document, c) for c in candidates]
    lbar = sum(len(e.positions) for e in es) / max(len(es), 1)
    return score_encoded(rm, es, [lbar] * len(es))


def score_project(store: Store, model_id: int, project: str | int, batch_size: int = 8,
                  progress: Progress | None = None, device: str = "auto") -> int:
    """Per-token rewards + aggregated score of every candidate, cached in token_rewards.

    Documents are scored whole (Lbar = the mean length of the document's candidates), several
    documents per forward pass up to `batch_size` candidates. Returns the number of candidates.
    """
    progress = ensure(progress)
    rec = store.get_model(model_id)
    if rec.kind != "reward":
        raise ValidationError(f"model {model_id} is a {rec.kind} model, not a reward model")
    rm = TokenRewardModel.load(rec.path, device=pick_device(device))
    p = store.get_project(project)
    docs = store.documents(p.id)
    total, done = sum(len(d.candidates) for d in docs), 0
    pending: list[tuple[int, float, Encoded]] = []

    def flush():
        nonlocal done, pending
        if not pending:
            return
        out = score_encoded(rm, [e for _, _, e in pending], [lb for _, lb, _ in pending])
        store.put_token_rewards(rec.id, [(cid, *o) for (cid, _, _), o in zip(pending, out)])
        done += len(pending)
        pending = []
        progress.step(done, total, phase="scoring candidates")  # (after training: the job view names it)

    for d in docs:
        context = project_context(p, d)
        es = [(c.id, rm.encode(context, c.text)) for c in d.candidates]
        lbar = sum(len(e.positions) for _, e in es) / max(len(es), 1)
        pending += [(cid, lbar, e) for cid, e in es]
        if len(pending) >= batch_size:
            flush()
    flush()
    progress.log(f"scored {done} candidates of {p.name!r} with model {rec.id}")
    return done
