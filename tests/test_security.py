"""Who sees what: tokens, roles, other annotators' entries, and user text that looks like HTML."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from apptest import signed_in
from streamlit.testing.v1 import AppTest

from annotate_app import ui
from annotate_app.app import PAGES
from training.annotation import drafts as A
from training.errors import AuthError, Forbidden, ValidationError
from training.store import NewDocument, Store

APP = Path(__file__).resolve().parents[1] / "annotate_app"
PAGE_FILES = sorted(p.name for p in (APP / "app_pages").glob("*.py") if not p.name.startswith("_"))
ADMIN_FILES = [f for f, _, _, admin in PAGES if admin and (APP / "app_pages" / f).exists()]
XSS = '<script>alert(1)</script><img src=x onerror="alert(2)"> **bold** [link](http://example.com)'


def _rendered(at) -> list[str]:
    """The value of every element in the main area and the sidebar, as text."""
    out = []
    for kind in ("title", "header", "subheader", "markdown", "text", "caption", "code", "info", "success",
                 "warning", "error", "metric", "json", "exception"):
        out += [str(getattr(e, "value", e)) for e in getattr(at, kind)]
    out += [str(t.value) for t in at.dataframe] + [str(t.value) for t in at.table]
    out += [w.label for w in (*at.selectbox, *at.radio, *at.text_area, *at.text_input, *at.button)]
    out += [str(o) for w in at.selectbox for o in w.options]
    return out


def _leaks(at, secrets) -> list[str]:
    text = "\n".join(_rendered(at))
    return [s for s in secrets if s in text]


SECRETS = ["river rose", "River report", "Rain fell", "cat named", "Rank by faithfulness"]


@pytest.mark.parametrize("page", PAGE_FILES)
def test_every_page_shows_nothing_without_a_valid_session(app_db, app_test, page):
    with Store(app_db.path) as s:
        s.save_annotation(app_db.other, s.documents("p")[0].id,
                          {c.id: i + 1 for i, c in enumerate(s.documents("p")[0].candidates)},
                          {s.documents("p")[0].candidates[2].id: "secret critique"})
        s.revoke_annotator("ann")
    for annotator_id in (None, 999, app_db.ann.id):  # not signed in; forged id; revoked annotator
        at = app_test(page, annotator_id).run()
        assert not at.exception, (page, at.exception)
        assert any("sign in" in w.value for w in at.warning), page
        assert _leaks(at, SECRETS + ["secret critique", "other", "boss"]) == [], page
        assert "annotator_id" not in at.session_state


def test_a_new_token_ends_the_sessions_of_the_old_one_and_can_lift_a_revocation(app_db, app_test):
    """A lost token: the admin makes a new one. The old token no longer signs in, a session signed
    in with it ends at its next run, and a revoked person may sign in again with the new one."""
    with Store(app_db.path) as s:
        old = s.get_annotator("ann")
        at = app_test("annotate.py", old.id).run()  # a session signed in with the old token
        assert not at.warning and at.radio
        s.revoke_annotator("ann")
        again, token = s.new_token("ann")
        assert again.active and again.token_prefix != old.token_prefix
        with pytest.raises(AuthError, match="unknown or wrong"):
            s.authenticate(app_db.tokens["ann"])
        assert s.authenticate(token).id == old.id
        with pytest.raises(ValidationError, match="import source"):
            s.new_token(_a_source(s))
    at.run()
    assert any("sign in" in w.value for w in at.warning) and "annotator_id" not in at.session_state
    assert app_test("annotate.py", old.id).run().radio  # signed in with the new token: works


def _a_source(s) -> str:
    with s.tx() as c:
        source, _ = s._source(c, "import")
    return source.name


def test_wrong_token_sees_no_document_text(app_db, app_test):
    at = app_test().run()
    at.text_input[0].input(app_db.tokens["ann"][:-2] + "xx")
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert at.error and "wrong token" in at.error[0].value
    assert _leaks(at, SECRETS) == []


@pytest.mark.parametrize("page", ADMIN_FILES)
def test_admin_pages_refuse_an_annotator(app_db, app_test, page):
    with Store(app_db.path) as s:
        s.save_annotation(app_db.other, s.documents("p")[0].id,
                          {c.id: i + 1 for i, c in enumerate(s.documents("p")[0].candidates)},
                          {s.documents("p")[0].candidates[2].id: "secret critique"})
    at = app_test(page, app_db.ann.id).run()
    assert not at.exception, at.exception
    assert [e.value.replace("\\", "") for e in at.error] == ["This page is for admins only."]  # Markdown-escaped
    assert _leaks(at, SECRETS + ["secret critique", "other", "boss", app_db.tokens["boss"][:10]]) == []


def test_admin_page_list_is_not_empty():
    assert ADMIN_FILES, "no admin page file exists: test_admin_pages_refuse_an_annotator checked nothing"


def test_store_gives_an_annotator_only_their_own(app_db):
    with Store(app_db.path) as s:
        doc = s.documents("p")[0]
        ids = [c.id for c in doc.candidates]
        theirs, _ = s.save_annotation(app_db.other, doc.id, dict(zip(ids, (1, 2, 3))), {ids[0]: "theirs"})
        assert s.my_rankings(app_db.ann, "p") == []
        assert s.my_ranking(app_db.ann, doc.id) is None
        assert s.my_critiques(app_db.ann, doc.id) == {}
        assert s.ranking_history(app_db.ann, doc.id) == []
        assert s.critique_history(app_db.ann, ids[0]) == []
        with pytest.raises(Forbidden, match="another annotator"):
            s.get_my_ranking(app_db.ann, theirs.id)
        # "revising" their document only ever writes ann's own rows; theirs stay as they were
        mine, _ = s.save_annotation(app_db.ann, doc.id, dict(zip(ids, (3, 2, 1))), {ids[0]: "mine"})
        assert mine.annotator_id == app_db.ann.id and mine.version == 1
        assert s.my_ranking(app_db.other, doc.id) == theirs
        assert s.my_critiques(app_db.other, doc.id)[ids[0]].text == "theirs"
        assert [r.version for r in s.ranking_history(app_db.other, doc.id)] == [1]


def test_my_entries_page_shows_only_own(app_db, app_test):
    with Store(app_db.path) as s:
        d0, d1 = s.documents("p")[:2]
        s.save_annotation(app_db.other, d0.id, {c.id: i + 1 for i, c in enumerate(d0.candidates)},
                          {d0.candidates[0].id: "OTHER-CRITIQUE"})
        s.save_annotation(app_db.ann, d1.id, {c.id: i + 1 for i, c in enumerate(d1.candidates)},
                          {d1.candidates[0].id: "ANN-CRITIQUE"})
    at = app_test("mine.py", app_db.ann.id).run()
    assert at.dataframe[0].value["document"].tolist() == ["River report 1"]
    assert at.selectbox(key="mine_open").options == ["River report 1 (v1)"]
    text = "\n".join(_rendered(at)) + "\n".join(t.value for t in at.text_area)
    assert "ANN-CRITIQUE" in text and "OTHER-CRITIQUE" not in text


def test_html_in_user_text_is_shown_as_text(db_path, monkeypatch, app_test):
    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        s.create_project("x", k=2, instructions=XSS)
        s.add_documents("x", [NewDocument("d", "Doc " + XSS, ["plain", "Cand " + XSS], title="Title " + XSS)])
        ann, _ = s.add_annotator("ann")
        doc = s.documents("x")[0]
        plain_id, html_id = (c.id for c in doc.candidates)
        s.save_annotation(ann, doc.id, {plain_id: 1, html_id: 2}, {html_id: ("Crit " + XSS, (5, 13))})
        s.create_project("y", k=2)
        s.add_documents("y", [NewDocument("e", "Doc " + XSS, ["a", "b"], title="Title " + XSS)])

    def check(at):
        assert not at.exception
        # user text goes through st.text (no Markdown, no HTML) ...
        texts = [t.value for t in at.text]
        # ... and never into a Markdown element, where it could be formatted or linked
        for md in [*at.markdown, *at.caption, *at.success, *at.info, *at.subheader, *at.title]:
            assert "<script>" not in md.value and "](http" not in md.value, md.value
        return texts

    at = app_test("mine.py", ann.id)
    at.session_state["current_project"] = "x"
    texts = check(at.run())
    assert "Cand " + XSS in texts and "Doc " + XSS in texts
    assert any("Crit " + XSS in t for t in texts)  # the history line
    assert at.text_area(key=f"revise1.0:crit:{doc.id}:{html_id}").value == "Crit " + XSS
    titles = [h.value for h in at.subheader]
    assert titles == [(r'Title \<script\>alert\(1\)\</script\>\<img src=x onerror="alert\(2\)"\> '
                       r'\*\*bold\*\* \[link\]\(http' '\u2060' r'\://example\.com\)')]  # no autolink either

    at = app_test("annotate.py", ann.id)
    at.session_state["current_project"] = "y"
    texts = check(at.run())
    assert "Doc " + XSS in texts
    at = app_test("annotate.py", ann.id)
    at.session_state["current_project"] = "x"
    texts = check(at.run())
    assert XSS in texts  # the instructions
    assert any("All done" in m.value for m in at.success)


def test_my_pages_never_allow_raw_html():
    for f in (APP / "widgets.py", APP / "app_pages" / "annotate.py", APP / "app_pages" / "mine.py"):
        src = f.read_text()
        assert "unsafe_allow_html" not in src and "st.html" not in src, f


def test_saving_as_someone_else_is_not_possible_from_the_core(app_db):
    """training.annotation.drafts.save writes as the annotator it is given; a draft carries no owner."""
    with Store(app_db.path) as s:
        p, doc = s.get_project("p"), s.documents("p")[0]
        d = A.Draft.new(doc)
        d.ranks.update({c.id: i + 1 for i, c in enumerate(doc.candidates)})
        r, _ = A.save(s, app_db.ann, p, doc, d)
        assert r.annotator_id == app_db.ann.id
        assert s.my_ranking(app_db.other, doc.id) is None


# ---- issue 13 ---------------------------------------------------------------------------------
APP_FILES = sorted(APP.rglob("*.py"))


def _calls(tree):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _is_ui(node, name: str) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "ui")


def test_every_fragment_callback_and_download_builder_goes_through_the_one_check():
    """Item 1/2: a fragment rerun, a callback or a download builder runs without the page's own
    check, so each must be made with ui.fragment / ui.guarded (which call ui.check). This walks
    every file of the app, so a new one cannot skip it."""
    found, bad = [], []
    for f in APP_FILES:
        tree = ast.parse(f.read_text())
        where = f.relative_to(APP)
        for node in ast.walk(tree):
            # st.fragment / st.dialog anywhere but ui.py (which wraps st.fragment)
            if (isinstance(node, ast.Attribute) and node.attr in ("fragment", "dialog", "experimental_fragment")
                    and isinstance(node.value, ast.Name) and node.value.id == "st"):
                (found if where.name == "ui.py" else bad).append(f"{where}:{node.lineno} st.{node.attr}")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for dec in node.decorator_list:
                    if _is_ui(dec, "fragment"):
                        found.append(f"{where}:{node.lineno} fragment {node.name}")
        for call in _calls(tree):
            for kw in call.keywords:
                if kw.arg in ("on_click", "on_change", "on_submit", "on_select"):
                    ok = (isinstance(kw.value, ast.Constant) and kw.value.value in ("ignore", "rerun", None)) \
                        or _is_ui(kw.value, "guarded")
                    (found if ok else bad).append(f"{where}:{call.lineno} {kw.arg}")
            if isinstance(call.func, ast.Attribute) and call.func.attr == "download_button":
                data = next((kw.value for kw in call.keywords if kw.arg == "data"), None)
                (found if _is_ui(data, "guarded") else bad).append(f"{where}:{call.lineno} download_button")
    assert bad == [], f"not re-checked: {bad}"
    assert any("fragment live" in f for f in found) and any("download_button" in f for f in found), found


def _guard_script():
    import streamlit as st

    from annotate_app import ui

    @ui.fragment("admin")
    def live():
        st.text("live secret")
        st.button("act", key="act")

    st.session_state["builder"] = ui.guarded(lambda: b"the export", "admin")
    live()


def test_a_revoked_admin_loses_the_fragment_and_the_download(app_db):
    at = AppTest.from_function(_guard_script, default_timeout=60)
    signed_in(at, app_db.boss.id)
    at.run()
    assert not at.exception and "live secret" in [t.value for t in at.text]
    builder = at.session_state["builder"]
    assert builder() == b"the export"  # what st.download_button calls when clicked
    with Store(app_db.path) as s:
        s.revoke_annotator("boss")
    with pytest.raises(AuthError, match="revoked"):
        builder()  # built only after the re-check: a revoked admin's click gets nothing
    at.button(key="act").click().run()  # a rerun of the fragment
    assert not at.exception
    assert "live secret" not in [t.value for t in at.text] and "annotator_id" not in at.session_state
    assert any("sign in" in w.value for w in at.warning)


def _counting_script():
    import streamlit as st

    from annotate_app import ui

    st.session_state["app_runs"] = st.session_state.get("app_runs", 0) + 1

    @ui.fragment("admin")
    def live():
        st.text("live secret")
        st.button("act", key="act")

    live()


def test_a_failing_fragment_asks_again_for_the_app_rerun_but_never_loops(app_db):
    """A timer run's app rerun can be lost: the next failing runs (the session key already gone)
    ask again. On a page with no check of its own that would loop, so they ask a few times only."""
    at = AppTest.from_function(_counting_script, default_timeout=60)
    signed_in(at, app_db.boss.id)
    at.run()
    assert at.session_state["app_runs"] == 1
    with Store(app_db.path) as s:
        s.revoke_annotator("boss")
    at.button(key="act").click().run()
    assert not at.exception
    # AppTest runs the whole script for the click (run 2); then each failing run asked once more
    assert at.session_state["app_runs"] == 2 + ui.FRAGMENT_APP_RERUNS
    assert "live secret" not in [t.value for t in at.text]
    assert any("sign in" in w.value for w in at.warning)
    at.run()  # later runs still fail, and ask no more
    assert at.session_state["app_runs"] == 3 + ui.FRAGMENT_APP_RERUNS


def test_an_annotator_cannot_use_an_admin_builder(app_db):
    at = AppTest.from_function(_guard_script, default_timeout=60)
    signed_in(at, app_db.ann.id)
    at.run()  # the fragment refuses an annotator (and signs them out): the builder refuses too
    with pytest.raises((Forbidden, AuthError)):
        at.session_state["builder"]()


IMG = "![x](http://127.0.0.1:9/tokenwise-leak.png) **bold** :red[red]"


def _markdown_texts(at) -> list[str]:
    """Everything the page hands to Streamlit's Markdown renderer (bodies and labels)."""
    out = [e.value for k in ("markdown", "caption", "info", "warning", "success", "error", "title",
                             "subheader", "header") for e in getattr(at, k)]
    out += [e.label for e in at.expander] + [w.label for w in (*at.radio, *at.checkbox, *at.button)]
    out += [str(o) for w in at.radio for o in w.options]
    return out


def test_review_page_renders_user_text_as_text(app_db, app_test):
    """Item 4: a critique, refinements, a document and a name with a Markdown image, bold and a
    colour directive reach the page only through st.text or escaped."""
    with Store(app_db.path) as s:
        s.create_project("md", k=2)
        s.add_documents("md", [NewDocument("d", "Doc " + IMG, ["Out " + IMG, "b"], title="T " + IMG)])
        evil, _ = s.add_annotator(IMG)
        doc = s.documents("md")[0]
        k = s.save_critique(evil, doc.candidates[0].id, "Crit " + IMG)
        rs = s.add_refinements(k.id, ["Ref1 " + IMG, "Ref2 " + IMG], generator="test")
        s.mark_selected(k.id, rs[0].id)
    for who, everyone in ((evil.id, False), (app_db.boss.id, True)):
        at = app_test("review.py", who)
        at.session_state["current_project"] = "md"
        at.session_state["review_everyone"] = everyone
        at.run()
        assert not at.exception
        texts = [t.value for t in at.text]
        for expected in ("Crit " + IMG, "Out " + IMG, "Ref1 " + IMG, "Ref2 " + IMG):
            assert expected in texts
        for md in _markdown_texts(at):
            assert "![" not in md and "](http" not in md and "**bold**" not in md and ":red[" not in md, md
            assert "http:" not in md and "http\\:" not in md, md  # a bare URL would become a link
    at = app_test("app.py", evil.id).run()  # the sidebar names the signed-in person
    assert all("![" not in m.value for m in at.sidebar.markdown)


def _error_script():
    from annotate_app import ui

    img = "![x](http://127.0.0.1:9/tokenwise-leak.png) **bold** :red[red]"  # IMG (the script runs alone)
    ui.show_error("quote: '" + img + "' is not in candidate A\nline 2: keys: " + img)


def test_error_messages_show_the_data_they_quote_as_text():
    """An error quotes what the user typed or what a file holds: never rendered as Markdown."""
    at = AppTest.from_function(_error_script, default_timeout=60)
    at.run()
    [error] = at.error
    assert "![" not in error.value and "](http" not in error.value and "**bold**" not in error.value, error.value
    assert error.value.count("  \n") == 1  # one line per line of the message


def test_a_revoked_annotator_who_clicks_save_is_signed_out_without_an_exception(app_db, app_test):
    """Save's callback re-checks the token: a revoked annotator gets the sign-in message, not a
    traceback, and nothing is saved."""
    at = app_test("annotate.py", app_db.ann.id).run()
    for i, label in enumerate("ABC"):
        next(r for r in at.radio if r.label == f"Rank of candidate {label}").set_value(i + 1)
    at.run()
    with Store(app_db.path) as s:
        s.revoke_annotator("ann")
    at.button(key="annotate_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("sign in" in w.value for w in at.warning) and "annotator_id" not in at.session_state
    with Store(app_db.path) as s:
        assert s.db["rankings"].count == 0


def test_import_source_names_from_the_data_are_made_names(store):
    """A rater column is data: its name is folded to one line, bidi controls dropped, cut at 100."""
    from training.store.base import source_name

    assert source_name("import:ann\n\u202eevil\t b") == "import:ann evil b"
    assert source_name("import:" + "x" * 200) == "import:" + "x" * 92 + "…"
    with store.tx() as c:
        made, _ = store._source(c, "import:line\nbreak")
    assert made.name == "import:line break"
    store.add_annotator("a1")
    store.add_annotator("boss", role="admin")
    store.add_annotator("gone")
    store.revoke_annotator("gone")
    assert store.count_people() == 2  # who can annotate: not a source, not a revoked person


def test_names_are_one_line():
    """Project, annotator and round names appear in menus, messages and commands: one line, no
    control or bidi characters, at most 100 characters."""
    from training.store.base import checked_name

    assert checked_name("project", "  news 👩\u200d💻 ![x](y) ") == "news 👩\u200d💻 ![x](y)"
    for bad, says in (("a\n\nb", "U+000A"), ("a\tb", "U+0009"), ("ab\u202ecd", "U+202E"), ("x" * 101, "at most 100"),
                      ("  ", "must not be empty")):
        with pytest.raises(ValidationError, match=re.escape(says)):
            checked_name("project", bad)


def test_dashboard_job_paths_stay_in_the_data_folder(tmp_path, monkeypatch):
    """Item 7: from the dashboard (data_root given) a path outside the data folder is refused
    with one message whether or not it exists; inside, it is stored absolute; the CLI takes any."""
    from training.jobs.kinds import KINDS, submit_job

    db = str(tmp_path / "data" / "t.db")
    (tmp_path / "data").mkdir()
    monkeypatch.delenv("TOKENWISE_MODELS", raising=False)
    with Store(db) as s:
        s.create_project("p", k=2)
        root = tmp_path / "data"
        messages = []
        for field, value in (("file", "/etc/passwd"), ("file", "/no/such/file.jsonl"), ("out", "/tmp/anywhere"),
                             ("file", "../outside.jsonl"), ("base", "/etc")):
            with pytest.raises(ValidationError) as e:
                submit_job(s, "sft", {field: value}, project="p", data_root=root)
            messages.append(str(e.value).replace(field, "FIELD"))
        assert len(set(messages)) == 1 and "inside the data folder" in messages[0], messages
        assert "passwd" not in messages[0] and "exist" not in messages[0]
        job = submit_job(s, "sft", {"file": "ilf.jsonl", "out": "models/x", "base": "smollm2"}, project="p",
                         data_root=root)
        assert job.config["file"] == str(root.resolve() / "ilf.jsonl")
        assert job.config["out"] == str(root.resolve() / "models" / "x") and job.config["base"] == "smollm2"
        for kind in ("policy", "generate", "ilf_refine", "reward"):
            with pytest.raises(ValidationError, match="inside the data folder"):
                field = dict(KINDS[kind].paths) and next(iter(dict(KINDS[kind].paths)))
                submit_job(s, kind, {field: "/etc"}, project="p", data_root=root)
        assert submit_job(s, "sft", {"file": "/etc/passwd"}, project="p").config["file"] == "/etc/passwd"  # CLI
        with pytest.raises(ValidationError, match="control characters"):
            submit_job(s, "sft", {"file": "a\x00b.jsonl"}, project="p", data_root=root)
        # a job's output folder is its own: not the database's folder, not a registered model's
        kept = s.add_model("ilf", str(root / "models" / "kept"), project="p")
        for out, says in ((".", "holds the database"), ("models/kept", f"model #{kept.id}"),
                          ("models/kept/inner", f"model #{kept.id}")):
            with pytest.raises(ValidationError, match=says):
                submit_job(s, "sft", {"out": out}, project="p", data_root=root)
        with pytest.raises(ValidationError, match=f"model #{kept.id}"):
            submit_job(s, "sft", {"out": str(root / "models" / "kept")}, project="p")  # the CLI too
        with pytest.raises(ValidationError, match="control characters"):
            submit_job(s, "sft", {"out": "models/a\x00b"}, project="p")
    # every setting that names a file or model is declared, so none escapes the check
    pathlike = {"file", "out", "model", "base", "base_model", "reward_model", "path", "dir"}
    for name, kind in KINDS.items():
        declared = {f for f, _ in kind.paths}
        fields = {spec.name for spec in __import__("training.forms").forms.describe(kind.config_class())}
        assert fields & pathlike <= declared, (name, fields & pathlike - declared)


def test_sign_in_backs_off_per_session_and_a_flood_elsewhere_locks_nobody_out():
    from training.access import SignInThrottle

    now = [0.0]
    t = SignInThrottle(free=5, window=60, base=1, cap=300, alarm=20, clock=lambda: now[0])
    for _ in range(5):
        assert t.wait_s("a") == 0
        t.failed("a")
    assert t.wait_s("a") == 1.0  # 5 failures: 1 s after the last one
    now[0] = 1.0
    assert t.wait_s("a") == 0
    t.failed("a")
    assert t.wait_s("a") == 2.0  # 6 failures: 2 s
    assert t.wait_s("b") == 0  # another session is not held back by a's failures
    alarms = [t.failed(f"flood-{i}") for i in range(30)]  # one wrong token from each of 30 new sessions
    assert t.wait_s("b") == 0 and t.wait_s("flood-3") == 0  # ... still lock nobody out
    assert [n for n in alarms if n] == [20]  # the log is warned once, when 20 failed within the window
    for _ in range(10):
        t.failed("a")
    assert t.wait_s("a") == min(300, 2.0 ** 11)  # capped at 300 s per session
    now[0] = 1.0 + 61
    assert t.wait_s("a") == 0  # a minute later the window is empty
    assert t.failed("z") == 0
    t.failed("c")
    t.succeeded("c")
    assert t.wait_s("c") == 0


def test_a_flood_of_wrong_tokens_from_other_sessions_does_not_refuse_a_right_one(app_db, app_test):
    for _ in range(12):  # twelve browser sessions, one wrong token each
        at = app_test().run()
        at.text_input[0].input("tw_nope_nope")
        next(b for b in at.button if b.label == "Sign in").click().run()
    at = app_test().run()
    at.text_input[0].input(app_db.tokens["ann"])
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.error and at.session_state["annotator_id"] == app_db.ann.id


def test_sign_in_page_refuses_while_backing_off(app_db, app_test):
    at = app_test().run()
    for _ in range(5):
        at.text_input[0].input("tw_nope_nope")
        next(b for b in at.button if b.label == "Sign in").click().run()
    at.text_input[0].input(app_db.tokens["ann"])  # even the right token waits
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert any("too many failed sign-ins" in e.value.replace("\\", "") for e in at.error)
    assert "annotator_id" not in at.session_state


def test_unknown_token_prefix_costs_the_same_hash(app_db, monkeypatch):
    """The token check hashes once whether or not the prefix exists (no timing oracle)."""
    from training.store import people

    calls = []
    real = people._hash
    monkeypatch.setattr(people, "_hash", lambda secret, salt: calls.append(1) or real(secret, salt))
    with Store(app_db.path) as s:
        known_prefix = app_db.tokens["ann"].split("_")[1]
        for token in (f"tw_{known_prefix}_wrong", "tw_000000000000_wrong"):
            calls.clear()
            with pytest.raises(AuthError, match="unknown or wrong token"):
                s.authenticate(token)
            assert calls == [1], token
