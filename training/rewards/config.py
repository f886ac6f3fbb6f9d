"""Settings of the token-level reward model trainer (DESIGN.md, Algorithm 1).

Every field carries help text in its metadata, so one parser serves the CLI flags
(`tokenwise train reward --lr 1e-4 ...`) and the dashboard's training form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.errors import ValidationError

AGGREGATIONS = ("sum", "avg", "max", "min")  # training.rewards.losses.aggregate; no torch import here
MIN_TEST_LISTS = 30  # fewer usable lists than this: no test split, no headline figure, a small-data warning


@dataclass
class RewardConfig:
    base_model: str = field(default="minilm", metadata={
        "help": "backbone: a local folder or hub name (causal LM, encoder-decoder, or encoder); "
                "'minilm' = the offline all-MiniLM-L6-v2 encoder"})
    aggregation: str = field(default="avg", metadata={
        "help": "how per-token rewards become a sequence score", "choices": AGGREGATIONS})
    tau: float = field(default=2.0, metadata={"help": "temperature of the soft max/min aggregations"})
    baseline: bool = field(default=False, metadata={
        "help": "train the sequence-level baseline (one scalar from the last token) instead"})
    epochs: int = field(default=3, metadata={"help": "passes over the training lists"})
    max_steps: int = field(default=0, metadata={"help": "stop after this many optimiser steps (0: no limit)"})
    lr: float = field(default=5e-5, metadata={"help": "AdamW peak learning rate"})
    warmup_fraction: float = field(default=0.1, metadata={
        "help": "fraction of the steps spent warming the learning rate up from 0; then it decays linearly to 0"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    batch_size: int = field(default=4, metadata={"help": "ranked lists per optimiser step"})
    max_length: int = field(default=512, metadata={
        "help": "tokens per input (document + candidate); capped at the backbone's window"})
    max_candidate_length: int = field(default=128, metadata={
        "help": "tokens of the candidate kept (the document is truncated first)"})
    document_truncation: str = field(default="start", metadata={
        "help": "which part of a long document to keep: its start, or its end (dialogues)",
        "choices": ("start", "end")})
    head_hidden: int = field(default=0, metadata={"help": "hidden size of the reward head (0: the backbone's)"})
    seed: int = field(default=0, metadata={"help": "random seed (split, shuffling, tie order, head init)"})
    val_fraction: float = field(default=0.2, metadata={
        "help": "fraction of documents held out to choose the epoch (early stopping)"})
    test_fraction: float = field(default=0.2, metadata={
        "help": f"fraction of documents held out for the reported test figure (none below {MIN_TEST_LISTS} lists)"})
    refit: bool = field(default=False, metadata={
        "help": "after validation chose the epoch count, train again from scratch on train + validation"})
    patience: int = field(default=2, metadata={
        "help": "epochs without a better held-out loss before stopping early (0: never stop early)"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu, cuda, cuda:1"})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on the GPU (ignored on the CPU)"})
    grad_clip: float = field(default=5.0, metadata={"help": "clip the gradient norm to this (0: off)"})
    disable_dropout: bool = field(default=True, metadata={
        "help": "train with the backbone's dropout off, as TRL's RewardTrainer does (MiniLM, 16 x 192 tokens on "
                "the CPU: peak 2.3 -> 1.6 GB, a quarter less time)"})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "recompute the backbone's activations in the backward pass: less memory for more time (SmolLM2-135M, "
                "16 x 192 tokens on the CPU: peak 7.9 -> 5.0 GB; TRL's RewardTrainer does it by default)"})
    threads: int = field(default=0, metadata={"help": "CPU threads for torch (0: TOKENWISE_THREADS or 1)"})
    score_after: bool = field(default=True, metadata={
        "help": "after training, cache per-token rewards of every candidate of the project (the heatmaps)"})

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValidationError(f"aggregation: {self.aggregation!r} is not one of {', '.join(AGGREGATIONS)}")
        if self.document_truncation not in ("start", "end"):
            raise ValidationError(f"document_truncation: {self.document_truncation!r} is not start or end")
        for name in ("epochs", "batch_size", "max_length", "max_candidate_length"):
            if int(getattr(self, name)) < 1:
                raise ValidationError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("val_fraction", "test_fraction", "warmup_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ValidationError(f"{name}: must be in [0, 1), got {getattr(self, name)}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValidationError(f"val_fraction + test_fraction: must leave documents to train on, got "
                                  f"{self.val_fraction} + {self.test_fraction}")
        if self.lr <= 0:
            raise ValidationError(f"lr: must be positive, got {self.lr}")
        if self.tau <= 0:
            raise ValidationError(f"tau: must be positive, got {self.tau}")
