"""training/losses.py against values worked out by hand."""

import math

import pytest
import torch

from training.rewards.losses import (
    aggregate,
    bound_rewards,
    bradley_terry,
    list_mle,
    mean_kendall_tau,
    pairwise_accuracy,
    tie_broken_order,
)
from training.stats import wilson_interval

R = torch.tensor([[0.2, 0.4, 0.6], [0.5, 0.5, 99.0]])  # 99 is a pad: must never count
M = torch.tensor([[1, 1, 1], [1, 1, 0]])
LBAR = (3 + 2) / 2


def test_bound_rewards_is_sigmoid_in_open_interval():
    r = bound_rewards(torch.tensor([-30.0, 0.0, 30.0]))
    assert r[1].item() == 0.5
    assert 0 <= r[0].item() < 1e-12 and 1 - 1e-6 < r[2].item() <= 1


def test_aggregate_sum_and_avg():
    assert aggregate(R, M, "sum").tolist() == pytest.approx([1.2, 1.0])
    # avg = mean * Lbar; Lbar defaults to the mean length in the batch (the K candidates).
    assert aggregate(R, M, "avg").tolist() == pytest.approx([0.4 * LBAR, 0.5 * LBAR])
    assert aggregate(R, M, "avg", lengths_mean=4.0).tolist() == pytest.approx([1.6, 2.0])
    per_row = aggregate(R, M, "avg", lengths_mean=torch.tensor([1.0, 2.0]))
    assert per_row.tolist() == pytest.approx([0.4, 1.0])


def test_aggregate_soft_max_and_min_are_log_mean_exp():
    tau = 2.0
    lme = lambda xs: math.log(sum(math.exp(x) for x in xs) / len(xs))
    # row 2 has two equal rewards 0.5: log-mean-exp gives exactly 0.5 (no tau*log(2) term)
    want_max = [tau * lme([0.1, 0.2, 0.3]) * LBAR, 0.5 * LBAR]
    want_min = [-tau * lme([-0.1, -0.2, -0.3]) * LBAR, 0.5 * LBAR]
    assert aggregate(R, M, "max", tau=tau).tolist() == pytest.approx(want_max, rel=1e-5)
    assert aggregate(R, M, "min", tau=tau).tolist() == pytest.approx(want_min, rel=1e-5)
    # a small tau approaches the hard max/min (off by tau*log(T) for one clear winner among T = 3)
    gap = 0.01 * math.log(3)
    assert aggregate(R, M, "max", lengths_mean=1.0, tau=0.01).tolist() == pytest.approx([0.6 - gap, 0.5], abs=1e-4)
    assert aggregate(R, M, "min", lengths_mean=1.0, tau=0.01).tolist() == pytest.approx([0.2 + gap, 0.5], abs=1e-4)


def test_soft_max_min_ignore_length_and_approach_avg():
    # the same per-token rewards repeated twice: a longer candidate, the same score (same Lbar)
    r = torch.tensor([[0.3, 0.7, 0.0, 0.0], [0.3, 0.7, 0.3, 0.7]])
    m = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    for how in ("avg", "max", "min"):
        short, long = aggregate(r, m, how, lengths_mean=3.0).tolist()
        assert short == pytest.approx(long, rel=1e-6), how
    # by hand, tau = 1: max = log((e^0.3 + e^0.7) / 2) * 3
    assert aggregate(r, m, "max", lengths_mean=3.0, tau=1.0)[0].item() == pytest.approx(
        math.log((math.exp(0.3) + math.exp(0.7)) / 2) * 3, rel=1e-6)
    # tau -> inf: both soft aggregations become AVG (mean 0.5 * Lbar 3)
    for how in ("max", "min"):
        assert aggregate(r.double(), m, how, lengths_mean=3.0, tau=1e4).tolist() == pytest.approx([1.5, 1.5], abs=1e-4)


def test_wilson_interval_by_hand():
    # 8 of 10: p = 0.8, z = 1.96 -> centre 0.71674, half-width 0.22658
    lo, hi = wilson_interval(8, 10)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=2e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_aggregate_empty_row_scores_zero_and_bad_name():
    r = torch.tensor([[0.3, 0.3], [0.9, 0.9]])
    m = torch.tensor([[0, 0], [1, 1]])
    for how in ("sum", "avg", "max", "min"):
        out = aggregate(r, m, how)
        assert out[0].item() == 0.0 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="how"):
        aggregate(r, m, "median")


def test_aggregate_gradient_skips_pads():
    r = R.clone().requires_grad_(True)
    aggregate(r, M, "max").sum().backward()
    assert r.grad[1, 2].item() == 0.0 and r.grad[0, 0].item() > 0


def test_list_mle_by_hand():
    s = torch.tensor([[1.0, 2.0, 3.0]])
    ranks = torch.tensor([[1, 2, 3]])  # candidate 0 is best, though it scores lowest
    lse = lambda xs: math.log(sum(math.exp(x) for x in xs))
    want = (lse([1, 2, 3]) - 1) + (lse([2, 3]) - 2) + 0.0
    assert list_mle(s, ranks).item() == pytest.approx(want, rel=1e-6)
    # the right order costs less
    assert list_mle(s, torch.tensor([[3, 2, 1]])).item() < want
    # shift invariance (the max is subtracted, huge scores stay finite)
    assert list_mle(s + 1e4, ranks).item() == pytest.approx(want, rel=1e-5)


def test_list_mle_k2_equals_bradley_terry():
    torch.manual_seed(0)
    sc, sr = torch.randn(7), torch.randn(7)
    lm = list_mle(torch.stack([sc, sr], -1), torch.tensor([[1, 2]] * 7))
    assert lm.item() == pytest.approx(bradley_terry(sc, sr).item(), rel=1e-6)
    assert bradley_terry(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(math.log(2))


def test_list_mle_mask_drops_absent_candidates():
    s = torch.tensor([[0.7, -0.2, 50.0]])
    ranks = torch.tensor([[1, 2, 3]])
    mask = torch.tensor([[True, True, False]])
    assert list_mle(s, ranks, mask).item() == pytest.approx(bradley_terry(s[:, 0], s[:, 1]).item(), rel=1e-6)


def test_list_mle_ties_are_shuffled_with_the_generator():
    s = torch.tensor([[0.0, 1.0, -1.0]])
    ranks = torch.tensor([[1, 1, 2]])  # 0 and 1 tied first
    lse = lambda xs: math.log(sum(math.exp(x) for x in xs))
    a = (lse([0, 1, -1]) - 0) + (lse([1, -1]) - 1)  # order 0, 1, 2
    b = (lse([0, 1, -1]) - 1) + (lse([0, -1]) - 0)  # order 1, 0, 2
    seen = set()
    for seed in range(20):
        v = list_mle(s, ranks, generator=torch.Generator().manual_seed(seed)).item()
        assert v == pytest.approx(a, rel=1e-6) or v == pytest.approx(b, rel=1e-6)
        seen.add(round(v, 5))
    assert len(seen) == 2  # both tie orders happen
    order = tie_broken_order(ranks, generator=torch.Generator().manual_seed(0))
    assert order[0, 2].item() == 2  # the tie is never broken across ranks


def test_pairwise_accuracy_and_mean_kendall_tau():
    scores = torch.tensor([[3.0, 1.0, 2.0]])
    ranks = torch.tensor([[1, 2, 3]])
    assert pairwise_accuracy(scores, ranks) == (2, 3)
    # tau = (concordant - discordant) / pairs = (2 - 1) / 3
    assert mean_kendall_tau(scores, ranks) == pytest.approx(1 / 3)
    assert mean_kendall_tau(torch.tensor([[3.0, 2.0, 1.0]]), ranks) == pytest.approx(1.0)
    # ties in the human order are not pairs
    assert pairwise_accuracy(scores, torch.tensor([[1, 1, 2]])) == (1, 2)
