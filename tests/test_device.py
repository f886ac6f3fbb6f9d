"""The documented thread rule: an explicit `threads` wins; 0 means TOKENWISE_THREADS, else 1.

Every trainer applies it, also when `threads` is 0 (the CLI default), and the environment never
overrides an explicit value."""

from __future__ import annotations

import pytest
import torch

from training.device import resolve_threads, set_threads
from training.errors import ValidationError
from training.ilf.finetune_config import FinetuneConfig
from training.policy.config import PolicyConfig


@pytest.fixture(autouse=True)
def _one_thread_after():
    yield
    torch.set_num_threads(1)


def test_explicit_value_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("TOKENWISE_THREADS", "3")
    assert resolve_threads(2) == 2
    assert set_threads(2) == 2 and torch.get_num_threads() == 2


def test_zero_means_environment_else_one(monkeypatch):
    monkeypatch.delenv("TOKENWISE_THREADS", raising=False)
    assert resolve_threads(0) == 1 and resolve_threads(None) == 1
    monkeypatch.setenv("TOKENWISE_THREADS", "2")
    assert resolve_threads(0) == 2
    assert set_threads(0) == 2 and torch.get_num_threads() == 2
    monkeypatch.setenv("TOKENWISE_THREADS", "many")
    with pytest.raises(ValidationError, match="TOKENWISE_THREADS: must be a whole number, got 'many'"):
        resolve_threads(0)
    monkeypatch.setenv("TOKENWISE_THREADS", "0")
    with pytest.raises(ValidationError, match="TOKENWISE_THREADS: must be at least 1"):
        resolve_threads(0)


class _Applied(Exception):
    pass


@pytest.mark.parametrize("trainer", ["policy", "sft", "reward"])
def test_every_trainer_applies_threads_zero(trainer, monkeypatch, store, tmp_path):
    """threads=0 reaches set_threads (it used to be skipped, leaving torch's default)."""
    seen = []

    def spy(n=0):
        seen.append(n)
        raise _Applied

    if trainer == "policy":
        from training.policy import trainer as mod

        monkeypatch.setattr(mod, "set_threads", spy)
        with pytest.raises(_Applied):
            mod.train_policy(store, "p", PolicyConfig(base_model="x"), tmp_path)
    elif trainer == "sft":
        from training.ilf import finetune as mod

        monkeypatch.setattr(mod, "set_threads", spy)
        with pytest.raises(_Applied):
            mod.finetune(FinetuneConfig(file="x.jsonl", out=str(tmp_path)))
    else:
        from training.rewards import trainer as mod
        from training.rewards.config import RewardConfig

        monkeypatch.setattr(mod, "set_threads", spy)
        with pytest.raises(_Applied):
            mod.train_reward(store, "p", RewardConfig(), tmp_path)
    assert seen == [0]


def test_configs_are_checked_when_built_in_code():
    """One place checks a config, its __post_init__, whether it comes from flags, a form or code."""
    with pytest.raises(ValidationError, match="epochs: must be at least 1, got 0"):
        FinetuneConfig(epochs=0)
    with pytest.raises(ValidationError, match="eval_fraction: must be at most 0.9"):
        FinetuneConfig(eval_fraction=0.95)
    with pytest.raises(ValidationError, match="threads: must be at least 0"):
        PolicyConfig(threads=-1)
    with pytest.raises(ValidationError, match="max_new_tokens: must be at least 1"):
        PolicyConfig(max_new_tokens=0)
    with pytest.raises(ValidationError, match="lr: must be positive"):
        PolicyConfig(lr=0.0)
