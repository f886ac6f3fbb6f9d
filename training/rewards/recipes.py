"""Training defaults per offline backbone, found on QA-Feedback's validation split
(bench/reward_quality.py; the figures are in the README's reward recipe). No torch here.

    recipe_for("minilm")  ->  {"lr": ..., "warmup_fraction": ..., "grad_clip": ..., "batch_size": ...}
"""

from __future__ import annotations

RECIPES = {
    "minilm": {"lr": 1e-4, "warmup_fraction": 0.1, "grad_clip": 1.0, "batch_size": 8, "epochs": 2},
    "smollm2": {"lr": 5e-5, "warmup_fraction": 0.1, "grad_clip": 1.0, "batch_size": 8, "epochs": 2},
}
DEFAULT = {"lr": 5e-5, "warmup_fraction": 0.1, "grad_clip": 1.0, "batch_size": 8, "epochs": 2}


def recipe_for(backbone: str) -> dict:
    """The recipe of a known backbone alias, else the generic default."""
    return dict(RECIPES.get(str(backbone), DEFAULT))
