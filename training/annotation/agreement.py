"""Agreement between annotators who ranked the same documents.

Two statistics, both reported beside the reward model (DESIGN.md, Algorithm 1, "Several annotators"):

1. Kendall's tau-b between two annotators' rankings of one document (ties handled by tau-b),
   averaged over the documents they both ranked: `pairwise_tau`.
2. Krippendorff's alpha for ordinal data over every ranking of a project: a unit is one
   (document, candidate) pair, its values are the ranks the annotators gave that candidate
   (1 = best). `krippendorff_alpha_ordinal`, following Krippendorff (2011), "Computing
   Krippendorff's Alpha-Reliability":

       o_ck  = sum_u (number of ordered c-k value pairs from different coders in u) / (m_u - 1)
       n_c   = sum_k o_ck,   n = sum_c n_c          (pairable values only: units with m_u >= 2)
       d_ck  = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2      (ordinal metric)
       alpha = 1 - (n - 1) * sum_ck o_ck d_ck / sum_ck n_c n_k d_ck

   alpha = 1 is perfect agreement, 0 is chance, below 0 is systematic disagreement.
   It is NaN when undefined (fewer than two pairable values, or only one value in use).

Pure functions over plain dicts; `project_agreement` is the one place that reads the store.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from scipy.stats import kendalltau

NAN = float("nan")


# -- 1. Kendall's tau ---------------------------------------------------------------------
def kendall_tau(ranks_a: Mapping[Hashable, float], ranks_b: Mapping[Hashable, float]) -> float:
    """Kendall's tau-b of two rankings (item -> rank) over the items both ranked.

    NaN when it is undefined: fewer than two shared items, or one side ranks them all equal.
    """
    shared = sorted(set(ranks_a) & set(ranks_b), key=repr)
    if len(shared) < 2:
        return NAN
    a = [ranks_a[i] for i in shared]
    b = [ranks_b[i] for i in shared]
    if len(set(a)) < 2 or len(set(b)) < 2:  # a constant side: tau-b divides by zero
        return NAN
    tau = kendalltau(a, b, variant="b").statistic
    return float(tau)


def pairwise_tau(
    rankings: Iterable[tuple[Hashable, Hashable, Mapping[Hashable, float]]],
) -> dict[tuple[Hashable, Hashable], tuple[float, int]]:
    """Mean Kendall tau per annotator pair over the documents both ranked.

    `rankings`: (document, annotator, {candidate: rank}) triples, one per annotator and document.
    Returns {(annotator_a, annotator_b): (mean_tau, n_docs)} with a < b (sorted by repr);
    n_docs counts the shared documents where tau is defined (the mean is over those; NaN if none).
    """
    by_doc: dict[Hashable, dict[Hashable, Mapping]] = defaultdict(dict)
    for doc, annotator, ranks in rankings:
        by_doc[doc][annotator] = ranks
    taus: dict[tuple, list[float]] = defaultdict(list)
    for per_annotator in by_doc.values():
        for a, b in itertools.combinations(sorted(per_annotator, key=repr), 2):
            t = kendall_tau(per_annotator[a], per_annotator[b])
            taus[(a, b)]  # the pair shared a document, even if tau is undefined there
            if not math.isnan(t):
                taus[(a, b)].append(t)
    return {pair: ((sum(v) / len(v)) if v else NAN, len(v)) for pair, v in taus.items()}


# -- 2. Krippendorff's alpha (ordinal) ----------------------------------------------------
def coincidence_matrix(units: Iterable[Mapping[Hashable, float]]) -> tuple[list[float], list[list[float]]]:
    """The values in use (sorted) and the coincidence matrix o[c][k] over pairable units."""
    units = [list(u.values()) for u in units if len(u) >= 2]
    values = sorted({v for u in units for v in u})
    index = {v: i for i, v in enumerate(values)}
    o = [[0.0] * len(values) for _ in values]
    for u in units:
        m = len(u)
        for i, j in itertools.permutations(range(m), 2):  # ordered pairs from different coders
            o[index[u[i]]][index[u[j]]] += 1.0 / (m - 1)
    return values, o


def ordinal_distance(n: list[float]) -> list[list[float]]:
    """d[c][k] = (sum_{g=c..k} n_g - (n_c + n_k)/2)^2 for the marginals n of the sorted values."""
    size = len(n)
    d = [[0.0] * size for _ in range(size)]
    for c in range(size):
        for k in range(c + 1, size):
            d[c][k] = d[k][c] = (sum(n[c:k + 1]) - (n[c] + n[k]) / 2) ** 2
    return d


def krippendorff_alpha_ordinal(units: Iterable[Mapping[Hashable, float]]) -> float:
    """Krippendorff's alpha with the ordinal metric. `units`: one {coder: value} dict per unit.

    Units with fewer than two values are not pairable and are left out. NaN when undefined.
    """
    values, o = coincidence_matrix(units)
    n_c = [sum(row) for row in o]
    n = sum(n_c)
    if n < 2 or len(values) < 2:
        return NAN
    d = ordinal_distance(n_c)
    size = len(values)
    observed = sum(o[c][k] * d[c][k] for c in range(size) for k in range(size))
    expected = sum(n_c[c] * n_c[k] * d[c][k] for c in range(size) for k in range(size))
    if expected == 0:
        return NAN
    return 1.0 - (n - 1) * observed / expected


# -- 3. A project's agreement, from the store ---------------------------------------------
@dataclass(frozen=True)
class Agreement:
    """What the Progress page shows. `pairs`: one dict per annotator pair (names, mean_tau, n_docs)."""

    pairs: list[dict] = field(default_factory=list)
    alpha: float = NAN
    n_shared_documents: int = 0  # documents ranked by two or more annotators
    n_rankings: int = 0
    annotators: list[str] = field(default_factory=list)


def ranking_units(rankings: Iterable[tuple[Hashable, Hashable, Mapping[Hashable, float]]]) -> list[dict]:
    """(document, annotator, {candidate: rank}) triples -> one {annotator: rank} unit per (document, candidate)."""
    units: dict[tuple, dict] = defaultdict(dict)
    for doc, annotator, ranks in rankings:
        for cand, rank in ranks.items():
            units[(doc, cand)][annotator] = rank
    return list(units.values())


def project_agreement(store, project: str | int) -> Agreement:
    """Agreement statistics over the current rankings of a project."""
    rankings = store.rankings(project)
    names = {a.id: a.name for a in store.list_annotators()}
    triples = [(r.document_id, names.get(r.annotator_id, str(r.annotator_id)), r.ranks) for r in rankings]
    per_doc: dict[int, int] = defaultdict(int)
    for doc, _, _ in triples:
        per_doc[doc] += 1
    pairs = [
        {"annotator_a": a, "annotator_b": b, "mean_tau": tau, "n_docs": n}
        for (a, b), (tau, n) in sorted(pairwise_tau(triples).items())
    ]
    return Agreement(
        pairs=pairs,
        alpha=krippendorff_alpha_ordinal(ranking_units(triples)),
        n_shared_documents=sum(1 for c in per_doc.values() if c >= 2),
        n_rankings=len(triples),
        annotators=sorted({a for _, a, _ in triples}),
    )
