"""ILF step 4: score each refinement and mark the best one per critique (DESIGN.md, Algorithm 2).

    InstructRM: an instruction LM is asked, with several templates, whether the refinement
                incorporates the feedback; score = p(yes) / (p(yes) + p(no)) from the
                next-token logits, mean over templates (Scheurer et al. 2023)
    reward:     the learned token-level reward model's sequence score (training/rewards)
    embedding:  MiniLM cosine similarity with output+feedback (or the feedback)
    random:     seeded, the control

`select` stores every score and marks the argmax of the `feedback` refinements; critiques a
person already reviewed keep their choice. Nothing here touches SQL: the store does.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Sequence

from training.errors import TokenwiseError, ValidationError
from training.ilf.config import SELECTORS, SelectConfig
from training.ilf.refine import MODEL_VARIANTS, as_chat, critique_items, encode_prompts
from training.ilf.templates import fill, item_fields, load_templates
from training.progress import Progress, ensure

log = logging.getLogger(__name__)


def answer_token_ids(tokenizer, yes: str, no: str) -> tuple[list[int], list[int]]:
    """First tokens of the answer words as the model would write them next ("Yes" and " Yes").

    A first token shared by both words (e.g. a lone space in a small tokenizer) says nothing
    about the answer and is dropped; if nothing is left the template cannot be scored.
    """
    def firsts(word: str) -> set[int]:
        ids = set()
        for v in (word, " " + word):
            toks = tokenizer.encode(v, add_special_tokens=False)
            if toks:
                ids.add(toks[0])
        return ids

    y, n = firsts(yes.strip()), firsts(no.strip())
    shared = y & n
    y, n = y - shared, n - shared
    if not y or not n:
        raise ValidationError(f"answer words {yes!r}/{no!r}: this tokenizer gives them the same first "
                              "token; pick answer words that start differently")
    return sorted(y), sorted(n)


def yes_probability(logits, yes_ids: Sequence[int], no_ids: Sequence[int]):
    """p(yes) / (p(yes) + p(no)) from next-token logits [B, V]; each side sums its token ids."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    ly = torch.logsumexp(logp[:, list(yes_ids)], dim=-1)
    ln = torch.logsumexp(logp[:, list(no_ids)], dim=-1)
    return torch.sigmoid(ly - ln)


def next_token_logits(lm, prompts: Sequence[str], batch_size: int = 4):
    """Logits of the first token the model would write after each prompt: [len(prompts), V]."""
    import torch

    rows = []
    chat = as_chat(lm, prompts)
    for i in range(0, len(chat), batch_size):
        enc, _ = encode_prompts(lm, chat[i:i + batch_size], room=1)
        with torch.no_grad():
            if lm.seq2seq:
                start = lm.model.config.decoder_start_token_id
                if start is None:
                    start = lm.tokenizer.pad_token_id
                dec = torch.full((enc["input_ids"].shape[0], 1), start, dtype=torch.long, device=lm.device)
                logits = lm.model(**enc, decoder_input_ids=dec).logits[:, -1, :]
            else:
                logits = lm.model(**enc).logits[:, -1, :]
        rows.append(logits.float().cpu())
    return torch.cat(rows) if rows else torch.zeros(0)


def instructrm_scores(lm, items, templates: dict, kind: str, cfg: SelectConfig,
                      progress: Progress | None = None) -> dict[int, dict]:
    """refinement id -> {"scores": {template: p}, "ensemble_score": mean} for the items' model refinements."""
    jobs = [(it, r) for it in items for r in it.refinements]
    out: dict[int, dict] = {r.id: {"scores": {}} for _, r in jobs}
    rms = templates["instructrm"]
    progress = ensure(progress)
    for t_i, rm in enumerate(rms):
        name = rm.get("name") or f"t{t_i}"
        yes_ids, no_ids = answer_token_ids(lm.tokenizer, rm["yes"], rm["no"])
        prompts = [fill(rm["prompt"], {**item_fields(it, templates, kind, cfg.max_text_chars), "refinement": r.text},
                        f"instructrm {name}") for it, r in jobs]
        probs = yes_probability(next_token_logits(lm, prompts, cfg.batch_size), yes_ids, no_ids)
        for (_, r), pr in zip(jobs, probs.tolist()):
            out[r.id]["scores"][name] = round(float(pr), 6)
        progress.step(t_i + 1, len(rms), template=t_i + 1)
    for s in out.values():
        s["ensemble_score"] = sum(s["scores"].values()) / len(s["scores"])
    return out


def _mean_pool(model, tok, texts: Sequence[str], batch_size: int, device):
    import torch

    vecs = []
    for i in range(0, len(texts), batch_size):
        enc = tok(list(texts[i:i + batch_size]), return_tensors="pt", padding=True, truncation=True,
                  max_length=256).to(device)
        with torch.no_grad():
            h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        vecs.append(torch.nn.functional.normalize(v, dim=-1).cpu())
    return torch.cat(vecs)


def embedding_scores(items, cfg: SelectConfig, encoder=None) -> dict[int, dict]:
    """Cosine similarity (MiniLM, mean-pooled) of each refinement with output+feedback or the feedback."""
    from transformers import AutoModel, AutoTokenizer

    from training.device import pick_device
    from training.lm import minilm_path, resolve

    device = pick_device(cfg.device)
    if encoder is None:
        path = resolve(cfg.model) if cfg.model else str(minilm_path())
        encoder = (AutoModel.from_pretrained(path).to(device).eval(), AutoTokenizer.from_pretrained(path))
    model, tok = encoder
    jobs = [(it, r) for it in items for r in it.refinements]
    if not jobs:
        return {}
    targets = [it.critique.text if cfg.embedding_target == "feedback"
               else f"{it.candidate.text} {it.critique.text}" for it, _ in jobs]
    a = _mean_pool(model, tok, [r.text for _, r in jobs], cfg.batch_size, device)
    b = _mean_pool(model, tok, targets, cfg.batch_size, device)
    sims = (a * b).sum(-1).tolist()
    return {r.id: {"scores": {"embedding": round(s, 6)}} for (_, r), s in zip(jobs, sims)}


def random_scores(items, cfg: SelectConfig) -> dict[int, dict]:
    rng = random.Random(cfg.seed)
    return {r.id: {"scores": {"random": rng.random()}} for it in items for r in it.refinements}


def reward_scores(store, project, items, cfg: SelectConfig, rm=None) -> dict[int, dict]:
    """Sequence scores e(y) of the learned token-level reward model (training/reward_model.py),
    each critique's refinements scored as one list over its document."""
    from training.device import pick_device

    p = store.get_project(project)
    if rm is None:
        path = cfg.model
        if not path and p.active_reward_model is not None:
            path = store.get_model(p.active_reward_model).path
        if not path:
            raise TokenwiseError("reward selector needs a trained reward model: train one "
                                 "(tokenwise train reward ...) and pass its folder with --model, or make it "
                                 "the project's active reward model")
        from training.rewards.model import TokenRewardModel

        rm = TokenRewardModel.load(path, device=pick_device(cfg.device))
    from training.data.context import document_context
    from training.rewards.scoring import score_texts

    out: dict[int, dict] = {}
    for it in items:
        doc = document_context(p.kind, it.document.title, it.document.text)
        for r, (_, _, score) in zip(it.refinements, score_texts(rm, doc, [r.text for r in it.refinements])):
            out[r.id] = {"rm_score": float(score)}
    return out


def score_of(entry: dict, selector: str) -> float:
    """The number a selector ranks by, from what it stored."""
    if selector == "instructrm":
        return entry["ensemble_score"]
    if selector == "reward":
        return entry["rm_score"]
    return entry["scores"][selector]


def score_items(store, project, items, cfg: SelectConfig, *, lm=None, encoder=None, rm=None,
                progress: Progress | None = None) -> dict[int, dict]:
    """Scores of every refinement of `items` by `cfg.selector` (nothing stored)."""
    from training.device import pick_device
    from training.lm import load_lm

    p = store.get_project(project)
    if cfg.selector == "instructrm":
        lm = lm or load_lm(cfg.model or "smollm2", device=pick_device(cfg.device))
        return instructrm_scores(lm, items, load_templates(p), p.kind, cfg, progress)
    if cfg.selector == "embedding":
        return embedding_scores(items, cfg, encoder)
    if cfg.selector == "random":
        return random_scores(items, cfg)
    if cfg.selector == "reward":
        return reward_scores(store, p.id, items, cfg, rm)
    raise ValidationError(f"selector: {cfg.selector!r} is not one of {', '.join(SELECTORS)}")


def select(store, project, cfg: SelectConfig | None = None, *, critique_ids: Sequence[int] | None = None,
           lm=None, encoder=None, rm=None, progress: Progress | None = None) -> dict:
    """Score refinements, store every score, and mark the best `feedback` refinement per critique.

    Critiques a person already reviewed keep their choice unless cfg.reselect_reviewed.
    """
    cfg = cfg or SelectConfig()
    p = store.get_project(project)
    items = [it for it in critique_items(store, p.id, critique_ids) if cfg.reselect_reviewed or not it.reviewed]
    # Score the model's refinements only: people's edits are not candidates for selection.
    items = [dataclasses.replace(it, refinements=tuple(r for r in it.refinements if r.variant in MODEL_VARIANTS))
             for it in items]
    items = [it for it in items if it.refinements]
    if not items:
        raise ValidationError(f"project {p.name!r}: no unreviewed critique has refinements; run refine first")
    scores = score_items(store, p.id, items, cfg, lm=lm, encoder=encoder, rm=rm, progress=progress)
    store.save_refinement_scores(scores, selector=cfg.selector)
    selected = {}
    for it in items:
        pool = [r for r in it.refinements if r.variant == "feedback"] or list(it.refinements)
        best = max(pool, key=lambda r: (score_of(scores[r.id], cfg.selector), -r.id))
        store.mark_selected(it.critique.id, best.id)
        selected[it.critique.id] = best.id
    return {"critiques": len(items), "scored": len(scores), "selected": selected}
