"""bench/feedback_round.py's own bookkeeping, on hand-made answers: the verdicts between two arms,
the goals head to head, and the check that keeps --reuse-rms from leaking test questions.

The bench itself needs the shared QA-Feedback data and the real models; these parts need neither.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "feedback_round.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("feedback_round", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def arm(answers, judge, rouge):
    return {"answers": answers, "judge": judge, "rouge": rouge}


def test_verdicts_tie_on_the_same_answer_and_count_the_rest(bench):
    mine = arm(["a b c", "Same  answer", "x", "one two"], [0.9, 0.1, 0.2, 0.5], [0.5, 0.3, 0.1, 0.4])
    theirs = arm(["a b", "same answer", "y z", "three"], [0.1, 0.8, 0.3, 0.6], [0.2, 0.3, 0.2, 0.4])
    v = bench.verdicts(mine, theirs)
    # judge: q1 win, q2 the same text (tie, whatever the scores), q3 loss, q4 loss
    assert (v["wins"], v["losses"], v["ties"]) == (1, 2, 1)
    assert v["win_rate"] == pytest.approx(1 / 3)
    # ROUGE-L: q1 win, q3 loss, q4 equal scores
    assert (v["rouge_wins"], v["rouge_losses"]) == (1, 1) and v["rouge_win_rate"] == 0.5
    # longer wins: 3 > 2 words, 2 = 2, 1 < 2, 2 > 1
    assert (v["length_judge_wins"], v["length_judge_losses"]) == (2, 1)
    lo, hi = v["ci_low"], v["ci_high"]
    assert 0 < lo < 1 / 3 < hi < 1


def test_head_to_head_covers_the_goals_whose_arms_ran(bench):
    per_q = {"sft_preferred": arm(["a", "b", "c"], [0.1, 0.5, 0.2], [0.1, 0.2, 0.3]),
             "token_wmle": arm(["a2", "b2", "c"], [0.3, 0.6, 0.2], [0.2, 0.1, 0.3]),
             "seq_wmle": arm(["a", "b3", "c3"], [0.1, 0.9, 0.0], [0.1, 0.4, 0.2])}
    results = {"sft_preferred": {"win_rate": 0.40, "rouge_win_rate": 0.55},
               "token_wmle": {"win_rate": 0.46, "rouge_win_rate": 0.64},
               "seq_wmle": {"win_rate": 0.50, "rouge_win_rate": 0.50}}
    goals = bench.head_to_head(results, per_q)
    assert list(goals) == ["token_wmle > sft_preferred", "token_wmle > seq_wmle"]  # no REINFORCE, no ILF arm
    g = goals["token_wmle > sft_preferred"]
    assert (g["wins"], g["losses"], g["ties"]) == (2, 0, 1)
    assert (g["rouge_wins"], g["rouge_losses"]) == (1, 1)
    assert g["judge_gap_points"] == pytest.approx(6.0) and g["rouge_gap_points"] == pytest.approx(9.0)
    g = goals["token_wmle > seq_wmle"]
    assert (g["wins"], g["losses"], g["ties"]) == (2, 1, 0)
    assert g["judge_gap_points"] == pytest.approx(-4.0)


def test_reuse_only_from_a_folder_of_the_same_split(bench, tmp_path):
    args = bench.arguments(["--quick", "--seed", "0", "--reuse-rms", str(tmp_path)])
    assert args.policy_seed == 0  # defaults to --seed
    with pytest.raises(SystemExit, match="no split.json"):
        bench.check_reuse(args)
    (tmp_path / "split.json").write_text(json.dumps({k: getattr(args, k) for k in bench.SPLIT_KEYS}))
    bench.check_reuse(args)  # the same split: fine
    # another policy seed is the point of reusing
    bench.check_reuse(bench.arguments(["--quick", "--policy-seed", "3", "--reuse-rms", str(tmp_path)]))
    other = bench.arguments(["--quick", "--seed", "1", "--n-test", "80", "--reuse-rms", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"--seed 0 there, 1 here; --n-test 120 there, 80 here"):
        bench.check_reuse(other)
