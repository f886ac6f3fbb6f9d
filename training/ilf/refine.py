"""ILF step 3: sample refinements of each critiqued output from a refinement LM (DESIGN.md, Algorithm 2).

    for each batch of critiques (x0 = the critiqued output, f = the critique):
        prompt  = templates["refinement"]["feedback"] filled with (instruction, title, text, x0, f)
        samples = N draws of the LM (RefineConfig: temperature, top_p, max_new_tokens)
        store the post-processed samples as refinements (variant "feedback"); the same without f
        (variant "no_feedback", baseline_n draws) is the baseline

`generate` and `encode_prompts` are the language-model side that select.py reuses. Nothing here
touches SQL: the store does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from training.errors import ValidationError
from training.ilf.config import RefineConfig
from training.ilf.templates import fill, item_fields, load_templates, postprocess
from training.progress import Progress, ensure

log = logging.getLogger(__name__)

MODEL_VARIANTS = ("feedback", "no_feedback")


def as_chat(lm, prompts: Sequence[str]) -> list[str]:
    """Each prompt as the user turn of the model's chat template, when it has one."""
    if not lm.has_chat_template():
        return list(prompts)
    return [lm.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                             add_generation_prompt=True) for p in prompts]


def _max_positions(lm) -> int:
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
    limit = max(8, _max_positions(lm) - room)
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


def generate(lm, prompts: Sequence[str], n: int, cfg: RefineConfig) -> list[list[str]]:
    """n post-processed samples per prompt, `cfg.batch_size` prompts per generate() call."""
    out: list[list[str]] = []
    chat = as_chat(lm, prompts)
    for i in range(0, len(chat), cfg.batch_size):
        batch = chat[i:i + cfg.batch_size]
        enc, torch = encode_prompts(lm, batch, room=0 if lm.seq2seq else cfg.max_new_tokens)
        enc.pop("position_ids", None)  # generate() derives them from the mask
        with torch.no_grad():
            ids = lm.model.generate(
                **enc, do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p,
                max_new_tokens=cfg.max_new_tokens, num_return_sequences=n,
                pad_token_id=lm.tokenizer.pad_token_id)
        if not lm.seq2seq:
            ids = ids[:, enc["input_ids"].shape[1]:]
        texts = [postprocess(t) for t in lm.tokenizer.batch_decode(ids, skip_special_tokens=True)]
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


def refine(store, project, cfg: RefineConfig | None = None, *, critique_ids: Sequence[int] | None = None,
           lm=None, progress: Progress | None = None) -> dict:
    """Sample refinements for the project's current critiques and store them. Returns counts."""
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
    if not items:
        progress.log("every critique already has refinements (use skip_done=False to add more)")
        return {"critiques": 0, "refinements": 0}
    lm = lm or load_lm(cfg.model, device=pick_device(cfg.device))
    torch.manual_seed(cfg.seed)
    jobs = [("feedback", cfg.n)] + ([("no_feedback", cfg.baseline_n)] if cfg.baseline_n > 0 else [])
    added = 0
    total = len(items)
    for start in range(0, len(items), cfg.batch_size):
        chunk = items[start:start + cfg.batch_size]
        for variant, n in jobs:
            prompts = [fill(templates["refinement"][variant],
                            item_fields(it, templates, p.kind, cfg.max_text_chars, baseline=variant != "feedback"),
                            f"refinement.{variant}") for it in chunk]
            samples = generate(lm, prompts, n, cfg)
            for it, texts in zip(chunk, samples):
                texts = [t for t in texts if t] or ["(empty)"]
                store.add_refinements(it.critique.id, texts, generator=lm.name, variant=variant)
                added += len(texts)
        progress.step(min(start + len(chunk), total), total, refinements=added)
    return {"critiques": total, "refinements": added}

