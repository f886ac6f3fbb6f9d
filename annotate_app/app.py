"""Tokenwise app entry point: sign-in, then the pages this annotator's role may see.

    TOKENWISE_DB=tokenwise.db streamlit run annotate_app/app.py   (or: tokenwise serve)
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT.parent) not in sys.path:  # `streamlit run annotate_app/app.py` from a checkout
    sys.path.insert(0, str(ROOT.parent))

from annotate_app import ui
from annotate_app.widgets import escape_markdown
from training.errors import AuthError

# (file in app_pages/, title, icon, admin only)
PAGES = [
    ("annotate.py", "Annotate", ":material/edit_note:", False),
    ("mine.py", "My entries", ":material/history:", False),
    ("review.py", "Review refinements", ":material/rate_review:", False),
    ("data.py", "Data", ":material/table_view:", False),
    ("rewards.py", "Rewards", ":material/local_fire_department:", False),
    ("overview.py", "Overview", ":material/dashboard:", True),
    ("projects.py", "Projects", ":material/folder:", True),
    ("people.py", "People", ":material/group:", True),
    ("progress.py", "Progress", ":material/monitoring:", True),
    ("jobs.py", "Training", ":material/model_training:", True),
    ("models.py", "Models", ":material/deployed_code:", True),
    ("rounds.py", "Evaluation rounds", ":material/balance:", True),
]


def sign_in_page() -> None:
    st.title("Tokenwise")
    st.caption("Rank model outputs and say how to make them better.")
    if why := st.session_state.pop(ui.SIGNED_OUT, None):
        st.info(f"You were signed out: {escape_markdown(why)}. Sign in again, with a new token if you were given one.")
    with st.form("sign_in"):
        token = st.text_input("Access token", type="password", help="Your admin gives you this token.")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                ui.sign_in(token)
            except AuthError as e:
                ui.show_error(e)
            else:
                st.rerun()


def main() -> None:
    # a local file: a :material: or emoji icon makes the browser fetch the favicon from Google
    st.set_page_config(page_title="Tokenwise", page_icon=str(ROOT / "icon.png"), layout="wide")
    user = ui.current_user()
    if user is None:
        # Every page's address leads to the sign-in form (a reload signs out, and a bookmark must
        # not end in "page not found"); a page shares its address's hash with the real one, so
        # after signing in the same address shows the page that was asked for.
        at_address = [st.Page(sign_in_page, title=title, url_path=f.removesuffix(".py")) for f, title, _, _ in PAGES]
        st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/login:", default=True), *at_address],
                      position="hidden").run()
        return
    pages = [
        st.Page(str(ROOT / "app_pages" / f), title=title, icon=icon)
        for f, title, icon, admin_only in PAGES
        if user.is_admin or not admin_only
    ]
    with st.sidebar:
        st.markdown(f"Signed in as **{escape_markdown(user.name)}** ({user.role})")
        if st.button("Sign out", icon=":material/logout:"):
            ui.sign_out()
            st.rerun()
    st.navigation(pages).run()


if __name__ == "__main__":  # streamlit runs this file as __main__; tests may import PAGES
    main()
