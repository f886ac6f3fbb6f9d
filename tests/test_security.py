"""Who sees what: tokens, roles, other annotators' entries, and user text that looks like HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotate_app.app import PAGES
from training.annotation import drafts as A
from training.errors import Forbidden
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
    assert [e.value for e in at.error] == ["This page is for admins only."]
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
                       r'\*\*bold\*\* \[link\]\(http\://example\.com\)')]

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
