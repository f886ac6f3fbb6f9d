"""Small statistics shared by the reward model's report and the evaluation rounds (no torch)."""

from __future__ import annotations

import math
import warnings

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion successes/n (95% by default); (nan, nan) for n = 0.

    Unlike the normal approximation it stays inside [0, 1] and behaves at 0/n and n/n."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clustered_rate_interval(successes: list[int], trials: list[int], confidence: float = 0.95,
                            n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of sum(successes) / sum(trials) whose observations come in
    clusters (successes[i] of trials[i] in cluster i: e.g. one test question judged in several
    training runs), resampling the clusters that have trials, whole; Wilson's interval when fewer
    than two do ((nan, nan) for none).

    Unlike a Wilson interval over the pooled counts, it does not take the runs' verdicts on the same
    question for independent evidence."""
    import numpy as np
    from scipy.stats import DegenerateDataWarning, bootstrap

    s, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    s, n = s[n > 0], n[n > 0]  # a cluster without trials adds nothing to either sum
    if len(n) < 2:
        return wilson_interval(int(s.sum()), int(n.sum()))

    def ratio(s_, n_, axis=-1):
        tot = n_.sum(axis=axis)
        return np.where(tot > 0, s_.sum(axis=axis) / np.where(tot > 0, tot, 1), np.nan)

    with warnings.catch_warnings():  # all clusters alike: the interval is that one rate, not a warning
        warnings.simplefilter("ignore", DegenerateDataWarning)
        res = bootstrap((s, n), ratio, paired=True, vectorized=True, n_resamples=n_resamples,
                        confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
