"""Annotators, roles and access tokens.

A token looks like `tw_<prefix>_<secret>`. The prefix is stored in clear to find the row; the
secret is stored only as a salted scrypt hash, so a leaked database does not leak tokens.

People are `annotator`s and `admin`s. A `source` is not a person: it is what an import credits
the rankings and critiques of its file to (made by the import, listed as a source on People and
in exports). It has no token anybody was shown, and `authenticate` refuses it anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ..errors import AuthError, NotFound, ValidationError
from .base import StoreBase, checked_name, now, source_name
from .records import Annotator

ROLES = ("annotator", "admin")  # people
SOURCE = "source"  # an imported file's author
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_DUMMY_SALT = secrets.token_bytes(16)


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT).hex()


def _new_token() -> tuple[dict, str]:
    """A fresh access token: the columns that store it (prefix, salted scrypt hash, salt) and the
    token itself, `tw_<prefix>_<secret>`, which is shown once and never stored."""
    prefix, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(24), secrets.token_bytes(16)
    return {"token_prefix": prefix, "token_hash": _hash(secret, salt), "token_salt": salt.hex()}, f"tw_{prefix}_{secret}"


class PeopleMixin(StoreBase):
    def add_annotator(self, name: str, role: str = "annotator") -> tuple[Annotator, str]:
        """Create an annotator; return it and its access token (shown once, never stored)."""
        name = checked_name("annotator", name)
        if role not in ROLES:
            raise ValidationError(f"role: {role!r} is not one of {', '.join(ROLES)}")
        cols, token = _new_token()
        with self.tx() as c:
            if c.execute("SELECT 1 FROM annotators WHERE name = ?", (name,)).fetchone():
                raise ValidationError(f"annotator {name!r} already exists")
            cur = c.execute(
                "INSERT INTO annotators (name, role, token_prefix, token_hash, token_salt, created)"
                " VALUES (:name, :role, :token_prefix, :token_hash, :token_salt, :created)",
                {"name": name, "role": role, **cols, "created": now()},
            )
        return self.get_annotator(cur.lastrowid), token

    def authenticate(self, token: str) -> Annotator:
        """Return the active annotator whose token this is, or raise AuthError."""
        parts = (token or "").strip().split("_", 2)
        if len(parts) != 3 or parts[0] != "tw":
            raise AuthError("access token: not a Tokenwise token (it starts with tw_)")
        row = self.one("SELECT * FROM annotators WHERE token_prefix = ?", (parts[1],))
        # an unknown prefix costs the same scrypt as a known one: no timing tells them apart
        salt, expected = (bytes.fromhex(row["token_salt"]), row["token_hash"]) if row else (_DUMMY_SALT, "")
        if not hmac.compare_digest(_hash(parts[2], salt), expected) or row is None:
            raise AuthError("access token: unknown or wrong token")
        if row["role"] not in ROLES:
            raise AuthError("access token: unknown or wrong token")
        if not row["active"]:
            raise AuthError(f"access token: annotator {row['name']!r} has been revoked")
        return Annotator.from_row(row)

    def get_annotator(self, id_or_name: int | str) -> Annotator:
        col = "id" if isinstance(id_or_name, int) else "name"
        row = self.one(f"SELECT * FROM annotators WHERE {col} = ?", (id_or_name,))
        if row is None:
            raise NotFound(f"annotator {id_or_name!r} does not exist (see: tokenwise annotator list)")
        return Annotator.from_row(row)

    def active_annotator(self, annotator_id: int) -> Annotator:
        """Re-check a signed-in session: the annotator still exists and is not revoked."""
        a = self.get_annotator(annotator_id)
        if a.role not in ROLES:
            raise AuthError(f"{a.name!r} is an import source, not a person: it cannot sign in")
        if not a.active:
            raise AuthError(f"annotator {a.name!r} has been revoked")
        return a

    def count_people(self) -> int:
        """People who can sign in and annotate now (active annotators and admins; no import source)."""
        return self.scalar(f"SELECT COUNT(*) FROM annotators WHERE active = 1 AND role IN ({','.join('?' * len(ROLES))})",
                           ROLES)

    def list_annotators(self) -> list[Annotator]:
        return [Annotator.from_row(r) for r in self.all("SELECT * FROM annotators ORDER BY id")]

    def new_token(self, name: str) -> tuple[Annotator, str]:
        """A new access token for a person (a lost one, or after revoking): the old token stops
        working, sessions signed in with it end at their next click, and a revoked person may sign
        in again. Returns the annotator and the token (shown once, never stored)."""
        a = self.get_annotator(name)
        if a.role not in ROLES:
            raise ValidationError(f"annotator {a.name!r} is an import source, not a person: it has no token")
        cols, token = _new_token()
        with self.tx() as c:
            c.execute("UPDATE annotators SET token_prefix = :token_prefix, token_hash = :token_hash,"
                      " token_salt = :token_salt, active = 1, revoked = NULL WHERE id = :id", {**cols, "id": a.id})
        return self.get_annotator(a.id), token

    def revoke_annotator(self, name: str) -> Annotator:
        a = self.get_annotator(name)
        with self.tx() as c:
            c.execute("UPDATE annotators SET active = 0, revoked = ? WHERE id = ?", (now(), a.id))
        return self.get_annotator(a.id)

    def _source(self, c, name: str) -> tuple[Annotator, bool]:
        """Inside a transaction: the import source called `name`, made now if new -> (source, made).

        A person's name is refused: imported rankings are never credited to somebody who did not
        make them (revoked annotators and admins included)."""
        name = source_name(name)
        if not name:
            raise ValidationError("source annotator: must not be empty (--source-annotator NAME)")
        row = c.execute("SELECT * FROM annotators WHERE name = ?", (name,)).fetchone()
        if row is not None:
            if row["role"] != SOURCE:
                raise ValidationError(
                    f"source annotator: {name!r} is a person ({row['role']}); an import's rankings and critiques "
                    "are credited to a source of their own: choose another --source-annotator name")
            return Annotator.from_row(row), False
        cols, _ = _new_token()  # a hash of a secret nobody is shown: no token opens it
        cur = c.execute(
            "INSERT INTO annotators (name, role, token_prefix, token_hash, token_salt, created)"
            " VALUES (:name, :role, :token_prefix, :token_hash, :token_salt, :created)",
            {"name": name, "role": SOURCE, **cols, "created": now()},
        )
        return Annotator.from_row(c.execute("SELECT * FROM annotators WHERE id = ?", (cur.lastrowid,)).fetchone()), True
