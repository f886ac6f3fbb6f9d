"""Opening the app's pages in Streamlit's AppTest, signed in as an annotator (shared by page tests)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "annotate_app"
TIMEOUT_S = 60  # one page run on a loaded 2-core machine can take seconds


def page_test(page: str = "app.py", annotator_id: int | None = None) -> AppTest:
    """An AppTest (not yet run) of app.py or app_pages/<page>; signed in when annotator_id is given."""
    name = page if page.endswith(".py") else f"{page}.py"
    path = APP / name if name == "app.py" else APP / "app_pages" / name
    at = AppTest.from_file(str(path), default_timeout=TIMEOUT_S)
    if annotator_id is not None:
        signed_in(at, annotator_id)
    return at


def signed_in(at: AppTest, annotator_id: int) -> AppTest:
    """`at`'s session as ui.sign_in leaves it (the annotator read from the database at TOKENWISE_DB;
    an id that is not there is set as it is, a forged session)."""
    import os

    from annotate_app.ui import SESSION_KEY, signed_in_state
    from training.errors import NotFound
    from training.store import Store

    with Store(os.environ["TOKENWISE_DB"]) as s:
        try:
            state = signed_in_state(s.get_annotator(int(annotator_id)))
        except NotFound:
            state = {SESSION_KEY: annotator_id}
    for key, value in state.items():
        at.session_state[key] = value
    return at


def open_page(page: str, annotator_id: int | None = None) -> AppTest:
    """The page run once."""
    return page_test(page, annotator_id).run()
