"""Settings of policy training with the token-level reward (DESIGN.md, "Using the guidance on the LM").

    config = PolicyConfig(base_model="models/tiny-gpt2", method="reinforce", steps=20)

Fields carry help text and bounds, so one parser serves `tokenwise train policy` flags and dashboard
forms; `__post_init__` is the one place a PolicyConfig is checked (also when built in code).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from training.errors import ValidationError
from training.forms import check_prompt_template, check_values

METHODS = ("auto", "rwmle", "reinforce")
GUIDANCE = ("token", "sequence", "uniform")


@dataclass
class PolicyConfig:
    base_model: str = field(default="", metadata={
        "help": "policy LM to start from: a local folder or hub name (causal LM or encoder-decoder)"})
    reward_model: str = field(default="", metadata={
        "help": "token-level reward model folder (empty: the project's active reward model)"})
    method: str = field(default="auto", metadata={
        "help": "rwmle: reward-weighted MLE on the references; reinforce: REINFORCE with dense rewards; "
                "auto: rwmle when the documents have references, else reinforce", "choices": METHODS})
    steps: int = field(default=50, metadata={"help": "policy optimiser steps", "min": 1})
    batch_size: int = field(default=4, metadata={"help": "documents per step", "min": 1})
    lr: float = field(default=5e-5, metadata={"help": "AdamW learning rate"})
    # The paper's alpha is 0.125 (prompt generation with a small policy). On SmolLM2-135M (49k-token vocabulary)
    # with whitened advantages it took over: entropy 2.1 -> 7.6 nats in 16 steps, answers became noise
    # (bench/feedback_round.py --quick); 0.01 is the default.
    entropy_coef: float = field(default=0.01, metadata={
        "help": "alpha: weight of the entropy bonus (REINFORCE); the paper's 0.125 suits small-vocabulary "
                "policies, on a chat LM it can push answers towards noise", "min": 0.0})
    reward_to_go: bool = field(default=False, metadata={
        "help": "REINFORCE: weight each token by the sum of the rewards from it to the end, not its own r_t"})
    guidance: str = field(default="token", metadata={
        "help": "token: each token weighted by its own reward r_t (dense, token-level guidance); sequence: "
                "by the one sequence score e(y) (the sequence-level baseline); uniform: plain MLE on the references "
                "(the SFT baseline, no reward model)", "choices": GUIDANCE})
    awr_beta: float = field(default=0.0, metadata={
        "help": "rwmle: 0 weighs token t by r_t / sum r_t (the paper); beta > 0 by exp(z_t / beta), z the rewards "
                "whitened over the batch, normalised per sequence (token guidance) or over the batch (sequence "
                "guidance): advantage-weighted MLE, whose spread beta sets, not the reward model's", "min": 0.0})
    reward_baseline: bool = field(default=True, metadata={
        "help": "REINFORCE: subtract the batch's mean weight, so below-average tokens are pushed down"})
    whiten: bool = field(default=True, metadata={
        "help": "REINFORCE with a baseline (reward_baseline, or samples_per_prompt from 2): also divide the centred "
                "weights by their standard deviation over the batch, so the reward model's spread does not set "
                "the step size (nor leave the entropy bonus in charge)"})
    samples_per_prompt: int = field(default=1, metadata={
        "help": "REINFORCE: answers sampled per document each step (batch_size documents x this many answers); "
                "from 2 on, each answer's baseline is the mean reward of the document's other answers "
                "(leave-one-out), not the batch's mean, so only the reward model's comparisons within a "
                "document count", "min": 1})
    kl_coef: float = field(default=0.0, metadata={
        "help": "beta: weight of the per-token KL(policy || starting model) penalty (0: off); with kl_target, "
                "its starting value", "min": 0.0})
    kl_target: float = field(default=0.0, metadata={
        "help": "adapt beta after each step so the mean per-token KL stays near this many nats (Ziegler et al. "
                "2019: beta *= 1 + kl_gain * clip(KL / target - 1, -0.2, 0.2)); 0: beta stays fixed", "min": 0.0})
    kl_gain: float = field(default=0.1, metadata={
        "help": "K_beta: how fast the adaptive beta moves (0.1: at most 2% a step)", "min": 0.0})
    prompt: str = field(default="", metadata={
        "help": "prompt template with {title}, {text}, {instructions} (empty = the project kind's default, "
                "as the Generate job uses); chat models get it as the user turn of their chat template"})
    max_prompt_length: int = field(default=256, metadata={"help": "tokens of the document the policy reads", "min": 1})
    max_new_tokens: int = field(default=32, metadata={"help": "tokens the policy samples (REINFORCE)", "min": 1})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature for fresh samples"})
    retrain_every: int = field(default=0, metadata={
        "help": "M: retrain the reward model on fresh policy samples every M steps (0: never)"})
    retrain_fraction: float = field(default=0.5, metadata={
        "help": "retrain only during this first fraction of the steps", "min": 0.0, "max": 1.0})
    retrain_samples: int = field(default=3, metadata={"help": "fresh samples per document when retraining"})
    reward_lr: float = field(default=1e-4, metadata={"help": "learning rate of the reward model retraining"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu, cuda"})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on the GPU"})
    grad_clip: float = field(default=5.0, metadata={"help": "clip the gradient norm (0: off)"})
    threads: int = field(default=0, metadata={"help": "CPU threads for torch (0: TOKENWISE_THREADS or 1)", "min": 0})

    def __post_init__(self) -> None:
        check_values(self)  # types, bounds and choices declared above
        check_prompt_template(self.prompt)
        if self.lr <= 0:
            raise ValidationError(f"lr: must be positive, got {self.lr}")
        if self.kl_target > 0 and self.kl_coef <= 0:
            raise ValidationError("kl_target: needs a starting kl_coef above 0 (e.g. --kl-coef 0.05)")
        if self.samples_per_prompt > 1 and self.reward_to_go:
            raise ValidationError("samples_per_prompt: the leave-one-out baseline is a mean reward and does not fit "
                                  "reward_to_go's sums; use one or the other")
        if self.guidance == "uniform" and self.method == "reinforce":
            raise ValidationError("guidance: uniform (plain MLE) needs references; REINFORCE needs a reward")

    def to_dict(self) -> dict:
        return asdict(self)
