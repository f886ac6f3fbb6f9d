"""training/policy.py: the guidance losses by hand, reward alignment, and short tiny-model runs."""

import itertools
import math

import pytest
import torch

from training.cli import main
from training.errors import ValidationError
from training.policy.config import PolicyConfig
from training.policy.trainer import (
    adaptive_kl_coef,
    advantage_weights,
    align_rewards,
    centred,
    leave_one_out_baseline,
    reinforce_loss,
    reward_weighted_mle_loss,
    rewards_to_go,
    rwmle_weights,
    scaled,
    sequence_advantage_weights,
    sequence_mle_weights,
    sequence_weights,
    token_entropy,
    token_kl,
    train_policy,
    unigram_f1,
    weighted_mle_loss,
    whitened,
)
from training.rewards.config import RewardConfig
from training.rewards.model import TokenRewardModel
from training.store import NewDocument


def test_rwmle_weights_normalise_over_real_tokens():
    w = rwmle_weights(torch.tensor([[0.2, 0.6, 0.9]]), torch.tensor([[1, 1, 0]]))
    assert w.tolist()[0] == pytest.approx([0.25, 0.75, 0.0])


def test_advantage_weights_by_hand():
    # r = [0.4, 0.6] (pad 0.9 ignored): whitened z = [-1, 1]; softmax(z / 1) = [1, e^2] / (1 + e^2)
    r, mask = torch.tensor([[0.4, 0.6, 0.9]]), torch.tensor([[1, 1, 0]])
    e2 = math.exp(2)
    assert advantage_weights(r, mask, 1.0).tolist()[0] == pytest.approx([1 / (1 + e2), e2 / (1 + e2), 0.0])
    # beta = 2 halves z: [1, e] / (1 + e); the spread is beta's, not the reward model's: 0.49 / 0.51 gives the same
    want = [1 / (1 + math.e), math.e / (1 + math.e), 0.0]
    assert advantage_weights(r, mask, 2.0).tolist()[0] == pytest.approx(want)
    assert advantage_weights(torch.tensor([[0.49, 0.51, 0.0]]), mask, 2.0).tolist()[0] == pytest.approx(want)
    # whitened over the batch, normalised per sequence; a row with no real tokens is all 0
    r2, m2 = torch.tensor([[0.2, 0.2], [0.8, 0.8], [0.5, 0.5]]), torch.tensor([[1, 1], [1, 1], [0, 0]])
    assert advantage_weights(r2, m2, 1.0).tolist() == [[0.5, 0.5], [0.5, 0.5], [0.0, 0.0]]


def test_sequence_advantage_weights_by_hand():
    # scores [1, 3]: z = [-1, 1]; exp(z) / mean exp(z) = [e^-1, e] / cosh 1, spread over 2 and 1 real tokens
    w = sequence_advantage_weights(torch.tensor([1.0, 3.0]), torch.tensor([[1, 1], [1, 0]]), 1.0)
    lo, hi = math.exp(-1) / math.cosh(1), math.e / math.cosh(1)
    assert w.tolist() == [pytest.approx([lo / 2, lo / 2]), pytest.approx([hi, 0.0])]
    # equal scores: plain MLE (each sequence's tokens share weight 1)
    same = sequence_advantage_weights(torch.tensor([0.5, 0.5]), torch.tensor([[1, 1], [1, 0]]), 1.0)
    assert same.tolist() == [[0.5, 0.5], [1.0, 0.0]]


def test_reward_weighted_mle_by_hand():
    V = 4
    logits = torch.zeros(1, 2, V)  # uniform: CE = ln 4 everywhere
    labels = torch.tensor([[1, 2]])
    mask = torch.tensor([[1, 1]])
    assert reward_weighted_mle_loss(logits, labels, torch.tensor([[0.3, 0.9]]), mask).item() == pytest.approx(math.log(4))
    logits = torch.tensor([[[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], [[0.0] * 4, [0.0] * 4]])
    labels = torch.tensor([[0, 2], [3, 0]])
    rewards = torch.tensor([[0.2, 0.6], [0.5, 0.7]])
    mask = torch.tensor([[1, 1], [1, 0]])
    ce00 = -math.log(math.exp(2) / (math.exp(2) + 3))
    ce01 = -math.log(math.e / (math.e + 3))
    want = ((0.25 * ce00 + 0.75 * ce01) + (1.0 * math.log(4))) / 2
    assert reward_weighted_mle_loss(logits, labels, rewards, mask).item() == pytest.approx(want, rel=1e-6)


def test_reinforce_loss_by_hand():
    logits = torch.zeros(1, 2, 4, requires_grad=True)
    actions = torch.tensor([[1, 3]])
    rewards = torch.tensor([[1.0, 0.5]])
    mask = torch.tensor([[1, 1]])
    ln4 = math.log(4)
    loss = reinforce_loss(logits, actions, rewards, mask, alpha=0.125)
    assert loss.item() == pytest.approx(0.75 * ln4 - 0.125 * ln4, rel=1e-6)
    # reward-to-go: G = [1.5, 0.5], mean 1.0
    assert reinforce_loss(logits, actions, rewards, mask, alpha=0.0, reward_to_go=True).item() == pytest.approx(ln4)
    # a step on the loss raises the probability of the rewarded actions
    loss.backward()
    assert logits.grad[0, 0, 1] < 0 and logits.grad[0, 1, 3] < 0
    # rewards are detached
    r = rewards.clone().requires_grad_(True)
    lg = torch.zeros(1, 2, 4, requires_grad=True)
    reinforce_loss(lg, actions, r, mask).backward()
    assert r.grad is None and lg.grad is not None
    assert token_entropy(torch.zeros(1, 1, 4)).item() == pytest.approx(ln4)


def test_rewards_to_go_skips_pads():
    g = rewards_to_go(torch.tensor([[0.1, 0.2, 0.3, 9.0]]), torch.tensor([[1, 1, 1, 0]]))
    assert g.tolist()[0] == pytest.approx([0.6, 0.5, 0.3, 0.0])


def test_align_rewards_by_character_offsets():
    assert align_rewards(["ab", "c", " de"], [0.1, 0.2, 0.3], [1, 3, 6]) == [0.1, 0.2, 0.3]
    assert align_rewards(["ab", "c", " de"], [0.1, 0.2, 0.3], [2, 4, 9]) == [0.1, 0.3, 0.3]
    assert align_rewards([], [], [1, 2]) == [0.5, 0.5]
    assert unigram_f1("the cat sat", "the cat") == pytest.approx(0.8)


@pytest.fixture
def policy_project(store, tiny_causal, tmp_path):
    store.create_project("pol", kind="summarize", k=2, overlap=1)
    store.add_documents("pol", [
        NewDocument(f"d{i}", f"The river rose for {i} days and the bridge closed.",
                    [f"river rose {i}", f"cats {i}"], title=f"T{i}", reference=f"the river rose for {i} days")
        for i in range(6)])
    a, _ = store.add_annotator("a")
    for d in store.documents("pol"):
        store.save_ranking(a, d.id, {d.candidates[0].id: 1, d.candidates[1].id: 2})
    rm = TokenRewardModel.from_base(str(tiny_causal), RewardConfig(base_model=str(tiny_causal)))
    rm.save_pretrained(tmp_path / "rm")
    return tmp_path / "rm"


def test_rwmle_policy_loss_decreases(store, policy_project, tiny_causal, tmp_path):
    cfg = PolicyConfig(base_model=str(tiny_causal), reward_model=str(policy_project), steps=12, batch_size=3,
                       lr=3e-3, retrain_every=4, retrain_samples=2, max_new_tokens=8)
    rec = train_policy(store, "pol", cfg, tmp_path / "policy")
    m = rec.metrics
    assert m["method"] == "rwmle" and m["last_loss"] < m["first_loss"] - 0.3, m["history"]
    assert m["reward_retrained"] >= 1 and (tmp_path / "policy" / "reward_model" / "reward_card.json").exists()
    assert rec.kind == "policy" and store.list_models("pol", "policy")[0].id == rec.id
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tmp_path / "policy")


@pytest.mark.parametrize("guidance", ["token", "sequence"])
def test_advantage_weighted_mle_trains_end_to_end(store, policy_project, tiny_causal, tmp_path, guidance):
    cfg = PolicyConfig(base_model=str(tiny_causal), reward_model=str(policy_project), guidance=guidance, awr_beta=1.0,
                       steps=12, batch_size=3, lr=3e-3, max_new_tokens=8)
    rec = train_policy(store, "pol", cfg, tmp_path / "policy")
    assert rec.metrics["last_loss"] < rec.metrics["first_loss"] - 0.3, rec.metrics["history"]
    assert rec.card["config"]["awr_beta"] == 1.0 and rec.card["config"]["guidance"] == guidance


def test_reinforce_runs_end_to_end_with_seq2seq(store, policy_project, tiny_seq2seq, tmp_path):
    cfg = PolicyConfig(base_model=str(tiny_seq2seq), reward_model=str(policy_project), method="reinforce",
                       steps=3, batch_size=2, lr=1e-3, max_new_tokens=6, reward_to_go=True)
    rec = train_policy(store, "pol", cfg, tmp_path / "p2")
    assert rec.metrics["method"] == "reinforce"
    assert all(math.isfinite(h["loss"]) and 0 < h["mean_reward"] < 1 for h in rec.metrics["history"])


def test_policy_errors_and_cli(store, db_path, policy_project, tiny_causal, tmp_path, capsys):
    with pytest.raises(ValidationError, match="method"):
        PolicyConfig(method="ppo")
    store.create_project("noref", kind="prompt", k=2)
    store.add_documents("noref", [NewDocument("x", "classify", ["a", "b"])])
    with pytest.raises(ValidationError, match="rwmle needs reference"):
        train_policy(store, "noref", PolicyConfig(base_model=str(tiny_causal), reward_model=str(policy_project),
                                                  method="rwmle"), tmp_path / "x")
    with pytest.raises(ValidationError, match="no active reward model"):
        train_policy(store, "noref", PolicyConfig(base_model=str(tiny_causal)), tmp_path / "x")
    assert main(["train", "policy", "--db", db_path, "--project", "pol", "--base-model", str(tiny_causal),
                 "--reward", str(policy_project), "--out", str(tmp_path / "cli"), "--steps", "2",
                 "--batch-size", "2"]) == 0
    assert "rwmle: loss" in capsys.readouterr().out


def test_sequence_weights_and_centring_by_hand():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    w = sequence_weights(torch.tensor([0.5, 0.2]), mask)
    assert torch.allclose(w, torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.2, 0.2]]))
    # mean over the 5 real tokens = (1.0 + 0.6) / 5 = 0.32
    assert torch.allclose(centred(w, mask), torch.tensor([[0.18, 0.18, 0.0], [-0.12, -0.12, -0.12]]))
    # whitened: divided by the population std over the 5 real tokens, sqrt((2 * 0.18^2 + 3 * 0.12^2) / 5)
    sd = math.sqrt((2 * 0.18 ** 2 + 3 * 0.12 ** 2) / 5)
    assert torch.allclose(whitened(w, mask), torch.tensor([[0.18 / sd, 0.18 / sd, 0.0], [-0.12 / sd] * 3]))
    assert whitened(torch.ones(2, 3), mask).abs().sum() == 0  # equal rewards: no signal, not a division by 0
    # sequence MLE: (e_b / mean e) / T_b; scores 0.6 and 0.2, mean 0.4 -> 1.5 / 2 and 0.5 / 3
    sw = sequence_mle_weights(torch.tensor([0.6, 0.2]), mask)
    assert torch.allclose(sw, torch.tensor([[0.75, 0.75, 0.0], [1 / 6, 1 / 6, 1 / 6]]))


def test_weighted_mle_equals_plain_mle_for_uniform_weights():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])
    labels = torch.tensor([[0, 1]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    ce = [math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(-1.0))]
    loss = weighted_mle_loss(logits, labels, sequence_mle_weights(torch.tensor([0.3]), mask), mask)
    assert loss.item() == pytest.approx(sum(ce) / 2)


def test_token_kl_by_hand_and_zero_against_itself():
    p_logits = torch.log(torch.tensor([[[0.5, 0.5]]]))
    q_logits = torch.log(torch.tensor([[[0.9, 0.1]]]))
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert token_kl(p_logits, q_logits).item() == pytest.approx(expected, rel=1e-5)
    assert token_kl(q_logits, q_logits).item() == pytest.approx(0.0, abs=1e-7)
    x = p_logits.clone().requires_grad_(True)
    token_kl(x, q_logits).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_dense_and_sequence_reinforce_differ_and_kl_is_reported(store, policy_project, tiny_causal, tmp_path):
    """REINFORCE with token rewards and with the one sequence score: same samples budget, both
    train; the KL to the starting model is measured and stays finite."""
    hist = {}
    for guidance in ("token", "sequence"):
        cfg = PolicyConfig(base_model=str(tiny_causal), reward_model=str(policy_project), method="reinforce",
                           guidance=guidance, steps=3, batch_size=2, lr=1e-3, max_new_tokens=6, kl_coef=0.1)
        rec = train_policy(store, "pol", cfg, tmp_path / guidance)
        hist[guidance] = rec.metrics["history"]
        assert all(math.isfinite(h["kl"]) and h["kl"] >= 0 for h in hist[guidance])
        assert hist[guidance][-1]["kl"] > 0  # the policy has moved away from where it started
    assert [h["loss"] for h in hist["token"]] != [h["loss"] for h in hist["sequence"]]


def test_adaptive_kl_coef_by_hand():
    """Ziegler et al. 2019: beta * (1 + K * clip(KL / target - 1, -0.2, 0.2))."""
    assert adaptive_kl_coef(0.05, 0.3, 0.1) == pytest.approx(0.05 * 1.02)  # 3x the target: +20% error, clipped
    assert adaptive_kl_coef(0.05, 0.11, 0.1) == pytest.approx(0.05 * (1 + 0.1 * 0.1))
    assert adaptive_kl_coef(0.05, 0.1, 0.1) == pytest.approx(0.05)  # on target: unchanged
    assert adaptive_kl_coef(0.05, 0.0, 0.1) == pytest.approx(0.05 * 0.98)  # far below: -20%, clipped
    assert adaptive_kl_coef(0.05, 0.3, 0.1, gain=1.0) == pytest.approx(0.06)
    assert adaptive_kl_coef(0.05, 9.0, 0.0) == 0.05  # no target: fixed beta


def test_adaptive_kl_moves_beta_in_the_run_and_reports_it(store, policy_project, tiny_causal, tmp_path):
    """A target far below what lr 1e-2 gives raises beta every step; the history and the metrics
    record the beta each step used; without a target beta stays put."""
    cfg = PolicyConfig(base_model=str(tiny_causal), reward_model=str(policy_project), method="reinforce",
                       steps=4, batch_size=2, lr=1e-2, max_new_tokens=6, kl_coef=0.1, kl_target=1e-6, kl_gain=1.0)
    rec = train_policy(store, "pol", cfg, tmp_path / "adaptive")
    h = rec.metrics["history"]
    assert h[0]["kl_coef"] == pytest.approx(0.1)
    for a, b in itertools.pairwise(h):  # KL > 0 after the first step: each later step's beta is 1.2x (or 0.8x at KL 0)
        assert b["kl_coef"] == pytest.approx(adaptive_kl_coef(a["kl_coef"], a["kl"], 1e-6, 1.0))
    assert h[-1]["kl_coef"] > 0.1 and rec.metrics["last_kl_coef"] > h[-1]["kl_coef"]
    fixed = train_policy(store, "pol", PolicyConfig(base_model=str(tiny_causal), reward_model=str(policy_project),
                                                    method="reinforce", steps=2, batch_size=2, max_new_tokens=6,
                                                    kl_coef=0.1), tmp_path / "fixed")
    assert {x["kl_coef"] for x in fixed.metrics["history"]} == {0.1}
    with pytest.raises(ValidationError, match="kl_target"):
        PolicyConfig(base_model="x", kl_target=0.1)


def test_chat_models_are_prompted_through_their_template(store, policy_project, tiny_causal, tmp_path):
    import shutil

    from training.policy.trainer import Policy

    chat = tmp_path / "chat"
    shutil.copytree(tiny_causal, chat)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(chat)
    tok.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>"
    tok.save_pretrained(chat)
    cfg = PolicyConfig(base_model=str(chat), reward_model=str(policy_project), steps=1, batch_size=2)
    from training.policy.trainer import load

    setup = load(store, "pol", cfg)
    prompt = next(iter(setup.prompts.values()))
    assert prompt.startswith("<user>Summarize the following text") and prompt.endswith("<assistant>")
    assert isinstance(setup.pol, Policy) and setup.pol.chat
    ids = setup.pol.prompt_ids(prompt)
    assert ids[-1] != setup.pol.eos  # the chat prompt ends with the assistant's turn, no eos separator


def test_uniform_guidance_is_plain_mle_without_a_reward_model(store, policy_project, tiny_causal, tmp_path):
    with pytest.raises(ValidationError, match="uniform"):
        PolicyConfig(guidance="uniform", method="reinforce")
    store.create_project("norm", kind="summarize", k=2)  # no active reward model: not needed
    store.add_documents("norm", [NewDocument(f"n{i}", f"Rain {i}.", ["a", "b"], reference=f"rain {i}")
                                 for i in range(3)])
    rec = train_policy(store, "norm", PolicyConfig(base_model=str(tiny_causal), guidance="uniform", steps=4,
                                                   batch_size=3, lr=3e-3), tmp_path / "sft")
    h = rec.metrics["history"]
    assert h[-1]["loss"] < h[0]["loss"] and all(x["mean_reward"] == 1.0 for x in h)


def test_leave_one_out_baseline_and_scaling_by_hand():
    # pairs: each answer against the other answer to its document
    assert leave_one_out_baseline(torch.tensor([0.2, 0.6, 0.5, 0.1]), 2).tolist() == pytest.approx([0.6, 0.2, 0.1, 0.5])
    # a group of 3: the mean of the two others
    assert leave_one_out_baseline(torch.tensor([1.0, 2.0, 3.0]), 3).tolist() == pytest.approx([2.5, 2.0, 1.5])
    # scaled: divided by the root mean square over the real tokens, sqrt((1 + 1 + 4) / 3) = sqrt(2); pads stay 0
    w, mask = torch.tensor([[1.0, -1.0, 7.0], [2.0, 9.0, 9.0]]), torch.tensor([[1, 1, 0], [1, 0, 0]])
    r2 = math.sqrt(2)
    assert torch.allclose(scaled(w, mask), torch.tensor([[1 / r2, -1 / r2, 0.0], [2 / r2, 0.0, 0.0]]))
    assert scaled(torch.zeros(1, 2), torch.ones(1, 2)).abs().sum() == 0


@pytest.mark.parametrize("guidance", ["token", "sequence"])
def test_reinforce_with_several_answers_per_document_compares_them(store, policy_project, tiny_causal, tmp_path,
                                                                   monkeypatch, guidance):
    """samples_per_prompt=2: two answers per document each step, each weighed against the other one's
    sequence reward; with the sequence reward the pair's weights are equal and opposite."""
    from training.policy import trainer

    seen, sampled = [], []
    real_loss, real_sample = trainer.reinforce_loss, trainer.Policy.sample

    def spy_loss(logits, actions, rewards, mask, **kw):
        seen.append((rewards.detach().clone(), mask.clone()))
        return real_loss(logits, actions, rewards, mask, **kw)

    def spy_sample(self, prompts, n=1):
        sampled.append(prompts)
        return real_sample(self, prompts, n)

    monkeypatch.setattr(trainer, "reinforce_loss", spy_loss)
    monkeypatch.setattr(trainer.Policy, "sample", spy_sample)
    cfg = PolicyConfig(base_model=str(tiny_causal), reward_model=str(policy_project), method="reinforce",
                       guidance=guidance, steps=2, batch_size=2, samples_per_prompt=2, lr=1e-3, max_new_tokens=6)
    rec = train_policy(store, "pol", cfg, tmp_path / "p")
    assert len(rec.metrics["history"]) == 2 and [len(p) for p in sampled] == [4, 4]
    assert all(p[0] == p[1] and p[2] == p[3] for p in sampled)  # a document's answers side by side
    for w, mask in seen:
        real = mask.bool()
        assert torch.isfinite(w).all() and (w[~real] == 0).all()
        if guidance == "sequence":  # one weight per answer, the pair's equal and opposite
            per_answer = [w[i][real[i]] for i in range(4)]
            assert all(torch.allclose(a, a[0].expand_as(a)) for a in per_answer)
            assert per_answer[0][0].item() == pytest.approx(-per_answer[1][0].item(), abs=1e-6)
            assert per_answer[2][0].item() == pytest.approx(-per_answer[3][0].item(), abs=1e-6)
    with pytest.raises(ValidationError, match="samples_per_prompt"):
        PolicyConfig(base_model="x", samples_per_prompt=2, reward_to_go=True)
