"""Queue counts and progress totals in O(1): counters kept in the same transaction as every write.

    s.queue_counts(annotator, "news")   # {"done", "assigned", "left"}: three integers read, no scan
    s.totals("news")                    # {"documents", "complete", "rankings", "critiques"}
    s.check_counters()                  # [] when every counter equals a recount from scratch
    s.check_counters(fix=True)          # ... and rewrites the ones that do not (tokenwise doctor --fix)

Two tables hold the counters (migration m003 creates and backfills them):
  project_counts    per project: documents, open (documents with fewer rankings than the
                    overlap), untouched (documents with no ranking), rankings and critiques
                    (current versions only).
  annotator_counts  per (project, annotator): rankings, rankings_open (this annotator's rankings
                    of documents that are still open) and critiques.
so that an annotator's queue is `left = open - rankings_open` and `assigned = done + left`.

Who keeps them (always inside the write's own transaction, so a counter never disagrees with
the rows it counts, even when a process dies mid-way):
  1. adding documents: documents += n, open += n, untouched += n;
  2. a first ranking of a document by an annotator: rankings += 1 (project and annotator); the
     document's n_rankings += 1 (its first: untouched -= 1), and when that makes it reach the
     overlap, open -= 1 and every earlier ranker's rankings_open -= 1; a revision changes none;
  3. a first critique of a candidate by an annotator: critiques += 1; a revision changes none;
  4. skips change no counter (a skipped document stays in the queue);
  5. changing a project's overlap, and an import's final flip, recount that project.
`documents.n_rankings` is a counter too (current rankings of the document) and is checked with
the others.
"""

from __future__ import annotations

import logging
import sqlite3

from .base import StoreBase

log = logging.getLogger(__name__)

_PROJECT_FIELDS = ("documents", "open", "untouched", "rankings", "critiques")
_ANNOTATOR_FIELDS = ("rankings", "rankings_open", "critiques")

# Every counter recomputed from the rows it counts (the check, the backfill and the fix use these).
# `ranked` is each document's true number of current rankings (not the stored n_rankings).
_RANKED = """WITH ranked AS (SELECT d.id, d.project_id, COUNT(r.id) AS n FROM documents d
  LEFT JOIN rankings r ON r.document_id = d.id AND r.current = 1 {where_d} GROUP BY d.id)"""
RECOUNT_PROJECTS = _RANKED + """
SELECT p.id AS project_id,
  (SELECT COUNT(*) FROM ranked d WHERE d.project_id = p.id) AS documents,
  (SELECT COUNT(*) FROM ranked d WHERE d.project_id = p.id AND d.n < p.overlap) AS open,
  (SELECT COUNT(*) FROM ranked d WHERE d.project_id = p.id AND d.n = 0) AS untouched,
  (SELECT COALESCE(SUM(d.n), 0) FROM ranked d WHERE d.project_id = p.id) AS rankings,
  (SELECT COUNT(*) FROM critiques k JOIN candidates c ON c.id = k.candidate_id
     JOIN documents d ON d.id = c.document_id WHERE d.project_id = p.id AND k.current = 1) AS critiques
FROM projects p {where_p}
"""
RECOUNT_ANNOTATORS = _RANKED + """
SELECT project_id, annotator_id, SUM(rankings) AS rankings, SUM(rankings_open) AS rankings_open,
       SUM(critiques) AS critiques FROM (
  SELECT d.project_id, r.annotator_id, 1 AS rankings, (d.n < p.overlap) AS rankings_open, 0 AS critiques
    FROM rankings r JOIN ranked d ON d.id = r.document_id JOIN projects p ON p.id = d.project_id
    WHERE r.current = 1
  UNION ALL
  SELECT d.project_id, k.annotator_id, 0, 0, 1
    FROM critiques k JOIN candidates c ON c.id = k.candidate_id JOIN ranked d ON d.id = c.document_id
    WHERE k.current = 1
) GROUP BY project_id, annotator_id
"""
WRONG_N_RANKINGS = _RANKED.format(where_d="") + """
SELECT d.id, d.n_rankings, ranked.n FROM documents d JOIN ranked ON ranked.id = d.id WHERE d.n_rankings != ranked.n
"""


class _RowCursor:
    """Rows by column name whatever the connection's row_factory (migrations may pass a bare one)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params=()):
        cur = self.conn.cursor()
        cur.row_factory = sqlite3.Row
        return cur.execute(sql, params)


def recount(conn: sqlite3.Connection, project_id: int | None = None) -> tuple[dict, dict]:
    """From scratch: ({project_id: {field: n}}, {(project_id, annotator_id): {field: n}})."""
    one = project_id is not None
    conn = _RowCursor(conn)
    where_d = "WHERE d.project_id = :p" if one else ""
    projects = {
        r["project_id"]: {f: r[f] for f in _PROJECT_FIELDS}
        for r in conn.execute(RECOUNT_PROJECTS.format(where_d=where_d, where_p="WHERE p.id = :p" if one else ""),
                              {"p": project_id})
    }
    annotators = {
        (r["project_id"], r["annotator_id"]): {f: r[f] for f in _ANNOTATOR_FIELDS}
        for r in conn.execute(RECOUNT_ANNOTATORS.format(where_d=where_d), {"p": project_id})
    }
    return projects, annotators


def write_counts(conn: sqlite3.Connection, project_id: int | None = None) -> None:
    """Replace the stored counters (of one project, or all) by a recount. Call inside a transaction."""
    if project_id is None:
        conn.execute("UPDATE documents SET n_rankings = (SELECT COUNT(*) FROM rankings r"
                     " WHERE r.document_id = documents.id AND r.current = 1)"
                     " WHERE n_rankings != (SELECT COUNT(*) FROM rankings r"
                     " WHERE r.document_id = documents.id AND r.current = 1)")
    else:
        conn.execute("UPDATE documents SET n_rankings = (SELECT COUNT(*) FROM rankings r"
                     " WHERE r.document_id = documents.id AND r.current = 1) WHERE project_id = ?"
                     " AND n_rankings != (SELECT COUNT(*) FROM rankings r"
                     " WHERE r.document_id = documents.id AND r.current = 1)", (project_id,))
    projects, annotators = recount(conn, project_id)
    where, params = ("WHERE project_id = ?", (project_id,)) if project_id is not None else ("", ())
    conn.execute(f"DELETE FROM project_counts {where}", params)
    conn.execute(f"DELETE FROM annotator_counts {where}", params)
    conn.executemany("INSERT INTO project_counts (project_id, documents, open, untouched, rankings, critiques)"
                     " VALUES (?,?,?,?,?,?)", [(p, *(v[f] for f in _PROJECT_FIELDS)) for p, v in projects.items()])
    conn.executemany("INSERT INTO annotator_counts (project_id, annotator_id, rankings, rankings_open, critiques)"
                     " VALUES (?,?,?,?,?)",
                     [(p, a, *(v[f] for f in _ANNOTATOR_FIELDS)) for (p, a), v in annotators.items()])


class CountersMixin(StoreBase):
    # -- reading (O(1)) ------------------------------------------------------------------
    def _project_counts(self, project_id: int) -> dict[str, int]:
        row = self.one("SELECT * FROM project_counts WHERE project_id = ?",
                       (project_id,))
        return {f: (row[f] if row else 0) for f in _PROJECT_FIELDS}

    def _counters(self, annotator_id: int, project_id: int) -> sqlite3.Row | None:
        """The project's counters and this annotator's (mine, mine_open) in one row."""
        return self.one(
            "SELECT t.*, COALESCE(a.rankings, 0) AS mine, COALESCE(a.rankings_open, 0) AS mine_open"
            " FROM project_counts t LEFT JOIN annotator_counts a ON a.project_id = t.project_id"
            " AND a.annotator_id = ? WHERE t.project_id = ?", (annotator_id, project_id))

    # -- keeping them (call inside the write's transaction) ------------------------------
    @staticmethod
    def _count_documents(c: sqlite3.Connection, project_id: int, n: int) -> None:
        c.execute("INSERT INTO project_counts (project_id, documents, open, untouched) VALUES (?, ?, ?, ?)"
                  " ON CONFLICT (project_id) DO UPDATE SET documents = documents + excluded.documents,"
                  " open = open + excluded.open, untouched = untouched + excluded.untouched", (project_id, n, n, n))

    @staticmethod
    def _count_first_ranking(c: sqlite3.Connection, annotator_id: int, document_id: int) -> None:
        """A document gets its first ranking from this annotator: call BEFORE inserting the ranking row.

        The project and its overlap are read inside the transaction (an import's flip may have
        moved the document to another project id since the caller looked)."""
        n, project_id, overlap = c.execute(
            "UPDATE documents SET n_rankings = n_rankings + 1 WHERE id = ?"
            " RETURNING n_rankings, project_id, (SELECT overlap FROM projects p WHERE p.id = documents.project_id)",
            (document_id,)).fetchone()
        closes = n == overlap
        c.execute("UPDATE project_counts SET rankings = rankings + 1, open = open - ?, untouched = untouched - ?"
                  " WHERE project_id = ?", (int(closes), int(n == 1), project_id))
        if closes:  # the document left everybody's queue: earlier rankers' open rankings shrink
            c.execute("UPDATE annotator_counts SET rankings_open = rankings_open - 1 WHERE project_id = ?"
                      " AND annotator_id IN (SELECT annotator_id FROM rankings WHERE document_id = ?"
                      " AND current = 1)", (project_id, document_id))
        c.execute("INSERT INTO annotator_counts (project_id, annotator_id, rankings, rankings_open)"
                  " VALUES (?, ?, 1, ?) ON CONFLICT (project_id, annotator_id) DO UPDATE SET"
                  " rankings = rankings + 1, rankings_open = rankings_open + excluded.rankings_open",
                  (project_id, annotator_id, int(n < overlap)))

    @staticmethod
    def _count_first_critique(c: sqlite3.Connection, annotator_id: int, candidate_id: int) -> None:
        """A candidate gets its first critique from this annotator (project read in the transaction)."""
        project_id = c.execute("SELECT d.project_id FROM candidates k JOIN documents d ON d.id = k.document_id"
                               " WHERE k.id = ?", (candidate_id,)).fetchone()[0]
        c.execute("UPDATE project_counts SET critiques = critiques + 1 WHERE project_id = ?", (project_id,))
        c.execute("INSERT INTO annotator_counts (project_id, annotator_id, critiques) VALUES (?, ?, 1)"
                  " ON CONFLICT (project_id, annotator_id) DO UPDATE SET critiques = critiques + 1",
                  (project_id, annotator_id))

    # -- the check ------------------------------------------------------------------------
    def check_counters(self, *, fix: bool = False) -> list[str]:
        """Recount every counter from scratch and compare; one sentence per difference ([] = all right).

        With fix=True the stored counters are replaced by the recount in one transaction (the
        differences found are still returned). `tokenwise doctor` runs this; tests run it after
        random writes, and `migrate` after a migration."""
        with self.tx() as c:  # a stable snapshot, and the fix lands in the same transaction
            found = []
            for r in c.execute(WRONG_N_RANKINGS):
                found.append(f"document {r['id']}: n_rankings is {r['n_rankings']}, counted {r['n']}")
            projects, annotators = recount(c)
            stored_p = {r["project_id"]: {f: r[f] for f in _PROJECT_FIELDS}
                        for r in c.execute("SELECT * FROM project_counts")}
            stored_a = {(r["project_id"], r["annotator_id"]): {f: r[f] for f in _ANNOTATOR_FIELDS}
                        for r in c.execute("SELECT * FROM annotator_counts")}
            zero_p, zero_a = dict.fromkeys(_PROJECT_FIELDS, 0), dict.fromkeys(_ANNOTATOR_FIELDS, 0)
            for pid in sorted(projects.keys() | stored_p.keys()):
                want, got = projects.get(pid, zero_p), stored_p.get(pid, zero_p)
                found += [f"project {pid}: {f} is {got[f]}, counted {want[f]}"
                          for f in _PROJECT_FIELDS if got[f] != want[f]]
            for key in sorted(annotators.keys() | stored_a.keys()):
                want, got = annotators.get(key, zero_a), stored_a.get(key, zero_a)
                found += [f"project {key[0]}, annotator {key[1]}: {f} is {got[f]}, counted {want[f]}"
                          for f in _ANNOTATOR_FIELDS if got[f] != want[f]]
            if found and fix:
                write_counts(c)
                log.warning("counters fixed (%d differences): %s", len(found), "; ".join(found[:5]))
        return found
