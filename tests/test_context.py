"""Context fields: the document fields a project shows annotators under the text (passages, ...),
from the store and the command line to the Annotate page, and to what models read (exports, reward
lists, generation prompts, ILF); the qa project kind."""

from __future__ import annotations

import pytest

from training.annotation.context import context_of, field_text
from training.cli import main
from training.errors import ValidationError
from training.store import NewDocument, Store

# QA-Feedback's passages: a list of [title, sentence, sentence, ...]
PASSAGES = [["Bloom (album)", "Bloom is an album.", "It came out in 2018."], ["Troye Sivan", "A singer."]]


def test_field_text_by_hand():
    assert field_text("  a passage \n") == "a passage"
    assert field_text(None) == "" and field_text([]) == "" and field_text({}) == ""
    assert field_text(3) == "3" and field_text(0.5) == "0.5" and field_text(True) == "true"
    assert field_text(["one", "", "two"]) == "one\ntwo"  # a flat list: one item per line
    assert field_text(PASSAGES) == ("Bloom (album)\nBloom is an album.\nIt came out in 2018."
                                    "\n\nTroye Sivan\nA singer.")  # nested: blocks
    assert field_text({"source": "BBC", "lines": ["a", "b"], "empty": ""}) == "source: BBC\nlines:\na\nb"


def test_context_of_keeps_the_order_skips_missing_and_cuts_long_fields():
    meta = {"passages": PASSAGES, "gold": "Aug 2018", "blank": "  ", "note": "x" * 30}
    assert [n for n, _ in context_of(meta, ["gold", "absent", "blank", "passages"])] == ["gold", "passages"]
    assert context_of(None, ["gold"]) == [] and context_of(meta, []) == []
    [(_, cut)] = context_of(meta, ["note"], max_chars=10)
    assert cut == "x" * 10 + "\n… (20 more characters not shown)"


def test_store_keeps_checks_and_offers_the_fields(store):
    p = store.create_project("qa", k=2, context_fields="passages, gold")
    assert p.context_fields == ["passages", "gold"]
    assert store.create_project("plain", k=2).context_fields == []
    assert store.update_project("qa", context_fields=["gold", "gold"]).context_fields == ["gold"]
    assert store.update_project("qa", context_fields="").context_fields == []
    for bad, msg in (([" "], "must not be empty"), (["a\nb"], "one line"), ([3], "not a field name"),
                     ([f"f{i}" for i in range(21)], "at most 20")):
        with pytest.raises(ValidationError, match=msg):
            store.update_project("qa", context_fields=bad)
    assert store.get_project("qa").context_fields == []  # a refused change changes nothing
    store.add_documents("qa", [NewDocument("a", "Q?", ["x", "y"], meta={"passages": PASSAGES, "gold": "g"}),
                               NewDocument("b", "R?", ["x", "y"], meta={"rating": 3}),
                               NewDocument("c", "S?", ["x", "y"])])
    assert store.meta_fields("qa") == ["gold", "passages", "rating"]
    assert store.meta_fields("plain") == []


def test_cli_project_set_and_the_import_note(store, db_path, tmp_path, capsys):
    import json

    store.create_project("qa", k=2)
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": f"Q{i}?", "a": "x", "b": f"y{i}", "passages": PASSAGES}) + "\n"
                            for i in range(2)))
    assert main(["import", str(path), "--db", db_path, "--project", "qa", "--map", "text=question,candidates=a+b"]) == 0
    out = capsys.readouterr().out
    assert "the documents also have passages, which annotators do not see" in out
    assert "tokenwise project set qa --show-fields" in out
    assert main(["project", "set", "qa", "--show-fields", "passages,title", "--overlap", "2", "--db", db_path]) == 0
    out = capsys.readouterr().out
    assert "fields shown: passages, title" in out and "no document of 'qa' has title yet" in out
    p = store.get_project("qa")
    assert (p.context_fields, p.overlap) == (["passages", "title"], 2)
    from annotate_app.admin import import_summary
    from training.data.formats import Options
    from training.data.imports import import_file

    again = tmp_path / "more.jsonl"
    again.write_text(json.dumps({"question": "Q9?", "a": "x", "b": "y", "passages": PASSAGES}) + "\n")
    report = import_file(store, again, "qa", options=Options(mapping={"text": "question", "candidates": "a+b"}))
    assert report.unshown_fields == []  # the project shows fields now: no note
    store.create_project("qa2", k=2)
    report = import_file(store, again, "qa2", options=Options(mapping={"text": "question", "candidates": "a+b"}))
    assert "Note: the documents also have passages" in import_summary(report)  # the page says it too
    assert main(["project", "set", "qa", "--db", db_path]) == 2  # nothing to change: said, not ignored
    assert "name a setting" in capsys.readouterr().err
    assert main(["project", "set", "qa", "--show-fields", "", "--allow-ties", "--db", db_path]) == 0
    p = store.get_project("qa")
    assert (p.context_fields, p.allow_ties, p.overlap) == ([], True, 2)


def test_annotate_and_my_entries_show_the_chosen_fields_as_text(db_path, monkeypatch, app_test):
    """The passages appear under the document, as written (markup in them is not rendered); a
    field the project does not show never reaches the page."""
    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        s.create_project("qa", k=2, context_fields=["passages"])
        s.add_documents("qa", [NewDocument("q1", "Who sang Bloom?", ["Troye Sivan.", "Nobody."],
                                           meta={"passages": [["Bloom", "Sung by **Troye** <b>Sivan</b>."]],
                                                 "label": "SECRET-preferred-1"})])
        ann, _ = s.add_annotator("ann")

    def everything(at) -> str:
        return "\n".join(str(e.value) for kind in ("text", "markdown", "caption", "subheader")
                         for e in getattr(at, kind))

    at = app_test("annotate.py", ann.id).run()
    assert not at.exception
    texts = [t.value for t in at.text]
    assert texts.index("Bloom\nSung by **Troye** <b>Sivan</b>.") == texts.index("Who sang Bloom?") + 1
    assert any(c.value.endswith("· passages") for c in at.caption)  # said above the panel
    assert "SECRET" not in everything(at)
    with Store(db_path) as s:
        doc = s.documents("qa")[0]
        s.save_ranking(ann, doc.id, {doc.candidates[0].id: 1, doc.candidates[1].id: 2})
    at = app_test("mine.py", ann.id).run()
    assert not at.exception
    assert "Bloom\nSung by **Troye** <b>Sivan</b>." in [t.value for t in at.text]
    assert "SECRET" not in everything(at)


def test_settings_offer_the_documents_fields(db_path, monkeypatch):
    from apptest import open_page

    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        pid = s.create_project("qa", k=2).id
        s.add_documents("qa", [NewDocument("q1", "Q?", ["a", "b"], meta={"passages": PASSAGES, "preference": [1, 0]})])
        root, _ = s.add_annotator("root", role="admin")
    at = open_page("projects", root.id)
    box = at.multiselect[0]
    assert box.label == "Fields shown under each document" and box.options == ["passages", "preference"]
    box.set_value(["passages"])
    at = at.button(key=f"FormSubmitter:settings_{pid}-Save settings").click().run()
    assert not at.exception
    with Store(db_path) as s:
        assert s.get_project("qa").context_fields == ["passages"]


# -- models read what annotators read (training/data/context.py) -----------------------------------
PASSAGES_TEXT = "Bloom (album)\nBloom is an album.\nIt came out in 2018.\n\nTroye Sivan\nA singer."
QA_CONTEXT = "Who sang Bloom?\n\npassages:\n" + PASSAGES_TEXT


def test_document_context_by_hand():
    from training.data.context import document_context

    assert document_context("summarize", "Title", "Body") == "Title\n\nBody"
    assert document_context("summarize", "", "Body") == "Body"
    assert document_context("prompt", "ignored", "Body") == "Body"
    assert document_context("qa", "Bloom", "Who sang Bloom?") == "Who sang Bloom?"  # the question; no title
    fields = [("passages", "P1\nP2"), ("source", "BBC")]
    assert document_context("summarize", "Title", "Body", fields) == "Title\n\nBody\n\npassages:\nP1\nP2\n\nsource:\nBBC"
    assert document_context("prompt", "ignored", "Body", fields) == "Body\n\npassages:\nP1\nP2\n\nsource:\nBBC"
    assert document_context("qa", "Bloom", "Who sang Bloom?", [("passages", PASSAGES_TEXT)]) == QA_CONTEXT


def qa_project(store, shown=("passages",)):
    """A qa project showing `shown`, one ranked document whose meta also holds a field nobody sees."""
    store.create_project("qa", kind="qa", k=2, context_fields=list(shown))
    store.add_documents("qa", [NewDocument("q1", "Who sang Bloom?", ["Troye Sivan.", "Nobody."], title="Bloom",
                                           meta={"passages": PASSAGES, "label": "SECRET-preferred-1"})])
    ann, _ = store.add_annotator("ann")
    doc = store.documents("qa")[0]
    store.save_ranking(ann, doc.id, {doc.candidates[0].id: 1, doc.candidates[1].id: 2})
    return store.get_project("qa"), doc, ann


def test_project_context_follows_the_fields_the_project_shows(store):
    from training.data.context import project_context

    p, doc, _ = qa_project(store)
    assert project_context(p, doc) == QA_CONTEXT
    p = store.update_project("qa", context_fields=["label", "passages"])  # the project's order
    assert project_context(p, doc) == "Who sang Bloom?\n\nlabel:\nSECRET-preferred-1\n\npassages:\n" + PASSAGES_TEXT
    assert project_context(store.update_project("qa", context_fields=[]), doc) == "Who sang Bloom?"
    p = store.update_project("qa", kind="summarize", context_fields=["passages", "absent"])
    assert project_context(p, doc) == "Bloom\n\n" + QA_CONTEXT  # a field the document lacks: nothing


def test_exported_pairs_and_reward_lists_read_the_shown_fields(store):
    from training.data.exports import export_rows
    from training.rewards.trainer import lists_from_store

    qa_project(store)
    [pair] = list(export_rows(store, "qa", "pairs"))
    assert (pair["prompt"], pair["chosen"], pair["rejected"]) == (QA_CONTEXT, "Troye Sivan.", "Nobody.")
    [majority] = list(export_rows(store, "qa", "pairs", aggregate="majority"))
    assert majority["prompt"] == QA_CONTEXT
    [ranked] = lists_from_store(store, "qa")
    assert (ranked.document, ranked.candidates) == (QA_CONTEXT, ("Troye Sivan.", "Nobody."))
    store.update_project("qa", context_fields=[])
    assert lists_from_store(store, "qa")[0].document == "Who sang Bloom?"


def test_generation_prompt_holds_the_shown_fields_cut_with_the_text_to_fit(store, tiny_causal):
    from transformers import AutoTokenizer

    from training.ilf.generate import DEFAULT_PROMPTS, build_prompt

    tok = AutoTokenizer.from_pretrained(tiny_causal)
    p, doc, _ = qa_project(store)
    assert build_prompt(tok, False, DEFAULT_PROMPTS["qa"], p, doc, 384) == (
        "Answer the question below. If information follows it (such as passages), base the answer on that "
        "information.\n\nQuestion: " + QA_CONTEXT + "\n\nAnswer:")
    long = [["Bloom (album)", *[f"Sentence {i} of a long passage about the album and the river." for i in range(400)]]]
    store.add_documents("qa", [NewDocument("q2", "Who sang Bloom?", ["a", "b"], meta={"passages": long})])
    doc = store.documents("qa")[1]
    prompt = build_prompt(tok, False, DEFAULT_PROMPTS["qa"], p, doc, 384, max_prompt_tokens=120)
    assert len(tok(prompt, add_special_tokens=False)["input_ids"]) <= 120
    assert "Question: Who sang Bloom?\n\npassages:\nBloom (album)\nSentence 0 of" in prompt
    assert prompt.endswith("\n\nAnswer:") and "Sentence 399" not in prompt  # the field is cut, not the ending
    slot = build_prompt(tok, False, DEFAULT_PROMPTS["qa"], p, doc, 64).split("Question: ")[1].removesuffix(
        "\n\nAnswer:")
    assert slot.startswith("Who sang Bloom?\n\npassages:\n")  # max_input_tokens holds text and fields together
    assert len(tok(slot, add_special_tokens=False)["input_ids"]) == 64
    p = store.update_project("qa", context_fields=[])
    assert build_prompt(tok, False, DEFAULT_PROMPTS["qa"], p, doc, 384).endswith(
        "\n\nQuestion: Who sang Bloom?\n\nAnswer:")


def test_every_project_kind_has_its_prompts():
    from training.ilf.generate import DEFAULT_PROMPTS
    from training.ilf.templates import load_templates
    from training.store import PROJECT_KINDS

    t = load_templates()
    assert list(PROJECT_KINDS) == ["summarize", "prompt", "qa"]
    for kind in PROJECT_KINDS:
        assert kind in DEFAULT_PROMPTS and kind in t["instructions"] and kind in t["baseline_instructions"]


QA_REFINEMENT = (
    "Write an excellent answer to the question that incorporates the feedback on the given answer and is better "
    "than the given answer.\n\nTitle: Bloom\n\nText: " + QA_CONTEXT + "\n\nOutput: Nobody.\n\n"
    "Feedback on the output: Name the singer.\n\nImproved output:")


def test_ilf_on_a_qa_project_asks_for_an_answer_and_reads_the_fields(store, tiny_causal, monkeypatch):
    import training.ilf.refine as refine_mod
    import training.ilf.select as select_mod
    from training.ilf.config import RefineConfig, SelectConfig
    from training.ilf.dataset import build_dataset
    from training.ilf.templates import item_fields, load_templates
    from training.lm import load_lm

    p, doc, ann = qa_project(store)
    k = store.save_critique(ann, doc.candidates[1].id, "Name the singer.")
    lm = load_lm(tiny_causal)
    prompts = []
    monkeypatch.setattr(refine_mod, "generate", lambda lm, ps, n, cfg, budgets=None: prompts.extend(ps) or
                        [["Troye Sivan sang Bloom."] * n for _ in ps])
    refine_mod.refine(store, "qa", RefineConfig(n=1, baseline_n=0), lm=lm)
    assert prompts == [QA_REFINEMENT]
    prefixes = []
    monkeypatch.setattr(select_mod, "continuation_logprobs",
                        lambda lm, prefix, texts, bs: prefixes.append(prefix) or [0.0] * len(texts))
    select_mod.score_items(store, "qa", store.critique_items("qa"), SelectConfig(selector="pmi"), lm=lm)
    assert prefixes[0] == QA_REFINEMENT
    assert prefixes[1] == QA_REFINEMENT.replace(
        "that incorporates the feedback on the given answer and ", "that ").replace(
        "Feedback on the output: Name the singer.\n\n", "")
    [r] = store.refinements(k.id)
    store.mark_selected(k.id, r.id)
    [row] = build_dataset(store, "qa", "sft", include="selected")
    assert row["prompt"] == "Title: Bloom\n\nText: " + QA_CONTEXT + "\n\nOutput:"
    item = store.critique_items("qa")[0]
    cut = item_fields(item, load_templates(p), "qa", 37, context_fields=p.context_fields)["text"]
    assert cut == "Who sang Bloom?\n\npassages:\nBloom ..."  # max_text_chars cuts text and fields together
