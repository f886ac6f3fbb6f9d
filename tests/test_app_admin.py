"""Admin pages (Projects, People, Progress) driven through Streamlit's AppTest on a temp database."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import pytest
from apptest import open_page as page
from apptest import signed_in
from streamlit.testing.v1 import AppTest

from annotate_app import admin
from training.annotation.agreement import project_agreement
from training.errors import ImportFileError
from training.store import NewDocument, Store

PAGES = Path(__file__).resolve().parents[1] / "annotate_app" / "app_pages"


@pytest.fixture
def admin_db(db_path, monkeypatch):
    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        admin_user, _ = s.add_annotator("root", role="admin")
        worker, _ = s.add_annotator("ann")
    return db_path, admin_user, worker




def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def docs_jsonl(n: int, k: int = 3, start: int = 0) -> bytes:
    rows = [{"id": f"x{i}", "title": f"T{i}", "text": f"Document {i}.", "candidates": [f"c{j} of {i}" for j in range(k)]}
            for i in range(start, start + n)]
    return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"


# -- every admin page refuses a plain annotator ------------------------------------------
@pytest.mark.parametrize("name", ["projects", "people", "progress"])
def test_admin_pages_refuse_annotators(admin_db, name):
    db_path, _, worker = admin_db
    with Store(db_path) as s:
        s.create_project("secret-project", kind="summarize", k=3)
    at = page(name, worker.id)
    assert not at.exception
    assert any("admins only" in e for e in texts(at, "error"))
    # nothing but the refusal: no tables, no widgets, no metrics, no project names
    assert len(at.dataframe) == 0 and len(at.metric) == 0
    assert len(at.text_input) == 0 and len(at.selectbox) == 0 and len(at.button) == 0
    assert all("secret-project" not in m for m in texts(at, "markdown") + texts(at, "caption"))


def test_admin_pages_ask_to_sign_in(admin_db):
    at = AppTest.from_file(str(PAGES / "people.py"), default_timeout=60).run()
    assert any("sign in" in w for w in texts(at, "warning"))
    assert len(at.dataframe) == 0


# -- Projects ---------------------------------------------------------------------------
def fill_create_form(at: AppTest, name: str, k: int, overlap: int = 2):
    at.text_input[0].set_value(name)
    at.number_input[0].set_value(k)
    at.number_input[1].set_value(overlap)
    at.text_area[0].set_value("Rank by faithfulness.")
    at.checkbox[0].check()  # allow ties
    return next(b for b in at.button if b.label == "Create project").click().run()


def test_create_project_through_the_form(admin_db):
    db_path, root, _ = admin_db
    at = page("projects", root.id)
    assert not at.exception
    at = fill_create_form(at, "news", k=3)
    assert not at.exception, at.exception
    assert any("'news' created" in m for m in texts(at, "success"))
    with Store(db_path) as s:
        p = s.get_project("news")
    assert (p.kind, p.k, p.overlap, p.instructions, p.allow_ties) == ("summarize", 3, 2, "Rank by faithfulness.", True)
    assert p.require_critique_lowest is False
    assert "news" in at.dataframe[0].value["project"].tolist()
    # the form starts again from the defaults, not from the project just made
    assert (at.text_input[0].value, at.number_input[0].value, at.text_area[0].value, at.checkbox[0].value) == (
        "", 4, "", False)
    # a second one: the picker moves to it
    at = fill_create_form(at, "blogs", k=2)
    assert at.selectbox(key="projects_project").value == "blogs"


def test_create_project_with_invalid_k_shows_the_error(admin_db):
    db_path, root, _ = admin_db
    at = fill_create_form(page("projects", root.id), "bad", k=1)
    assert not at.exception
    assert any("at least 2 candidates" in e for e in texts(at, "error"))
    assert (at.text_input[0].value, at.number_input[0].value) == ("bad", 1)  # kept, to be corrected
    with Store(db_path) as s:
        assert s.list_projects() == []


def test_edit_project_settings(admin_db):
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        pid = s.create_project("news", k=3, overlap=1).id
    at = page("projects", root.id)
    at.text_area[1].set_value("New instructions")  # 0 is the create form's
    at.number_input[2].set_value(3)
    at.checkbox[5].check()  # show rewards (0-2: create form; 3-5: settings)
    at = at.button(key=f"FormSubmitter:settings_{pid}-Save settings").click().run()
    assert not at.exception
    with Store(db_path) as s:
        p = s.get_project("news")
    assert (p.instructions, p.overlap, p.show_rewards, p.allow_ties) == ("New instructions", 3, True, False)
    assert any("saved" in m for m in texts(at, "success"))
    # 3 per document but 2 people (root, ann): a target nobody can reach is pointed out
    assert any("but 2 people can annotate" in w for w in texts(at, "warning"))


def task_boxes(at: AppTest) -> list:
    """The "Task" selects: the New project form's, then the Settings tab's (when there is a project)."""
    return [b for b in at.selectbox if b.label == "Task"]


def test_create_a_qa_project_and_change_the_task_in_settings(admin_db):
    db_path, root, _ = admin_db
    at = page("projects", root.id)
    [new] = task_boxes(at)
    assert new.options == ["summarize", "prompt", "qa"] and new.value == "summarize"
    assert "**qa**: answers to the question that is the document's text" in new.help
    new.set_value("qa")
    at = fill_create_form(at, "asqa", k=2)
    assert not at.exception
    with Store(db_path) as s:
        p = s.get_project("asqa")
    assert (p.kind, p.k, p.overlap, p.allow_ties) == ("qa", 2, 2, True)
    new, settings = task_boxes(at)
    assert new.value == "summarize" and settings.value == "qa"  # the form starts again from the defaults
    assert "changes only the prompts models get" in settings.help
    settings.set_value("prompt")
    at = at.button(key=f"FormSubmitter:settings_{p.id}-Save settings").click().run()
    assert not at.exception and any("saved" in m for m in texts(at, "success"))
    with Store(db_path) as s:
        p = s.get_project("asqa")
    assert (p.kind, p.k, p.overlap, p.allow_ties, p.instructions) == ("prompt", 2, 2, True, "Rank by faithfulness.")
    assert task_boxes(at)[1].value == "prompt"


def test_import_valid_file_through_the_uploader(admin_db):
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=3)
    at = page("projects", root.id)
    at.file_uploader[0].set_value(("docs.jsonl", docs_jsonl(4), "application/jsonl"))
    at = at.run()
    assert at.button(key="import_go").disabled  # no target chosen: no default project
    at = at.selectbox(key="import_project").set_value("news").run()
    assert any("detected format: **documents**" in c for c in texts(at, "caption"))  # the preview
    at = at.button(key="import_go").click().run()
    assert not at.exception, at.exception
    assert any("imported 4 documents" in m for m in texts(at, "success"))
    assert at.dataframe[0].value.set_index("project").loc["news", "documents"] == 4  # counts at once
    at = at.run()  # the outcome stays on screen
    assert any("imported 4 documents" in m for m in texts(at, "success"))
    with Store(db_path) as s:
        assert s.count_documents("news") == 4
        assert [c.text for c in s.documents("news")[0].candidates] == ["c0 of 0", "c1 of 0", "c2 of 0"]


def test_import_refused_file_shows_errors_line_by_line_and_changes_nothing(admin_db):
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=3)
    bad = b"\n".join([
        json.dumps({"id": "a", "text": "ok", "candidates": ["1", "2", "3"]}).encode(),
        b"{not json",
        json.dumps({"id": "c", "text": "two only", "candidates": ["1", "2"]}).encode(),
    ]) + b"\n"
    at = page("projects", root.id)
    at.file_uploader[0].set_value(("bad.jsonl", bad, "application/jsonl"))
    at.selectbox(key="import_project").set_value("news")
    at = at.run()
    at = at.button(key="import_go").click().run()
    assert not at.exception
    assert any("nothing was imported" in e for e in texts(at, "error"))
    problems = at.dataframe[-1].value
    assert list(problems.columns) == ["line", "field", "message"]
    assert sorted(problems["line"].tolist()) == [2, 3]
    with Store(db_path) as s:
        assert s.count_documents("news") == 0


def test_an_import_outcome_shows_only_for_its_file_and_project(admin_db):
    """A refusal stays while its file and project are chosen; another project or another file
    (even one with the same name) clears it, so it never passes for the new one's outcome."""
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=2)
        s.create_project("wide", k=3)
    at = page("projects", root.id)
    at.file_uploader[0].set_value(("k3.jsonl", docs_jsonl(2, k=3), "application/jsonl"))
    at = at.selectbox(key="import_project").set_value("news").run()
    at = at.button(key="import_go").click().run()
    assert any("was refused: nothing was imported into news" in e for e in texts(at, "error"))
    at = at.run()
    assert any("was refused: nothing was imported into news" in e for e in texts(at, "error"))  # kept across reruns
    at = at.selectbox(key="import_project").set_value("wide").run()  # another project: not refused there
    assert not at.error and not at.success and not any(t.startswith("2 × ") for t in texts(at, "text"))
    at = at.selectbox(key="import_project").set_value("news").run()
    assert not at.error  # cleared, not hidden
    at = at.button(key="import_go").click().run()
    assert any("was refused: nothing was imported into news" in e for e in texts(at, "error"))
    at.file_uploader[0].set_value(("k3.jsonl", docs_jsonl(2, k=2), "application/jsonl"))  # fixed, same name
    at = at.run()
    assert not at.error and not at.button(key="import_go").disabled
    at = at.button(key="import_go").click().run()
    assert [e for e in texts(at, "success") if "imported 2 documents" in e] and not at.error


def test_import_handler_directly(admin_db, tmp_path):
    """The function the page calls with the uploaded bytes: a good file lands, a bad one names its lines."""
    db_path, _, _ = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=3)
        report = admin.import_upload(s, "news", "docs.jsonl", docs_jsonl(3))
        assert (report.documents, report.candidates) == (3, 9)
        assert "imported 3 documents, 9 candidates" in admin.import_summary(report)
        with pytest.raises(ImportFileError) as e:  # the same ids again: refused as duplicates
            admin.import_upload(s, "news", "again.jsonl", docs_jsonl(2))
        assert [p[0] for p in e.value.problems] == [1, 2]
        assert s.count_documents("news") == 3


def test_export_buttons_for_every_kind_and_format(admin_db):
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=3)
        admin.import_upload(s, "news", "docs.jsonl", docs_jsonl(2))
    at = page("projects", root.id)
    buttons = at.get("download_button")
    assert {"documents", "rankings", "pairs", "critiques"} <= set(admin.export_kinds())
    assert len(buttons) == 3 * len(admin.export_kinds())  # every kind x jsonl / parquet / hf
    assert sorted(b.label for b in buttons) == sorted(admin.EXPORT_FORMATS * len(admin.export_kinds()))
    # the ILF exports need accepted refinements: until there is one their buttons are disabled, and say why
    off = {b.key.split("_")[1] for b in buttons if b.proto.disabled}
    assert off == {"ilf-sft", "ilf-feedback"}
    assert any("no accepted refinement yet" in m.value for m in at.markdown)
    with Store(db_path) as s:
        ann, _ = s.add_annotator("kim")
        doc = s.documents("news")[0]
        s.save_annotation(ann, doc.id, {c.id: i + 1 for i, c in enumerate(doc.candidates)},
                          {doc.candidates[2].id: "Too long."})
        [crit] = s.my_critiques(ann, doc.id).values()
        [ref] = s.add_refinements(crit.id, ["Shorter."], generator="test")
        s.accept_refinement(ann, ref.id)
        assert s.count_accepted_refinements("news") == 1
    assert not any(b.proto.disabled for b in page("projects", root.id).get("download_button"))
    # what a button hands out: the documents export gives the imported rows back
    rows = [json.loads(x) for x in admin.export_bytes(db_path, "news", "documents", "jsonl").decode().splitlines()]
    assert [r["id"] for r in rows] == ["x0", "x1"]
    assert admin.export_bytes(db_path, "news", "pairs", "parquet")[:4] == b"PAR1"
    # hf: the `datasets` folder of `tokenwise export --format hf`, zipped
    with zipfile.ZipFile(io.BytesIO(admin.export_bytes(db_path, "news", "documents", "hf"))) as z:
        names = z.namelist()
    assert names and all(n.startswith("documents/") for n in names), names
    assert any(n.endswith("README.md") for n in names) or len(names) > 1


def test_import_errors_grouped_by_kind_with_counts_and_first_lines(admin_db):
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=2)
    at = page("projects", root.id)
    at.file_uploader[0].set_value(("k3.jsonl", docs_jsonl(12, k=3), "application/jsonl"))
    at.selectbox(key="import_project").set_value("news")
    at = at.run()
    at = at.button(key="import_go").click().run()
    assert not at.exception
    assert any("12 problem(s) of 1 kind(s)" in e for e in texts(at, "error"))
    [line] = [t for t in texts(at, "text") if t.startswith("12 × ")]
    assert line.startswith("12 × candidates: ") and line.endswith(" — lines 1, 2, 3, 4, 5 …"), line
    with Store(db_path) as s:
        assert s.count_documents("news") == 0


def test_skip_rows_with_problems_imports_the_rest_from_the_page(admin_db):
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=2)
    bad = docs_jsonl(2, k=2) + b'{"id": "x", "text": "T", "candidates": ["only one"]}\n'
    at = page("projects", root.id)
    at.file_uploader[0].set_value(("mixed.jsonl", bad, "application/jsonl"))
    at = at.selectbox(key="import_project").set_value("news").run()
    at = at.button(key="import_go").click().run()
    assert any("Skip rows with problems" in e for e in texts(at, "error"))  # the refusal points at the option
    at = at.checkbox(key="import_skip_bad").check().run()
    at = at.button(key="import_go").click().run()
    [done] = [m for m in texts(at, "success") if "imported 2 documents" in m]
    assert r"Skipped 1 row\(s\) with problems, such as line 3\: candidates" in done  # (markdown-escaped)
    with Store(db_path) as s:
        assert s.count_documents("news") == 2


def test_the_preview_reads_rows_as_the_import_will_and_names_a_bad_one():
    rows = (b'{"question_id": "q", "model_a": "m1", "model_b": "m2", "winner": "model_b", "judge": "u7", '
            b'"conversation_a": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}], '
            b'"conversation_b": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "B"}]}\n'
            b'{"question_id": "r", "winner": "tie", "conversation_a": [{"role": "user", "content": "R?"}, '
            b'{"role": "assistant", "content": "C"}], "conversation_b": [{"role": "user", "content": "R?"}, '
            b'{"role": "assistant", "content": "D"}]}\n'
            b'{"question_id": "s", "winner": "model_c", "conversation_a": [{"role": "user", "content": "S?"}, '
            b'{"role": "assistant", "content": "E"}], "conversation_b": [{"role": "user", "content": "S?"}, '
            b'{"role": "assistant", "content": "F"}]}\n')
    pv = admin.preview_upload("arena.jsonl", rows)
    assert pv.detected == "two_answer"
    assert [(r["prompt"], r["candidates"], r["ranking"], r["rater"]) for r in pv.read[:2]] == [
        ("user: Q?", "1. A | 2. B", "2 > 1", "u7"), ("user: R?", "1. C | 2. D", "1 = 2", "")]
    assert pv.read[2]["problem"].startswith("winner: must say which answer is preferred")
    assert admin.preview_upload("d.jsonl", b'{"text": "T", "candidates": ["a", "b"]}\n').read == []
    # the form's options and chosen format: a score column named in the form is used
    scored = b'{"instruction": "Q", "completions": [{"response": "a", "stars": 2}, {"response": "b", "stars": 5}]}\n'
    assert admin.preview_upload("r.jsonl", scored).read[0]["problem"].startswith("completions[0]")
    pv = admin.preview_upload("r.jsonl", scored, options=admin.import_options(score_field="stars"), fmt="ratings")
    assert pv.read[0]["ranking"] == "2 > 1" and pv.read[0]["problem"] == ""
    # one response per row (HelpSteer): the preview shows each prompt's rows gathered, as imported
    long = (b'{"prompt": "Q", "response": "a", "helpfulness": 1}\n{"prompt": "R", "response": "c", "helpfulness": 3}\n'
            b'{"prompt": "Q", "response": "b", "helpfulness": 4}\n')
    pv = admin.preview_upload("helpsteer.jsonl", long)
    assert pv.detected == "scored"
    assert [(r["line"], r["prompt"], r["candidates"], r["ranking"]) for r in pv.read] == [
        (1, "Q", "1. a | 2. b", "2 > 1"), (2, "R", "1. c", "")]


def test_import_mapping_preview_and_options_reach_the_importer(admin_db, monkeypatch):
    rows = b'{"question": "Q1?", "good": "yes", "bad": "no"}\n{"question": "Q2?", "good": "a", "bad": "b"}\n'
    pv = admin.preview_upload("prefs.jsonl", rows, formats_map := {"prompt": "question", "chosen": "good",
                                                                   "rejected": "bad"})
    assert pv.detected == "pairs" and [r["prompt"] for r in pv.rows] == ["Q1?", "Q2?"]
    assert "question" not in pv.rows[0] and pv.rows[0]["line"] == 1
    assert pv.read[0] == {"line": 1, "prompt": "Q1?", "candidates": "1. yes | 2. no", "ranking": "1 > 2", "rater": "",
                          "problem": ""}  # as Tokenwise reads it
    assert admin.preview_upload("prefs.jsonl", rows).detected is None  # unmapped: unknown shape
    assert admin.import_options() is None
    opts = admin.import_options("prompt=question, chosen=good,rejected=bad", rater_field="who")
    assert (opts.mapping, opts.rater_field, opts.score_field) == (formats_map, "who", None)
    with pytest.raises(ValueError, match="not NAME=COLUMN"):
        admin.import_options("prompt")
    seen = {}
    monkeypatch.setattr(admin.imports, "import_file", lambda *a, **kw: seen.update(kw) or "report")
    db_path, _, _ = admin_db
    with Store(db_path) as s:
        assert admin.import_upload(s, "p", "prefs.jsonl", rows, fmt="pairs", options=opts) == "report"
        assert seen == {"fmt": "pairs", "source_annotator": "import", "options": opts, "skip_bad": False,
                        "create": False}
        seen.clear()
        admin.import_upload(s, "p", "prefs.jsonl", rows, skip_bad=True)
        assert seen == {"fmt": "auto", "source_annotator": "import", "skip_bad": True,
                        "create": False}  # no options: left out


def test_import_waits_for_a_format_when_the_preview_cannot_read_the_file(admin_db):
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.create_project("qa", k=2)
    rows = b'{"question": "Q1?", "a1": "yes", "a2": "no", "passages": ["P."]}\n'
    at = page("projects", root.id)
    at.file_uploader[0].set_value(("qa.jsonl", rows, "application/jsonl"))
    at = at.selectbox(key="import_project").set_value("qa").run()
    assert at.button(key="import_go").disabled  # unknown shape: nothing to press yet
    assert "Format or a Column mapping" in at.button(key="import_go").help
    at = at.text_input(key="import_mapping").set_value("text=question,candidates=a1+a2").run()
    assert not at.button(key="import_go").disabled
    at = at.button(key="import_go").click().run()
    [done] = texts(at, "success")
    assert "imported 1 document," in done and "also have passages" in done and r"show\-fields passages" in done  # (markdown-escaped)
    with Store(db_path) as s:
        assert s.documents("qa")[0].meta == {"passages": ["P."]}


# -- People -----------------------------------------------------------------------------
def test_add_annotator_shows_token_once(admin_db):
    db_path, root, _ = admin_db
    at = page("people", root.id)
    at.text_input[0].set_value("bea")
    at = at.button(key="FormSubmitter:add_annotator-Add").click().run()
    assert not at.exception
    [token] = [c.value for c in at.code]
    assert token.startswith("tw_")
    assert any("will not be shown again" in w for w in texts(at, "warning"))
    with Store(db_path) as s:
        assert s.authenticate(token).name == "bea"
    assert "bea" in at.dataframe[0].value["name"].tolist()  # the list already shows the new one
    assert "bea" in at.selectbox(key="revoke_who").options
    at = at.run()  # any rerun: the token is gone
    assert len(at.code) == 0
    assert token not in repr(at.session_state)  # and nothing kept it


def test_add_annotator_duplicate_name_is_refused(admin_db):
    _, root, _ = admin_db
    at = page("people", root.id)
    at.text_input[0].set_value("ann")
    at = at.button(key="FormSubmitter:add_annotator-Add").click().run()
    assert any("already exists" in e for e in texts(at, "error"))
    assert len(at.code) == 0
    # a double click on Add: the second submit says the token was shown, not a puzzling "already exists"
    at.text_input[0].set_value("dana")
    at = at.button(key="FormSubmitter:add_annotator-Add").click().run()
    assert len(at.code) == 1
    at.text_input[0].set_value("dana")
    at = at.button(key="FormSubmitter:add_annotator-Add").click().run()
    assert not texts(at, "error") and any("added a moment ago" in i for i in texts(at, "info"))


def test_revoke_needs_confirmation_and_works(admin_db):
    db_path, root, worker = admin_db
    at = page("people", root.id)
    assert at.selectbox(key="revoke_who").options == ["ann"]  # never yourself
    revoke = at.button(key="revoke")
    assert revoke.label == "Revoke" and revoke.disabled
    at.checkbox(key="revoke_sure:ann").check()
    at = at.run()
    at = at.button(key="revoke").click().run()
    assert not at.exception
    assert any("ann has been revoked" in m for m in texts(at, "success"))
    with Store(db_path) as s:
        assert s.get_annotator("ann").active is False
        s.add_annotator("bea")
    # the next person's confirmation is a box of its own, not the one just ticked for ann
    at = at.run()
    assert at.selectbox(key="revoke_who").value == "bea"
    assert at.checkbox(key="revoke_sure:bea").value is False and at.button(key="revoke").disabled
    # a revoked annotator's open session ends: pages ask to sign in again
    again = AppTest.from_file(str(PAGES / "progress.py"), default_timeout=60)
    signed_in(again, worker.id)
    again.run()
    assert any("sign in" in w for w in texts(again, "warning"))


def test_a_new_token_for_a_revoked_annotator_lets_them_in_again(admin_db):
    """People: "New token" needs the box ticked, shows the token once, and the person (revoked here)
    signs in with it; their old token is refused."""
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.revoke_annotator("ann")
    at = page("people", root.id)
    assert at.selectbox(key="token_who").options == ["ann (revoked)"]  # never yourself
    at = at.button(key="FormSubmitter:new_token-Make a new token").click().run()
    assert any("Tick the box" in w for w in texts(at, "warning")) and not at.code
    at.checkbox(key="token_sure").check()
    at = at.button(key="FormSubmitter:new_token-Make a new token").click().run()
    assert not at.exception
    [token] = [c.value for c in at.code]
    with Store(db_path) as s:
        assert s.authenticate(token).name == "ann" and s.get_annotator("ann").active
    assert at.dataframe[0].value.set_index("name").loc["ann", "active"]  # the list shows it at once
    assert len(at.run().code) == 0  # any rerun: the token is gone


# -- Progress ---------------------------------------------------------------------------
def test_progress_shows_counts_and_agreement(admin_db):
    db_path, root, ann = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=3, overlap=2)
        s.add_documents("news", [NewDocument(f"d{i}", f"text {i}", ["a", "b", "c"]) for i in range(4)])
        bob, _ = s.add_annotator("bob")
        docs = s.documents("news")
        for i, d in enumerate(docs[:3]):
            ids = [c.id for c in d.candidates]
            s.save_ranking(ann, d.id, {ids[0]: 1, ids[1]: 2, ids[2]: 3}, seconds=10 + i)
            flip = {ids[0]: 1, ids[1]: 3, ids[2]: 2} if i == 0 else {ids[0]: 1, ids[1]: 2, ids[2]: 3}
            s.save_ranking(bob, d.id, flip, seconds=20)
        expected = project_agreement(s, "news")
    at = page("progress", root.id)
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "4"
    assert metrics["Complete (ranked by 2)"] == "3"
    assert metrics["Rankings"] == "6"
    assert at.get("progress")[0].proto.text == "6 of 8 rankings done (4 documents × 2); 3 of 4 documents complete"
    assert not math.isnan(expected.alpha) and 0 < expected.alpha < 1
    assert metrics["Krippendorff's alpha (ordinal)"] == f"{expected.alpha:.3f}"
    per = at.dataframe[1].value
    assert per.set_index("annotator")["rankings"].to_dict() == {"ann": 3, "bob": 3}
    assert per.set_index("annotator")["median_seconds"].to_dict() == {"ann": 11, "bob": 20}
    table = at.dataframe[1].proto
    assert table.placeholder == "—"  # an imported ranking has no time: a dash, not "None"
    assert '"label": "median seconds per ranking"' in table.columns
    pairs = at.dataframe[2].value
    assert pairs[["annotator A", "annotator B"]].values.tolist() == [["ann", "bob"]]
    assert pairs["mean Kendall tau"].iloc[0] == pytest.approx((1 / 3 + 1 + 1) / 3, abs=1e-3)
    assert len(at.get("plotly_chart")) == 2  # rankings per annotator, tau heatmap


def test_progress_charts_draw_a_name_as_text(admin_db):
    """A rater's name comes from an import file: plotly draws <span style> in labels, and a
    background-image there would fetch from another origin. The charts get it escaped."""
    import json as _json

    db_path, root, ann = admin_db
    evil = '<span style="background-image:url(http://tracker.example/p.png)">eve</span>'
    with Store(db_path) as s:
        s.create_project("news", k=2, overlap=2)
        s.add_documents("news", [NewDocument("d0", "text", ["a", "b"])])
        eve, _ = s.add_annotator(evil)
        d = s.documents("news")[0]
        ids = [c.id for c in d.candidates]
        s.save_ranking(ann, d.id, {ids[0]: 1, ids[1]: 2}, seconds=3)
        s.save_ranking(eve, d.id, {ids[0]: 2, ids[1]: 1}, seconds=3)
    at = page("progress", root.id)
    assert not at.exception
    figures = [_json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    drawn = _json.dumps(figures)
    assert len(figures) == 2 and "<span" not in drawn  # the bar's x and the tau heatmap's axes
    assert drawn.count("&lt;span style=") >= 3

def test_progress_with_no_rankings(admin_db):
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=3)
    at = page("progress", root.id)
    assert not at.exception
    assert any("Nobody has ranked" in m for m in texts(at, "info"))


def test_admin_pages_through_the_app_navigation(admin_db):
    """The pages as the app runs them (app.py's st.navigation), one after the other in one session."""
    db_path, root, _ = admin_db
    with Store(db_path) as s:
        s.create_project("news", k=3)
    at = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=60)
    signed_in(at, root.id)
    at.run()
    for name, title in [("projects", "Projects"), ("people", "People"), ("progress", "Progress")]:
        at.switch_page(f"app_pages/{name}.py").run()
        assert not at.exception, (name, at.exception)
        assert [t.value for t in at.title] == [title]
        assert len(at.dataframe) >= 1
