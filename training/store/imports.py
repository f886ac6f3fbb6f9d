"""Imports that never hold the write lock for long: batches under a hidden staging project, one flip.

    imp = s.begin_import(project, path)       # a staging project + an `imports` row
    s.write_import_batch(imp, rows)           # documents: one short transaction per batch
    s.write_item_batch(imp, rows, more)       # or documents with judgments (preference files)
    s.recount_import(imp)                     # (after item batches) the staging counters
    s.finish_import(imp)     # the flip: every row becomes the project's at once
    s.abort_import(imp)      # or: delete everything the import wrote (short transactions)

1. `begin_import` makes a staging project (a copy of the target's settings, `staging_for` = the
   target, left out of `list_projects`) and an `imports` row with this process's pid, host and a
   heartbeat. Rows written under the staging project are in no queue, count or export of the
   target: every one of those is scoped by project.
2. Each batch is one transaction of a few thousand rows (documents, candidates, and for
   preference files the rankings and critiques of their raters, with explicit ids so that
   executemany can write them) under the staging project. Raters are source annotators made by
   `import_source` and remembered in `import_sources`.
3. The flip is one transaction, and moves the smaller side: the staged documents into the
   project, or the project's documents into the staging project, which then takes the project's
   place (name, settings, jobs, models; the id changes, and the old id keeps finding it). Counters move with the documents. So it
   costs O(min(documents there, imported)): nothing for a new project, about 0.5 s of CPU per
   100k documents moved here. A document id that somebody else added meanwhile makes the flip
   fail whole (ValidationError), and the import is aborted.
4. `abort_import` deletes the staging rows in short transactions, then the staging project, the
   import row and the source annotators that this import created.
5. Every Store open runs `clean_stale_imports`: an import whose process is gone (same host, pid
   not alive) or whose heartbeat is older than STALE_S is aborted, so a killed import leaves no
   rows behind once the database is next opened.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import ValidationError
from .base import now
from .counters import CountersMixin, write_counts
from .records import Annotator, Project

log = logging.getLogger(__name__)

STALE_S = 600  # an import whose heartbeat is older than this is dead, whatever its host
DELETE_BATCH = 5000  # documents per cleanup transaction


@dataclass(frozen=True)
class StagedImport:
    id: int
    project: Project  # the target
    staging_id: int


@dataclass(frozen=True)
class ItemJudgment:
    """One judgment of an imported item: who, their order of the candidates, their critiques."""

    annotator_id: int
    order: Sequence[Sequence[int]]  # groups of candidate positions, best first (a group > 1 is a tie);
    # empty for a document of one candidate (SLF5K): the judgment is then its critiques alone
    critiques: Sequence[tuple[int, str]] = ()  # (candidate position, text)


@dataclass(frozen=True)
class ImportRow:
    """One valid input row to write: a document (with per-candidate sources and meta when the file
    has them) and the judgments made on it (`write_item_batch`; `write_import_batch` writes none)."""

    ext_id: str
    text: str
    candidates: Sequence[str]
    title: str = ""
    meta: str = "{}"  # JSON text
    reference: str | None = None
    sources: Sequence[str] | None = None
    gen_params: Sequence[str] | None = None  # JSON text per candidate
    judgments: Sequence[ItemJudgment] = ()


def _move_documents(c, src: int, dst: int) -> None:
    """Inside a transaction: every document of project `src` (and its counters) into `dst`.

    Counters are added as they are; the caller recounts `dst` if the two overlaps differ."""
    c.execute("UPDATE documents SET project_id = ? WHERE project_id = ?", (dst, src))
    c.execute("UPDATE project_counts SET (documents, open, untouched, rankings, critiques) = (SELECT"
              " t.documents + s.documents, t.open + s.open, t.untouched + s.untouched,"
              " t.rankings + s.rankings, t.critiques + s.critiques FROM project_counts t, project_counts s"
              " WHERE t.project_id = :dst AND s.project_id = :src) WHERE project_id = :dst", {"src": src, "dst": dst})
    c.execute("UPDATE project_counts SET documents = 0, open = 0, untouched = 0, rankings = 0, critiques = 0"
              " WHERE project_id = ?", (src,))
    c.execute("INSERT INTO annotator_counts (project_id, annotator_id, rankings, rankings_open, critiques)"
              " SELECT ?, annotator_id, rankings, rankings_open, critiques FROM annotator_counts"
              " WHERE project_id = ? AND true ON CONFLICT (project_id, annotator_id) DO UPDATE SET"
              " rankings = rankings + excluded.rankings, rankings_open = rankings_open + excluded.rankings_open,"
              " critiques = critiques + excluded.critiques", (dst, src))
    c.execute("DELETE FROM annotator_counts WHERE project_id = ?", (src,))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


class ImportsMixin(CountersMixin):
    def begin_import(self, project: Project, path: str) -> StagedImport:
        """Start an import into `project`: its staging project and its `imports` row."""
        with self.tx() as c:
            cur = c.execute("INSERT INTO imports (project_id, path, pid, host, started, heartbeat)"
                            " VALUES (?,?,?,?,?,?)",
                            (project.id, str(path), os.getpid(), socket.gethostname(), now(), now()))
            import_id = cur.lastrowid
            staging = c.execute(
                "INSERT INTO projects (name, kind, instructions, k, overlap, allow_ties, created, staging_for)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (f"~import {import_id} into {project.name}", project.kind, "", project.k, project.overlap,
                 int(project.allow_ties), now(), project.id),
            ).lastrowid
            c.execute("INSERT INTO project_counts (project_id) VALUES (?)", (staging,))
            c.execute("UPDATE imports SET staging_id = ? WHERE id = ?", (staging, import_id))
        return StagedImport(import_id, project, staging)

    def write_import_batch(self, imp: StagedImport, rows: Sequence[ImportRow]) -> None:
        """Write documents (no judgments) under the staging project in ONE short transaction, with
        its counters: the fast path of plain documents files."""
        if not rows:
            return
        ts = now()
        with self.tx() as c:
            doc_id = c.execute("SELECT COALESCE(MAX(id), 0) FROM documents").fetchone()[0]
            cand_id = c.execute("SELECT COALESCE(MAX(id), 0) FROM candidates").fetchone()[0]
            docs, cands = [], []
            for r in rows:
                doc_id += 1
                docs.append((doc_id, imp.staging_id, r.ext_id, r.title, r.text, r.meta, r.reference))
                for i, text in enumerate(r.candidates):
                    cand_id += 1
                    cands.append((cand_id, doc_id, i, text, r.sources[i] if r.sources else "import"))
            c.executemany("INSERT INTO documents (id, project_id, ext_id, title, text, meta, reference, n_rankings,"
                          f" created) VALUES (?,?,?,?,?,?,?,0,'{ts}')", docs)
            c.executemany("INSERT INTO candidates (id, document_id, position, text, source, gen_params, created)"
                          f" VALUES (?,?,?,?,?,'{{}}','{ts}')", cands)  # ts: an ISO time, no quotes
            c.execute("UPDATE project_counts SET documents = documents + ?, open = open + ?,"
                      " untouched = untouched + ? WHERE project_id = ?",
                      (len(docs), len(docs), len(docs), imp.staging_id))
            c.execute("UPDATE imports SET heartbeat = ? WHERE id = ?", (ts, imp.id))

    def import_source(self, imp: StagedImport, name: str) -> Annotator:
        """The source annotator `name` of this import (a rater named in the file), made now if new and
        then remembered, so that a refused or dead import takes it away again."""
        with self.tx() as c:
            row, created = self._source(c, name)
            if created:
                c.execute("INSERT INTO import_sources (import_id, annotator_id) VALUES (?, ?)", (imp.id, row.id))
        return row

    def write_item_batch(self, imp: StagedImport, rows: Sequence[ImportRow],
                         more: Sequence[tuple[int, Sequence[int], ItemJudgment]] = ()) -> list[tuple[int, list[int]]]:
        """Write new documents with their judgments, and further judgments `more` of documents an
        earlier batch wrote ((document id, its candidate ids, judgment)), under the staging project
        in ONE short transaction. Returns (document id, candidate ids) per new row. The staging
        project's counters are recounted once, by `recount_import`, before the flip."""
        ts = now()
        out: list[tuple[int, list[int]]] = []
        with self.tx() as c:
            ids = {t: c.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0]
                   for t in ("documents", "candidates", "rankings", "critiques")}
            docs, cands, ranks, crits = [], [], [], []

            def judge(doc_id: int, cand_ids: Sequence[int], j: ItemJudgment) -> None:
                if j.order:  # a judgment of a one-candidate document is its critique alone
                    ids["rankings"] += 1
                    order = [[cand_ids[i] for i in group] for group in j.order]
                    ranks.append((ids["rankings"], doc_id, j.annotator_id, json.dumps(order), ts))
                for i, text in j.critiques:
                    ids["critiques"] += 1
                    crits.append((ids["critiques"], cand_ids[i], j.annotator_id, text, ts))

            for r in rows:
                ids["documents"] += 1
                doc_id = ids["documents"]
                docs.append((doc_id, imp.staging_id, r.ext_id, r.title, r.text, r.meta, r.reference,
                             sum(1 for j in r.judgments if j.order), ts))
                cand_ids = []
                for i, text in enumerate(r.candidates):
                    ids["candidates"] += 1
                    cand_ids.append(ids["candidates"])
                    cands.append((ids["candidates"], doc_id, i, text, r.sources[i] if r.sources else "import",
                                  r.gen_params[i] if r.gen_params else "{}", ts))
                for j in r.judgments:
                    judge(doc_id, cand_ids, j)
                out.append((doc_id, cand_ids))
            for doc_id, cand_ids, j in more:
                judge(doc_id, cand_ids, j)
            c.executemany("INSERT INTO documents (id, project_id, ext_id, title, text, meta, reference, n_rankings,"
                          " created) VALUES (?,?,?,?,?,?,?,?,?)", docs)
            c.executemany("INSERT INTO candidates (id, document_id, position, text, source, gen_params, created)"
                          " VALUES (?,?,?,?,?,?,?)", cands)
            c.executemany("INSERT INTO rankings (id, document_id, annotator_id, order_json, seconds, version,"
                          " current, created) VALUES (?,?,?,?,NULL,1,1,?)", ranks)
            c.executemany("INSERT INTO critiques (id, candidate_id, annotator_id, text, span_start, span_end,"
                          " version, current, created) VALUES (?,?,?,?,NULL,NULL,1,1,?)", crits)
            if more:
                c.executemany("UPDATE documents SET n_rankings = n_rankings + 1 WHERE id = ?",
                              [(doc_id,) for doc_id, _, j in more if j.order])
            c.execute("UPDATE imports SET heartbeat = ? WHERE id = ?", (ts, imp.id))
        return out

    def recount_import(self, imp: StagedImport) -> None:
        """The staging project's counters from its rows (after item batches), in one transaction."""
        with self.tx() as c:
            write_counts(c, imp.staging_id)

    def finish_import(self, imp: StagedImport) -> None:
        """The flip: the staged documents become the target project's, all at once (one transaction).

        Whichever side has fewer documents moves: the staged ones into the project, or the
        project's into the staging project, which then takes the project's place (`_take_over`);
        so the flip costs O(min(documents there, documents imported)), nothing for a new project."""
        try:
            with self.tx() as c:
                # the target as it is now (another import's take-over may have renumbered it)
                target = c.execute("SELECT project_id FROM imports WHERE id = ?", (imp.id,)).fetchone()[0]
                there, staged = (c.execute("SELECT documents FROM project_counts WHERE project_id = ?", (pid,))
                                 .fetchone()[0] for pid in (target, imp.staging_id))
                if there <= staged:
                    _move_documents(c, target, imp.staging_id)
                    self._take_over(c, imp, target)
                    return
                _move_documents(c, imp.staging_id, target)
                overlap = c.execute("SELECT overlap FROM projects WHERE id = ?", (target,)).fetchone()[0]
                if overlap != imp.project.overlap:  # changed while the import ran: open/closed differ
                    write_counts(c, target)
                self._drop_staging(c, imp)
        except Exception as e:
            self.abort_import(imp)
            if "UNIQUE" in str(e):
                raise ValidationError(f"import into {imp.project.name!r}: a document id of the file was added to "
                                      "the project by somebody else while it ran; nothing imported") from None
            raise

    _PROJECT_COLUMNS = ("name", "kind", "instructions", "k", "overlap", "allow_ties", "require_critique_lowest",
                        "show_rewards", "created", "active_reward_model", "active_policy_model", "templates",
                        "context_fields")

    def _take_over(self, c, imp: StagedImport, target: int) -> None:
        """The staging project (holding every document now) becomes the project: its name, settings,
        jobs, models and pending imports move over, and the emptied one goes. The project keeps its
        name; its id changes, and `project_moves` remembers the old one, so `get_project` still finds
        it by that (a job that was running when the import landed, say)."""
        staging = imp.staging_id
        old = c.execute("SELECT * FROM projects WHERE id = ?", (target,)).fetchone()
        c.execute("DELETE FROM imports WHERE id = ?", (imp.id,))
        c.execute("DELETE FROM import_sources WHERE import_id = ?", (imp.id,))
        for sql in ("UPDATE jobs SET project_id = :new WHERE project_id = :old",
                    "UPDATE models SET project_id = :new WHERE project_id = :old",
                    "UPDATE eval_rounds SET project_id = :new WHERE project_id = :old",
                    "UPDATE eval_rounds SET source_project_id = :new WHERE source_project_id = :old",
                    "UPDATE imports SET project_id = :new WHERE project_id = :old",
                    "UPDATE projects SET staging_for = :new WHERE staging_for = :old",
                    "UPDATE project_moves SET new_id = :new WHERE new_id = :old",
                    "INSERT INTO project_moves (old_id, new_id) VALUES (:old, :new)",
                    "DELETE FROM annotator_counts WHERE project_id = :old",
                    "DELETE FROM project_counts WHERE project_id = :old",
                    "DELETE FROM projects WHERE id = :old"):
            c.execute(sql, {"new": staging, "old": target})
        sets = ", ".join(f"{col} = :{col}" for col in self._PROJECT_COLUMNS)
        c.execute(f"UPDATE projects SET {sets}, staging_for = NULL WHERE id = :id",
                  {**{col: old[col] for col in self._PROJECT_COLUMNS}, "id": staging})
        if old["overlap"] != imp.project.overlap:  # changed while the import ran: open/closed differ
            write_counts(c, staging)

    def abort_import(self, imp: StagedImport | int) -> None:
        """Delete everything an import wrote, in short transactions (safe to run again)."""
        import_id = imp if isinstance(imp, int) else imp.id
        row = self.one("SELECT * FROM imports WHERE id = ?", (import_id,))
        if row is None:
            return
        staging = row["staging_id"]
        while staging is not None:
            with self.tx() as c:
                ids = [r[0] for r in c.execute("SELECT id FROM documents WHERE project_id = ? LIMIT ?",
                                               (staging, DELETE_BATCH))]
                if not ids:
                    break
                c.execute("CREATE TEMP TABLE IF NOT EXISTS _doomed (id INTEGER PRIMARY KEY)")
                c.execute("DELETE FROM _doomed")
                c.executemany("INSERT INTO _doomed VALUES (?)", [(i,) for i in ids])
                c.execute("DELETE FROM critiques WHERE candidate_id IN (SELECT c.id FROM candidates c"
                          " WHERE c.document_id IN (SELECT id FROM _doomed))")
                c.execute("DELETE FROM rankings WHERE document_id IN (SELECT id FROM _doomed)")
                c.execute("DELETE FROM skips WHERE document_id IN (SELECT id FROM _doomed)")
                c.execute("DELETE FROM candidates WHERE document_id IN (SELECT id FROM _doomed)")
                c.execute("DELETE FROM documents WHERE id IN (SELECT id FROM _doomed)")
        with self.tx() as c:
            self._drop_staging(c, row)
        log.info("import %d (%s) removed", import_id, row["path"])

    def _drop_staging(self, c, imp) -> None:
        """The staging project, its counters, the import row, and the sources this import made if unused."""
        import_id, staging = (imp.id, imp.staging_id) if isinstance(imp, StagedImport) else (imp["id"], imp["staging_id"])
        made = [r[0] for r in c.execute("SELECT annotator_id FROM import_sources WHERE import_id = ?", (import_id,))]
        c.execute("DELETE FROM import_sources WHERE import_id = ?", (import_id,))
        c.execute("DELETE FROM imports WHERE id = ?", (import_id,))
        for a in made:  # raters this import made, if nothing of theirs is left
            if not c.execute("SELECT 1 FROM rankings WHERE annotator_id = :a UNION ALL SELECT 1 FROM critiques"
                             " WHERE annotator_id = :a LIMIT 1", {"a": a}).fetchone():
                c.execute("DELETE FROM annotators WHERE id = ?", (a,))
        if staging is not None:
            c.execute("DELETE FROM annotator_counts WHERE project_id = ?", (staging,))
            c.execute("DELETE FROM project_counts WHERE project_id = ?", (staging,))
            c.execute("DELETE FROM projects WHERE id = ?", (staging,))

    def clean_stale_imports(self) -> list[str]:
        """Abort imports whose process died (same host, pid gone) or that stopped beating; say which."""
        rows = self.all("SELECT id, path, pid, host, heartbeat FROM imports")
        if not rows:
            return []
        host = socket.gethostname()
        cutoff = (datetime.now(UTC) - timedelta(seconds=STALE_S)).isoformat(timespec="milliseconds")
        done = []
        for r in rows:
            dead = (r["host"] == host and not _pid_alive(r["pid"])) or (r["heartbeat"] or "") < cutoff
            if dead:
                log.warning("removing the rows of unfinished import %d (%s, pid %s)", r["id"], r["path"], r["pid"])
                self.abort_import(r["id"])
                done.append(f"import {r['id']} of {r['path']}: its process is gone; its rows were removed")
        return done
