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


def test_aggregate_soft_max_and_min():
    tau = 2.0
    lse = lambda xs: math.log(sum(math.exp(x) for x in xs))
    want_max = [tau * lse([0.1, 0.2, 0.3]) * LBAR, tau * (0.25 + math.log(2)) * LBAR]
    want_min = [-tau * lse([-0.1, -0.2, -0.3]) * LBAR, (0.5 - 2 * math.log(2)) * LBAR]
    assert aggregate(R, M, "max", tau=tau).tolist() == pytest.approx(want_max, rel=1e-5)
    assert aggregate(R, M, "min", tau=tau).tolist() == pytest.approx(want_min, rel=1e-5)
    # a smaller tau approaches the hard max/min
    hard = aggregate(R, M, "max", lengths_mean=1.0, tau=0.01)
    assert hard.tolist() == pytest.approx([0.6, 0.5 + 0.01 * math.log(2)], abs=1e-4)


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
