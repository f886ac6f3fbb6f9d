"""One Store (one sqlite connection) per browser session, for the annotator pages.

    with session.store() as s:     # this session's connection, held for the block
        view = A.annotate_view(s, user, project, pinned)

Opening a Store per call cost the Annotate page 7 connections per click. A sqlite3 connection
must not be used by two threads at once and Streamlit runs every session in its own thread, so
it is not shared through st.cache_resource (which all sessions share): each session keeps its
own in st.session_state, opened with check_same_thread=False and used under a lock, so that two
runs of the same session (a rerun, a fragment) never use it at the same time. A session that
ends takes its Store with it (the connection closes when it is garbage-collected).
`TOKENWISE_BUSY_TIMEOUT_MS` (default 5000) is how long one write waits on a locked database
before `drafts.save` retries it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import streamlit as st

from annotate_app import ui
from training.store import Store

KEY = "_session_store"


def busy_timeout_ms() -> int:
    return int(os.environ.get("TOKENWISE_BUSY_TIMEOUT_MS", "5000"))


@contextlib.contextmanager
def store() -> Iterator[Store]:
    held = st.session_state.get(KEY)
    if held is None or held[0].path != ui.db_path():
        if held is not None:
            held[0].close()
        held = (Store(ui.db_path(), busy_timeout_ms=busy_timeout_ms()), threading.Lock())
        st.session_state[KEY] = held
    s, lock = held
    with lock:
        yield s
