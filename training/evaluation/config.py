"""Settings of a blind A/B evaluation round (one parser for the CLI, the job and the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.errors import ValidationError
from training.forms import check_prompt_template, check_values


@dataclass
class RoundConfig:
    """Two models answer the same held-out documents; people rank the pair without knowing which is which."""

    name: str = field(default="", metadata={
        "help": "a name for the round (empty = round-<job id>); annotators see it as the project eval-<name>, "
                "so keep the models' names out of it"})
    model_a: str = field(default="", metadata={
        "help": "first model: a registry id (e.g. 7), a folder, or a name such as smollm2 "
                "(empty = the project's active policy)"})
    model_b: str = field(default="", metadata={
        "help": "second model: registry id, folder or name (empty = the base model the first one was trained from)"})
    documents: int = field(default=20, metadata={
        "help": "how many documents of the project to evaluate on", "min": 1, "max": 100_000})
    exclude_trained: bool = field(default=True, metadata={
        "help": "leave out the documents either model was trained on (from their cards)"})
    judge_model: int | None = field(default=None, metadata={
        "help": "reward model id that gives its verdict beside the people (empty = the project's active one)",
        "min": 1})
    overlap: int = field(default=1, metadata={"help": "annotators per pair", "min": 1, "max": 100})
    max_new_tokens: int = field(default=64, metadata={"help": "tokens each model may write", "min": 1, "max": 2048})
    max_input_tokens: int = field(default=384, metadata={
        "help": "the document is cut to this many tokens", "min": 16, "max": 32768})
    prompt: str = field(default="", metadata={
        "help": "prompt template with {title}, {text}, {instructions}; empty = the default for the project's kind"})
    seed: int = field(default=0, metadata={"help": "seed of the document sample and of generation (each pair's A/B "
                                                  "order is drawn from the system's randomness, so nobody can "
                                                  "work it out)", "min": 0})
    device: str = field(default="auto", metadata={"help": "auto (GPU when there is one), cpu or cuda"})

    def __post_init__(self):
        check_values(self)
        check_prompt_template(self.prompt)
        self.name = self.name.strip()
        self.model_a, self.model_b = self.model_a.strip(), self.model_b.strip()
        if self.model_a and self.model_a == self.model_b:
            raise ValidationError("model_b: must differ from model_a (a round compares two models)")
