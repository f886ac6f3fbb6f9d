"""ILF from critiques: templates, post-processing, InstructRM scores, selection, review, datasets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
import torch

from training.errors import Forbidden, NotFound, TokenwiseError, ValidationError
from training.ilf.config import RefineConfig, SelectConfig
from training.ilf.dataset import build_dataset
from training.ilf.refine import refine
from training.ilf.select import answer_token_ids, instructrm_scores, select, yes_probability
from training.ilf.templates import fill, item_fields, load_templates, postprocess
from training.lm import load_lm
from training.store import NewDocument

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "schemas"


@pytest.fixture
def crit(store):
    """Project "p" (2 documents x 3 candidates), annotators ann/other/boss, two critiques by ann."""
    store.create_project("p", kind="summarize", k=3)
    store.add_documents("p", [
        NewDocument(f"d{i}", f"The river rose {i + 2} metres after rain, and the town closed the bridge.",
                    ["The river rose.", f"Rain fell on day {i}.", "A cat."], title=f"River {i}")
        for i in range(2)
    ])
    ann, _ = store.add_annotator("ann")
    other, _ = store.add_annotator("other")
    boss, _ = store.add_annotator("boss", role="admin")
    docs = store.documents("p")
    k1 = store.save_critique(ann, docs[0].candidates[0].id, "Say how far it rose and that the bridge closed.")
    k2 = store.save_critique(ann, docs[1].candidates[0].id, "Give the height.", span=(0, 9))
    return {"ann": ann, "other": other, "boss": boss, "k": [k1, k2], "docs": docs}


@pytest.fixture(scope="module")
def tiny_lm(tiny_causal):
    return load_lm(tiny_causal)


def add_three(store, critique_id):
    return store.add_refinements(critique_id, ["The river rose 2 metres.", "The bridge closed.", "A cat sat."],
                                 generator="test")


# -- templates and prompts --------------------------------------------------------------------
def test_refinement_prompt_fills_every_field(store, crit):
    t = load_templates(store.get_project("p"))
    item = store.critique_items("p")[1]
    f = item_fields(item, t, "summarize")
    prompt = fill(t["refinement"]["feedback"], f)
    assert "{" not in prompt
    for value in (f["instruction"], "River 1", item.document.text, "The river rose.", "Give the height."):
        assert value in prompt
    assert 'About "The river"' in prompt  # the quoted span is part of the feedback
    assert prompt.rstrip().endswith("Improved output:")
    base = fill(t["refinement"]["no_feedback"], item_fields(item, t, "summarize", baseline=True))
    assert "Give the height." not in base and "feedback" not in base.lower()


def test_template_without_needed_field_is_refused(store, crit):
    store.update_project("p", templates={"refinement": {
        "feedback": "Text: {text}\nOutput: {output}\nImproved output:", "no_feedback": "{output}"}})
    with pytest.raises(ValidationError, match=r"refinement.feedback: the field \{feedback\} is missing"):
        refine(store, "p", RefineConfig(model="/nonexistent/never-loaded"))
    store.update_project("p", templates={"instructrm": [{"name": "x", "prompt": "{feedback} {refinment}",
                                                          "yes": "Yes", "no": "No"}]})
    with pytest.raises(ValidationError, match=r"instructrm x: the field \{refinement\} is missing"):
        load_templates(store.get_project("p"))
    store.update_project("p", templates={"instructrm": [{"name": "x", "prompt": "{feedback} {refinement} {colour}",
                                                          "yes": "Yes", "no": "No"}]})
    with pytest.raises(ValidationError, match=r"unknown field \{colour\}"):
        load_templates(store.get_project("p"))


def test_default_templates_have_five_instructrm_prompts_with_own_answer_words():
    t = load_templates()
    assert len(t["instructrm"]) == 5
    assert {(x["yes"], x["no"]) for x in t["instructrm"]} == {("Yes", "No"), ("True", "False")}
    assert len({x["name"] for x in t["instructrm"]}) == 5


# -- post-processing ------------------------------------------------------------------------
@pytest.mark.parametrize("raw, want", [
    ("  The river rose. The bridge closed", "The river rose."),
    ("The river rose.\n\nTitle: something else", "The river rose."),
    ("It rose 2 m! Then the\n\nnext", "It rose 2 m!"),
    ("no full stop at all", "no full stop at all"),
    ('He said "stop." And then', 'He said "stop."'),
    ("Line one\nline two.", "Line one line two."),
    ("", ""),
])
def test_postprocess(raw, want):
    assert postprocess(raw) == want


# -- the InstructRM score ------------------------------------------------------------------------
def test_yes_probability_hand_computed():
    logits = torch.tensor([[math.log(3.0), math.log(1.0), 0.0, 5.0],
                           [math.log(1.0), math.log(1.0), math.log(2.0), -1.0]])
    # row 0: p(yes)=3/Z, p(no)=1/Z -> 0.75; row 1: yes = ids {0, 2} -> (1+2)/(1+2+1) = 0.75
    got = yes_probability(logits, [0], [1])
    assert got[0].item() == pytest.approx(0.75)
    got = yes_probability(logits, [0, 2], [1])
    assert got[1].item() == pytest.approx(0.75)


def test_answer_token_ids_drop_shared_first_tokens(tiny_lm):
    tok = tiny_lm.tokenizer
    yes, no = answer_token_ids(tok, "Yes", "No")
    assert yes and no and not set(yes) & set(no)
    assert tok.encode("Yes", add_special_tokens=False)[0] in yes
    with pytest.raises(ValidationError, match="same first token"):
        answer_token_ids(tok, "Yes", "Yesterday")


def _bias_lm_head(lm, token_ids, value):
    """Give the LM head a bias that pushes `token_ids` up by `value` (GPT-2's head has no bias)."""
    old = lm.model.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    head.weight = old.weight
    with torch.no_grad():
        head.bias.zero_()
        head.bias[token_ids] = value
    lm.model.lm_head = head
    return old


def test_instructrm_score_follows_the_biased_answer(store, crit, tiny_causal):
    lm = load_lm(tiny_causal)
    for k in crit["k"]:
        add_three(store, k.id)
    items = store.critique_items("p")
    t = load_templates()
    yes_all, no_all = set(), set()
    for rm in t["instructrm"]:
        y, n = answer_token_ids(lm.tokenizer, rm["yes"], rm["no"])
        yes_all |= set(y)
        no_all |= set(n)
    _bias_lm_head(lm, sorted(yes_all), 30.0)
    high = instructrm_scores(lm, items, t, "summarize", SelectConfig())
    assert all(s["ensemble_score"] > 0.99 for s in high.values())
    _bias_lm_head(lm, sorted(no_all), 30.0)  # bias now on the no words only
    low = instructrm_scores(lm, items, t, "summarize", SelectConfig())
    assert all(s["ensemble_score"] < 0.01 for s in low.values())
    assert all(len(s["scores"]) == 5 for s in low.values())


def test_select_instructrm_marks_argmax_and_stores_every_template_score(store, crit, tiny_lm):
    for k in crit["k"]:
        add_three(store, k.id)
    out = select(store, "p", SelectConfig(selector="instructrm"), lm=tiny_lm)
    assert out["critiques"] == 2
    names = {x["name"] for x in load_templates()["instructrm"]}
    for it in store.critique_items("p"):
        assert sum(r.selected for r in it.refinements) == 1
        for r in it.refinements:
            assert set(r.scores) == names and r.selector == "instructrm"
            assert r.ensemble_score == pytest.approx(sum(r.scores.values()) / 5, abs=1e-5)
            assert 0 < r.ensemble_score < 1
        best = max(it.refinements, key=lambda r: r.ensemble_score)
        assert it.selected.id == best.id == out["selected"][it.critique.id]


def test_random_selector_is_seeded_and_scores_merge(store, crit):
    for k in crit["k"]:
        add_three(store, k.id)
    a = select(store, "p", SelectConfig(selector="random", seed=3))
    b = select(store, "p", SelectConfig(selector="random", seed=3))
    assert a["selected"] == b["selected"]
    r = store.critique_items("p")[0].refinements[0]
    store.save_refinement_scores({r.id: {"scores": {"embedding": 0.5}}}, selector="embedding")
    assert set(store.get_refinement(r.id).scores) == {"random", "embedding"}  # merged, not replaced


def test_embedding_selector_prefers_the_refinement_that_matches_the_feedback(store, crit):
    store.add_refinements(crit["k"][0].id, ["A cat sat on a mat in the sun.",
                                           "The river rose 2 metres and the town closed the bridge."], "test")
    out = select(store, "p", SelectConfig(selector="embedding", embedding_target="feedback"),
                     critique_ids=[crit["k"][0].id])
    it = store.critique_items("p", critique_ids=[crit["k"][0].id])[0]
    assert it.selected.text.startswith("The river rose 2 metres")
    assert out["selected"][it.critique.id] == it.selected.id
    assert all(-1 <= r.scores["embedding"] <= 1 for r in it.refinements)


def test_reward_selector_without_a_model_says_so(store, crit):
    add_three(store, crit["k"][0].id)
    with pytest.raises(TokenwiseError, match="reward selector needs a trained reward model"):
        select(store, "p", SelectConfig(selector="reward"))


def test_reward_selector_scores_with_a_saved_reward_model(store, crit, tiny_causal, tmp_path):
    from training.rewards.model import TokenRewardModel

    rm = TokenRewardModel.from_base(str(tiny_causal))  # untrained: any scores will do for the plumbing
    rm.save_pretrained(tmp_path / "rm")
    for k in crit["k"]:
        add_three(store, k.id)
    out = select(store, "p", SelectConfig(selector="reward", model=str(tmp_path / "rm")))
    for it in store.critique_items("p"):
        assert all(r.rm_score is not None and r.selector == "reward" for r in it.refinements)
        assert out["selected"][it.critique.id] == max(it.refinements, key=lambda r: r.rm_score).id


# -- refine ------------------------------------------------------------------------------------
def test_refine_with_tiny_model_stores_samples_and_baseline(store, crit, tiny_lm):
    out = refine(store, "p", RefineConfig(n=2, baseline_n=1, max_new_tokens=8, batch_size=2), lm=tiny_lm)
    assert out == {"critiques": 2, "refinements": 6}
    for it in store.critique_items("p"):
        variants = sorted(r.variant for r in it.refinements)
        assert variants == ["feedback", "feedback", "no_feedback"]
        assert all(r.generator == tiny_lm.name and r.text for r in it.refinements)
    # a second run skips critiques that already have refinements
    assert refine(store, "p", RefineConfig(n=2), lm=tiny_lm)["refinements"] == 0


def test_bad_input_errors(store, crit, tmp_path):
    store.create_project("empty", k=2)
    with pytest.raises(ValidationError, match="has no critiques yet"):
        refine(store, "empty", RefineConfig())
    with pytest.raises(NotFound, match="does not exist"):
        refine(store, "p", RefineConfig(model=str(tmp_path / "no-such-model")))
    with pytest.raises(NotFound, match="not current critiques"):
        refine(store, "p", critique_ids=[999])
    with pytest.raises(ValidationError, match="run refine first"):
        select(store, "p", SelectConfig(selector="random"))
    with pytest.raises(ValidationError, match="no accepted refinements"):
        build_dataset(store, "p")


# -- review ------------------------------------------------------------------------------------
def test_review_accept_pick_edit_and_permissions(store, crit):
    k1, k2 = crit["k"]
    r1 = add_three(store, k1.id)
    store.mark_selected(k1.id, r1[0].id)
    with pytest.raises(Forbidden):
        store.accept_refinement(crit["other"], r1[0].id)
    # accept another than the selected one: it becomes the selected, accepted one
    got = store.accept_refinement(crit["ann"], r1[1].id)
    assert got.selected and got.accepted and got.reviewed_by == crit["ann"].id
    others = [r for r in store.refinements(k1.id) if r.id != r1[1].id]
    assert all(not r.selected and r.accepted is False for r in others)
    # edit: a new accepted refinement by the reviewer; an admin may review anyone's critique
    r2 = add_three(store, k2.id)
    store.mark_selected(k2.id, r2[2].id)
    e = store.edit_refinement(crit["boss"], k2.id, "The river rose 3 metres.")
    assert e.variant == "edit" and e.generator == "human:boss" and e.accepted and e.selected
    assert store.critique_items("p")[1].accepted.id == e.id
    with pytest.raises(ValidationError):
        store.edit_refinement(crit["ann"], k2.id, "  ")
    # only the author's critiques when listing for an annotator
    assert [i.critique.id for i in store.critique_items("p", annotator=crit["other"])] == []


# -- datasets ------------------------------------------------------------------------------------
def test_datasets_follow_review_and_match_schemas(store, crit):
    k1, k2 = crit["k"]
    r1, r2 = add_three(store, k1.id), add_three(store, k2.id)
    store.mark_selected(k1.id, r1[0].id)
    store.mark_selected(k2.id, r2[1].id)
    store.accept_refinement(crit["ann"], r1[2].id)
    accepted = build_dataset(store, "p", "sft", include="accepted")
    assert [(r["critique_id"], r["refinement_id"]) for r in accepted] == [(k1.id, r1[2].id)]
    rows = build_dataset(store, "p", "sft", include="selected")
    assert [(r["critique_id"], r["refinement_id"]) for r in rows] == [(k1.id, r1[2].id), (k2.id, r2[1].id)]
    assert rows[0]["completion"] == " " + r1[2].text and "River 0" in rows[0]["prompt"]
    assert rows[0]["document_id"] == crit["docs"][0].id
    fb = build_dataset(store, "p", "feedback", include="selected")
    assert "The river rose." in fb[0]["prompt"] and k1.text in fb[0]["completion"]
    assert fb[0]["completion"].endswith(r1[2].text)
    for variant, data in (("sft", rows), ("feedback", fb)):
        schema = json.loads((SCHEMAS / f"ilf-{variant}.schema.json").read_text())
        for row in data:
            jsonschema.validate(row, schema)
    with pytest.raises(ValidationError, match="variant"):
        build_dataset(store, "p", "dpo")


# -- models, seq2seq, CLI and export ---------------------------------------------------------------
def test_lm_loading(tiny_seq2seq, tmp_path):
    from training.lm import minilm_path, resolve

    assert load_lm(tiny_seq2seq).seq2seq is True
    assert (minilm_path() / "config.json").exists()
    with pytest.raises(NotFound, match="model path .* does not exist"):
        resolve(str(tmp_path / "missing"))
    assert resolve("org/name") == "org/name"  # a hub name is passed on, not checked on disk


def test_seq2seq_refine_and_instructrm(store, crit, tiny_seq2seq):
    lm = load_lm(tiny_seq2seq)
    out = refine(store, "p", RefineConfig(n=2, baseline_n=0, max_new_tokens=6), lm=lm,
                     critique_ids=[crit["k"][0].id])
    assert out == {"critiques": 1, "refinements": 2}
    scores = instructrm_scores(lm, store.critique_items("p", critique_ids=[crit["k"][0].id]),
                                   load_templates(), "summarize", SelectConfig())
    assert len(scores) == 2 and all(0 < s["ensemble_score"] < 1 for s in scores.values())


def test_cli_refine_select_build_and_export(store, crit, tiny_causal, tmp_path, capsys):
    from training.cli import main

    db = ["--db", store.path, "--project", "p"]
    assert main(["ilf", "refine", *db, "--model", str(tiny_causal), "--n", "2", "--max-new-tokens", "6",
                 "--critique", str(crit["k"][0].id)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"critiques": 1, "refinements": 3}
    assert main(["ilf", "select", *db, "--selector", "random", "--seed", "1"]) == 0
    sel = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["selected"]
    assert list(sel) == [str(crit["k"][0].id)]
    assert main(["ilf", "build", *db, "--out", str(tmp_path / "x.jsonl")]) == 2  # nothing accepted yet
    assert "no accepted refinements" in capsys.readouterr().err
    store.accept_refinement(crit["ann"], sel[str(crit["k"][0].id)])
    assert main(["ilf", "build", *db, "--variant", "feedback", "--out", str(tmp_path / "f.parquet")]) == 0
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "f.parquet").to_pylist()
    assert len(rows) == 1 and rows[0]["refinement_id"] == sel[str(crit["k"][0].id)]
    assert main(["export", "ilf-sft", *db, "--out", str(tmp_path / "e.jsonl")]) == 0
    exported = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert exported == build_dataset(store, "p", "sft")
    assert main(["ilf", "refine", *db, "--n", "0"]) == 2
    assert "n: must be at least 1" in capsys.readouterr().err
    assert main(["ilf", "list", *db]) == 0
    listed = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["critique_id"] for x in listed] == [k.id for k in crit["k"]] and len(listed[0]["refinements"]) == 3


def test_configs_are_validated_on_construction():
    from training.ilf.config import DatasetConfig

    with pytest.raises(ValidationError, match="n: must be at least 1, got 0"):
        RefineConfig(n=0)
    with pytest.raises(ValidationError, match="top_p: must be at most 1.0"):
        RefineConfig(top_p=1.5)
    with pytest.raises(ValidationError, match="selector: 'best' is not one of instructrm"):
        SelectConfig(selector="best")
    with pytest.raises(ValidationError, match="include: 'all' is not one of accepted, selected"):
        DatasetConfig(include="all")
