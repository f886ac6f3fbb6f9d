"""Context fields: the document fields a project shows annotators under the text (passages, ...),
from the store and the command line to the Annotate page."""

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
