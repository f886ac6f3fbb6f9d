"""The maths of Algorithm 1 (DESIGN.md) as pure tensor functions.

    r = bound_rewards(head_output)                   per-token rewards in (0, 1)
    e = aggregate(r, mask, "avg", lengths_mean=Lbar)  one score per candidate
    loss = list_mle(e.view(N, K), ranks)              Plackett-Luce NLL of the human order

Shapes: B = candidates in a batch, T = positions, N = lists (rankings), K = candidates per list.
`mask` is 1/True on real (candidate) tokens, 0/False on pads and context.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from training.rewards.config import AGGREGATIONS


def bound_rewards(x: torch.Tensor) -> torch.Tensor:
    """Squash raw head outputs to (0, 1) so later weights (w_t = r_t / sum r) stay sane."""
    return torch.sigmoid(x)


def aggregate(
    rewards: torch.Tensor,
    mask: torch.Tensor,
    how: str = "avg",
    lengths_mean: float | torch.Tensor | None = None,
    tau: float = 2.0,
) -> torch.Tensor:
    """Sequence scores e(y) [B] from per-token rewards [B, T] over the unmasked tokens.

    sum: sum_t r_t
    avg: mean_t r_t * Lbar
    max: tau * log(mean_t exp(r_t / tau)) * Lbar     (soft max: log-MEAN-exp, so no tau*log(T)
    min: -tau * log(mean_t exp(-r_t / tau)) * Lbar   term lets length in; tau -> inf gives avg)
    Lbar (`lengths_mean`) is the mean length of the K candidates of the list: a number, or a
    tensor [B] (one value per row, when a batch holds several lists). None: the mean over this
    batch. A row with no tokens scores 0.
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"how: {how!r} is not one of {', '.join(AGGREGATIONS)}")
    mask = mask.to(torch.bool)
    lengths = mask.sum(-1).to(rewards.dtype)
    if lengths_mean is None:
        lengths_mean = lengths.mean()
    lbar = torch.as_tensor(lengths_mean, dtype=rewards.dtype, device=rewards.device)
    empty = lengths == 0
    if how == "sum":
        return (rewards * mask).sum(-1)
    if how == "avg":
        return (rewards * mask).sum(-1) / lengths.clamp(min=1) * lbar
    sign = 1.0 if how == "max" else -1.0
    z = (sign * rewards / tau).masked_fill(~mask, float("-inf"))
    soft = sign * tau * (torch.logsumexp(z, dim=-1) - torch.log(lengths.clamp(min=1)))
    return torch.where(empty, torch.zeros_like(soft), soft) * lbar


def tie_broken_order(ranks: torch.Tensor, mask: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices [N, K] best first: sort by rank (1 = best), shuffling tied candidates at random.

    Masked (absent) candidates go last. Noise in [0, 0.5) never crosses a whole rank.
    """
    noise = torch.rand(ranks.shape, generator=generator, device="cpu").to(ranks.device) * 0.5
    key = ranks.to(torch.float64) + noise.to(torch.float64)
    if mask is not None:
        key = key.masked_fill(~mask.to(torch.bool), float("inf"))
    return torch.argsort(key, dim=-1)


def list_mle(
    scores: torch.Tensor,
    ranks: torch.Tensor,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """ListMLE: mean over lists of the Plackett-Luce NLL of the human order.

    scores [N, K]; ranks [N, K] (1 = best, ties share a rank); mask [N, K] for lists shorter than K.
    For the order pi (ties shuffled with `generator`):
        L = sum_k [ logsumexp_{i >= k} e_pi(i) - e_pi(k) ]
    computed with the row max subtracted for stability.
    """
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    mask = mask.to(torch.bool)
    order = tie_broken_order(ranks, mask, generator)
    s = scores.gather(-1, order)
    valid = mask.gather(-1, order)
    s = s.masked_fill(~valid, float("-inf"))
    s = s - s.max(dim=-1, keepdim=True).values.detach()
    # logsumexp over the suffix i >= k: a reversed cumulative logsumexp.
    suffix = torch.flip(torch.logcumsumexp(torch.flip(s, [-1]), dim=-1), [-1])
    terms = torch.where(valid, suffix - s, torch.zeros_like(s))
    return terms.sum(-1).mean()


def bradley_terry(s_chosen: torch.Tensor, s_rejected: torch.Tensor) -> torch.Tensor:
    """Pairwise loss -log sigmoid(s_chosen - s_rejected), averaged (ListMLE with K = 2)."""
    return F.softplus(s_rejected - s_chosen).mean()


# -- metrics ------------------------------------------------------------------------------
def pairwise_accuracy(scores: torch.Tensor, ranks: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[int, int]:
    """(correct, total) over the untied pairs of each list: correct when the better-ranked
    candidate scores strictly higher."""
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    mask = mask.to(torch.bool)
    better = (ranks.unsqueeze(-1) < ranks.unsqueeze(-2)) & mask.unsqueeze(-1) & mask.unsqueeze(-2)
    higher = scores.unsqueeze(-1) > scores.unsqueeze(-2)
    return int((better & higher).sum()), int(better.sum())


def mean_kendall_tau(scores: torch.Tensor, ranks: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean over lists of Kendall's tau-b between predicted scores and the human order
    (`annotation.agreement.kendall_tau` per list; a list where it is undefined, with no untied
    pair or all scores equal, is skipped; 0.0 when none is left)."""
    from training.annotation.agreement import kendall_tau

    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    taus = []
    for s, r, m in zip(scores.tolist(), ranks.tolist(), mask.tolist()):
        # both sides as ranks (lower = better): a higher score is a better rank
        t = kendall_tau({i: -x for i, (x, keep) in enumerate(zip(s, m)) if keep},
                        {i: x for i, (x, keep) in enumerate(zip(r, m)) if keep})
        if not math.isnan(t):
            taus.append(t)
    return sum(taus) / len(taus) if taus else 0.0
