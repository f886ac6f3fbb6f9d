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
from training.ilf.refine import as_chat, encode_prompts, refine, refinement_prompt, token_budget
from training.ilf.select import (
    answer_logits,
    answer_token_ids,
    calibrate,
    continuation_logprobs,
    end_of_turn,
    ensemble_scores,
    instructrm_prompt,
    instructrm_scores,
    pmi_scores,
    select,
    yes_probability,
)
from training.ilf.templates import drop_reason, fill, item_fields, load_templates, postprocess
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


# A chat template as instruct models have one (SmolLM2's shape, shorter markers).
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


class Recorder:
    """A Progress that keeps what it was told."""

    def __init__(self):
        self.steps, self.lines = [], []

    def step(self, step, total, **metrics):
        self.steps.append((step, total, metrics))

    def log(self, message):
        self.lines.append(message)


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


@pytest.mark.parametrize("raw, want", [
    ("Here is the rewritten summary:\n\nThe river rose 2 metres. The bridge", "The river rose 2 metres."),
    ("Sure! Here's a revised version of the output: The river rose 2 m.", "The river rose 2 m."),
    ("Improved output: The river rose 2 m.", "The river rose 2 m."),
    ("Here is the improved summary.\nThe river rose 2 m.", "The river rose 2 m."),
    ("Rewritten answer - Bloom came out in 2018.", "Bloom came out in 2018."),
    ('"The river rose 2 m."', "The river rose 2 m."),
    ("The river rose 2 m.\nFeedback on the output: more", "The river rose 2 m."),
    ("The town said here is where the water rose.", "The town said here is where the water rose."),
])
def test_postprocess_strips_preambles_and_stops(raw, want):
    assert postprocess(raw, stop=["\nFeedback"]) == want


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("  the river ROSE ", "copy"),
    ("The following is a rewritten version of the text to improve grammar.", "meta"),
    ("I have rewritten the summary to include the height.", "meta"),
    ("The feedback asks for the height, so here it is.", "meta"),
    ("This revised summary adds the height. It rose 2 m.", "meta"),
    ("The river rose 2 metres and the bridge closed.", None),
    ("This is a river that rose 2 metres.", None),
    ("Hi all,", "empty"),
    ("I'm sorry for the misunderstanding. I'm here to help you.", "meta"),
    ("Hi all, I hope this message finds you well. My bike skips.", "meta"),
])
def test_drop_reason(text, reason):
    assert drop_reason(text, "The river rose.") == reason


TENANCY = "A tenant's landlord wants to keep £450 of their £900 deposit after a one-year tenancy."
TENANCY_CRITIQUE = "The tenancy lasted three years, not one, and that matters for whether repainting is normal wear."


@pytest.mark.parametrize("text, feedback, reason", [
    # the critique said back (seen from SmolLM2-135M on the demo), with or without a label in front
    ("The tenancy lasted three years, not one, and that matters for whether repainting is normal wear.",
     TENANCY_CRITIQUE, "echo"),
    ("One-year tenancy: the tenancy lasted three years, not one, and that matters for whether repainting is normal.",
     TENANCY_CRITIQUE, "echo"),
    # a rewrite that takes the critique's fact, and one that adds the sentence the critique quotes for it
    ("A tenant's landlord wants to keep £450 of their £900 deposit after a three-year tenancy.", TENANCY_CRITIQUE,
     None),
    ("The river rose. The town closed the bridge after two days of heavy rain on the hills.",
     'Add this important information: "The town closed the bridge after two days of heavy rain on the hills."', None),
    ("The tenancy lasted three years, not one, and that matters for whether repainting is normal wear.", "", None),
])
def test_drop_reason_echo_of_the_critique(text, feedback, reason):
    output = "The river rose." if "river" in text else TENANCY
    assert drop_reason(text, output, feedback) == reason


def test_chat_model_gets_the_chat_template_and_a_rewrite_only_instruction(store, crit, tiny_causal):
    lm = load_lm(tiny_causal)
    t = load_templates()
    f = item_fields(store.critique_items("p")[0], t, "summarize")
    plain = refinement_prompt(lm, t, f, "feedback")
    assert plain.endswith("Improved output:") and as_chat(lm, [plain]) == [plain]  # a base model: as is
    lm.tokenizer.chat_template = CHAT_TEMPLATE
    user = refinement_prompt(lm, t, f, "feedback")
    assert "rewritten output only" in user and not user.endswith("Improved output:")
    for value in (f["text"], f["output"], f["feedback"]):
        assert value in user
    assert as_chat(lm, [user]) == [f"<|user|>{user}<|end|><|assistant|>"]


def test_refine_drops_and_counts_what_is_not_a_rewrite(store, crit, tiny_lm, monkeypatch):
    import training.ilf.refine as refine_mod

    samples = ["Here is the improved summary: The river rose 2 metres.", "The river rose.", "  ",
               "The following is a rewritten version of the summary."]
    seen = {}

    def fake_generate(lm, prompts, n, cfg, budgets=None):
        seen["budgets"] = budgets
        return [samples[:n] for _ in prompts]

    monkeypatch.setattr(refine_mod, "generate", fake_generate)
    k = crit["k"][0]
    out = refine(store, "p", RefineConfig(n=4, baseline_n=0, length_ratio=2.0, max_new_tokens=100), lm=tiny_lm,
                 critique_ids=[k.id])
    assert out == {"critiques": 1, "critiques_left": 0, "refinements": 1, "samples": 4, "preambles_stripped": 1,
                   "dropped": {"empty": 1, "copy": 1, "meta": 1, "echo": 0}}
    assert [r.text for r in store.refinements(k.id)] == ["The river rose 2 metres."]
    n_tokens = len(tiny_lm.tokenizer.encode("The river rose.", add_special_tokens=False))
    assert seen["budgets"] == [2 * n_tokens + 16]  # relative to the critiqued output's length


def test_token_budget_is_relative_and_capped(tiny_lm):
    n = len(tiny_lm.tokenizer.encode("The river rose.", add_special_tokens=False))
    assert token_budget(tiny_lm, "The river rose.", RefineConfig(length_ratio=1.5, max_new_tokens=500)) \
        == math.ceil(1.5 * n) + 16
    assert token_budget(tiny_lm, "The river rose.", RefineConfig(max_new_tokens=5)) == 5


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


def _answer_ids(lm, templates):
    yes_all, no_all = set(), set()
    for rm in templates["instructrm"]:
        y, n = answer_token_ids(lm.tokenizer, rm["yes"], rm["no"])
        yes_all |= set(y)
        no_all |= set(n)
    return sorted(yes_all), sorted(no_all)


def test_instructrm_raw_score_follows_the_biased_answer(store, crit, tiny_causal):
    lm = load_lm(tiny_causal)
    for k in crit["k"]:
        add_three(store, k.id)
    items = store.critique_items("p")
    t = load_templates()
    yes_all, no_all = _answer_ids(lm, t)
    raw = SelectConfig(calibration="none")
    _bias_lm_head(lm, yes_all, 30.0)
    high = instructrm_scores(lm, items, t, "summarize", raw)
    assert all(s["ensemble_score"] > 0.99 for s in high.values())
    _bias_lm_head(lm, no_all, 30.0)  # bias now on the no words only
    low = instructrm_scores(lm, items, t, "summarize", raw)
    assert all(s["ensemble_score"] < 0.01 for s in low.values())
    assert all(len(s["scores"]) == 6 for s in low.values())  # 5 templates + instructrm_raw


@pytest.mark.parametrize("calibration", ["original", "content-free"])
def test_calibration_makes_an_always_yes_model_harmless(store, crit, tiny_causal, calibration):
    """A model pushed to say yes to everything scores exactly as the unbiased one once calibrated."""
    lm = load_lm(tiny_causal)
    for k in crit["k"]:
        add_three(store, k.id)
    items = store.critique_items("p")
    t = load_templates()
    cfg = SelectConfig(calibration=calibration)
    plain = instructrm_scores(lm, items, t, "summarize", cfg)
    _bias_lm_head(lm, _answer_ids(lm, t)[0], 30.0)
    yes_man = instructrm_scores(lm, items, t, "summarize", cfg)
    assert all(s["scores"]["instructrm_raw"] > 0.99 for s in yes_man.values())  # raw: always yes
    for rid, s in plain.items():
        assert yes_man[rid]["log_odds"] == pytest.approx(s["log_odds"], abs=1e-3)
        assert yes_man[rid]["ensemble_score"] == pytest.approx(s["ensemble_score"], abs=1e-4)
    # the refinements still differ from each other (the bias cancelled, not the content)
    assert len({round(s["log_odds"], 4) for s in yes_man.values()}) > 1
    if calibration == "original":  # the original output itself scores exactly 0.5
        store.add_refinements(crit["k"][0].id, [items[0].candidate.text], generator="test")
        it = store.critique_items("p", critique_ids=[crit["k"][0].id])
        again = instructrm_scores(lm, it, t, "summarize", cfg)
        assert again[it[0].refinements[-1].id]["ensemble_score"] == pytest.approx(0.5, abs=1e-6)


def test_calibrate_subtracts_the_reference_log_odds():
    lo = torch.tensor([2.0, -1.0, 0.5])
    assert calibrate(lo, torch.tensor(0.5)).tolist() == [1.5, -1.5, 0.0]


def _full_prompt_logits(lm, text):
    enc, _ = encode_prompts(lm, [text])
    enc.pop("position_ids")
    with torch.no_grad():
        return lm.model(**enc).logits[0, -1]


@pytest.mark.parametrize("chat", [False, True])
def test_shared_prefix_scoring_equals_one_prompt_at_a_time(store, crit, tiny_causal, chat):
    """The KV-cached prefix + batched refinements + per-template questions give the logits of the
    whole prompt read alone (right padding, positions and masks are right)."""
    lm = load_lm(tiny_causal)
    if chat:
        lm.tokenizer.chat_template = CHAT_TEMPLATE
    t = load_templates()
    item = store.critique_items("p")[0]
    fields = item_fields(item, t, "summarize")
    texts = ["The river rose 2 metres and the bridge closed.", "A cat.", "The river rose."]
    parts = [instructrm_prompt(lm, rm, fields, t["instructrm_cue"]) for rm in t["instructrm"]]
    assert len({(p, j) for p, j, _ in parts}) == 1  # the default templates share their prefix
    prefix, joint, _ = parts[0]
    assert prefix.startswith("<|user|>") == chat
    got = answer_logits(lm, prefix, [joint + x for x in texts], [tail for _, _, tail in parts], batch_size=2)
    assert got.shape[:2] == (5, 3)
    for k, (_, _, tail) in enumerate(parts):
        assert tail.endswith("<|assistant|>") if chat else tail.endswith("Answer:")
        for i, x in enumerate(texts):
            assert torch.allclose(got[k, i], _full_prompt_logits(lm, prefix + joint + x + tail), atol=1e-4)


def _full_logprob(lm, prefix, text):
    """log p(text + end of turn | prefix) from one forward over the concatenated ids."""
    tok = lm.tokenizer
    pre = tok(prefix, add_special_tokens=not lm.has_chat_template())["input_ids"]
    cont = tok(text + end_of_turn(lm), add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([pre + cont])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    return sum(logp[len(pre) - 1 + j, t].item() for j, t in enumerate(cont))


@pytest.mark.parametrize("chat", [False, True])
def test_end_of_turn_and_continuation_logprobs_equal_one_text_at_a_time(tiny_causal, chat):
    """The cached prefix + right-padded batch gives each text's log-probability as read alone."""
    lm = load_lm(tiny_causal)
    if chat:
        lm.tokenizer.chat_template = CHAT_TEMPLATE
    assert end_of_turn(lm) == ("<|end|>" if chat else lm.tokenizer.eos_token)
    prefix = as_chat(lm, ["Rewrite: The river rose after rain, and the town closed the bridge."])[0]
    texts = ["The river rose 2 metres and the bridge closed.", "A cat.", "The river rose.", ""]
    got = continuation_logprobs(lm, prefix, texts, batch_size=3)
    assert len(got) == 4 and all(x < 0 for x in got)
    for x, text in zip(got, texts):
        assert x == pytest.approx(_full_logprob(lm, prefix, text), abs=1e-3)


def test_pmi_is_the_feedback_prompt_minus_the_no_feedback_prompt(store, crit, tiny_causal):
    lm = load_lm(tiny_causal)
    lm.tokenizer.chat_template = CHAT_TEMPLATE
    add_three(store, crit["k"][0].id)
    item = store.critique_items("p", critique_ids=[crit["k"][0].id])[0]
    t = load_templates()
    cfg = SelectConfig(selector="pmi")
    rec = Recorder()
    got = pmi_scores(lm, [item], t, "summarize", cfg, rec)
    with_fb = as_chat(lm, [refinement_prompt(lm, t, item_fields(item, t, "summarize", cfg.max_text_chars),
                                             "feedback")])[0]
    without = as_chat(lm, [refinement_prompt(lm, t, item_fields(item, t, "summarize", cfg.max_text_chars,
                                                                 baseline=True), "no_feedback")])[0]
    assert "Feedback on the output" in with_fb and "Feedback on the output" not in without
    for r in item.refinements:
        s = got[r.id]["scores"]
        assert s["logp_feedback"] == pytest.approx(_full_logprob(lm, with_fb, r.text), abs=1e-2)
        assert s["logp_no_feedback"] == pytest.approx(_full_logprob(lm, without, r.text), abs=1e-2)
        assert s["pmi"] == pytest.approx(s["logp_feedback"] - s["logp_no_feedback"], abs=1e-3)
    assert rec.steps[-1][:2] == (1, 1) and "PMI: 1 critiques, 3 refinements" in rec.lines[-1]


def test_select_pmi_is_the_default_and_marks_the_argmax(store, crit, tiny_lm):
    assert SelectConfig().selector == "pmi"
    add_three(store, crit["k"][0].id)
    out = select(store, "p", SelectConfig(), lm=tiny_lm, critique_ids=[crit["k"][0].id])
    it = store.critique_items("p", critique_ids=[crit["k"][0].id])[0]
    best = max(it.refinements, key=lambda r: r.scores["pmi"])
    assert out["selected"][it.critique.id] == best.id and it.selected.id == best.id
    assert all(r.selector == "pmi" and set(r.scores) >= {"pmi", "logp_feedback"} for r in it.refinements)


def test_templates_with_their_own_prefix_or_a_repeated_refinement(store, crit, tiny_causal):
    """Templates that share nothing, or name {refinement} twice, score as their whole prompt read alone."""
    lm = load_lm(tiny_causal)
    add_three(store, crit["k"][0].id)
    item = store.critique_items("p", critique_ids=[crit["k"][0].id])[0]
    t = load_templates()
    t["instructrm"] = [
        {"name": "twice", "prompt": "New: {refinement}\nFeedback: {feedback}\nIs '{refinement}' better?", "yes": "Yes",
         "no": "No"},
        {"name": "own", "prompt": "Feedback: {feedback}\nNew: {refinement}\nGood?", "yes": "True", "no": "False"}]
    got = instructrm_scores(lm, [item], t, "summarize", SelectConfig(calibration="none"))
    fields = item_fields(item, t, "summarize", SelectConfig().max_text_chars)
    for rm in t["instructrm"]:
        y, n = answer_token_ids(lm.tokenizer, rm["yes"], rm["no"])
        for r in item.refinements:
            text = fill(rm["prompt"], {**fields, "refinement": r.text}) + t["instructrm_cue"]
            want = yes_probability(_full_prompt_logits(lm, text)[None], y, n).item()
            assert got[r.id]["scores"][rm["name"]] == pytest.approx(want, abs=1e-4)


def test_select_instructrm_marks_argmax_and_stores_every_template_score(store, crit, tiny_lm):
    for k in crit["k"]:
        add_three(store, k.id)
    progress = Recorder()
    out = select(store, "p", SelectConfig(selector="instructrm"), lm=tiny_lm, progress=progress)
    assert out["critiques"] == 2
    assert [s[:2] for s in progress.steps] == [(1, 2), (2, 2)]  # one step per critique
    assert any("s each" in line for line in progress.lines)
    names = {x["name"] for x in load_templates()["instructrm"]}
    for it in store.critique_items("p"):
        assert sum(r.selected for r in it.refinements) == 1
        for r in it.refinements:
            assert set(r.scores) == names | {"instructrm_raw"} and r.selector == "instructrm"
            logits = [math.log(r.scores[n] / (1 - r.scores[n])) for n in names]  # calibrated per template
            assert r.ensemble_score == pytest.approx(1 / (1 + math.exp(-sum(logits) / 5)), abs=1e-4)
            assert 0 < r.ensemble_score < 1
        best = max(it.refinements, key=lambda r: r.ensemble_score)
        assert it.selected.id == best.id == out["selected"][it.critique.id]
    select(store, "p", SelectConfig(selector="instructrm", calibration="none"), lm=tiny_lm)
    for r in store.critique_items("p")[0].refinements:
        assert r.ensemble_score == pytest.approx(r.scores["instructrm_raw"], abs=1e-5)
        assert r.ensemble_score == pytest.approx(sum(r.scores[n] for n in names) / 5, abs=1e-5)


def test_ensemble_scores_hand_computed():
    """Each selector divided by its pooled spread around the critique means, then averaged."""
    from types import SimpleNamespace as NS

    items = [NS(refinements=[NS(id=1), NS(id=2)]), NS(refinements=[NS(id=3), NS(id=4)])]
    irm = {1: {"log_odds": 1.0, "scores": {"a": 0.7}}, 2: {"log_odds": -1.0, "scores": {"a": 0.3}},
           3: {"log_odds": 3.0, "scores": {"a": 0.9}}, 4: {"log_odds": 1.0, "scores": {"a": 0.7}}}
    rm = {1: {"rm_score": 0.0}, 2: {"rm_score": 4.0}, 3: {"rm_score": 10.0}, 4: {"rm_score": 6.0}}
    # spreads: instructrm deviations +-1 -> 1; reward deviations +-2 -> 2
    out = ensemble_scores(irm, rm, items)
    assert out[1]["scores"]["ensemble"] == pytest.approx((1.0 + 0.0) / 2)
    assert out[2]["scores"]["ensemble"] == pytest.approx((-1.0 + 2.0) / 2)
    assert out[3]["scores"]["ensemble"] == pytest.approx((3.0 + 5.0) / 2)
    assert out[3]["rm_score"] == 10.0 and out[3]["scores"]["a"] == 0.9


def test_random_selector_is_seeded_and_scores_merge(store, crit):
    for k in crit["k"]:
        add_three(store, k.id)
    a = select(store, "p", SelectConfig(selector="random", seed=3))
    b = select(store, "p", SelectConfig(selector="random", seed=3))
    assert a["selected"] == b["selected"]
    r = store.critique_items("p")[0].refinements[0]
    store.save_refinement_scores({r.id: {"scores": {"embedding": 0.5}}}, selector="embedding")
    assert set(store.get_refinement(r.id).scores) == {"random", "embedding"}  # merged, not replaced


def test_a_baseline_refinement_is_never_picked_accepted_or_built(store, crit):
    """Samples drawn without the critique (variant no_feedback) are what PMI/InstructRM compare with."""
    k1, k2 = crit["k"]
    [mine] = store.add_refinements(k1.id, ["The river rose 2 metres."], generator="test")
    [base1] = store.add_refinements(k1.id, ["The river rose a lot."], generator="test", variant="no_feedback")
    [base2] = store.add_refinements(k2.id, ["Rain fell."], generator="test", variant="no_feedback")
    out = select(store, "p", SelectConfig(selector="random", seed=0))
    assert out["selected"] == {k1.id: mine.id} and out["baseline_only"] == 1
    with pytest.raises(ValidationError, match="sampled without the critique"):
        store.accept_refinement(crit["ann"], base2.id)
    rows = build_dataset(store, "p", include="selected")
    assert [r["refinement_id"] for r in rows] == [mine.id]
    assert base1.id not in {r["refinement_id"] for r in rows}
    # one accepted before baselines were refused (written straight to the table) is not built either
    with store.tx() as c:
        c.execute("UPDATE refinements SET accepted = 1, reviewed_by = ? WHERE id = ?", (crit["ann"].id, base2.id))
    assert [r["refinement_id"] for r in build_dataset(store, "p", include="selected")] == [mine.id]


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
    progress = Recorder()
    out = refine(store, "p", RefineConfig(n=2, baseline_n=1, max_new_tokens=8, batch_size=1), lm=tiny_lm,
                 progress=progress)
    assert out["critiques"] == 2 and out["samples"] == 6
    assert out["refinements"] + sum(out["dropped"].values()) == 6
    assert [s[:2] for s in progress.steps] == [(0, 2), (1, 2), (2, 2)]  # step i of n critiques
    stored = [r for it in store.critique_items("p") for r in it.refinements]
    assert len(stored) == out["refinements"]
    assert all(r.generator == tiny_lm.name and r.text and r.variant in ("feedback", "no_feedback") for r in stored)
    # a second run skips critiques that already have refinements
    assert refine(store, "p", RefineConfig(n=2), lm=tiny_lm)["refinements"] == 0


def test_refine_limit_takes_the_oldest_critiques_and_the_next_run_the_rest(store, crit, tiny_lm, monkeypatch):
    import training.ilf.refine as refine_mod

    monkeypatch.setattr(refine_mod, "generate", lambda lm, prompts, n, cfg, budgets=None:
                        [["The river rose 2 metres and the bridge closed."] * n for _ in prompts])
    progress = Recorder()
    out = refine(store, "p", RefineConfig(n=1, baseline_n=0, max_new_tokens=8, limit=1), lm=tiny_lm,
                 progress=progress)
    assert (out["critiques"], out["critiques_left"]) == (1, 1)
    assert "the first 1 of 2 critiques to do (limit 1); 1 is left" in progress.lines[0]
    first, second = crit["k"]
    assert len(store.refinements(first.id)) == 1 and store.refinements(second.id) == []
    out = refine(store, "p", RefineConfig(n=1, baseline_n=0, max_new_tokens=8, limit=1), lm=tiny_lm)
    assert (out["critiques"], out["critiques_left"]) == (1, 0) and len(store.refinements(second.id)) == 1
    with pytest.raises(ValidationError, match="limit: must be at least 0"):
        RefineConfig(limit=-1)


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
def test_lm_loading(tiny_seq2seq, tmp_path, monkeypatch):
    from training.lm import minilm_path, resolve

    assert load_lm(tiny_seq2seq).seq2seq is True
    assert (minilm_path() / "config.json").exists()
    with pytest.raises(NotFound, match="model path .* does not exist"):
        resolve(str(tmp_path / "missing"))
    assert resolve("org/name") == "org/name"  # a hub name is passed on, not checked on disk
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFound, match="'models/nope' does not exist"):  # a local "models" folder: a path,
        resolve("models/nope")  # never a hub request
    with pytest.raises(TokenwiseError, match="the folder models holds no model"):  # not "no hub offline"
        load_lm("models")


def test_the_kv_cache_goes_by_the_name_the_installed_transformers_takes():
    # transformers 5.2x names it `cache`; 5.17 `past_key_values`, and there a `cache=` keyword is
    # dropped silently: the batch ran without its prefix and failed in attention (seen on a GPU)
    from types import SimpleNamespace

    from training.lm import kv_cache, with_cache

    class New:
        def forward(self, input_ids=None, cache=None, **kwargs): ...

    class Old:
        def forward(self, input_ids=None, past_key_values=None, **kwargs): ...

    c = object()
    assert with_cache(New(), c) == {"cache": c}
    assert with_cache(Old(), c) == {"past_key_values": c}
    assert kv_cache(SimpleNamespace(cache=c, past_key_values=None)) is c
    assert kv_cache(SimpleNamespace(past_key_values=c)) is c


def test_seq2seq_refine_and_instructrm(store, crit, tiny_seq2seq):
    lm = load_lm(tiny_seq2seq)
    out = refine(store, "p", RefineConfig(n=2, baseline_n=0, max_new_tokens=6), lm=lm,
                 critique_ids=[crit["k"][0].id])
    assert out["critiques"] == 1 and out["samples"] == 2
    if not store.critique_items("p", critique_ids=[crit["k"][0].id])[0].refinements:
        add_three(store, crit["k"][0].id)
    items = store.critique_items("p", critique_ids=[crit["k"][0].id])
    scores = instructrm_scores(lm, items, load_templates(), "summarize", SelectConfig())
    assert len(scores) == len(items[0].refinements) and all(0 < s["ensemble_score"] < 1 for s in scores.values())
    pmi = pmi_scores(lm, items, load_templates(), "summarize", SelectConfig(selector="pmi"))
    assert len(pmi) == len(items[0].refinements) and all(s["scores"]["logp_feedback"] < 0 for s in pmi.values())


def test_cli_refine_select_build_and_export(store, crit, tiny_causal, tmp_path, capsys):
    from training.cli import main

    db = ["--db", store.path, "--project", "p"]
    assert main(["ilf", "refine", *db, "--model", str(tiny_causal), "--n", "2", "--max-new-tokens", "6",
                 "--critique", str(crit["k"][0].id)]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got["critiques"] == 1 and got["samples"] == 3 and got["refinements"] == 3 - sum(got["dropped"].values())
    if not got["refinements"]:  # the tiny model wrote nothing usable: give select something to pick from
        add_three(store, crit["k"][0].id)
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
    from training.ilf.config import SELECTOR_NOTES, SELECTORS, DatasetConfig

    assert set(SELECTOR_NOTES) == set(SELECTORS)  # the Review page explains whichever selector picked

    with pytest.raises(ValidationError, match="n: must be at least 1, got 0"):
        RefineConfig(n=0)
    with pytest.raises(ValidationError, match="top_p: must be at most 1.0"):
        RefineConfig(top_p=1.5)
    with pytest.raises(ValidationError, match="selector: 'best' is not one of pmi, instructrm"):
        SelectConfig(selector="best")
    with pytest.raises(ValidationError, match="include: 'all' is not one of accepted, selected"):
        DatasetConfig(include="all")
