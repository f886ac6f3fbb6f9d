"""Grouping a refused import's problems by kind, with counts and the first line numbers."""

from __future__ import annotations

from training.data.problem_groups import group_problems

K = "has 3 candidates but the project has K=2"


def test_same_kind_is_one_group_most_frequent_first():
    problems = [(n, "candidates", K) for n in range(2, 81)] + [(1, "json", "not valid JSON"),
                                                              (90, "json", "not valid JSON")]
    groups = group_problems(problems)
    assert [(g.count, g.field) for g in groups] == [(79, "candidates"), (2, "json")]
    assert groups[0].summary() == f"79 × candidates: {K} — lines 2, 3, 4, 5, 6 …"
    assert groups[1].summary() == "2 × json: not valid JSON — lines 1, 90"
    assert groups[1].summary(first=1) == "2 × json: not valid JSON — lines 1 …"


def test_one_problem_and_a_file_level_one():
    assert group_problems([(4, "text", "missing")])[0].summary() == "1 × text: missing — line 4"
    assert group_problems([(0, "file", "empty")])[0].summary() == "1 × file: empty"
    assert group_problems([]) == []
