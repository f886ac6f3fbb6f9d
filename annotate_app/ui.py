"""What every page shares: the database, the signed-in annotator, and the one access check.

    user = ui.require_admin()                       # first line of an admin page
    @ui.fragment("admin", run_every=2.0)            # never st.fragment: every rerun re-checks
    def live(): ...
    st.download_button(..., data=ui.guarded(build, "admin"))   # download builders
    st.button(..., on_click=ui.guarded(save, "annotator", callback=True))   # callbacks
    ui.show_error(e)                                # an error message, its data never rendered as Markdown

`check(role)` is the one helper: it re-reads the annotator from the database (revoked or demoted
people lose access at their next rerun, click or download) and compares the role. Pages call
`require_user()` / `require_admin()` first, which stop the page (st.stop) when it fails, so no
data is read before the check passes; `fragment` runs it before every fragment rerun, `guarded`
before a callback or a download builder runs (those run outside the page script).
tests/test_security.py enumerates every fragment, callback and download builder in the app and
fails when one does not go through these.

Sign-in failures are slowed down (training.access.SignInThrottle, per session and for the whole
server). A sqlite connection is not thread-safe, so `store()` opens a fresh one per call (cheap).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import math
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator

import streamlit as st

from annotate_app.widgets import escape_markdown
from training.access import SignInThrottle, check_role, data_folder
from training.errors import AuthError, Forbidden, NotFound
from training.store import Annotator, Project, Store

log = logging.getLogger(__name__)

SESSION_KEY = "annotator_id"
SESSION_TOKEN = "token_prefix"  # which token signed this session in: a new token ends the session
THROTTLE = SignInThrottle()  # one per server process: Streamlit runs every session in it


def db_path() -> str:
    return os.environ.get("TOKENWISE_DB", "tokenwise.db")


@contextlib.contextmanager
def store() -> Iterator[Store]:
    s = Store(db_path())
    try:
        yield s
    finally:
        s.close()


def data_root():
    """The folder dashboard jobs may read and write (training.access.data_folder)."""
    return data_folder(db_path())


def _session_key() -> str:
    return st.session_state.setdefault("_signin_key", uuid.uuid4().hex)


def sign_in(token: str) -> Annotator:
    """Check a token; on success remember the annotator in this session. Raises AuthError, also
    (without looking at the token) while this session is backing off after its own failures."""
    key = _session_key()
    wait = THROTTLE.wait_s(key)
    if wait > 0:
        raise AuthError(f"too many failed sign-ins: try again in {math.ceil(wait)} s")
    try:
        with store() as s:
            a = s.authenticate(token)
    except AuthError:
        if n := THROTTLE.failed(key):
            log.warning("%d failed sign-ins within a minute, across browser sessions: someone may be "
                        "guessing tokens (each holds 192 random bits)", n)
        raise
    THROTTLE.succeeded(key)
    st.session_state.update(signed_in_state(a))
    return a


def signed_in_state(a: Annotator) -> dict:
    """What signing in puts in the session: who, and which of their tokens (tests and benches set
    it on an AppTest)."""
    return {SESSION_KEY: a.id, SESSION_TOKEN: a.token_prefix}


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def signed_in() -> tuple[int | None, str | None]:
    """(annotator id, token prefix) of this session, (None, None) when nobody signed in."""
    return st.session_state.get(SESSION_KEY), st.session_state.get(SESSION_TOKEN)


def check(role: str = "annotator", annotator_id: int | None = None, token_prefix: str | None = None) -> Annotator:
    """THE access check: the annotator (this session's, or `annotator_id` signed in with the token
    `token_prefix`) re-read from the database, active, still on that token, and allowed `role`.
    Raises AuthError (not signed in, unknown, revoked, token replaced) or Forbidden (role)."""
    if annotator_id is None:
        annotator_id, token_prefix = signed_in()
    if annotator_id is None:
        raise AuthError("not signed in")
    try:
        with store() as s:
            a = s.get_annotator(int(annotator_id))
    except NotFound:
        raise AuthError("not signed in") from None
    if a.token_prefix != token_prefix:
        raise AuthError(f"the token {a.name!r} signed in with has been replaced by a new one")
    return check_role(a, role)


SIGNED_OUT = "_signed_out_because"  # why a session that was signed in is not any more (shown once)


def end_session(why: Exception | str) -> bool:
    """Sign this session out because of `why` (a revoked or replaced token, say): the sign-in form
    says so, once. The one way every check that fails ends a session. True if one was signed in."""
    if st.session_state.pop(SESSION_KEY, None) is None:
        return False
    st.session_state[SIGNED_OUT] = str(why)
    return True


def current_user() -> Annotator | None:
    """The signed-in annotator, re-checked against the database (a revoked or replaced token ends
    the session, and the sign-in form says why)."""
    try:
        return check("annotator")
    except AuthError as e:
        end_session(e)
        return None


def _require(role: str) -> Annotator:
    try:
        return check(role)
    except AuthError as e:
        end_session(e)
        st.warning("Please sign in with your access token.")
    except Forbidden as e:
        show_error(e)
    st.stop()


def require_user() -> Annotator:
    return _require("annotator")


def require_admin() -> Annotator:
    return _require("admin")


FRAGMENT_APP_RERUNS = 3  # app reruns a failing fragment asks for, per sign-in
_APP_RERUNS = "_fragment_app_reruns"


def fragment(role: str, *, run_every: float | None = None):
    """st.fragment whose every run (timer or click) first re-checks the user. When the check
    fails the whole page reruns, and its own require_* check shows the sign-in message."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def body(*args, **kwargs):
            try:
                check(role)
            except (AuthError, Forbidden) as e:
                # The app rerun lets the page's own check show the sign-in form. A rerun asked for
                # by a timer run can be lost, so the next failing runs ask again, a few times only:
                # a page that draws this fragment without a check of its own must not loop.
                if end_session(e):
                    st.session_state[_APP_RERUNS] = 0
                asked = st.session_state.get(_APP_RERUNS, 0)
                if asked < FRAGMENT_APP_RERUNS:
                    st.session_state[_APP_RERUNS] = asked + 1
                    st.rerun(scope="app")
                st.warning("Please sign in with your access token.")
                st.stop()
            return fn(*args, **kwargs)

        return st.fragment(body, run_every=run_every)
    return wrap


def guarded(fn: Callable, role: str, *, callback: bool = False) -> Callable:
    """`fn` for a callback or a download builder: the annotator signed in when the button was
    drawn is re-checked when it is called (a download builder runs outside the page script, where
    the session is not readable). When the check fails, a download builder raises AuthError /
    Forbidden instead of calling `fn`; a `callback` (on_click) skips `fn` and signs the session
    out, so the rerun that follows shows the page's sign-in message rather than an exception."""
    annotator_id, token_prefix = signed_in()

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            check(role, annotator_id=annotator_id if annotator_id is not None else -1, token_prefix=token_prefix)
        except (AuthError, Forbidden) as e:
            if not callback:
                raise
            end_session(e)
            return None
        return fn(*args, **kwargs)

    return call


def table(data, **kwargs):
    """st.dataframe as every page shows one: no index, the page's width, a dash for a missing value
    (not "None"). Returns what st.dataframe returns (a selection, with on_select)."""
    return st.dataframe(data, **{"hide_index": True, "width": "stretch", "placeholder": "—", **kwargs})


def show_error(e: Exception | str) -> None:
    """An error message on the page, its text shown as written: messages quote data (a file's
    keys, an annotator's quote, a model path), and Markdown in them must not render (an image
    would make the browser fetch it)."""
    st.error("  \n".join(escape_markdown(line) for line in str(e).splitlines() if line.strip()) or "error")


# -- what survives a page reload ------------------------------------------------------------
# A reload starts a new browser session, so st.session_state is empty. Half-written work (the
# annotate page's draft, the document on screen) is also kept here, in the server process, keyed
# by annotator: after signing in again the annotator finds it as it was. Nothing goes to the
# browser (no token in a URL or in storage a script can read); it is lost when the server stops.
_KEPT: OrderedDict[tuple[str, int, str], object] = OrderedDict()
_KEPT_LOCK = threading.Lock()
KEEP_MAX = 10_000  # entries; the oldest go first


def keep(annotator_id: int, name: str, value) -> None:
    with _KEPT_LOCK:
        _KEPT[(db_path(), annotator_id, name)] = copy.deepcopy(value)
        _KEPT.move_to_end((db_path(), annotator_id, name))
        while len(_KEPT) > KEEP_MAX:
            _KEPT.popitem(last=False)


def kept(annotator_id: int, name: str, default=None):
    """A copy of what `keep` stored for this annotator (each session gets its own copy)."""
    with _KEPT_LOCK:
        return copy.deepcopy(_KEPT.get((db_path(), annotator_id, name), default))


def forget(annotator_id: int, name: str) -> None:
    with _KEPT_LOCK:
        _KEPT.pop((db_path(), annotator_id, name), None)


def pick_project(label: str = "Project", key: str = "project", kind: str | None = None, *,
                 to_annotate: bool = False) -> Project | None:
    """A project selector shared by pages; remembers the choice in the session. None when there is
    none. `to_annotate`: leave out closed evaluation rounds (they take no more rankings)."""
    with store() as s:
        closed = s.closed_round_projects() if to_annotate else set()
        projects = [p for p in s.list_projects() if (kind is None or p.kind == kind) and p.id not in closed]
    if not projects:
        st.info("There is no project yet. An admin creates one on the Projects page "
                "(or: tokenwise project create NAME).")
        return None
    names = [p.name for p in projects]
    who = st.session_state.get(SESSION_KEY)
    # this session's choice, else the one this person made last (a reload or a new sign-in starts a new session)
    current = st.session_state.get("current_project") or (kept(who, "current_project") if who else None)
    index = names.index(current) if current in names else 0
    name = st.selectbox(label, names, index=index, key=key)
    st.session_state["current_project"] = name
    if who and name != current:
        keep(who, "current_project", name)
    return projects[names.index(name)]
