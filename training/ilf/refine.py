"""ILF step 3: sample refinements of each critiqued output from a refinement LM (DESIGN.md, Algorithm 2).

    for each batch of critiques (x0 = the critiqued output, f = the critique):
        prompt  = a chat model: its chat template around `refinement_chat.feedback` (document, x0
                  and f in the user turn, "reply with the rewritten output only"); a base model:
                  `refinement.feedback`, ending with the "Improved output:" cue
        samples = N draws (RefineConfig: temperature, top_p, length_ratio x len(x0) new tokens
                  capped by max_new_tokens, stop strings)
        keep    = post-processed samples (preamble such as "Here is ...:" stripped, cut at a blank
                  line, unfinished sentence dropped) that are not empty, not x0 again and not text
                  about rewriting; the counts of each are returned and logged
        store the kept ones as refinements (variant "feedback"); the same without f (variant
        "no_feedback", baseline_n draws) is the baseline

`as_chat`, `encode_prompts` and `max_positions` are the language-model side that select.py
reuses. Progress is reported per critique (step i of n). Nothing here touches SQL: the store does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from training.errors import ValidationError
from training.ilf.config import RefineConfig
from training.ilf.templates import (
    DROP_REASONS,
    drop_reason,
    fill,
    item_fields,
    load_templates,
    postprocess,
    strip_preamble,
)
from training.progress import Progress, ensure

log = logging.getLogger(__name__)

MODEL_VARIANTS = ("feedback", "no_feedback")


def as_chat(lm, prompts: Sequence[str]) -> list[str]:
    """Each prompt as the user turn of the model's chat template, when it has one."""
    if not lm.has_chat_template():
        return list(prompts)
    return [lm.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                             add_generation_prompt=True) for p in prompts]


def max_positions(lm) -> int:
    """The model's context window in tokens (unbounded when its config does not say)."""
    c = lm.model.config
    for name in ("n_positions", "max_position_embeddings"):
        v = getattr(c, name, None)
        if v:
            return int(v)
    return 1 << 20


def encode_prompts(lm, prompts: Sequence[str], room: int = 0):
    """Tokenize a batch; a causal prompt too long for the window loses its start, not its cue."""
    import torch

    tok = lm.tokenizer
    limit = max(8, max_positions(lm) - room)
    has_template = lm.has_chat_template()
    tok.truncation_side = "left"
    enc = tok(list(prompts), return_tensors="pt", padding=True, truncation=True, max_length=limit,
              add_special_tokens=not has_template)
    enc = {k: v.to(lm.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
    if enc["input_ids"].shape[1] == 0:
        raise ValidationError("a prompt is empty after tokenization")
    if not lm.seq2seq:
        mask = enc["attention_mask"]
        enc["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
    return enc, torch


def token_budget(lm, output: str, cfg: RefineConfig) -> int:
    """New tokens a refinement of `output` may take: length_ratio x its length + 16, capped."""
    n = len(lm.tokenizer.encode(output, add_special_tokens=False))
    return max(1, min(cfg.max_new_tokens, math.ceil(cfg.length_ratio * n) + 16))


def generate(lm, prompts: Sequence[str], n: int, cfg: RefineConfig,
             budgets: Sequence[int] | None = None) -> list[list[str]]:
    """n decoded samples per prompt (chat-wrapped when the model has a chat template), at most
    `budgets[i]` new tokens for prompt i (default cfg.max_new_tokens), `cfg.batch_size` prompts per
    generate() call; generation stops at cfg.stop. Not post-processed."""
    out: list[list[str]] = []
    chat = as_chat(lm, prompts)
    budgets = list(budgets) if budgets is not None else [cfg.max_new_tokens] * len(chat)
    stop = [x for x in cfg.stop if x]
    for i in range(0, len(chat), cfg.batch_size):
        batch, room = chat[i:i + cfg.batch_size], budgets[i:i + cfg.batch_size]
        enc, torch = encode_prompts(lm, batch, room=0 if lm.seq2seq else max(room))
        enc.pop("position_ids", None)  # generate() derives them from the mask
        with torch.no_grad():
            ids = lm.model.generate(
                **enc, do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p,
                max_new_tokens=max(room), num_return_sequences=n, pad_token_id=lm.tokenizer.pad_token_id,
                **({"stop_strings": stop, "tokenizer": lm.tokenizer} if stop else {}))
        if not lm.seq2seq:
            ids = ids[:, enc["input_ids"].shape[1]:]
        texts = [lm.tokenizer.decode(row[:room[j // n]], skip_special_tokens=True) for j, row in enumerate(ids)]
        out.extend(texts[j * n:(j + 1) * n] for j in range(len(batch)))
    return out


def critique_items(store, project, critique_ids):
    """The project's current critiques (those of `critique_ids` when given); none is an error."""
    items = store.critique_items(project, critique_ids=critique_ids)
    if not items:
        name = store.get_project(project).name
        raise ValidationError(f"project {name!r} has no critiques yet; annotators write them on the "
                              "Annotate page (a critique of a candidate), then run refine again")
    return items


def refinement_prompt(lm, templates: dict, fields: dict, variant: str) -> str:
    """The prompt of one refinement: the chat template's user turn (refinement_chat) for a model
    that has one, else the plain template that ends with the "Improved output:" cue."""
    section = "refinement_chat" if lm.has_chat_template() else "refinement"
    return fill(templates[section][variant], fields, f"{section}.{variant}")


def refine(store, project, cfg: RefineConfig | None = None, *, critique_ids: Sequence[int] | None = None,
           lm=None, progress: Progress | None = None) -> dict:
    """Sample refinements for the project's current critiques and store the ones that are rewrites.

    Each sample is post-processed (preamble, stop strings, unfinished sentence) and dropped when it
    is empty, a copy of the critiqued output, text about rewriting, or the critique repeated
    (templates.drop_reason).
    Returns counts: critiques, refinements stored, samples drawn, preambles stripped, dropped by reason.
    """
    import torch

    from training.device import pick_device
    from training.lm import load_lm

    cfg = cfg or RefineConfig()
    p = store.get_project(project)
    templates = load_templates(p)
    items = critique_items(store, p.id, critique_ids)
    if cfg.skip_done:
        items = [it for it in items if not any(r.variant in MODEL_VARIANTS for r in it.refinements)]
    progress = ensure(progress)
    left = max(0, len(items) - cfg.limit) if cfg.limit else 0
    if left:
        items = items[:cfg.limit]
        progress.log(f"refine: the first {len(items)} of {len(items) + left} critiques to do (limit {cfg.limit}); "
                     f"{left} {'is' if left == 1 else 'are'} left for a later run")
    counts = {"critiques": len(items), "critiques_left": left, "refinements": 0, "samples": 0,
              "preambles_stripped": 0, "dropped": dict.fromkeys(DROP_REASONS, 0)}
    if not items:
        progress.log("every critique already has refinements (to add more: --no-skip-done, or turn off "
                     "the job's skip_done setting)")
        return counts
    progress.step(0, len(items))
    lm = lm or load_lm(cfg.model, device=pick_device(cfg.device))
    torch.manual_seed(cfg.seed)
    jobs = [("feedback", cfg.n)] + ([("no_feedback", cfg.baseline_n)] if cfg.baseline_n > 0 else [])
    for start in range(0, len(items), cfg.batch_size):
        chunk = items[start:start + cfg.batch_size]
        budgets = [token_budget(lm, it.candidate.text, cfg) for it in chunk]
        for variant, n in jobs:
            prompts = [refinement_prompt(lm, templates, item_fields(
                it, templates, p.kind, cfg.max_text_chars, baseline=variant != "feedback",
                context_fields=p.context_fields), variant) for it in chunk]
            for it, samples in zip(chunk, generate(lm, prompts, n, cfg, budgets)):
                kept = []
                for raw in samples:
                    counts["preambles_stripped"] += strip_preamble(raw.strip())[1]
                    text = postprocess(raw, cfg.stop)
                    reason = drop_reason(text, it.candidate.text, it.critique.text)
                    if reason:
                        counts["dropped"][reason] += 1
                    else:
                        kept.append(text)
                counts["samples"] += len(samples)
                if kept:
                    store.add_refinements(it.critique.id, kept, generator=lm.name, variant=variant)
                    counts["refinements"] += len(kept)
        done = start + len(chunk)
        progress.step(done, len(items), refinements=counts["refinements"], dropped=sum(counts["dropped"].values()))
        progress.log(f"refine: critique {done} of {len(items)}: {counts['refinements']} refinements kept "
                     f"of {counts['samples']} samples")
    d = counts["dropped"]
    progress.log(f"refine: {counts['refinements']} of {counts['samples']} samples kept; "
                 f"{counts['preambles_stripped']} preambles stripped; dropped {d['empty']} empty, "
                 f"{d['copy']} copies of the output, {d['meta']} about rewriting instead of a rewrite, "
                 f"{d['echo']} repeating the critique")
    return counts
