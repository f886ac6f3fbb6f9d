"""Settings of supervised finetuning on an ILF dataset (DESIGN.md, Algorithm 2, step 5).

    cfg = FinetuneConfig(file="ilf.jsonl", base="smollm2", out="models/ilf-sft", epochs=1)

`__post_init__` is the one place a FinetuneConfig is checked (types, bounds, choices declared in
the field metadata), whether it comes from flags, a dashboard form or code. `file` and `out` may
stay empty here: an SFT job fills them in (the project's accepted refinements, the job's folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.forms import check_values


@dataclass
class FinetuneConfig:
    """SFT of a causal or seq2seq LM on {prompt, completion} rows, loss on the completion."""

    file: str = field(default="", metadata={"help": "dataset: JSONL or Parquet with prompt and completion columns"})
    base: str = field(default="smollm2", metadata={
        "help": "model to finetune: a name or folder loadable by from_pretrained; 'smollm2' = offline SmolLM2"})
    out: str = field(default="", metadata={"help": "folder for the checkpoint (save_pretrained) and its card"})
    epochs: int = field(default=1, metadata={"min": 1, "help": "passes over the training split (ILF: one)"})
    max_steps: int = field(default=0, metadata={"min": 0, "help": "stop after this many optimizer steps (0 = no limit)"})
    lr: float = field(default=1e-5, metadata={"min": 0.0, "help": "AdamW learning rate (small: ILF finetunes gently)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=0, metadata={"min": 0, "help": "linear warm-up steps"})
    batch_size: int = field(default=4, metadata={"min": 1, "help": "rows per batch"})
    grad_accum: int = field(default=1, metadata={"min": 1, "help": "batches per optimizer step"})
    grad_clip: float = field(default=1.0, metadata={"min": 0.0, "help": "clip the gradient norm to this (0 = off)"})
    max_length: int = field(default=512, metadata={"min": 8,
        "help": "tokens per row at most; a long prompt loses its start, the completion is kept up to half"})
    prompt_loss_weight: float = field(default=0.0, metadata={"min": 0.0,
        "help": "weight of the prompt tokens in the loss (0 = completion only; causal models only)"})
    eval_fraction: float = field(default=0.1, metadata={"help": "share of rows held out for evaluation", "min": 0.0, "max": 0.9})
    eval_every: int = field(default=0, metadata={"min": 0, "help": "evaluate every N optimizer steps (0 = at the end only)"})
    seed: int = field(default=0, metadata={"help": "seed of the split, the shuffling and the init"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when there), cpu or cuda"})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on a GPU that supports it"})
    accelerate: bool = field(default=False, metadata={
        "help": "use Hugging Face accelerate (automatic under `accelerate launch` with several processes)"})
    threads: int = field(default=0, metadata={"min": 0, "help": "CPU threads for torch (0 = TOKENWISE_THREADS or 1)"})

    def __post_init__(self) -> None:
        check_values(self)
