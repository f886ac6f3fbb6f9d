"""Agreement statistics: hand-worked values and an independent brute-force reference."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from training.annotation.agreement import (
    kendall_tau,
    krippendorff_alpha_ordinal,
    ordinal_distance,
    pairwise_tau,
    project_agreement,
    ranking_units,
)


# -- Kendall's tau -------------------------------------------------------------------------
def test_kendall_tau_by_hand():
    a = {"x": 1, "y": 2, "z": 3}
    assert kendall_tau(a, a) == pytest.approx(1.0)
    assert kendall_tau(a, {"x": 3, "y": 2, "z": 1}) == pytest.approx(-1.0)
    # one swapped pair of three: concordant 2, discordant 1 -> (2 - 1) / 3
    assert kendall_tau(a, {"x": 1, "y": 3, "z": 2}) == pytest.approx(1 / 3)


def test_kendall_tau_b_with_ties_by_hand():
    # a = 1,2,3 ; b = 1,1,2 (x and y tied). Pairs: (x,y) tied in b only; (x,z), (y,z) concordant.
    # tau-b = (C - D) / sqrt((P - T_a)(P - T_b)) = 2 / sqrt(3 * 2)
    tau = kendall_tau({"x": 1, "y": 2, "z": 3}, {"x": 1, "y": 1, "z": 2})
    assert tau == pytest.approx(2 / math.sqrt(6))


def test_kendall_tau_only_shared_items_and_undefined_cases():
    # w only in a, v only in b: tau over x, y, z
    assert kendall_tau({"w": 4, "x": 1, "y": 2, "z": 3}, {"v": 9, "x": 1, "y": 2, "z": 3}) == pytest.approx(1.0)
    assert math.isnan(kendall_tau({"x": 1}, {"x": 1}))  # one shared item
    assert math.isnan(kendall_tau({"x": 1, "y": 2}, {"z": 1, "w": 2}))  # none shared
    assert math.isnan(kendall_tau({"x": 1, "y": 1}, {"x": 1, "y": 2}))  # a constant side


def test_pairwise_tau_means_over_shared_documents():
    rankings = [
        ("d1", "ann", {1: 1, 2: 2, 3: 3}), ("d1", "bob", {1: 1, 2: 2, 3: 3}),  # tau 1
        ("d2", "ann", {4: 1, 5: 2, 6: 3}), ("d2", "bob", {4: 1, 5: 3, 6: 2}),  # tau 1/3
        ("d2", "cat", {4: 3, 5: 2, 6: 1}),                                    # ann-cat -1, bob-cat -1/3
        ("d3", "bob", {7: 1, 8: 2, 9: 3}),                                    # nobody shares d3
    ]
    out = pairwise_tau(rankings)
    assert set(out) == {("ann", "bob"), ("ann", "cat"), ("bob", "cat")}
    tau, n = out[("ann", "bob")]
    assert (tau, n) == (pytest.approx((1 + 1 / 3) / 2), 2)
    assert out[("ann", "cat")] == (pytest.approx(-1.0), 1)
    assert out[("bob", "cat")] == (pytest.approx(-1 / 3), 1)


def test_pairwise_tau_pair_with_only_undefined_documents():
    out = pairwise_tau([("d", "a", {1: 1, 2: 1}), ("d", "b", {1: 1, 2: 2})])
    tau, n = out[("a", "b")]
    assert math.isnan(tau) and n == 0


# -- Krippendorff's alpha (ordinal) -------------------------------------------------------
def brute_force_alpha_ordinal(units):
    """A reference written differently: pooled mid-ranks and all pairs of values.

    The ordinal metric is the squared difference of the values' mid-ranks in the pooled list of
    pairable values (sum_{g=c..k} n_g - (n_c + n_k)/2 is exactly mid-rank(k) - mid-rank(c)).
    D_o averages that over pairs within units (weighted 1/(m_u - 1)), D_e over all pairs.
    """
    units = [list(u.values()) for u in units if len(u) >= 2]
    pooled = sorted(v for u in units for v in u)
    midrank = {}
    for v in set(pooled):
        first = pooled.index(v) + 1
        last = len(pooled) - pooled[::-1].index(v)
        midrank[v] = (first + last) / 2
    n = len(pooled)
    within = sum((midrank[u[i]] - midrank[u[j]]) ** 2 / (len(u) - 1)
                 for u in units for i, j in itertools.permutations(range(len(u)), 2))
    between = sum((midrank[a] - midrank[b]) ** 2 for a, b in itertools.permutations(pooled, 2))
    return 1 - (n - 1) * within / between


def test_alpha_perfect_agreement_is_one():
    units = [{"a": r, "b": r, "c": r} for r in (1, 2, 3, 4, 1, 2, 3, 4)]
    assert krippendorff_alpha_ordinal(units) == pytest.approx(1.0)


def test_alpha_two_coders_worked_by_hand():
    # Coder a ranks three candidates 1,2,3; coder b gives 1,3,2.
    # Pairable values: 1,1,2,2,3,3 -> n_1 = n_2 = n_3 = 2, n = 6.
    # Coincidences (m_u = 2, weight 1): o_11 = 2, o_23 = o_32 = 2.
    # Ordinal d: d_12 = (2+2 - 2)^2 = 4, d_23 = 4, d_13 = (2+2+2 - 2)^2 = 16.
    # sum o d = 2*4 + 2*4 = 16; sum n_c n_k d = 2 * (4*4 + 4*4 + 4*16) = 192.
    # alpha = 1 - (6 - 1) * 16 / 192 = 7/12.
    units = [{"a": 1, "b": 1}, {"a": 2, "b": 3}, {"a": 3, "b": 2}]
    assert ordinal_distance([2, 2, 2]) == [[0, 4, 16], [4, 0, 4], [16, 4, 0]]
    assert krippendorff_alpha_ordinal(units) == pytest.approx(7 / 12)
    assert brute_force_alpha_ordinal(units) == pytest.approx(7 / 12)


def test_alpha_krippendorff_2011_reliability_data():
    # The 4 coders x 12 units example with missing values from Krippendorff (2011),
    # "Computing Krippendorff's Alpha-Reliability"; the paper reports ordinal alpha = 0.815.
    rows = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    }
    units = [{c: rows[c][u] for c in rows if rows[c][u] is not None} for u in range(12)]
    alpha = krippendorff_alpha_ordinal(units)
    assert alpha == pytest.approx(0.815, abs=5e-4)
    assert alpha == pytest.approx(brute_force_alpha_ordinal(units))


def test_alpha_matches_brute_force_on_random_rankings():
    rng = random.Random(0)
    units = []
    for _ in range(30):  # 30 documents, K = 4, 2..4 annotators with random ties-free rankings
        coders = rng.sample(["a", "b", "c", "d"], rng.randint(2, 4))
        perms = {c: rng.sample([1, 2, 3, 4], 4) for c in coders}
        units += [{c: perms[c][i] for c in coders} for i in range(4)]
    units.append({"a": 2})  # not pairable: ignored by both
    assert krippendorff_alpha_ordinal(units) == pytest.approx(brute_force_alpha_ordinal(units))


def test_alpha_systematic_disagreement_is_below_zero():
    # b always ranks in reverse of a
    units = [{"a": r, "b": 5 - r} for r in (1, 2, 3, 4)] * 5
    assert krippendorff_alpha_ordinal(units) < 0


def test_alpha_undefined_cases():
    assert math.isnan(krippendorff_alpha_ordinal([]))
    assert math.isnan(krippendorff_alpha_ordinal([{"a": 1}, {"b": 2}]))  # nothing pairable
    assert math.isnan(krippendorff_alpha_ordinal([{"a": 1, "b": 1}]))  # one value in use


def test_ranking_units_are_document_candidate_pairs():
    units = ranking_units([("d1", "a", {1: 1, 2: 2}), ("d1", "b", {1: 2, 2: 1}), ("d2", "a", {3: 1, 4: 2})])
    assert sorted(map(sorted, (u.items() for u in units))) == sorted([
        [("a", 1), ("b", 2)], [("a", 2), ("b", 1)], [("a", 1)], [("a", 2)],
    ])


# -- from the store -----------------------------------------------------------------------
def test_project_agreement_from_store(store, project):
    ann, _ = store.add_annotator("ann")
    bob, _ = store.add_annotator("bob")
    docs = store.documents("p")
    for d in docs[:2]:  # both rank the first two documents the same way
        ranks = {c.id: i + 1 for i, c in enumerate(d.candidates)}
        store.save_ranking(ann, d.id, ranks, seconds=10)
        store.save_ranking(bob, d.id, ranks, seconds=12)
    d = docs[2]  # ann alone on the third
    store.save_ranking(ann, d.id, {c.id: 3 - i for i, c in enumerate(d.candidates)})
    ag = project_agreement(store, "p")
    assert ag.n_shared_documents == 2
    assert ag.n_rankings == 5
    assert ag.annotators == ["ann", "bob"]
    assert ag.pairs == [{"annotator_a": "ann", "annotator_b": "bob", "mean_tau": pytest.approx(1.0), "n_docs": 2}]
    assert ag.alpha == pytest.approx(1.0)

    # bob revises the second document to the reverse order: tau there is -1, alpha drops below 1
    d1 = docs[1]
    store.save_ranking(bob, d1.id, {c.id: 3 - i for i, c in enumerate(d1.candidates)})
    ag = project_agreement(store, "p")
    assert ag.pairs[0]["mean_tau"] == pytest.approx(0.0)
    triples = [(r.document_id, r.annotator_id, r.ranks) for r in store.rankings("p")]
    assert ag.alpha == pytest.approx(brute_force_alpha_ordinal(ranking_units(triples)))
    assert ag.alpha < 1


def test_project_agreement_empty_project(store, project):
    ag = project_agreement(store, "p")
    assert ag.pairs == [] and ag.n_shared_documents == 0 and math.isnan(ag.alpha)
