"""Finding documents: full-text search (FTS5), and the reads the Data page filters with.

    s.sync_search_index()                       # index what was added since the last call
    ids = s.search_documents(project_id, "river bridge")   # best match first
    s.candidate_scores(model_id, project_id)    # {candidate id: reward model score}

The index is filled lazily, in short transactions of SYNC_BATCH documents, so a search after a
100k import never holds the write lock for long, and imports pay nothing for it. Documents are
never edited; a deleted one leaves the index through a trigger (m005_search).
"""

from __future__ import annotations

import re

from .base import StoreBase

SYNC_BATCH = 5000
_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """A user's words as an FTS5 query: every word must occur (quoted, so no operator syntax);
    the last one may be a prefix. None when there is no word."""
    words = _WORD.findall(text or "")
    if not words:
        return None
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


class SearchMixin(StoreBase):
    def sync_search_index(self) -> int:
        """Index the documents added since the last sync; returns how many were indexed.

        A read decides first, so a search with nothing new to index takes no write lock."""
        upto = self.scalar("SELECT upto FROM search_state")
        if self.scalar("SELECT EXISTS (SELECT 1 FROM documents WHERE id > ?)", (upto,)) == 0 and \
                self.scalar("SELECT EXISTS (SELECT 1 FROM documents_fts WHERE rowid > ?)", (upto,)) == 0:
            return 0
        done = 0
        while True:
            with self.tx() as c:
                upto = c.execute("SELECT upto FROM search_state").fetchone()[0]
                if done == 0:
                    c.execute("DELETE FROM documents_fts WHERE rowid > ?", (upto,))
                rows = c.execute("SELECT id, title, text FROM documents WHERE id > ? ORDER BY id LIMIT ?",
                                 (upto, SYNC_BATCH)).fetchall()
                if not rows:
                    return done
                c.executemany("INSERT INTO documents_fts (rowid, title, text) VALUES (?,?,?)",
                              [(r["id"], r["title"], r["text"]) for r in rows])
                c.execute("UPDATE search_state SET upto = ?", (rows[-1]["id"],))
                done += len(rows)

    def search_documents(self, project_id: int, text: str, limit: int = 200) -> list[int]:
        """Ids of the project's documents whose title or text holds every word, best match first."""
        q = fts_query(text)
        if q is None:
            return []
        self.sync_search_index()
        return [r[0] for r in self.all(
            "SELECT d.id FROM documents_fts f JOIN documents d ON d.id = f.rowid"
            " WHERE documents_fts MATCH ? AND d.project_id = ? ORDER BY f.rank LIMIT ?",
            (q, int(project_id), int(limit)))]

    def candidate_scores(self, model_id: int, project_id: int) -> dict[int, float]:
        """candidate id -> the reward model's cached sequence score, for one project."""
        return {r[0]: r[1] for r in self.all(
            "SELECT t.candidate_id, t.score FROM token_rewards t JOIN candidates c ON c.id = t.candidate_id"
            " JOIN documents d ON d.id = c.document_id WHERE t.model_id = ? AND d.project_id = ?"
            " AND t.score IS NOT NULL", (int(model_id), int(project_id)))}

    def documents_touched_by(self, project_id: int, annotator_id: int) -> set[int]:
        """Documents this annotator ranked or critiqued (current entries)."""
        return {r[0] for r in self.all(
            "SELECT document_id FROM rankings r JOIN documents d ON d.id = r.document_id"
            " WHERE r.annotator_id = :a AND r.current = 1 AND d.project_id = :p"
            " UNION SELECT c.document_id FROM critiques k JOIN candidates c ON c.id = k.candidate_id"
            " JOIN documents d ON d.id = c.document_id WHERE k.annotator_id = :a AND k.current = 1"
            " AND d.project_id = :p", {"a": int(annotator_id), "p": int(project_id)})}
