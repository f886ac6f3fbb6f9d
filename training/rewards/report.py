"""How a reward model's quality is reported, in words, the same on every surface (CLI, job log,
Models page, Overview). No torch here: the dashboard imports it.

    headline(model.metrics)  ->  "test pairwise accuracy 0.642 (95% CI 0.601-0.681, n=540 pairs ...)"
"""

from __future__ import annotations

from training.rewards.config import MIN_TEST_LISTS


def is_small_data(metrics: dict) -> bool:
    """True when the model has no test figure (too few lists, or a card from before test splits)."""
    return bool(metrics.get("small_data")) or metrics.get("test_pairwise_accuracy") is None


def small_data_warning(metrics: dict) -> str:
    n = int(metrics.get("train_lists", 0) or 0) + int(metrics.get("val_lists", 0) or 0)
    return (f"SMALL DATA: learned from only {n} ranked lists (fewer than {MIN_TEST_LISTS}), so there is no "
            "test split and no accuracy to trust; rank more documents before relying on this model")


def headline(metrics: dict) -> str:
    """The test figure with n and its 95% interval and how far it is above the better length
    baseline; or the small-data warning."""
    if is_small_data(metrics):
        return small_data_warning(metrics)
    return (f"test pairwise accuracy {metrics['test_pairwise_accuracy']:.3f} "
            f"(95% CI {metrics['test_ci_low']:.3f}-{metrics['test_ci_high']:.3f}, n={metrics['test_pairs']} pairs "
            f"from {metrics['test_lists']} lists), {100 * metrics['above_length_baseline']:+.1f} points vs the better "
            f"length baseline (longer wins {metrics['test_longer_wins']:.3f}, "
            f"shorter wins {metrics['test_shorter_wins']:.3f})")
