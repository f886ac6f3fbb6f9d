"""Connection handling: WAL, foreign keys, a busy timeout, and one write transaction helper.

A `Store` holds one sqlite3 connection. Connections are not shared between threads: open one
per request/process (they are cheap), as Streamlit pages and the worker do.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from ..errors import ValidationError
from .migrations import SCHEMA_VERSION, migrations

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000


NAME_MAX = 100
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # reorder shown text


def _breaks_a_line(ch: str) -> bool:
    """A control, line/paragraph separator or bidi character: none belongs in a one-line name."""
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in BIDI_CONTROLS


def checked_name(what: str, name: str | None) -> str:
    """A project, annotator or round name, stripped: one line of at most NAME_MAX characters with
    no control characters (names are shown in menus, messages and commands). ValidationError else."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(f"{what} name: must not be empty")
    if len(name) > NAME_MAX:
        raise ValidationError(f"{what} name: at most {NAME_MAX} characters, got {len(name)}")
    bad = next((ch for ch in name if _breaks_a_line(ch)), None)
    if bad is not None:
        raise ValidationError(f"{what} name: must be one line without control characters, found U+{ord(bad):04X}")
    return name


CONTEXT_FIELDS_MAX = 20


def checked_fields(fields) -> list[str]:
    """A project's context fields: distinct document field names (each like a name), at most
    CONTEXT_FIELDS_MAX. A string is read as comma-separated names."""
    if isinstance(fields, str):
        fields = [f for f in fields.split(",") if f.strip()]
    out: list[str] = []
    for f in fields or ():
        if not isinstance(f, str):
            raise ValidationError(f"context fields: {f!r} is not a field name")
        name = checked_name("context field", f)
        if name not in out:
            out.append(name)
    if len(out) > CONTEXT_FIELDS_MAX:
        raise ValidationError(f"context fields: at most {CONTEXT_FIELDS_MAX}, got {len(out)}")
    return out


def source_name(name: str | None) -> str:
    """An import source's name (`<source>:<rater>`, the rater from the data) made a name: one line,
    no control or bidi characters, at most NAME_MAX characters (cut with "…")."""
    clean = " ".join("".join(" " if _breaks_a_line(ch) else ch for ch in (name or "")).split())
    return clean if len(clean) <= NAME_MAX else clean[:NAME_MAX - 1] + "…"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StoreBase:
    def __init__(self, path: str | Path, *, migrate: bool = True, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = str(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a write transaction
        # can take the write lock up front (BEGIN IMMEDIATE) and wait on it instead of failing.
        self.conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False
        )
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self.conn.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
        self.db = Database(self.conn, execute_plugins=False)
        if migrate:
            self.migrate()

    # -- schema -------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply pending migrations and return the schema version.

        All of them run in one BEGIN IMMEDIATE transaction, so two processes opening a new
        database at once do not race: the second waits, then finds nothing left to do.
        """
        if self.schema_version() < SCHEMA_VERSION:
            with self.tx():
                pending = migrations.pending(self.db)
                if pending:
                    log.info("migrating %s: %s", self.path, ", ".join(m.name for m in pending))
                migrations.apply(self.db)
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if pending:  # the counters a migration backfilled must equal a recount (store/counters.py)
                self.check_counters(fix=True)
        return self.schema_version()

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    # -- transactions -------------------------------------------------------------------
    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands, or none of it. Nested calls join the outer one."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: tuple | dict = ()):
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
