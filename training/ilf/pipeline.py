"""ILF from critiques (DESIGN.md, Algorithm 2; Scheurer et al. 2023).

    1. x0: an output of a document (a candidate), 2. f: an annotator's critique of it;
    3. refine:  N samples from a refinement LM prompted with (instruction, title, text, x0, f,
                "Improved output:"), plus no-feedback samples as the baseline;
    4. select:  score each refinement and mark the best one per critique: InstructRM asks an
                instruction LM, with several templates, whether the refinement incorporates the
                feedback: score = p(yes) / (p(yes) + p(no)) from the next-token logits, mean over
                templates. Alternatives: the token-level reward model, embedding similarity, random;
    5. review:  a person accepts the selected refinement, picks another, or edits one (store);
    6. dataset: context -> refinement (sft), or context + x0 -> feedback + refinement (feedback).

Templates live in data/ilf_templates.json, or the project's `templates` column (same shape; its
top-level keys replace the file's). Nothing here touches SQL: the store does.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import random
import re
import string
from collections.abc import Sequence
from pathlib import Path

from training.errors import TokenwiseError, ValidationError
from training.ilf.config import SELECTORS, RefineConfig, SelectConfig
from training.progress import Progress, ensure

log = logging.getLogger(__name__)

TEMPLATES_FILE = Path(__file__).resolve().parents[2] / "data" / "ilf_templates.json"
FIELDS = ("instruction", "title", "text", "output", "feedback", "refinement")
MODEL_VARIANTS = ("feedback", "no_feedback")

# template slot -> (fields it must use, fields it may use)
_RULES = {
    "refinement.feedback": ({"output", "feedback"}, {"instruction", "title", "text", "output", "feedback"}),
    "refinement.no_feedback": ({"output"}, {"instruction", "title", "text", "output"}),
    "instructrm": ({"feedback", "refinement"}, set(FIELDS)),
    "dataset.sft_prompt": (set(), {"instruction", "title", "text"}),
    "dataset.sft_completion": ({"refinement"}, {"refinement"}),
    "dataset.feedback_prompt": ({"output"}, {"instruction", "title", "text", "output"}),
    "dataset.feedback_completion": ({"feedback", "refinement"}, {"feedback", "refinement"}),
}


# -- templates ------------------------------------------------------------------------------
def template_fields(template: str) -> set[str]:
    """The {fields} a template uses."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as e:
        raise ValidationError(f"template {template[:40]!r}...: {e} (write literal braces as {{{{ and }}}})") from None


def check_template(template: str, where: str, rule: str | None = None) -> None:
    """Raise ValidationError naming the field when a template lacks a needed one or uses an unknown one."""
    needed, allowed = _RULES[rule or where]
    used = template_fields(template)
    for f in sorted(needed - used):
        raise ValidationError(f"template {where}: the field {{{f}}} is missing; this template needs "
                              + ", ".join("{" + x + "}" for x in sorted(needed)))
    for f in sorted(used - allowed):
        raise ValidationError(f"template {where}: unknown field {{{f}}}; it may use "
                              + ", ".join("{" + x + "}" for x in sorted(allowed)))


def validate_templates(t: dict) -> dict:
    for key in ("instructions", "refinement", "instructrm", "dataset"):
        if key not in t:
            raise ValidationError(f"templates: the section {key!r} is missing")
    for name in ("feedback", "no_feedback"):
        if name not in t["refinement"]:
            raise ValidationError(f"templates: refinement.{name} is missing")
        check_template(t["refinement"][name], f"refinement.{name}")
    if not t["instructrm"]:
        raise ValidationError("templates: instructrm needs at least one template")
    for i, rm in enumerate(t["instructrm"]):
        name = rm.get("name") or f"#{i}"
        for key in ("prompt", "yes", "no"):
            if not str(rm.get(key) or "").strip():
                raise ValidationError(f"templates: instructrm {name}: {key!r} is missing")
        if rm["yes"].strip() == rm["no"].strip():
            raise ValidationError(f"templates: instructrm {name}: the yes and no words are the same")
        check_template(rm["prompt"], f"instructrm {name}", "instructrm")
    for key in ("sft_prompt", "sft_completion", "feedback_prompt", "feedback_completion"):
        if key not in t["dataset"]:
            raise ValidationError(f"templates: dataset.{key} is missing")
        check_template(t["dataset"][key], f"dataset.{key}")
    return t


def load_templates(project=None) -> dict:
    """The default templates, with the project's own (when set) replacing whole top-level sections."""
    t = json.loads(TEMPLATES_FILE.read_text())
    own = getattr(project, "templates", None)
    if own:
        t = {**t, **copy.deepcopy(own)}
    return validate_templates(t)


def fill(template: str, values: dict, where: str = "template") -> str:
    try:
        return template.format_map(values)
    except KeyError as e:
        raise ValidationError(f"{where}: no value for the field {{{e.args[0]}}}") from None


def item_fields(item, templates: dict, kind: str, max_text_chars: int = 3000, *, baseline: bool = False) -> dict:
    """The values of a critique item's template fields (not `refinement`)."""
    text = item.document.text
    if len(text) > max_text_chars:
        text = text[:max_text_chars].rsplit(" ", 1)[0] + " ..."
    feedback = item.critique.text
    k = item.critique
    if k.span_start is not None and k.span_end is not None:
        feedback = f'About "{item.candidate.text[k.span_start:k.span_end]}": {feedback}'
    instr = templates["baseline_instructions" if baseline and "baseline_instructions" in templates
                      else "instructions"]
    return {
        "instruction": instr.get(kind) or next(iter(instr.values())),
        "title": item.document.title or "(none)",
        "text": text,
        "output": item.candidate.text,
        "feedback": feedback,
    }


# -- post-processing --------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")


def postprocess(text: str) -> str:
    """Cut a sample at its first blank line and drop an unfinished last sentence.

    A sample with no finished sentence at all is kept whole (better than nothing).
    """
    text = text.strip()
    text = re.split(r"\n\s*\n", text, maxsplit=1)[0]
    text = " ".join(text.split())
    ends = list(_SENTENCE_END.finditer(text))
    if ends and ends[-1].end() < len(text):
        text = text[: ends[-1].end()]
    return text.strip()


# -- the language model side ------------------------------------------------------------------
def _as_chat(lm, prompts: Sequence[str]) -> list[str]:
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


def _encode(lm, prompts: Sequence[str], room: int = 0):
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
    chat = _as_chat(lm, prompts)
    for i in range(0, len(chat), cfg.batch_size):
        batch = chat[i:i + cfg.batch_size]
        enc, torch = _encode(lm, batch, room=0 if lm.seq2seq else cfg.max_new_tokens)
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
    chat = _as_chat(lm, prompts)
    for i in range(0, len(chat), batch_size):
        enc, _ = _encode(lm, chat[i:i + batch_size], room=1)
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


# -- refine ---------------------------------------------------------------------------------
def _items(store, project, critique_ids):
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
    if cfg.n < 1:
        raise ValidationError(f"n: must be at least 1, got {cfg.n}")
    p = store.get_project(project)
    templates = load_templates(p)
    items = _items(store, p.id, critique_ids)
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


# -- select ---------------------------------------------------------------------------------
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
    if cfg.selector not in SELECTORS:
        raise ValidationError(f"selector: {cfg.selector!r} is not one of {', '.join(SELECTORS)}")
    p = store.get_project(project)
    items = [it for it in _items(store, p.id, critique_ids) if cfg.reselect_reviewed or not it.reviewed]
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


# -- datasets -------------------------------------------------------------------------------
DATASET_VARIANTS = ("sft", "feedback")


def chosen_refinement(item, include: str = "accepted"):
    """The refinement a dataset uses for a critique: the accepted one; with include='selected'
    the selected one of a critique nobody has reviewed yet. None when there is none."""
    acc = item.accepted
    if acc is not None:
        return acc
    if include == "selected" and not item.reviewed:
        return item.selected
    return None


def build_dataset(store, project, variant: str = "sft", include: str = "accepted") -> list[dict]:
    """ILF finetuning rows {prompt, completion, critique_id, refinement_id, document_id}.

    sft: context -> refinement; feedback: context + output -> feedback + refinement.
    """
    if variant not in DATASET_VARIANTS:
        raise ValidationError(f"variant: {variant!r} is not one of {', '.join(DATASET_VARIANTS)}")
    if include not in ("accepted", "selected"):
        raise ValidationError(f"include: {include!r} is not one of accepted, selected")
    p = store.get_project(project)
    t = load_templates(p)
    ds = t["dataset"]
    rows = []
    for it in store.critique_items(p.id):
        r = chosen_refinement(it, include)
        if r is None:
            continue
        f = {**item_fields(it, t, p.kind, max_text_chars=10**9), "refinement": r.text}
        rows.append({
            "prompt": fill(ds[f"{variant}_prompt"], f, f"dataset.{variant}_prompt"),
            "completion": fill(ds[f"{variant}_completion"], f, f"dataset.{variant}_completion"),
            "critique_id": it.critique.id, "refinement_id": r.id, "document_id": it.document.id,
        })
    if not rows:
        what = "accepted" if include == "accepted" else "accepted or selected"
        raise ValidationError(f"project {p.name!r} has no {what} refinements yet; refine and select, then "
                              "review them on the Review page (or build with include='selected')")
    return rows



# -- review (what the Review page shows) ------------------------------------------------------
def review_queue(store, project, user, *, everyone: bool = False, unreviewed_only: bool = True) -> list:
    """Critiques with model refinements that `user` may review: their own; every annotator's for
    an admin who asks for `everyone`. Unreviewed ones first, then by id."""
    items = store.critique_items(project, annotator=None if (everyone and user.is_admin) else user)
    items = [it for it in items if it.refinements and not (unreviewed_only and it.reviewed)]
    return sorted(items, key=lambda it: (it.reviewed, it.critique.id))


def refinement_rows(item) -> list[dict]:
    """One display row per refinement: its text, variant, scores; the selected/accepted marks."""
    rows = []
    for i, r in enumerate(item.refinements, 1):
        row = {"#": i, "text": r.text, "variant": r.variant, "selected": r.selected,
               "accepted": {None: "", True: "yes", False: "no"}[r.accepted],
               "InstructRM": None if r.ensemble_score is None else round(r.ensemble_score, 3),
               "reward": None if r.rm_score is None else round(r.rm_score, 3)}
        row.update({k: round(v, 3) for k, v in r.scores.items() if isinstance(v, (int, float))})
        rows.append(row)
    return rows
