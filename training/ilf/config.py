"""Settings of ILF from critiques (DESIGN.md, Algorithm 2): refine, select, build a dataset.

Every field carries help text, so one parser serves the CLI flags and the dashboard's forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from training.errors import ValidationError

SELECTORS = ("pmi", "instructrm", "reward", "ensemble", "embedding", "random")
# What each selector's score means, for the people who review its picks.
SELECTOR_NOTES = {
    "pmi": "pmi: how much the critique raises the model's log-likelihood of the refinement (log p with the "
           "critique minus log p without it); the higher, the more the rewrite follows the critique.",
    "instructrm": "InstructRM asks the model whether each refinement follows the critique; calibrated against "
                  "the same question about the original output, so 0.5 means no better than the original.",
    "reward": "reward: the reward model's score of the refinement as an output for this document.",
    "ensemble": "ensemble: InstructRM and the reward model, each scaled by its spread, averaged.",
    "embedding": "embedding: the cosine similarity of the refinement with the output and the critique (MiniLM).",
    "random": "random: a seeded random score (the control); the pick says nothing about quality.",
}
CALIBRATIONS = ("original", "content-free", "none")
# Where a small model starts the next field of a plain template instead of ending its rewrite.
STOP_STRINGS = ("\nFeedback", "\nTitle:", "\nText:", "\nOutput:", "\nOriginal")


def check_fields(config) -> None:
    """Raise ValidationError naming the first field outside its metadata's min/max/choices.

    The one place an ILF config is validated (each dataclass's __post_init__), so the library,
    the CLI and the dashboard refuse the same values with the same message.
    """
    for f in fields(config):
        value, md = getattr(config, f.name), f.metadata
        if "choices" in md and value not in md["choices"]:
            raise ValidationError(f"{f.name}: {value!r} is not one of {', '.join(map(str, md['choices']))}")
        if "min" in md and value < md["min"]:
            raise ValidationError(f"{f.name}: must be at least {md['min']}, got {value}")
        if "max" in md and value > md["max"]:
            raise ValidationError(f"{f.name}: must be at most {md['max']}, got {value}")


@dataclass
class RefineConfig:
    """Sample refinements of each critiqued output from a refinement LM (step 3)."""

    model: str = field(default="smollm2", metadata={
        "help": "refinement LM: a name or folder loadable by from_pretrained (causal or seq2seq); "
                "'smollm2' = the offline SmolLM2-135M-Instruct"})
    n: int = field(default=5, metadata={"min": 1, "help": "refinements sampled per critique with the feedback template"})
    baseline_n: int = field(default=1, metadata={"min": 0,
        "help": "refinements sampled per critique with the no-feedback template (the baseline; 0 = none)"})
    temperature: float = field(default=0.6, metadata={"min": 0.01, "help": "sampling temperature"})
    top_p: float = field(default=0.9, metadata={
        "help": "nucleus sampling: keep the top tokens up to this mass", "min": 0.01, "max": 1.0})
    length_ratio: float = field(default=1.5, metadata={"min": 0.1, "help":
        "tokens generated per refinement: this times the critiqued output's length, plus 16 (capped by max_new_tokens)"})
    max_new_tokens: int = field(default=160, metadata={"min": 1, "help": "tokens generated per refinement at most"})
    stop: list[str] = field(default_factory=lambda: list(STOP_STRINGS), metadata={
        "help": "stop strings: a sample ends before the first of these (comma-separated)"})
    batch_size: int = field(default=4, metadata={"min": 1, "help": "prompts per generate() call"})
    max_text_chars: int = field(default=3000, metadata={"min": 100,
        "help": "characters of the document kept in a prompt (its start; longer texts are cut)"})
    skip_done: bool = field(default=True, metadata={
        "help": "skip critiques that already have model refinements (rerun with --no-skip-done to add more)"})
    limit: int = field(default=0, metadata={"min": 0, "help":
        "refine at most this many critiques in this run, oldest first (0 = all); with skip_done, the next run "
        "takes the next ones: a way to try the templates on a few before the whole project"})
    seed: int = field(default=0, metadata={"help": "random seed for sampling"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when there), cpu or cuda"})

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class SelectConfig:
    """Score every refinement of each critique and mark the best one selected (step 4)."""

    # The default is the best selector measured by bench/ilf_quality.py (QA-Feedback, 300 pairs, SmolLM2-135M:
    # PMI prefers the human correction in 0.85, the reward model 0.63, InstructRM 0.47, random 0.48).
    selector: str = field(default="pmi", metadata={
        "help": "pmi (the best measured: how much the feedback raises the refinement LM's log-likelihood of the "
                "refinement, log p(r | output, feedback) - log p(r | output)), reward (the learned token-level "
                "reward model), instructrm (an instruction LM asked if the feedback is incorporated; near chance "
                "with SmolLM2-135M), ensemble (instructrm + reward, each scaled by its spread, averaged), "
                "embedding (MiniLM cosine similarity), random (seeded)",
        "choices": SELECTORS})
    model: str = field(default="", metadata={
        "help": "scoring model: pmi/instructrm/ensemble -> an instruction LM (default smollm2; for pmi best the "
                "model that wrote the refinements); reward -> a reward "
                "model folder (default: reward_model, else the project's active reward model); embedding -> "
                "an encoder (default MiniLM)"})
    reward_model: str = field(default="", metadata={
        "help": "reward and ensemble selectors: a reward model folder (default: the project's active reward model)"})
    calibration: str = field(default="original", metadata={
        "help": "InstructRM: subtract the log-odds of yes for the same question asked of the original output "
                "('original') or of 'N/A' ('content-free'), per template, so a model that says yes to "
                "everything cannot win; 'none' = raw p(yes)/(p(yes)+p(no))",
        "choices": CALIBRATIONS})
    embedding_target: str = field(default="output+feedback", metadata={
        "help": "embedding selector: compare the refinement with 'output+feedback' or with 'feedback' only",
        "choices": ("output+feedback", "feedback")})
    batch_size: int = field(default=8, metadata={
        "min": 1, "help": "refinements per forward pass (InstructRM: per critique, after its shared prefix)"})
    max_text_chars: int = field(default=1500, metadata={"min": 100, "help": "characters of the document kept in a prompt"})
    reselect_reviewed: bool = field(default=False, metadata={
        "help": "also change the selection of critiques a person already reviewed"})
    seed: int = field(default=0, metadata={"help": "seed of the random selector"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when there), cpu or cuda"})

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class DatasetConfig:
    """Turn reviewed or selected refinements into a finetuning dataset (step 5)."""

    variant: str = field(default="sft", metadata={
        "help": "sft: context -> refinement; feedback: context + output -> feedback + refinement",
        "choices": ("sft", "feedback")})
    include: str = field(default="accepted", metadata={
        "help": "accepted: only refinements a person accepted (or wrote); selected: also the unreviewed "
                "selected ones", "choices": ("accepted", "selected")})

    def __post_init__(self) -> None:
        check_fields(self)
