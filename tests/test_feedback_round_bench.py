"""bench/feedback_round.py's own bookkeeping, on hand-made answers: the verdicts between two arms,
the goals head to head (one policy seed, and pooled over several), and the check that keeps
--reuse-rms from leaking test questions.

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
    v = bench.verdicts({0: mine}, {0: theirs})
    # judge: q1 win, q2 the same text (tie, whatever the scores), q3 loss, q4 loss
    assert (v["wins"], v["losses"], v["ties"]) == (1, 2, 1)
    assert v["win_rate"] == pytest.approx(1 / 3)
    # ROUGE-L: q1 win, q3 loss, q4 equal scores
    assert (v["rouge_wins"], v["rouge_losses"]) == (1, 1) and v["rouge_win_rate"] == 0.5
    # longer wins: 3 > 2 words, 2 = 2, 1 < 2, 2 > 1
    assert (v["length_judge_wins"], v["length_judge_losses"]) == (2, 1)
    lo, hi = v["ci_low"], v["ci_high"]
    assert 0 < lo < 1 / 3 < hi < 1
    # every pair is within MATCHED_WORDS (3) words: the length-matched verdicts are the judge's
    assert (v["matched_wins"], v["matched_losses"]) == (1, 2)


def test_length_matched_verdicts_leave_out_pairs_far_apart_in_length(bench):
    mine = arm(["one two three four five", "a", "p q r s"], [0.9, 0.1, 0.7], [0, 0, 0])
    theirs = arm(["x", "b", "s"], [0.1, 0.5, 0.2], [0, 0, 0])
    v = bench.verdicts({0: mine}, {0: theirs})
    assert (v["wins"], v["losses"]) == (2, 1)
    # q1: 4 words longer (left out); q2: the same length, a loss; q3: 3 words longer, a win
    assert (v["matched_wins"], v["matched_losses"]) == (1, 1) and v["matched_win_rate"] == 0.5


BASE = arm(["b0", "b1", "b2"], [0.2, 0.5, 0.3], [0.2, 0.2, 0.2])
SFT = arm(["a", "b", "c"], [0.1, 0.5, 0.2], [0.1, 0.2, 0.3])
TOKEN = arm(["a2", "b2", "c"], [0.3, 0.6, 0.2], [0.2, 0.1, 0.3])
SEQ = arm(["a", "b3", "c3"], [0.1, 0.9, 0.0], [0.1, 0.4, 0.2])


def test_head_to_head_covers_the_goals_whose_arms_ran(bench):
    goals = bench.head_to_head({"base": {0: BASE}, "sft_preferred": {0: SFT}, "token_wmle": {0: TOKEN},
                                "seq_wmle": {0: SEQ}})
    assert list(goals) == ["token_wmle > sft_preferred", "token_wmle > seq_wmle"]  # no REINFORCE, no ILF arm
    g = goals["token_wmle > sft_preferred"]
    # judge: q1 0.3 > 0.1, q2 0.6 > 0.5, q3 the same answer "c"
    assert (g["wins"], g["losses"], g["ties"]) == (2, 0, 1) and "runs" not in g
    assert (g["rouge_wins"], g["rouge_losses"]) == (1, 1)
    # against base, judge: sft 0 of 2 (q2 equal scores), token 2 of 3, seq 1 of 3; ROUGE-L: each 1 of 2
    assert g["judge_gap_points"] == pytest.approx(100 * 2 / 3) and g["rouge_gap_points"] == pytest.approx(0.0)
    g = goals["token_wmle > seq_wmle"]
    assert (g["wins"], g["losses"], g["ties"]) == (2, 1, 0)
    assert g["judge_gap_points"] == pytest.approx(100 / 3)


def test_head_to_head_pools_the_seeds_both_arms_ran(bench):
    token1 = arm(["x", "b", "y"], [0.9, 0.5, 0.1], [0.3, 0.3, 0.3])
    sft1 = arm(["x ", "B", "z"], [0.1, 0.4, 0.5], [0.3, 0.3, 0.4])  # q1, q2: the same answers as token1's
    per_q = {"base": {0: BASE, 1: BASE}, "sft_preferred": {0: SFT, 1: sft1}, "token_wmle": {0: TOKEN, 1: token1},
             "seq_wmle": {0: SEQ}}  # seq_wmle's seed 1 has not run (yet)
    goals = bench.head_to_head(per_q)
    g = goals["token_wmle > sft_preferred"]
    # seed 0: 2/0/1 as above; seed 1: two ties, q3 0.1 < 0.5
    assert (g["wins"], g["losses"], g["ties"], g["runs"]) == (2, 1, 3, 2)
    assert g["win_rate"] == pytest.approx(2 / 3) and g["ci_low"] <= 2 / 3 <= g["ci_high"]
    # ROUGE-L, seed 1: q3 0.3 < 0.4 -> pooled 1 win, 2 losses
    assert (g["rouge_wins"], g["rouge_losses"]) == (1, 2)
    # against base on both seeds, judge: token 2/3 + (0.9 > 0.2, 0.5 = 0.5, 0.1 < 0.3) -> 3 of 5;
    # sft 0/2 + (0.1 < 0.2, 0.4 < 0.5, 0.5 > 0.3) -> 1 of 5
    assert g["judge_gap_points"] == pytest.approx(100 * (3 / 5 - 1 / 5))
    g = goals["token_wmle > seq_wmle"]  # seed 0 only, the one seed both ran
    assert (g["wins"], g["losses"], g["ties"]) == (2, 1, 0) and "runs" not in g
    assert g["judge_gap_points"] == pytest.approx(100 / 3)


def test_policy_seeds(bench):
    assert bench.arguments(["--seed", "4"]).policy_seeds == [4]
    args = bench.arguments(["--policy-seed", "0,1, 2"])
    assert (args.policy_seeds, args.policy_seed) == ([0, 1, 2], 0)
    for bad in ("1,1", "one", ","):
        with pytest.raises(SystemExit):
            bench.arguments(["--policy-seed", bad])


def test_reward_models_can_learn_from_more_questions_on_the_same_test(bench):
    rows = [{"question": f"q{i}"} for i in range(20)]
    args = bench.arguments(["--n-train", "3", "--n-judge", "4", "--n-test", "5", "--seed", "1"])
    train, judge, test = bench.split_questions(rows, args)
    assert bench.reward_model_questions(rows, args) == train  # 0: the policy-train questions
    more = bench.arguments(["--n-train", "3", "--n-judge", "4", "--n-test", "5", "--seed", "1", "--rm-n-train", "11"])
    assert bench.split_questions(rows, more) == (train, judge, test)  # the judge and test questions stay
    rm = bench.reward_model_questions(rows, more)
    names = {r["question"] for r in rm}
    assert len(rm) == 11 and rm[:3] == train
    assert not names & {r["question"] for r in judge + test}
    assert len(names | {r["question"] for r in judge + test}) == 20  # every question outside them
    for bad, why in (("12", "only 11 questions are outside the judge and test splits"), ("2", "at least --n-train")):
        with pytest.raises(SystemExit, match=why):
            bench.reward_model_questions(rows, bench.arguments(
                ["--n-train", "3", "--n-judge", "4", "--n-test", "5", "--rm-n-train", bad]))


def test_reuse_only_from_a_folder_of_the_same_split(bench, tmp_path):
    args = bench.arguments(["--quick", "--seed", "0", "--reuse-rms", str(tmp_path)])
    assert args.policy_seed == 0  # defaults to --seed
    with pytest.raises(SystemExit, match="no split.json"):
        bench.check_reuse(args)
    (tmp_path / "split.json").write_text(json.dumps({k: getattr(args, k) for k in bench.SPLIT_KEYS}))
    bench.check_reuse(args)  # the same split: fine
    old = {k: getattr(args, k) for k in bench.SPLIT_KEYS if k != "rm_n_train"}  # kept before --rm-n-train
    (tmp_path / "split.json").write_text(json.dumps(old))
    bench.check_reuse(args)
    with pytest.raises(SystemExit, match="--rm-n-train 0 there, 200 here"):
        bench.check_reuse(bench.arguments(["--quick", "--rm-n-train", "200", "--reuse-rms", str(tmp_path)]))
    # another policy seed is the point of reusing
    bench.check_reuse(bench.arguments(["--quick", "--policy-seed", "3", "--reuse-rms", str(tmp_path)]))
    other = bench.arguments(["--quick", "--seed", "1", "--n-test", "80", "--reuse-rms", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"--seed 0 there, 1 here; --n-test 120 there, 80 here"):
        bench.check_reuse(other)


def test_every_reward_model_is_measured_on_the_test_preferences(bench, tiny_causal, tmp_path):
    """A reused RM whose card has no test figures (kept before they were taken) is measured now, on
    the test lists, as a fresh one would be; the printed accuracies put "longer wins" beside them."""
    from training.rewards.config import RewardConfig
    from training.rewards.model import TokenRewardModel
    from training.rewards.trainer import RankedList, test_metrics

    test = [RankedList(f"question {i}", ("a short one", "a much longer answer " * (i + 1)), (2, 1), group=str(i))
            for i in range(4)]
    cfg = RewardConfig(base_model=str(tiny_causal), max_length=48)
    rm = TokenRewardModel.from_base(str(tiny_causal), cfg)
    rm.save_pretrained(tmp_path / "rm-token", card={"metrics": {"best_epoch": 1}})
    args = bench.arguments(["--quick", "--rm-backbone", str(tiny_causal), "--rm-max-length", "48", "--device", "cpu",
                            "--reuse-rms", str(tmp_path)])
    got = bench.reused_reward_model(args, "token", False, str(tiny_causal), test)["metrics"]
    want = test_metrics(TokenRewardModel.load(tmp_path / "rm-token"), test)
    assert got["best_epoch"] == 1 and got["test_pairs"] == 4
    assert got["test_pairwise_accuracy"] == pytest.approx(want["test_pairwise_accuracy"])
    assert got["test_longer_wins"] == 1.0  # the longer answer is the preferred one in every list

    rms = {"token": {"metrics": got}, "judge": {"metrics": {"test_pairwise_accuracy": 0.6, "test_longer_wins": 1.0}}}
    assert bench.test_accuracies(rms) == {"token": want["test_pairwise_accuracy"], "judge": 0.6, "longer_wins": 1.0}


def test_rouge_rankings_are_a_known_preference(bench):
    """--rm-data rouge: a question's different answers ranked by ROUGE-L against its gold answer."""
    qa = bench.qa_feedback
    gold = "the cat sat on the mat"
    row = {"question": "where?", "passages": [["t", "The cat sat on the mat."]], "gold": gold,
           "prediction 1": "a dog ran", "prediction 2": "the cat sat on the mat",
           "prediction 3": "the cat sat", "prediction 4": "the cat sat"}
    (lst,) = qa.rouge_lists([row], chars=100)
    # the repeated answer is listed once; ranks follow ROUGE-L F (1.0 > 0.667 > 0), 1 = best
    assert lst.candidates == ("a dog ran", "the cat sat on the mat", "the cat sat")
    assert lst.ranks == (3, 1, 2) and lst.group == "where?" and lst.document.startswith("Question: where?")
    assert qa.rouge_l("the cat sat", gold) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert qa.rouge_best(row) == "the cat sat on the mat"
    # answers that tie (here: all the same score) carry no preference, and the question gives no list
    same = {**row, "prediction 1": "x", "prediction 2": "y", "prediction 3": "z", "prediction 4": "w"}
    assert qa.rouge_lists([same]) == []
    args = bench.arguments(["--rm-data", "rouge"])
    assert bench.preferred_answer(args, row) == "the cat sat on the mat"


def test_rouge_trained_models_are_reported_on_their_own_rankings(bench):
    rms = {"token": {"metrics": {"test_pairwise_accuracy": 0.7, "test_pairs": 300, "test_longer_wins": 0.4}},
           "seq": {"metrics": {"test_pairwise_accuracy": 0.65, "test_pairs": 300, "test_longer_wins": 0.4}},
           "judge": {"metrics": {"test_pairwise_accuracy": 0.56, "test_pairs": 636, "test_longer_wins": 0.56}}}
    acc = bench.test_accuracies(rms, rouge=True)
    assert acc == {"token": 0.7, "seq": 0.65, "judge": 0.56, "longer_wins": 0.56, "longer_wins_rouge": 0.4}
    assert bench.accuracy_line(rms, acc) == (
        "accuracy on the test questions' human preferences (n=636 pairs): judge 0.560, longer wins 0.560; "
        "on their ROUGE-L rankings (n=300 pairs): token 0.700, seq 0.650, longer wins 0.400")
    plain = bench.test_accuracies(rms)
    assert "longer_wins_rouge" not in plain
    assert bench.accuracy_line(rms, plain) == ("accuracy on the test questions' human preferences (n=636 pairs): "
                                               "token 0.700, seq 0.650, judge 0.560, longer wins 0.560")
