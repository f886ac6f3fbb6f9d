"""Closing the loop: run a model on a project's documents and add its outputs as new candidates.

    from training.ilf.generate import GenerateConfig, generate_candidates
    generate_candidates(store, "demo", GenerateConfig(model="path/to/policy", num_candidates=2))

The model is the project's active policy (from the registry) or any folder/name that
`from_pretrained` loads. Each output is stored with `store.add_candidates`, its source set to
the model's name and its generation settings recorded in `gen_params`, so annotators rank the
new outputs next to the old ones and the next reward model learns from them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

from training.data.context import shown_fields, with_fields
from training.errors import ValidationError
from training.forms import check_prompt_template, check_values
from training.progress import ensure

log = logging.getLogger(__name__)

# The project's instructions are written for annotators, so the defaults leave them out
# (a custom template may use {instructions}). {text} is the document's text followed by the fields
# the project shows annotators (passages, ...), as "<field>:" blocks.
DEFAULT_PROMPTS = {
    "summarize": "Summarize the following text in one or two sentences.\n\nTitle: {title}\n\n{text}\n\nTL;DR:",
    "prompt": "Write an instruction (a prompt) that makes a language model solve this task.\n\n"
              "Task: {title}\n\n{text}\n\nPrompt:",
    "qa": "Answer the question below. If information follows it (such as passages), base the answer on that "
          "information.\n\nQuestion: {text}\n\nAnswer:",
}


@dataclass
class GenerateConfig:
    """Sampling settings for new candidates (recorded with every candidate it adds)."""

    model: str = field(default="", metadata={
        "help": "model folder or name (e.g. smollm2); empty = the project's active policy model"})
    num_candidates: int = field(default=2, metadata={
        "help": "new candidates per document", "min": 1, "max": 16})
    limit: int = field(default=0, metadata={"help": "at most this many documents (0 = all)", "min": 0})
    only_open: bool = field(default=True, metadata={
        "help": "only documents that have not reached the project's overlap yet (they are still "
                "in annotators' queues, so the new candidates get ranked)"})
    max_new_tokens: int = field(default=48, metadata={"help": "tokens to generate per candidate", "min": 1, "max": 2048})
    do_sample: bool = field(default=True, metadata={"help": "sample (true) or greedy/beam decode (false)"})
    temperature: float = field(default=0.9, metadata={"help": "sampling temperature", "min": 0.01, "max": 5.0})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass", "min": 0.01, "max": 1.0})
    seed: int = field(default=0, metadata={"help": "random seed", "min": 0})
    batch_size: int = field(default=4, metadata={"help": "documents per generate() call", "min": 1, "max": 256})
    max_input_tokens: int = field(default=384, metadata={
        "help": "the document is cut to this many tokens (its start is kept)", "min": 16, "max": 32768})
    prompt: str = field(default="", metadata={
        "help": "prompt template with {title}, {text}, {instructions}; empty = a default for the project's kind"})
    device: str = field(default="auto", metadata={"help": "auto (GPU when there is one), cpu or cuda"})

    def __post_init__(self):
        check_values(self)
        if not self.do_sample and self.num_candidates > 1:
            # greedy decoding gives the same output K times: refuse rather than store duplicates
            raise ValidationError("do_sample: must be true when num_candidates > 1 (greedy decoding repeats itself)")
        check_prompt_template(self.prompt)


def resolve_model(store, project, model: str) -> tuple[str, str, int | None]:
    """(path to load, source name for the candidates, registry id or None)."""
    if model:
        return model, model, None
    if project.active_policy_model is None:
        raise ValidationError(
            f"model: project {project.name!r} has no active policy model; pass a model path "
            "(e.g. model=smollm2) or mark a policy active on the Models page")
    rec = store.get_model(project.active_policy_model)
    return rec.path, rec.name or f"model-{rec.id}", rec.id


def _truncate(tok, text: str, max_tokens: int) -> str:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tok.decode(ids[:max_tokens], skip_special_tokens=True)


def build_prompt(tokenizer, seq2seq: bool, template: str, project, doc, max_input_tokens: int,
                 max_prompt_tokens: int | None = None) -> str:
    """The prompt a model answers for a document (generation, evaluation rounds, policy training):
    the template filled with the (cut) document; a chat model gets it as its user turn. {text} is
    the document's text with the fields the project shows annotators after it, cut together to
    `max_input_tokens`. With `max_prompt_tokens` (what the model can read, less what it will write)
    they are cut further until the whole prompt fits."""
    instructions = (project.instructions.strip() + "\n") if project.instructions else ""
    full = with_fields(doc.text, shown_fields(project, doc))
    budget = max_input_tokens
    for _ in range(4):  # token counts of a text and of the prompt around it add up only nearly
        text = _truncate(tokenizer, full, budget)
        prompt = template.format(title=doc.title or "", text=text, instructions=instructions)
        if not seq2seq and getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        if max_prompt_tokens is None:
            return prompt
        excess = len(tokenizer(prompt, add_special_tokens=seq2seq)["input_ids"]) - max_prompt_tokens
        if excess <= 0:
            return prompt
        budget = min(budget, len(tokenizer(text, add_special_tokens=False)["input_ids"])) - excess
        if budget < 1:
            break
    raise ValidationError(f"the prompt for document {doc.id} does not fit in the {max_prompt_tokens} tokens the "
                          "model can read before it writes (lower max_new_tokens, or shorten the prompt template)")


def prompt_room(lm, max_new_tokens: int) -> int | None:
    """How many prompt tokens the model can read when it writes `max_new_tokens` more (its position
    table: a causal model holds both in it); None when it has no fixed limit (relative positions)."""
    cfg = lm.model.config
    limit = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return None
    return limit if lm.seq2seq else limit - max_new_tokens


def generate_outputs(lm, project, docs, config: GenerateConfig, on_batch=None) -> list[list[str]]:
    """`config.num_candidates` outputs (stripped; possibly empty) per document, batch by batch.

    `on_batch(batch_docs, batch_outputs, done, total)` is called after each batch (to store or
    report as it goes)."""
    import torch

    from training.device import autocast

    device = lm.model.device
    template = config.prompt or DEFAULT_PROMPTS.get(project.kind, DEFAULT_PROMPTS["summarize"])
    gen_kwargs = {"max_new_tokens": config.max_new_tokens, "do_sample": config.do_sample,
                  "num_return_sequences": config.num_candidates, "pad_token_id": lm.tokenizer.pad_token_id}
    if config.do_sample:
        gen_kwargs.update(temperature=config.temperature, top_p=config.top_p)
    room = prompt_room(lm, config.max_new_tokens)  # a small model's position table holds prompt and answer
    if room is not None and room < 1:
        raise ValidationError(f"max_new_tokens: {config.max_new_tokens} leaves no room for the prompt in the "
                              f"{room + config.max_new_tokens} positions the model has")
    outputs: list[list[str]] = []
    total = (len(docs) + config.batch_size - 1) // config.batch_size
    for b in range(total):
        batch = docs[b * config.batch_size:(b + 1) * config.batch_size]
        prompts = [build_prompt(lm.tokenizer, lm.seq2seq, template, project, d, config.max_input_tokens, room)
                   for d in batch]
        enc = lm.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=lm.seq2seq)
        enc = {k: v.to(device) for k, v in enc.items()}
        with torch.no_grad(), autocast(device):
            out = lm.model.generate(**enc, **gen_kwargs)
        if not lm.seq2seq:  # causal: drop the (left-padded) prompt
            out = out[:, enc["input_ids"].shape[1]:]
        texts = [t.strip() for t in lm.tokenizer.batch_decode(out, skip_special_tokens=True)]
        mine = [texts[i * config.num_candidates:(i + 1) * config.num_candidates] for i in range(len(batch))]
        outputs += mine
        if on_batch is not None:
            on_batch(batch, mine, b + 1, total)
    return outputs


def generate_candidates(store, project: str | int, config: GenerateConfig, progress=None) -> dict:
    """Add `config.num_candidates` generated candidates to each chosen document; return a summary."""
    import torch

    from training.device import pick_device
    from training.lm import load_lm

    progress = ensure(progress)
    p = store.get_project(project)
    path, source, model_id = resolve_model(store, p, config.model)
    docs = store.documents(p.id, with_candidates=False)
    if config.only_open:
        docs = [d for d in docs if d.n_rankings < p.overlap]
    if config.limit:
        docs = docs[: config.limit]
    if not docs:
        raise ValidationError(
            f"project {p.name!r}: no documents to generate for"
            + (" (every document reached its overlap; set only_open=false)" if config.only_open else ""))
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    lm = load_lm(path, device=device)
    params = {**asdict(config), "model_path": str(path), "model_id": model_id}
    progress.log(f"generating {config.num_candidates} candidate(s) for {len(docs)} document(s) with {source}")
    added, empty, t0 = 0, 0, time.monotonic()

    def store_batch(batch, outputs, done, total):
        nonlocal added, empty
        for d, mine in zip(batch, outputs):
            keep = [t for t in mine if t]
            empty += len(mine) - len(keep)
            if keep:
                store.add_candidates(d.id, keep, source=source, gen_params=params)
                added += len(keep)
        progress.step(done, total, candidates=float(added))

    generate_outputs(lm, p, docs, config, on_batch=store_batch)
    secs = time.monotonic() - t0
    if empty:
        progress.log(f"{empty} empty output(s) were not stored")
    progress.log(f"added {added} candidate(s) to {len(docs)} document(s) in {secs:.1f}s")
    return {"documents": len(docs), "candidates": added, "empty": empty, "source": source,
            "model_path": str(path), "model_id": model_id, "seconds": round(secs, 2)}
