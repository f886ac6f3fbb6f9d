"""ILF step 4: score each refinement and mark the best one per critique (DESIGN.md, Algorithm 2).

    pmi:        how much the critique explains the refinement r, read by the refinement LM:
                    log p(r + end of turn | refinement prompt with the feedback)
                  - log p(r + end of turn | the same prompt without it)
                (the two prompts `refine` samples from); the default, the best measured
    instructrm: an instruction LM is asked, with several templates, whether the refinement
                incorporates the feedback (Scheurer et al. 2023). Per template:
                    log-odds = log p(yes) - log p(no) of the first answer token, read where the
                               model answers (after the chat template's assistant turn starts)
                    calibrated = log-odds - log-odds of the same question about the original
                               output (or "N/A"), so a model biased to one answer cannot win
                score = sigmoid(mean calibrated log-odds over templates); 0.5 = as the original
    reward:     the learned token-level reward model's sequence score (training/rewards)
    ensemble:   instructrm + reward, each scaled by its spread within critiques, averaged
    embedding:  MiniLM cosine similarity with output+feedback (or the feedback)
    random:     seeded, the control

Cost: per critique, each PMI prompt runs once and the N refinements run batched on its KV cache
(`continuation_logprobs`). InstructRM: the shared prefix of its questions (document, output,
feedback) runs once; its KV cache is repeated for the N refinements, which run in one batched
forward, and each template's question then runs on that cache (`answer_logits`).

`select` stores every score and marks the argmax of the `feedback` refinements; critiques a
person already reviewed keep their choice. Nothing here touches SQL: the store does.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
import time
from collections.abc import Sequence

from training.errors import TokenwiseError, ValidationError
from training.ilf.config import SELECTORS, SelectConfig
from training.ilf.refine import (
    MODEL_VARIANTS,
    as_chat,
    critique_items,
    encode_prompts,
    max_positions,
    refinement_prompt,
)
from training.ilf.templates import fill, item_fields, load_templates
from training.lm import kv_cache, with_cache
from training.progress import Progress, ensure

log = logging.getLogger(__name__)

SLOT = "\x00refinement\x00"  # where a refinement goes in a filled InstructRM prompt
CONTENT_FREE = "N/A"  # the content-free reference of calibration="content-free"


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

    return torch.sigmoid(yes_log_odds(logits, yes_ids, no_ids))


def next_token_logits(lm, prompts: Sequence[str], batch_size: int = 4):
    """Logits of the first token the model would write after each (already chat-wrapped) prompt: [len(prompts), V]."""
    import torch

    rows = []
    chat = list(prompts)
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


def instructrm_prompt(lm, rm: dict, fields: dict, cue: str = "") -> tuple[str, str, str]:
    """(prefix, joint, tail) of one InstructRM question about a critique item: the question about a
    refinement r is prefix + joint + r + tail. A chat model gets the question as its user turn and
    answers after the assistant turn starts; a base model gets the question followed by `cue`."""
    text = fill(rm["prompt"], {**fields, "refinement": SLOT}, f"instructrm {rm.get('name', '')}")
    if not lm.has_chat_template():
        text += cue
    head, _, tail = as_chat(lm, [text])[0].partition(SLOT)
    body = head.rstrip()  # the space before the refinement starts its first token (" The"), as in running text
    return body, head[len(body):], tail


def _right_padded(rows: list[list[int]], pad: int, device):
    import torch

    width = max(1, max(len(x) for x in rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for j, x in enumerate(rows):
        ids[j, :len(x)] = torch.tensor(x, dtype=torch.long)
        mask[j, :len(x)] = 1
    return ids, mask


def on_cached_prefix(lm, pre: list[int], rows: list[list[int]], batch_size: int, keep=None, use_cache=False):
    """Run the prefix ids once, then each batch of up to `batch_size` rows (token ids) right-padded
    on a copy of its KV cache, pads masked and positions continuing after the prefix. Yields
    (prefix output, ids, mask, batch output) per batch; `keep(mask)` names the positions whose
    logits are computed (all when None). Call under torch.no_grad()."""
    import torch

    tok, model, dev = lm.tokenizer, lm.model, lm.device
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    first = model(input_ids=torch.tensor([pre], device=dev), use_cache=True, logits_to_keep=1)
    for i in range(0, len(rows), batch_size):
        ids, mask = _right_padded(rows[i:i + batch_size], pad, dev)
        n, width = ids.shape
        cache = copy.deepcopy(kv_cache(first))
        cache.batch_repeat_interleave(n)
        ones = torch.ones((n, len(pre)), dtype=torch.long, device=dev)
        yield first, ids, mask, model(
            input_ids=ids, **with_cache(model, cache), use_cache=use_cache, logits_to_keep=0 if keep is None else keep(mask),
            attention_mask=torch.cat([ones, mask], 1),
            position_ids=len(pre) + torch.arange(width, device=dev).expand(n, width))


def answer_logits(lm, prefix: str, middles: Sequence[str], tails: Sequence[str], batch_size: int = 8):
    """Next-token logits after prefix + middle + tail for every (tail, middle): [len(tails), len(middles), V].

    For a causal LM the prefix (document, output, feedback) runs once; its KV cache is repeated for
    up to `batch_size` middles (the refinements), which run in one right-padded forward; each tail
    (the question of a template that shares this prefix) then runs on that cache, batched over the
    middles, with the pads masked out and positions continuing from each middle's own length. The
    logits are read where each row's answer starts. A seq2seq LM reads each whole prompt.
    """
    import torch

    if not middles:
        return torch.zeros((len(tails), 0, lm.model.get_output_embeddings().out_features))
    if lm.seq2seq:
        flat = next_token_logits(lm, [prefix + m + t for t in tails for m in middles], batch_size)
        return flat.view(len(tails), len(middles), -1)
    tok, model, dev = lm.tokenizer, lm.model, lm.device
    pre = tok(prefix, add_special_tokens=not lm.has_chat_template())["input_ids"]
    mids = [tok(m, add_special_tokens=False)["input_ids"] for m in middles]
    ends = [tok(t, add_special_tokens=False)["input_ids"] for t in tails]
    limit = max_positions(lm)
    room = max((len(x) for x in mids), default=0) + max((len(x) for x in ends), default=0)
    if room >= limit // 2:  # a refinement longer than half the window keeps its start
        keep = max(1, limit // 2 - max((len(x) for x in ends), default=0))
        mids = [x[:keep] for x in mids]
        room = limit // 2
    pre = pre[-(limit - room):]  # a prefix too long for the window loses its start
    if not pre:
        raise ValidationError("an InstructRM prompt is empty after tokenization")
    rows: list[list] = [[] for _ in tails]

    def answer_positions(mask):  # the LM head runs only where some row's answer could start
        return torch.unique((mask.sum(1) - 1).clamp(min=0))

    with torch.no_grad():
        for first, ids, mask, step in on_cached_prefix(lm, pre, mids, batch_size, answer_positions, use_cache=True):
            n = ids.shape[0]
            lengths = mask.sum(1)
            mid_end = (lengths - 1).clamp(min=0)
            after_mid = step.logits[torch.arange(n, device=dev), torch.searchsorted(answer_positions(mask), mid_end)]
            after_mid[lengths == 0] = first.logits[0, -1]
            ones = torch.ones((n, len(pre)), dtype=torch.long, device=dev)
            for t, end in enumerate(ends):
                if not end:  # nothing after the refinement: the answer starts right after it
                    rows[t].append(after_mid.float().cpu())
                    continue
                q = torch.tensor(end, dtype=torch.long, device=dev).expand(n, len(end))
                tail_cache = copy.deepcopy(kv_cache(step)) if t < len(ends) - 1 else kv_cache(step)
                o = model(input_ids=q, **with_cache(model, tail_cache), use_cache=False, logits_to_keep=1,
                          attention_mask=torch.cat([ones, mask, torch.ones_like(q)], 1),
                          position_ids=len(pre) + lengths[:, None] + torch.arange(len(end), device=dev))
                rows[t].append(o.logits[:, -1].float().cpu())
    return torch.stack([torch.cat(r) for r in rows])


def end_of_turn(lm) -> str:
    """What the model writes after its answer: the chat template's end of the assistant turn
    (e.g. "<|im_end|>"), else the eos token ("" when there is none)."""
    tok = lm.tokenizer
    if lm.has_chat_template():
        mark = "\x00answer\x00"
        text = tok.apply_chat_template([{"role": "user", "content": "q"}, {"role": "assistant", "content": mark}],
                                       tokenize=False)
        return text.partition(mark)[2].rstrip()
    return tok.eos_token or ""


def continuation_logprobs(lm, prefix: str, texts: Sequence[str], batch_size: int = 8) -> list[float]:
    """log p(text + end of turn | prefix), summed over its tokens, for each text.

    A causal LM runs the (chat-wrapped) prefix once and its KV cache is repeated for up to
    `batch_size` texts, which run in one right-padded forward; the first token of each text is
    predicted by the prefix's last position. A seq2seq LM reads the prefix and scores each text
    as its decoder labels. The end-of-turn token is part of the text: a rewrite must also stop."""
    import torch

    if not texts:
        return []
    tok, model, dev = lm.tokenizer, lm.model, lm.device
    end = end_of_turn(lm)
    conts = [tok(t + end, add_special_tokens=False)["input_ids"] or [tok.eos_token_id or 0] for t in texts]
    out: list[float] = []
    with torch.no_grad():
        if lm.seq2seq:
            enc, _ = encode_prompts(lm, [prefix])
            for c in conts:
                labels = torch.tensor([c[:max_positions(lm)]], device=dev)
                logits = model(**enc, labels=labels).logits[0].float()
                out.append(float(torch.log_softmax(logits, -1).gather(1, labels[0][:, None]).sum()))
            return out
        limit = max_positions(lm)
        conts = [c[:limit // 2] for c in conts]  # a text longer than half the window keeps its start
        pre = tok(prefix, add_special_tokens=not lm.has_chat_template())["input_ids"]
        pre = pre[-(limit - max(len(c) for c in conts)):]  # a prefix too long for the window loses its start
        if not pre:
            raise ValidationError("a refinement prompt is empty after tokenization")
        first_logp = None  # the prefix's next-token distribution: once, not per batch
        for first, ids, mask, step in on_cached_prefix(lm, pre, conts, batch_size):
            if first_logp is None:
                first_logp = torch.log_softmax(first.logits[0, -1].float(), -1)
            logp = torch.log_softmax(step.logits[:, :-1].float(), -1).gather(2, ids[:, 1:, None])[..., 0]
            total = (logp * mask[:, 1:]).sum(1) + first_logp[ids[:, 0]]
            out.extend(float(x) for x in total)
    return out


def pmi_scores(lm, items, templates: dict, kind: str, cfg: SelectConfig,
               progress: Progress | None = None, context_fields: Sequence[str] = ()) -> dict[int, dict]:
    """refinement id -> {"scores": {"pmi", "logp_feedback", "logp_no_feedback"}}.

    pmi = log p(r | refinement prompt with the feedback) - log p(r | the same prompt without it),
    both read by the refinement LM (the prompts `refine` samples the feedback and no-feedback
    variants from). It is how much the critique explains the rewrite: a refinement that makes the
    change the critique asks for gains likelihood from it; one that ignores it (or copies the
    output) gains little. Whatever the model likes in any rewrite (fluency, length, copying)
    appears in both terms and cancels."""
    progress = ensure(progress)
    out: dict[int, dict] = {}
    t0, n = time.perf_counter(), 0
    for i, it in enumerate(items):
        texts = [r.text for r in it.refinements]
        with_fb = refinement_prompt(lm, templates, item_fields(it, templates, kind, cfg.max_text_chars,
                                                               context_fields=context_fields), "feedback")
        without = refinement_prompt(lm, templates, item_fields(it, templates, kind, cfg.max_text_chars, baseline=True,
                                                               context_fields=context_fields), "no_feedback")
        a = continuation_logprobs(lm, as_chat(lm, [with_fb])[0], texts, cfg.batch_size)
        b = continuation_logprobs(lm, as_chat(lm, [without])[0], texts, cfg.batch_size)
        for r, x, y in zip(it.refinements, a, b):
            out[r.id] = {"scores": {"pmi": round(x - y, 6), "logp_feedback": round(x, 4),
                                    "logp_no_feedback": round(y, 4)}}
        n += len(texts)
        progress.step(i + 1, len(items), refinements=n)
    if n:
        secs = time.perf_counter() - t0
        progress.log(f"PMI: {len(items)} critiques, {n} refinements in {secs:.1f} s ({secs / n:.3f} s each)")
    return out


def yes_log_odds(logits, yes_ids: Sequence[int], no_ids: Sequence[int]):
    """log p(yes) - log p(no) from next-token logits [B, V]; each side sums its token ids."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    return torch.logsumexp(logp[:, list(yes_ids)], dim=-1) - torch.logsumexp(logp[:, list(no_ids)], dim=-1)


def calibrate(log_odds, reference):
    """Calibrated log-odds: each refinement's log-odds of yes minus the reference's (the same
    question asked of the original output, or of a content-free input). A bias towards one answer
    word adds the same amount to both, so it cancels (Zhao et al. 2021, contextual calibration)."""
    return log_odds - reference


def instructrm_scores(lm, items, templates: dict, kind: str, cfg: SelectConfig,
                      progress: Progress | None = None, context_fields: Sequence[str] = ()) -> dict[int, dict]:
    """refinement id -> {"scores": {template: p, "instructrm_raw": mean raw p}, "ensemble_score": s,
    "log_odds": mean calibrated log-odds} for the items' refinements.

    Per template, p = p(yes) / (p(yes) + p(no)) of the answer word at the position the model
    answers, calibrated by cfg.calibration: p = sigmoid(log-odds - log-odds of the reference), so
    0.5 means "as much yes as for the original output". ensemble_score = sigmoid(mean calibrated
    log-odds) (with calibration 'none': the mean raw p). Per critique, templates whose text up to
    the refinement is the same share one prefix forward (answer_logits); the critique's refinements
    (and the reference) run batched on it, then each template's question.
    """
    import math

    import torch

    rms = templates["instructrm"]
    answers = [answer_token_ids(lm.tokenizer, rm["yes"], rm["no"]) for rm in rms]
    names = [rm.get("name") or f"t{i}" for i, rm in enumerate(rms)]
    cue = templates.get("instructrm_cue", "")
    progress = ensure(progress)
    out: dict[int, dict] = {}
    t0, c0, pairs = time.perf_counter(), time.process_time(), 0
    for i, it in enumerate(items):
        fields = item_fields(it, templates, kind, cfg.max_text_chars, context_fields=context_fields)
        texts = [r.text for r in it.refinements]
        ref = {"original": [it.candidate.text], "content-free": [CONTENT_FREE], "none": []}[cfg.calibration]
        unique = list(dict.fromkeys(texts + ref))  # a refinement equal to the reference is scored once
        at = [unique.index(t) for t in texts]
        lo = torch.zeros((len(rms), len(unique)))
        groups: dict[tuple[str, str], list[tuple[int, str]]] = {}  # templates that share a prefix run together
        for k, rm in enumerate(rms):
            prefix, joint, tail = instructrm_prompt(lm, rm, fields, cue)
            if SLOT in tail:  # a template that repeats {refinement}: its own group, the whole rest per text
                lo[k] = yes_log_odds(answer_logits(lm, prefix, [joint + u + tail.replace(SLOT, u) for u in unique],
                                                   [""], cfg.batch_size)[0], *answers[k])
                continue
            groups.setdefault((prefix, joint), []).append((k, tail))
        for (prefix, joint), members in groups.items():
            logits = answer_logits(lm, prefix, [joint + u for u in unique], [t for _, t in members], cfg.batch_size)
            for (k, _), row in zip(members, logits):
                lo[k] = yes_log_odds(row, *answers[k])
        raw = [torch.sigmoid(lo[k, at]) for k in range(len(rms))]
        cal = [calibrate(lo[k, at], lo[k, unique.index(ref[0])]) if ref else lo[k, at] for k in range(len(rms))]
        raw_t, cal_t = torch.stack(raw, 1), torch.stack(cal, 1)  # [refinements, templates]
        for j, r in enumerate(it.refinements):
            per = {n: round(float(torch.sigmoid(cal_t[j, k])), 6) for k, n in enumerate(names)}
            mean_raw = float(raw_t[j].mean())
            mean_lo = float(cal_t[j].mean())
            out[r.id] = {"scores": {**per, "instructrm_raw": round(mean_raw, 6)}, "log_odds": mean_lo,
                         "ensemble_score": mean_raw if not ref else 1 / (1 + math.exp(-mean_lo))}
        pairs += len(texts) * len(rms)
        progress.step(i + 1, len(items), pairs=pairs)
    if pairs:
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        progress.log(f"InstructRM: {len(items)} critiques, {pairs} (refinement, template) pairs in {secs:.1f} s "
                     f"({secs / pairs:.3f} s each, {cpu / pairs:.3f} CPU s each; calibration {cfg.calibration})")
    return out


def ensemble_scores(irm: dict[int, dict], rm: dict[int, dict], items) -> dict[int, dict]:
    """InstructRM (mean calibrated log-odds) and the reward model's score, each divided by its
    spread within critiques (pooled std of the scores around their critique's mean), averaged.

    Within a critique only differences matter, so this puts both on the same scale without letting
    documents with high or low reward overall set it."""
    def spread(key) -> float:
        dev = []
        for it in items:
            xs = [key(r.id) for r in it.refinements]
            m = sum(xs) / len(xs)
            dev += [(x - m) ** 2 for x in xs]
        sd = (sum(dev) / len(dev)) ** 0.5 if dev else 0.0
        return sd if sd > 1e-9 else 1.0

    sa = spread(lambda i: irm[i]["log_odds"])
    sb = spread(lambda i: rm[i]["rm_score"])
    out = {}
    for it in items:
        for r in it.refinements:
            e = (irm[r.id]["log_odds"] / sa + rm[r.id]["rm_score"] / sb) / 2
            out[r.id] = {**irm[r.id], **rm[r.id], "scores": {**irm[r.id]["scores"], "ensemble": round(e, 6)}}
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
        path = cfg.reward_model or (cfg.model if cfg.selector == "reward" else "")
        if not path and p.active_reward_model is not None:
            path = store.get_model(p.active_reward_model).path
        if not path:
            raise TokenwiseError(f"{cfg.selector} selector needs a trained reward model: train one "
                                 "(tokenwise train reward ...) and pass its folder with --reward-model, or make "
                                 "it the project's active reward model")
        from training.rewards.model import TokenRewardModel

        rm = TokenRewardModel.load(path, device=pick_device(cfg.device))
    from training.data.context import project_context
    from training.rewards.scoring import score_texts

    out: dict[int, dict] = {}
    for it in items:
        doc = project_context(p, it.document)
        for r, (_, _, score) in zip(it.refinements, score_texts(rm, doc, [r.text for r in it.refinements])):
            out[r.id] = {"rm_score": float(score)}
    return out


def score_of(entry: dict, selector: str) -> float:
    """The number a selector ranks by, from what it stored."""
    if selector == "instructrm":
        return entry["ensemble_score"]
    if selector == "reward":
        return entry["rm_score"]
    if selector == "ensemble":
        return entry["scores"]["ensemble"]
    return entry["scores"][selector]


def score_items(store, project, items, cfg: SelectConfig, *, lm=None, encoder=None, rm=None,
                progress: Progress | None = None) -> dict[int, dict]:
    """Scores of every refinement of `items` by `cfg.selector` (nothing stored)."""
    from training.device import pick_device
    from training.lm import load_lm

    p = store.get_project(project)
    if cfg.selector == "pmi":
        lm = lm or load_lm(cfg.model or "smollm2", device=pick_device(cfg.device))
        return pmi_scores(lm, items, load_templates(p), p.kind, cfg, progress, p.context_fields)
    if cfg.selector in ("instructrm", "ensemble"):
        rewards = reward_scores(store, p.id, items, cfg, rm) if cfg.selector == "ensemble" else None
        lm = lm or load_lm(cfg.model or "smollm2", device=pick_device(cfg.device))
        irm = instructrm_scores(lm, items, load_templates(p), p.kind, cfg, progress, p.context_fields)
        return irm if rewards is None else ensemble_scores(irm, rewards, items)
    if cfg.selector == "embedding":
        return embedding_scores(items, cfg, encoder)
    if cfg.selector == "random":
        return random_scores(items, cfg)
    if cfg.selector == "reward":
        return reward_scores(store, p.id, items, cfg, rm)
    raise ValidationError(f"selector: {cfg.selector!r} is not one of {', '.join(SELECTORS)}")  # cfg changed after init


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
        pool = [r for r in it.refinements if r.variant == "feedback"]  # the baselines are never the pick
        if pool:
            best = max(pool, key=lambda r: (score_of(scores[r.id], cfg.selector), -r.id))
            store.mark_selected(it.critique.id, best.id)
            selected[it.critique.id] = best.id
    left = len(items) - len(selected)
    if left:
        log.info("select: %d critique(s) have only baseline refinements (sampled without the critique): none picked",
                 left)
    return {"critiques": len(items), "scored": len(scores), "selected": selected, "baseline_only": left}
