"""training/stats.py: the bootstrap interval of a rate whose trials come in clusters."""

from __future__ import annotations

import math

import pytest

from training.stats import clustered_rate_interval, wilson_interval


def test_clustered_interval_collapses_when_every_cluster_agrees():
    assert clustered_rate_interval([2, 2, 2], [2, 2, 2]) == (1.0, 1.0)
    # every cluster 1 of 2: every resample's rate is 1/2
    assert clustered_rate_interval([1] * 5, [2] * 5) == pytest.approx((0.5, 0.5))
    assert all(math.isnan(x) for x in clustered_rate_interval([0, 0], [0, 0]))


def test_clustered_interval_is_wider_than_wilson_when_runs_agree_within_a_question():
    # 50 questions won in both runs, 50 lost in both: 100 of 200, but only 100 independent questions
    wins, trials = [2] * 50 + [0] * 50, [2] * 100
    lo, hi = clustered_rate_interval(wins, trials)
    w_lo, w_hi = wilson_interval(100, 200)
    assert lo < 0.5 < hi and hi - lo > w_hi - w_lo
    # the independent-question figure: sd sqrt(.25 / 100) = 0.05, so about 0.40-0.60
    assert (lo, hi) == pytest.approx((0.40, 0.60), abs=0.02)
    assert clustered_rate_interval(wins, trials) == (lo, hi)  # seeded: the same interval each time


def test_one_cluster_falls_back_to_wilson():
    assert clustered_rate_interval([8], [10]) == wilson_interval(8, 10)


def test_clusters_without_trials_are_left_out():
    with_empty = clustered_rate_interval([2] * 50 + [0] * 50 + [0] * 30, [2] * 100 + [0] * 30)
    assert with_empty == clustered_rate_interval([2] * 50 + [0] * 50, [2] * 100)
    assert clustered_rate_interval([3, 0, 0], [4, 0, 0]) == wilson_interval(3, 4)  # one cluster left
