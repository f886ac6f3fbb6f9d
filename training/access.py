"""Who may do what from the dashboard: sign-in back-off, the role check, and the data folder.

    throttle = SignInThrottle()
    if throttle.wait_s(session_id) > 0: ...     # refuse this attempt without checking the token
    throttle.failed(session_id)                 # or throttle.succeeded(session_id)

    check_role(store.get_annotator(annotator_id), "admin")      # AuthError / Forbidden
    path = inside_data_folder("ilf.jsonl", data_folder(db), field="file")

Sign-in: after `free` failed attempts within `window` seconds, the next attempt from that browser
session waits base * 2^(failures - free) seconds after the last failure (capped). Failures in other
sessions never hold anyone back: a flood of wrong tokens from many sessions would otherwise lock
every person out, and a token holds 192 random bits, so guessing one is hopeless at any rate.
The failures across all sessions are counted only to warn the log (`alarm` within the window).

Dashboard paths: a job submitted from the dashboard reads and writes only inside the data folder
(TOKENWISE_DATA_DIR, else the database's folder). A path outside is refused with a message that
does not depend on whether the file exists; the CLI keeps taking any path.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from training.errors import AuthError, Forbidden, ValidationError
from training.store import Annotator

ROLE_RANK = {"annotator": 0, "admin": 1}


def check_role(annotator: Annotator, role: str) -> Annotator:
    """The annotator (already re-read from the database) if active and allowed `role`."""
    if not annotator.active:
        raise AuthError(f"annotator {annotator.name!r} has been revoked")
    if ROLE_RANK[annotator.role] < ROLE_RANK[role]:
        raise Forbidden("This page is for admins only.")
    return annotator


# -- sign-in back-off ------------------------------------------------------------------------
class _Failures:
    def __init__(self, free: int, window: float, base: float, cap: float):
        self.free, self.window, self.base, self.cap = free, window, base, cap
        self.times: deque[float] = deque()

    def trim(self, now: float) -> None:
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()

    def wait_s(self, now: float) -> float:
        self.trim(now)
        over = len(self.times) - self.free
        if over < 0:
            return 0.0
        delay = min(self.cap, self.base * 2.0 ** over)
        return max(0.0, self.times[-1] + delay - now)


class SignInThrottle:
    """Exponential back-off on failed sign-ins, per session key; a count across all keys for the log."""

    def __init__(self, free: int = 5, window: float = 60.0, base: float = 1.0, cap: float = 300.0,
                 alarm: int = 50, clock: Callable[[], float] = time.monotonic):
        self._args = (free, window, base, cap)
        self._sessions: dict[str, _Failures] = {}
        self._all = _Failures(alarm, window, base, cap)
        self._alarmed = float("-inf")  # when the log was last warned
        self._clock = clock
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Seconds before `key` may try again (0 = now): its own failures only."""
        now = self._clock()
        with self._lock:
            mine = self._sessions.get(key)
            return mine.wait_s(now) if mine else 0.0

    def failed(self, key: str) -> int:
        """Count a failure of `key`. Returns the failures across all sessions within the window
        when they reach `alarm` (once a window, for a warning in the log), else 0."""
        now = self._clock()
        with self._lock:
            self._sessions.setdefault(key, _Failures(*self._args)).times.append(now)
            self._all.times.append(now)
            self._all.trim(now)
            for k, f in list(self._sessions.items()):  # forget sessions with nothing left in the window
                f.trim(now)
                if not f.times:
                    del self._sessions[k]
            if len(self._all.times) >= self._all.free and now - self._alarmed > self._all.window:
                self._alarmed = now
                return len(self._all.times)
            return 0

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._sessions.pop(key, None)


# -- the data folder -------------------------------------------------------------------------
def data_folder(db: str) -> Path:
    """Where dashboard jobs may read and write: TOKENWISE_DATA_DIR, else the database's folder."""
    env = os.environ.get("TOKENWISE_DATA_DIR", "").strip()
    return Path(env).resolve() if env else Path(db).resolve().parent


def check_path_text(value: str, field: str) -> None:
    """A path typed into a form or a config: no control characters (a NUL byte would reach the OS)."""
    if any(ord(ch) < 32 for ch in value):
        raise ValidationError(f"{field}: a path cannot hold control characters (a NUL byte or a line break)")


def inside_data_folder(value: str, root: Path, *, field: str, also: tuple[Path, ...] = ()) -> str:
    """`value` as an absolute path inside `root` or one of `also` (relative paths are taken from
    `root`); ValidationError otherwise.

    The check is on the resolved name only, never on what is on disk, so the refusal reads the
    same whether or not the file exists."""
    check_path_text(value, field)
    root = Path(root).resolve()
    path = (root / Path(value).expanduser()).resolve()
    for folder in (root, *(Path(a).resolve() for a in also)):
        if path == folder or folder in path.parents:
            return str(path)
    raise ValidationError(f"{field}: from the dashboard, paths must be inside the data folder {root} "
                          "(give a path relative to it); use the command line for other paths")
