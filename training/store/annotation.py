"""Projects, documents with their candidates, and what annotators do with them.

Annotator-facing methods take the signed-in `Annotator` and only ever read or change that
annotator's own rankings and critiques: there is no parameter to name somebody else.
Every write that changes a queue count or a progress total updates its counter in the same
transaction (store/counters.py), so `queue_counts` and `totals` read a few integers, never scan.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from ..errors import Forbidden, NotFound, ValidationError
from .base import checked_fields, checked_name, now
from .counters import CountersMixin, write_counts
from .records import Annotator, Candidate, Critique, Document, Project, Ranking

# A project's kind: what its candidates are. It decides only the prompts models get (generation,
# policy training, ILF refinement) and whether they read the title, so it may be changed later.
KINDS = {
    "summarize": "summaries of a document (models read its title, then its text)",
    "prompt": "prompts that make a language model do the document's task",
    "qa": "answers to the question that is the document's text",
}


def checked_kind(kind: str) -> str:
    """`kind` when it is a project kind; a ValidationError naming the kinds otherwise."""
    if kind not in KINDS:
        raise ValidationError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    return kind


@dataclass(frozen=True)
class NewDocument:
    """A document to add, with its candidates' texts (and optional per-candidate source/params)."""

    ext_id: str
    text: str
    candidates: list[str]
    title: str = ""
    meta: dict | None = None
    reference: str | None = None
    sources: list[str] | None = None
    gen_params: list[dict] | None = None


@dataclass(frozen=True)
class QueueProgress:
    """Annotation counts of one project (the Progress page); not training.progress.Progress."""

    documents: int
    complete: int  # documents that reached the overlap
    rankings: int
    critiques: int
    per_annotator: list[dict]  # name, rankings, critiques, median_seconds


class AnnotationMixin(CountersMixin):
    # -- projects -----------------------------------------------------------------------
    def create_project(
        self,
        name: str,
        kind: str = "summarize",
        k: int = 4,
        overlap: int = 1,
        instructions: str = "",
        allow_ties: bool = False,
        require_critique_lowest: bool = False,
        show_rewards: bool = False,
        context_fields: Iterable[str] | str = (),
    ) -> Project:
        name = checked_name("project", name)
        fields = checked_fields(context_fields)
        checked_kind(kind)
        if int(k) < 2:
            raise ValidationError(f"k: a project needs at least 2 candidates per document, got {k}")
        if int(overlap) < 1:
            raise ValidationError(f"overlap: must be at least 1, got {overlap}")
        with self.tx() as c:
            if c.execute("SELECT 1 FROM projects WHERE name = ?", (name,)).fetchone():
                raise ValidationError(f"project {name!r} already exists")
            cur = c.execute(
                "INSERT INTO projects (name, kind, instructions, k, overlap, allow_ties,"
                " require_critique_lowest, show_rewards, context_fields, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (name, kind, instructions, int(k), int(overlap), int(allow_ties),
                 int(require_critique_lowest), int(show_rewards), json.dumps(fields), now()),
            )
            c.execute("INSERT INTO project_counts (project_id) VALUES (?)", (cur.lastrowid,))
        return self.get_project(cur.lastrowid)

    def most_rankings(self, project: str | int) -> int:
        """The most rankings one document of the project has (imported ones count, as for the overlap)."""
        p = self.get_project(project)
        return self.scalar("SELECT COALESCE(MAX(n_rankings), 0) FROM documents WHERE project_id = ?", (p.id,))

    def has_project(self, name: str) -> bool:
        return self.one("SELECT 1 FROM projects WHERE name = ?", (name,)) is not None

    def drop_empty_project(self, project_id: int) -> bool:
        """Delete a project that has no document (one made for an import that was then refused);
        False, and nothing deleted, when it has documents."""
        with self.tx() as c:
            if c.execute("SELECT 1 FROM documents WHERE project_id = ? LIMIT 1", (project_id,)).fetchone():
                return False
            for table in ("annotator_counts", "project_counts"):
                c.execute(f"DELETE FROM {table} WHERE project_id = ?", (project_id,))
            c.execute("DELETE FROM projects WHERE id = ?", (project_id,))
        return True

    def get_project(self, name_or_id: str | int) -> Project:
        """A project by name, or by id (also an id it had before an import renumbered it)."""
        col = "id" if isinstance(name_or_id, int) else "name"
        row = self.one(f"SELECT * FROM projects WHERE {col} = ?", (name_or_id,))
        if row is None and col == "id":
            row = self.one("SELECT p.* FROM project_moves m JOIN projects p ON p.id = m.new_id WHERE m.old_id = ?",
                           (name_or_id,))
        if row is None:
            raise NotFound(
                f"project {name_or_id!r} does not exist; create it with: "
                f"tokenwise project create {name_or_id} --kind summarize --k 4"
            )
        return Project.from_row(row)

    def closed_round_projects(self) -> set[int]:
        """The blind projects of closed evaluation rounds (annotators have nothing left to do there)."""
        return {r[0] for r in self.all("SELECT project_id FROM eval_rounds WHERE status = 'closed'"
                                       " AND project_id IS NOT NULL")}

    def list_projects(self) -> list[Project]:
        """Every project, except the hidden staging projects of imports still being written, oldest
        first (by creation: an import that gives a project a new id does not move it to the end)."""
        return [Project.from_row(r) for r in self.all(
            "SELECT * FROM projects WHERE staging_for IS NULL ORDER BY created, id")]

    _PROJECT_SETTINGS: ClassVar[frozenset[str]] = frozenset({
        "instructions", "overlap", "allow_ties", "require_critique_lowest", "show_rewards",
        "active_reward_model", "active_policy_model", "templates", "context_fields", "kind",
    })

    def update_project(self, project: str | int, **changes) -> Project:
        """Change settings of a project (not its name or K, which the data depends on). A new kind
        changes only the prompts models get; the documents and what annotators entered stay."""
        p = self.get_project(project)
        bad = set(changes) - self._PROJECT_SETTINGS
        if bad:
            raise ValidationError(f"project setting(s) {', '.join(sorted(bad))} cannot be changed")
        if "overlap" in changes and int(changes["overlap"]) < 1:
            raise ValidationError("overlap: must be at least 1")
        if "context_fields" in changes:
            changes["context_fields"] = checked_fields(changes["context_fields"])
        if "kind" in changes:
            checked_kind(changes["kind"])
        values = {
            k: json.dumps(v) if k in ("templates", "context_fields") and v is not None
            else int(v) if isinstance(v, bool) else v
            for k, v in changes.items()
        }
        if values:
            sets = ", ".join(f"{k} = :{k}" for k in values)
            with self.tx() as c:
                c.execute(f"UPDATE projects SET {sets} WHERE id = :id", {**values, "id": p.id})
                if "overlap" in values and int(values["overlap"]) != p.overlap:
                    write_counts(c, p.id)  # which documents are open depends on the overlap
        return self.get_project(p.id)

    # -- documents and candidates -------------------------------------------------------
    def add_documents(
        self, project: str | int, docs: Iterable[NewDocument], *, min_candidates: int = 2
    ) -> int:
        """Add documents with their candidates in ONE transaction; return how many were added.

        Callers validate first (training.data.imports does); this still refuses duplicates and a wrong K,
        and any error rolls the whole batch back. `docs` may be a generator: it is consumed
        one document at a time (imports stream). `min_candidates=1` is for formats whose
        documents arrive with one output to critique (SLF5K).
        """
        p = self.get_project(project)
        ts = now()
        n = 0
        with self.tx() as c:
            for d in docs:
                self._insert_document(c, p, d, ts, min_candidates=min_candidates)
                n += 1
            self._count_documents(c, p.id, n)
        return n

    def _insert_document(
        self, c: sqlite3.Connection, p: Project, d: NewDocument, ts: str, *, min_candidates: int = 2
    ) -> int:
        if len(d.candidates) < min_candidates:
            raise ValidationError(f"document {d.ext_id!r}: needs at least {min_candidates} candidate(s)")
        try:
            cur = c.execute(
                "INSERT INTO documents (project_id, ext_id, title, text, meta, reference, created)"
                " VALUES (?,?,?,?,?,?,?)",
                (p.id, str(d.ext_id), d.title or "", d.text, json.dumps(d.meta or {}), d.reference, ts),
            )
        except sqlite3.IntegrityError:
            raise ValidationError(
                f"document id {d.ext_id!r} already exists in project {p.name!r}"
            ) from None
        doc_id = cur.lastrowid
        c.executemany(
            "INSERT INTO candidates (document_id, position, text, source, gen_params, created)"
            " VALUES (?,?,?,?,?,?)",
            [
                (doc_id, i, text,
                 (d.sources[i] if d.sources else "import"),
                 json.dumps(d.gen_params[i] if d.gen_params else {}), ts)
                for i, text in enumerate(d.candidates)
            ],
        )
        return doc_id

    def add_candidates(
        self, document_id: int, texts: list[str], source: str, gen_params: dict | None = None
    ) -> list[Candidate]:
        """Append generated candidates to an existing document (closing the loop)."""
        self.get_document(document_id)
        with self.tx() as c:
            start = c.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM candidates WHERE document_id = ?",
                (document_id,),
            ).fetchone()[0]
            ids = []
            for i, t in enumerate(texts):
                cur = c.execute(
                    "INSERT INTO candidates (document_id, position, text, source, gen_params, created)"
                    " VALUES (?,?,?,?,?,?)",
                    (document_id, start + i, t, source, json.dumps(gen_params or {}), now()),
                )
                ids.append(cur.lastrowid)
        return [self.get_candidate(i) for i in ids]

    def get_document(self, document_id: int) -> Document:
        """A document with its candidates (one query)."""
        rows = self.all(
            "SELECT d.*, c.id AS c_id, c.position AS c_position, c.text AS c_text, c.source AS c_source,"
            " c.gen_params AS c_gen_params FROM documents d LEFT JOIN candidates c ON c.document_id = d.id"
            " WHERE d.id = ? ORDER BY c.position, c.id", (document_id,))
        if not rows:
            raise NotFound(f"document {document_id} does not exist")
        cands = tuple(Candidate(r["c_id"], document_id, r["c_position"], r["c_text"], r["c_source"],
                                {} if r["c_gen_params"] in (None, "", "{}") else json.loads(r["c_gen_params"]))
                      for r in rows if r["c_id"] is not None)
        return Document.from_row(rows[0], candidates=cands)

    def candidates(self, document_id: int) -> list[Candidate]:
        rows = self.all("SELECT * FROM candidates WHERE document_id = ? ORDER BY position, id", (document_id,))
        return [Candidate.from_row(r) for r in rows]

    def get_candidate(self, candidate_id: int) -> Candidate:
        row = self.one("SELECT * FROM candidates WHERE id = ?", (candidate_id,))
        if row is None:
            raise NotFound(f"candidate {candidate_id} does not exist")
        return Candidate.from_row(row)

    def meta_fields(self, project: str | int, sample: int = 2000) -> list[str]:
        """The fields (meta keys) the project's documents have, from the first `sample` documents
        with any: what the project's settings offer to show annotators under the text."""
        p = self.get_project(project)
        rows = self.all(
            "SELECT DISTINCT j.key FROM (SELECT meta FROM documents WHERE project_id = ? AND meta != '{}'"
            " AND json_valid(meta) AND json_type(meta) = 'object' ORDER BY id LIMIT ?) d, json_each(d.meta) j"
            " ORDER BY j.key", (p.id, int(sample)))
        return [r[0] for r in rows]

    def documents(self, project: str | int, *, with_candidates: bool = True,
                  limit: int | None = None, offset: int = 0) -> list[Document]:
        p = self.get_project(project)
        rows = self.all(
            "SELECT * FROM documents WHERE project_id = ? ORDER BY id LIMIT ? OFFSET ?",
            (p.id, -1 if limit is None else limit, offset),
        )
        if not with_candidates:
            return [Document.from_row(r) for r in rows]
        by_doc: dict[int, list[Candidate]] = {}
        for r in self.all(
            "SELECT c.* FROM candidates c JOIN documents d ON d.id = c.document_id"
            " WHERE d.project_id = ? ORDER BY c.document_id, c.position, c.id", (p.id,)
        ):
            by_doc.setdefault(r["document_id"], []).append(Candidate.from_row(r))
        return [Document.from_row(r, candidates=tuple(by_doc.get(r["id"], ()))) for r in rows]

    def get_document_by_ext_id(self, project: str | int, ext_id: str) -> Document:
        """A document by the id it was imported with (unique within its project)."""
        p = self.get_project(project)
        row = self.one("SELECT id FROM documents WHERE project_id = ? AND ext_id = ?", (p.id, str(ext_id)))
        if row is None:
            raise NotFound(f"document {ext_id!r} does not exist in project {p.name!r}")
        return self.get_document(row["id"])

    def existing_ext_ids(self, project: str | int, ext_ids: Iterable[str]) -> set[str]:
        """Which of `ext_ids` are already taken in the project (imports check this before writing)."""
        p = self.get_project(project)
        ids = [str(e) for e in ext_ids]
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.all(
                f"SELECT ext_id FROM documents WHERE project_id = ? AND ext_id IN ({marks})", (p.id, *chunk)))
        return found

    def iter_documents(self, project: str | int, *, batch_size: int = 500) -> Iterator[Document]:
        """Every document of a project with its candidates, in id order, read in batches.

        Memory stays flat however large the project is (exports use this). Each batch walks the
        primary key from the last id (`+project_id` keeps SQLite off the project index, which would
        sort every remaining document of the project for each batch)."""
        p = self.get_project(project)
        last = 0
        while True:
            rows = self.all(
                "SELECT * FROM documents WHERE +project_id = ? AND id > ? ORDER BY id LIMIT ?",
                (p.id, last, batch_size),
            )
            if not rows:
                return
            ids = [r["id"] for r in rows]
            by_doc: dict[int, list[Candidate]] = {}
            marks = ",".join("?" * len(ids))
            for r in self.all(
                f"SELECT * FROM candidates WHERE document_id IN ({marks}) ORDER BY document_id, position, id", ids
            ):  # built directly, not with from_row: this loop runs once per candidate of a whole project
                gp = r["gen_params"]
                by_doc.setdefault(r["document_id"], []).append(Candidate(
                    r["id"], r["document_id"], r["position"], r["text"], r["source"],
                    {} if gp in (None, "", "{}") else json.loads(gp)))
            for r in rows:
                yield Document.from_row(r, candidates=tuple(by_doc.get(r["id"], ())))
            last = ids[-1]

    # The documents export, read in batches along the primary key (see iter_documents) on a
    # cursor without sqlite3.Row. JSON strings are quoted by SQLite: json_quote writes exactly what
    # json.dumps(ensure_ascii=False) writes, and as BLOBs they go to the file without decoding.
    def _plain(self, sql: str, params: tuple) -> list[tuple]:
        cur = self.conn.cursor()
        cur.row_factory = None
        return cur.execute(sql, params).fetchall()

    def _id_batches(self, sql: str, project: str | int, batch_size: int) -> Iterator[list[tuple]]:
        """Batches of `sql`'s rows along the primary key: it selects a document id first and takes
        (project id, last id, limit) as its parameters."""
        p, last = self.get_project(project), 0
        while rows := self._plain(sql, (p.id, last, batch_size)):
            yield rows
            last = rows[-1][0]

    def iter_document_json(self, project: str | int, *, batch_size: int = 2000
                           ) -> Iterator[tuple[list[tuple], dict[int, bytes]]]:
        """Batches of ([(id, ext_id, title, text, reference, meta)], {id: b'"c1", "c2", ...'}), in
        id order, every string already a JSON string literal (UTF-8 bytes; reference b"null" when
        there is none) except meta, the stored JSON text."""
        for rows in self._id_batches(
            "SELECT id, CAST(json_quote(ext_id) AS BLOB), CAST(json_quote(title) AS BLOB),"
            " CAST(json_quote(text) AS BLOB), CAST(json_quote(reference) AS BLOB), CAST(meta AS BLOB)"
            " FROM documents WHERE +project_id = ? AND id > ? ORDER BY id LIMIT ?", project, batch_size
        ):
            # each document's candidates joined with ", " in position order: the GROUP BY walks the
            # (document_id, position) index, so group_concat sees them in that order (the byte
            # identity test checks it); another project's documents in the range are never asked for
            yield rows, dict(self._plain(
                "SELECT document_id, CAST(group_concat(json_quote(text), ', ') AS BLOB) FROM candidates"
                " INDEXED BY idx_candidates_document_id_position WHERE document_id BETWEEN ? AND ?"
                " GROUP BY document_id", (rows[0][0], rows[-1][0])))

    def iter_document_columns(self, project: str | int, *, batch_size: int = 2000) -> Iterator[dict[str, list]]:
        """Batches of the documents export as columns (ext_id, title, text, reference, meta, and
        candidates as one flat list with per-document counts), in id order, for Arrow."""
        pid = self.get_project(project).id
        for rows in self._id_batches(
            "SELECT d.id, d.ext_id, d.title, d.text, d.reference, d.meta,"
            " (SELECT COUNT(*) FROM candidates c WHERE c.document_id = d.id)"
            " FROM documents d WHERE +d.project_id = ? AND d.id > ? ORDER BY d.id LIMIT ?", pid, batch_size
        ):
            texts = self._plain(
                "SELECT c.text FROM candidates c JOIN documents d ON d.id = c.document_id WHERE +d.project_id = ?"
                " AND c.document_id BETWEEN ? AND ? ORDER BY c.document_id, c.position",
                (pid, rows[0][0], rows[-1][0]))
            columns = list(zip(*rows))
            yield {"id": columns[1], "title": columns[2], "text": columns[3], "reference": columns[4],
                   "meta": columns[5], "n_candidates": columns[6], "candidates": [t[0] for t in texts]}

    def rankings_of(self, document_ids: list[int], *, current_only: bool = True) -> dict[int, list[Ranking]]:
        """document id -> its rankings (every annotator's), for a batch of documents."""
        out: dict[int, list[Ranking]] = {}
        if not document_ids:
            return out
        marks = ",".join("?" * len(document_ids))
        for r in self.all(
            f"SELECT * FROM rankings WHERE document_id IN ({marks})"
            + (" AND current = 1" if current_only else "") + " ORDER BY document_id, id", list(document_ids)
        ):
            out.setdefault(r["document_id"], []).append(Ranking.from_row(r))
        return out

    def critiques_of(self, document_ids: list[int], *, current_only: bool = True) -> dict[int, list[Critique]]:
        """document id -> critiques of its candidates (every annotator's), for a batch of documents."""
        out: dict[int, list[Critique]] = {}
        if not document_ids:
            return out
        marks = ",".join("?" * len(document_ids))
        for r in self.all(
            f"SELECT k.*, c.document_id AS _doc FROM critiques k JOIN candidates c ON c.id = k.candidate_id"
            f" WHERE c.document_id IN ({marks})"
            + (" AND k.current = 1" if current_only else "") + " ORDER BY c.document_id, k.id", list(document_ids)
        ):
            out.setdefault(r["_doc"], []).append(Critique.from_row(r))
        return out

    def count_documents(self, project: str | int) -> int:
        return self.totals(project)["documents"]

    # -- the queue ----------------------------------------------------------------------
    def _read_project(self, project: Project | str | int) -> Project:
        """For reads on a hot path (the Annotate page): a Project the caller holds is used as is."""
        return project if isinstance(project, Project) else self.get_project(project)

    def next_document(self, annotator: Annotator, project: Project | str | int) -> Document | None:
        """The next document for this annotator, or None when their queue is done.

        Documents closest to the project's overlap come first (so each reaches N annotators
        before new ones start), then by id; documents this annotator has done never come
        back; skipped ones come back after everything else.
        """
        p = self._read_project(project)
        params = {"p": p.id, "a": annotator.id, "overlap": p.overlap}
        # Documents started but not complete (0 < n_rankings < overlap) that are all this
        # annotator's own need no walk: the counters say so (store/counters.py).
        c = self._counters(annotator.id, p.id)
        top = 0 if c is not None and c["open"] - c["untouched"] == c["mine_open"] else p.overlap - 1
        # One query per level of n_rankings (highest first), each walking the
        # (project_id, n_rankings, id) index in order: a mixed-direction ORDER BY over all
        # open documents cannot use the index and took 180 ms at 100k documents.
        row = None
        for level in range(top, -1, -1):
            row = self.one(
                "SELECT d.id FROM documents d WHERE d.project_id = :p AND d.n_rankings = :level"
                " AND NOT EXISTS (SELECT 1 FROM rankings r WHERE r.document_id = d.id"
                "                 AND r.annotator_id = :a AND r.current = 1)"
                " AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.document_id = d.id AND s.annotator_id = :a)"
                " ORDER BY d.id LIMIT 1",
                {**params, "level": level},
            )
            if row is not None:
                break
        row = row or self.one(
            "SELECT d.id FROM skips s JOIN documents d ON d.id = s.document_id"
            " WHERE s.annotator_id = :a AND d.project_id = :p AND d.n_rankings < :overlap"
            " AND NOT EXISTS (SELECT 1 FROM rankings r WHERE r.document_id = d.id"
            "                 AND r.annotator_id = :a AND r.current = 1)"
            " ORDER BY s.created, d.id LIMIT 1",
            params,
        )
        return None if row is None else self.get_document(row["id"])

    def skip(self, annotator: Annotator, document_id: int) -> None:
        """Put a document at the end of this annotator's queue."""
        self.get_document(document_id)
        with self.tx() as c:
            c.execute(
                "INSERT INTO skips (annotator_id, document_id, created) VALUES (?,?,?)"
                " ON CONFLICT (annotator_id, document_id) DO UPDATE SET created = excluded.created",
                (annotator.id, document_id, now()),
            )

    def queue_counts(self, annotator: Annotator, project: Project | str | int) -> dict[str, int]:
        """done: this annotator's rankings; assigned: done + what is left in their queue. O(1)."""
        return self.counts(annotator, project)[0]

    def totals(self, project: Project | str | int) -> dict[str, int]:
        """documents, complete (reached the overlap), rankings and critiques of a project. O(1)."""
        c = self._project_counts(self._read_project(project).id)
        return {"documents": c["documents"], "complete": c["documents"] - c["open"],
                "rankings": c["rankings"], "critiques": c["critiques"]}

    def counts(self, annotator: Annotator, project: Project | str | int) -> tuple[dict[str, int], dict[str, int]]:
        """(queue_counts, totals) in one read of the counters."""
        row = self._counters(annotator.id, self._read_project(project).id)
        if row is None:
            return {"done": 0, "assigned": 0, "left": 0}, {"documents": 0, "complete": 0, "rankings": 0, "critiques": 0}
        left = row["open"] - row["mine_open"]
        return ({"done": row["mine"], "assigned": row["mine"] + left, "left": left},
                {"documents": row["documents"], "complete": row["documents"] - row["open"],
                 "rankings": row["rankings"], "critiques": row["critiques"]})

    # -- rankings -----------------------------------------------------------------------
    def save_ranking(
        self, annotator: Annotator, document_id: int, ranks: dict[int, int], seconds: float | None = None
    ) -> Ranking:
        """Save (or revise) this annotator's ranking of a document. `ranks`: candidate id -> 1..K.

        A revision keeps the old version (current = 0) for audit. One transaction.
        """
        head, texts = self._doc_head(document_id)
        order = _groups(document_id, list(texts), ranks, allow_ties=head["allow_ties"])
        with self.tx() as c:
            return self._write_ranking(c, annotator, head, order, seconds,
                                       _current(c, "rankings", "document_id", document_id, annotator.id))

    def _doc_head(self, document_id: int) -> tuple[sqlite3.Row, dict[int, str]]:
        """(document id, project_id, overlap, allow_ties) and candidate id -> text: what a save checks.
        A document of a closed evaluation round takes no more saves (its result is on the cards)."""
        rows = self.all("SELECT d.id, d.project_id, p.overlap, p.allow_ties, c.id AS c_id, c.text AS c_text,"
                        " (SELECT r.name FROM eval_rounds r WHERE r.project_id = d.project_id"
                        "  AND r.status = 'closed') AS closed_round"
                        " FROM documents d JOIN projects p ON p.id = d.project_id"
                        " LEFT JOIN candidates c ON c.document_id = d.id WHERE d.id = ? ORDER BY c.position, c.id",
                        (document_id,))
        if not rows:
            raise NotFound(f"document {document_id} does not exist")
        if rows[0]["closed_round"] is not None:
            raise ValidationError(f"the evaluation round {rows[0]['closed_round']!r} is closed: it takes no more "
                                  "rankings or critiques")
        return rows[0], {r["c_id"]: r["c_text"] for r in rows if r["c_id"] is not None}

    def _write_ranking(self, c: sqlite3.Connection, annotator: Annotator, head: sqlite3.Row,
                       order: list[list[int]], seconds: float | None, prev: sqlite3.Row | None) -> Ranking:
        """Inside a transaction: make `order` this annotator's current ranking instead of `prev`
        (their current one, see _current), and keep the counters."""
        document_id = head["id"]
        if prev:
            c.execute("UPDATE rankings SET current = 0 WHERE id = ?", (prev["id"],))
        else:
            self._count_first_ranking(c, annotator.id, document_id)
        version, ts = (prev["version"] + 1) if prev else 1, now()
        cur = c.execute(
            "INSERT INTO rankings (document_id, annotator_id, order_json, seconds, version, current, created)"
            " VALUES (?,?,?,?,?,1,?)",
            (document_id, annotator.id, json.dumps(order), seconds, version, ts),
        )
        c.execute("DELETE FROM skips WHERE annotator_id = ? AND document_id = ?", (annotator.id, document_id))
        return Ranking(cur.lastrowid, document_id, annotator.id, order, seconds, version, True, ts)

    def _ranking(self, ranking_id: int) -> Ranking:
        row = self.one("SELECT * FROM rankings WHERE id = ?", (ranking_id,))
        if row is None:
            raise NotFound(f"ranking {ranking_id} does not exist")
        return Ranking.from_row(row)

    def my_ranking(self, annotator: Annotator, document_id: int) -> Ranking | None:
        row = self.one(
            "SELECT * FROM rankings WHERE document_id = ? AND annotator_id = ? AND current = 1",
            (document_id, annotator.id),
        )
        return None if row is None else Ranking.from_row(row)

    def get_my_ranking(self, annotator: Annotator, ranking_id: int) -> Ranking:
        r = self._ranking(ranking_id)
        if r.annotator_id != annotator.id:
            raise Forbidden(f"ranking {ranking_id} belongs to another annotator")
        return r

    def my_rankings(self, annotator: Annotator, project: str | int) -> list[Ranking]:
        p = self.get_project(project)
        rows = self.all(
            "SELECT r.* FROM rankings r JOIN documents d ON d.id = r.document_id"
            " WHERE r.annotator_id = ? AND r.current = 1 AND d.project_id = ? ORDER BY r.created DESC",
            (annotator.id, p.id),
        )
        return [Ranking.from_row(r) for r in rows]

    def ranking_history(self, annotator: Annotator, document_id: int) -> list[Ranking]:
        rows = self.all(
            "SELECT * FROM rankings WHERE document_id = ? AND annotator_id = ? ORDER BY version",
            (document_id, annotator.id),
        )
        return [Ranking.from_row(r) for r in rows]

    def rankings(self, project: str | int, *, current_only: bool = True) -> list[Ranking]:
        """Every annotator's rankings in a project (for training and admin pages)."""
        p = self.get_project(project)
        rows = self.all(
            "SELECT r.* FROM rankings r JOIN documents d ON d.id = r.document_id WHERE d.project_id = ?"
            + (" AND r.current = 1" if current_only else "") + " ORDER BY r.id",
            (p.id,),
        )
        return [Ranking.from_row(r) for r in rows]

    # -- critiques ----------------------------------------------------------------------
    def save_critique(
        self, annotator: Annotator, candidate_id: int, text: str, span: tuple[int, int] | None = None
    ) -> Critique:
        """Save (or revise) this annotator's critique of a candidate. Empty text is refused."""
        row = self.one("SELECT text FROM candidates WHERE id = ?", (candidate_id,))
        if row is None:
            raise NotFound(f"candidate {candidate_id} does not exist")
        text, span = _critique_value(row["text"], text, span)
        with self.tx() as c:
            return self._write_critique(c, annotator, candidate_id, text, span,
                                        _current(c, "critiques", "candidate_id", candidate_id, annotator.id))

    def _write_critique(self, c: sqlite3.Connection, annotator: Annotator, candidate_id: int,
                        text: str, span: tuple[int, int] | None, prev: sqlite3.Row | None) -> Critique:
        """Inside a transaction: make `text` this annotator's current critique instead of `prev`
        (their current one, see _current), and keep the counters."""
        if prev:
            c.execute("UPDATE critiques SET current = 0 WHERE id = ?", (prev["id"],))
        else:
            self._count_first_critique(c, annotator.id, candidate_id)
        start, end = span or (None, None)
        version, ts = (prev["version"] + 1) if prev else 1, now()
        cur = c.execute(
            "INSERT INTO critiques (candidate_id, annotator_id, text, span_start, span_end, version,"
            " current, created) VALUES (?,?,?,?,?,?,1,?)",
            (candidate_id, annotator.id, text, start, end, version, ts),
        )
        return Critique(cur.lastrowid, candidate_id, annotator.id, text, start, end, version, True, ts)

    def get_critique(self, critique_id: int) -> Critique:
        row = self.one("SELECT * FROM critiques WHERE id = ?", (critique_id,))
        if row is None:
            raise NotFound(f"critique {critique_id} does not exist")
        return Critique.from_row(row)

    def my_critiques(self, annotator: Annotator, document_id: int) -> dict[int, Critique]:
        """candidate id -> this annotator's current critique, for one document."""
        rows = self.all(
            "SELECT k.* FROM critiques k JOIN candidates c ON c.id = k.candidate_id"
            " WHERE c.document_id = ? AND k.annotator_id = ? AND k.current = 1",
            (document_id, annotator.id),
        )
        return {r["candidate_id"]: Critique.from_row(r) for r in rows}

    def critiques(self, project: str | int, *, current_only: bool = True) -> list[Critique]:
        p = self.get_project(project)
        rows = self.all(
            "SELECT k.* FROM critiques k JOIN candidates c ON c.id = k.candidate_id"
            " JOIN documents d ON d.id = c.document_id WHERE d.project_id = ?"
            + (" AND k.current = 1" if current_only else "") + " ORDER BY k.id",
            (p.id,),
        )
        return [Critique.from_row(r) for r in rows]

    # -- one save from the Annotate page (see training/annotation/drafts.py) ----------------
    def save_annotation(
        self,
        annotator: Annotator,
        document_id: int,
        ranks: dict[int, int],
        critiques: dict[int, str | tuple[str, tuple[int, int] | None]] | None = None,
        seconds: float | None = None,
    ) -> tuple[Ranking, list[Critique]]:
        """Save a ranking and the critiques written beside it in ONE transaction.

        `critiques`: candidate id -> text or (text, span). Every candidate must belong to the
        document. A ranking or critique equal to this annotator's current one is kept as is (no
        new version); a changed one becomes a new version and the old one stays (audit).
        Everything is checked before the write lock is taken.
        """
        head, texts = self._doc_head(document_id)
        order = _groups(document_id, list(texts), ranks, allow_ties=head["allow_ties"])
        items = {}
        for cid, value in (critiques or {}).items():
            text, span = (value, None) if isinstance(value, str) else value
            if int(cid) not in texts:
                raise ValidationError(f"critique: candidate {cid} is not in document {document_id}")
            items[int(cid)] = _critique_value(texts[int(cid)], text, span)
        with self.tx() as c:
            prev = _current(c, "rankings", "document_id", document_id, annotator.id)
            if prev is not None and json.loads(prev["order_json"]) == order:
                ranking = Ranking.from_row(prev)
            else:
                ranking = self._write_ranking(c, annotator, head, order, seconds, prev)
            current = {} if not items else {r["candidate_id"]: r for r in c.execute(
                "SELECT k.* FROM critiques k JOIN candidates c ON c.id = k.candidate_id"
                " WHERE c.document_id = ? AND k.annotator_id = ? AND k.current = 1", (document_id, annotator.id))}
            saved = []
            for cid, (text, span) in items.items():
                old = current.get(cid)
                if old is not None and old["text"] == text and (old["span_start"], old["span_end"]) == (
                        span or (None, None)):
                    saved.append(Critique.from_row(old))
                else:
                    saved.append(self._write_critique(c, annotator, cid, text, span,
                                                      old))
        return ranking, saved

    def critique_history(self, annotator: Annotator, candidate_id: int) -> list[Critique]:
        """Every version of this annotator's critique of a candidate, oldest first."""
        rows = self.all(
            "SELECT * FROM critiques WHERE candidate_id = ? AND annotator_id = ? ORDER BY version",
            (candidate_id, annotator.id),
        )
        return [Critique.from_row(r) for r in rows]

    # -- progress -----------------------------------------------------------------------
    def progress(self, project: str | int) -> QueueProgress:
        """Counts from the counters, and each annotator's median seconds per ranking (one query)."""
        p = self.get_project(project)
        totals = self.totals(p.id)
        secs: dict[int, list[float]] = {}
        for a_id, sec in self.conn.execute(
            "SELECT r.annotator_id, r.seconds FROM rankings r JOIN documents d ON d.id = r.document_id"
            " WHERE r.current = 1 AND d.project_id = ? AND r.seconds IS NOT NULL", (p.id,)
        ):
            secs.setdefault(a_id, []).append(sec)
        per = [
            {"annotator": r["name"], "rankings": r["rankings"], "critiques": r["critiques"],
             "median_seconds": statistics.median(secs[r["id"]]) if r["id"] in secs else None}
            for r in self.all(
                "SELECT a.id, a.name, n.rankings, n.critiques FROM annotator_counts n"
                " JOIN annotators a ON a.id = n.annotator_id"
                " WHERE n.project_id = ? AND (n.rankings > 0 OR n.critiques > 0) ORDER BY a.id", (p.id,))
        ]
        return QueueProgress(documents=totals["documents"], complete=totals["complete"],
                             rankings=totals["rankings"], critiques=totals["critiques"], per_annotator=per)


def ranking_groups(doc: Document, ranks: dict[int, int], *, allow_ties: bool) -> list[list[int]]:
    """Validate `ranks` (candidate id -> rank 1..K) for `doc`; return groups of ids, best first."""
    return _groups(doc.id, [c.id for c in doc.candidates], ranks, allow_ties=allow_ties)


def _groups(document_id: int, candidate_ids: list[int], ranks: dict[int, int], *,
            allow_ties: bool) -> list[list[int]]:
    ids = set(candidate_ids)
    ranks = {int(k): v for k, v in ranks.items()}
    missing = ids - set(ranks)
    if missing:
        raise ValidationError(f"ranking: candidate(s) {sorted(missing)} have no rank; rank every candidate")
    extra = set(ranks) - ids
    if extra:
        raise ValidationError(f"ranking: candidate(s) {sorted(extra)} are not in document {document_id}")
    k = len(ids)
    for cid, r in ranks.items():
        if not isinstance(r, int) or isinstance(r, bool) or not 1 <= r <= k:
            raise ValidationError(f"ranking: candidate {cid} has rank {r!r}; ranks are whole numbers 1..{k}")
    if not allow_ties and len(set(ranks.values())) != k:
        raise ValidationError("ranking: two candidates share a rank, and this project does not allow ties")
    groups: dict[int, list[int]] = {}
    for cid, r in sorted(ranks.items(), key=lambda kv: (kv[1], kv[0])):
        groups.setdefault(r, []).append(cid)
    return [groups[r] for r in sorted(groups)]


def _current(c: sqlite3.Connection, table: str, key: str, key_id: int, annotator_id: int) -> sqlite3.Row | None:
    """This annotator's current version in `table` (rankings by document_id, critiques by candidate_id)."""
    return c.execute(f"SELECT * FROM {table} WHERE {key} = ? AND annotator_id = ? AND current = 1",
                     (key_id, annotator_id)).fetchone()


def _critique_value(candidate_text: str, text: str, span: tuple[int, int] | None) -> tuple[str, tuple[int, int] | None]:
    """(stripped text, span) checked: empty text and a span outside the candidate are refused."""
    text = (text or "").strip()
    if not text:
        raise ValidationError("critique: must not be empty (say what is wrong and how to fix it)")
    if span is None:
        return text, None
    start, end = int(span[0]), int(span[1])
    if not (0 <= start < end <= len(candidate_text)):
        raise ValidationError(
            f"critique span: {start}..{end} is not inside the candidate (0..{len(candidate_text)})"
        )
    return text, (start, end)
