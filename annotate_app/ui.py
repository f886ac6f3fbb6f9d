"""What every page shares: the database, the signed-in annotator, role checks.

Pages call `require_user()` or `require_admin()` first; both stop the page (st.stop) when the
session has no valid, active annotator, so no data is read before the check passes.
A sqlite connection is not thread-safe, so `store()` opens a fresh one per call (cheap).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import streamlit as st

from training.errors import AuthError, NotFound
from training.store import Annotator, Project, Store

SESSION_KEY = "annotator_id"


def db_path() -> str:
    return os.environ.get("TOKENWISE_DB", "tokenwise.db")


@contextlib.contextmanager
def store() -> Iterator[Store]:
    s = Store(db_path())
    try:
        yield s
    finally:
        s.close()


def sign_in(token: str) -> Annotator:
    """Check a token; on success remember the annotator in this session. Raises AuthError."""
    with store() as s:
        a = s.authenticate(token)
    st.session_state[SESSION_KEY] = a.id
    return a


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current_user() -> Annotator | None:
    """The signed-in annotator, re-checked against the database (a revoked token ends the session)."""
    annotator_id = st.session_state.get(SESSION_KEY)
    if annotator_id is None:
        return None
    try:
        with store() as s:
            return s.active_annotator(int(annotator_id))
    except (AuthError, NotFound):
        st.session_state.pop(SESSION_KEY, None)
        return None


def require_user() -> Annotator:
    user = current_user()
    if user is None:
        st.warning("Please sign in with your access token.")
        st.stop()
    return user


def require_admin() -> Annotator:
    user = require_user()
    if not user.is_admin:
        st.error("This page is for admins only.")
        st.stop()
    return user


def pick_project(label: str = "Project", key: str = "project", kind: str | None = None) -> Project | None:
    """A project selector shared by pages; remembers the choice in the session. None when there is none."""
    with store() as s:
        projects = [p for p in s.list_projects() if kind is None or p.kind == kind]
    if not projects:
        st.info("There is no project yet. An admin creates one on the Projects page "
                "(or: tokenwise project create NAME).")
        return None
    names = [p.name for p in projects]
    current = st.session_state.get("current_project")
    index = names.index(current) if current in names else 0
    name = st.selectbox(label, names, index=index, key=key)
    st.session_state["current_project"] = name
    return projects[names.index(name)]
