"""AppTest of annotate_app/app.py: sign-in, navigation by role, revocation, sign-out."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotate_app.app import PAGES  # importing runs nothing: main() is guarded by __main__
from training.store import Store

PAGES_DIR = Path(__file__).resolve().parents[1] / "annotate_app" / "app_pages"
ADMIN_PAGES = [f for f, _, _, admin in PAGES if admin]
USER_PAGES = [f for f, _, _, admin in PAGES if not admin]


def _all_text(at) -> str:
    """Everything a user could read on the page (main area and sidebar)."""
    parts = []
    for kind in ("title", "markdown", "text", "caption", "info", "success", "warning", "error", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def _sign_in(at, token):
    at.text_input[0].input(token)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def test_signed_out_sees_only_the_sign_in_form(app_db, app_test):
    at = app_test().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Tokenwise"]
    assert [t.label for t in at.text_input] == ["Access token"]
    assert "River report" not in _all_text(at) and "river rose" not in _all_text(at)
    with pytest.raises(ValueError):
        at.switch_page("app_pages/annotate.py")


@pytest.mark.parametrize("token", ["", "hello", "tw_000000000000_wrong", "tw_x"])
def test_wrong_token_shows_error_and_no_data(app_db, app_test, token):
    at = _sign_in(app_test().run(), token)
    assert not at.exception
    assert len(at.error) == 1 and "access token" in at.error[0].value
    assert "annotator_id" not in at.session_state
    assert "river rose" not in _all_text(at)


def test_right_token_signs_in_and_remembers(app_db, app_test):
    at = _sign_in(app_test().run(), app_db.tokens["ann"])
    assert not at.exception and not at.error
    assert at.session_state["annotator_id"] == app_db.ann.id
    assert [b.label for b in at.button if b.key == "annotate_save"] == ["Save"]  # the first page: Annotate
    assert "Signed in as **ann** (annotator)" in [m.value for m in at.sidebar.markdown]
    assert "Document 0 says the river rose 0 metres." in [t.value for t in at.text]
    at.run()  # the session remembers the annotator across reruns
    assert [b.label for b in at.button if b.key == "annotate_save"] == ["Save"]


def test_annotator_navigation_has_no_admin_pages(app_db, app_test):
    at = app_test("app.py", app_db.ann.id).run()
    for f in USER_PAGES:
        if (PAGES_DIR / f).exists():
            at.switch_page(f"app_pages/{f}")  # registered: no error
    present = [f for f in ADMIN_PAGES if (PAGES_DIR / f).exists()]
    assert present, "no admin page file exists yet"
    for f in present:  # the file is there, but not in this annotator's navigation
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"app_pages/{f}")


def test_admin_navigation_lists_admin_pages(app_db, app_test):
    at = _sign_in(app_test().run(), app_db.tokens["boss"])
    assert "Signed in as **boss** (admin)" in [m.value for m in at.sidebar.markdown]
    present = [f for f in ADMIN_PAGES if (PAGES_DIR / f).exists()]
    assert present, "no admin page file exists yet"
    for f in present:
        at.switch_page(f"app_pages/{f}")  # registered for an admin: no ValueError


def test_revoked_annotator_is_signed_out_on_next_rerun(app_db, app_test):
    at = _sign_in(app_test().run(), app_db.tokens["ann"])
    assert [b.label for b in at.button if b.key == "annotate_save"] == ["Save"]  # on the Annotate page
    with Store(app_db.path) as s:
        s.revoke_annotator("ann")
    at.run()
    assert [t.value for t in at.title] == ["Tokenwise"]
    assert "annotator_id" not in at.session_state
    assert "river rose" not in _all_text(at)
    [why] = [i.value.replace("\\", "") for i in at.info]  # the form says why (once)
    assert why.startswith("You were signed out: annotator 'ann' has been revoked")
    assert not at.run().info
    at = _sign_in(app_test().run(), app_db.tokens["ann"])  # the token no longer works
    assert "revoked" in at.error[0].value


def test_sign_out_forgets_the_session(app_db, app_test):
    at = app_test("app.py", app_db.ann.id).run()
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert [t.value for t in at.title] == ["Tokenwise"]
    assert "annotator_id" not in at.session_state
