"""ILF refinements of critiques: store, score, select, review.

A critique gets N model refinements (variant `feedback`, plus `no_feedback` baselines); a
selector scores them and marks at most one per critique `selected`; a reviewer then accepts
the selected one, picks another, or writes an edit (variant `edit`, accepted at once).
Reviewers are the critique's author, or an admin. Rows are never deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import Forbidden, NotFound, ValidationError
from .base import StoreBase, now
from .records import Annotator, Candidate, Critique, Document, Refinement

VARIANTS = ("feedback", "no_feedback", "human", "edit")


@dataclass(frozen=True)
class CritiqueItem:
    """A current critique with what it criticises and its refinements (oldest first)."""

    critique: Critique
    candidate: Candidate
    document: Document
    annotator: str
    refinements: tuple[Refinement, ...] = ()

    @property
    def selected(self) -> Refinement | None:
        return next((r for r in self.refinements if r.selected), None)

    @property
    def accepted(self) -> Refinement | None:
        return next((r for r in self.refinements if r.accepted), None)

    @property
    def reviewed(self) -> bool:
        return any(r.reviewed_by is not None for r in self.refinements)


def _refinement(row) -> Refinement:
    # accepted is three-valued: None (unreviewed), True, False
    return Refinement.from_row(row, accepted=None if row["accepted"] is None else bool(row["accepted"]))


class RefinementsMixin(StoreBase):
    # -- adding -------------------------------------------------------------------------
    def add_refinements(self, critique_id: int, texts: Sequence[str], generator: str,
                        variant: str = "feedback") -> list[Refinement]:
        """Store model refinements of one critique (one transaction)."""
        self.get_critique(critique_id)
        if variant not in VARIANTS:
            raise ValidationError(f"variant: {variant!r} is not one of {', '.join(VARIANTS)}")
        ts = now()
        ids = []
        with self.tx() as c:
            for t in texts:
                cur = c.execute(
                    "INSERT INTO refinements (critique_id, text, generator, variant, created) VALUES (?,?,?,?,?)",
                    (critique_id, t, generator, variant, ts))
                ids.append(cur.lastrowid)
        return [self.get_refinement(i) for i in ids]

    def get_refinement(self, refinement_id: int) -> Refinement:
        row = self.one("SELECT * FROM refinements WHERE id = ?", (refinement_id,))
        if row is None:
            raise NotFound(f"refinement {refinement_id} does not exist")
        return _refinement(row)

    def refinements(self, critique_id: int) -> list[Refinement]:
        rows = self.all("SELECT * FROM refinements WHERE critique_id = ? ORDER BY id", (critique_id,))
        return [_refinement(r) for r in rows]

    # -- scoring and selection ------------------------------------------------------------
    def save_refinement_scores(self, scores: dict[int, dict], selector: str) -> None:
        """refinement id -> {"scores": {template: p}, "ensemble_score": s, "rm_score": r} (any subset).

        `scores` keys are merged into what is stored (InstructRM templates, "embedding", "random").
        """
        with self.tx() as c:
            for rid, s in scores.items():
                sets, params = ["selector = ?"], [selector]
                if "scores" in s:  # merged: one selector's keys do not erase another's
                    sets.append("scores = json_patch(COALESCE(scores, '{}'), ?)")
                    params.append(json.dumps(s["scores"]))
                for col in ("ensemble_score", "rm_score"):
                    if col in s:
                        sets.append(f"{col} = ?")
                        params.append(None if s[col] is None else float(s[col]))
                cur = c.execute(f"UPDATE refinements SET {', '.join(sets)} WHERE id = ?", (*params, rid))
                if cur.rowcount == 0:
                    raise NotFound(f"refinement {rid} does not exist")

    def mark_selected(self, critique_id: int, refinement_id: int) -> Refinement:
        """Make `refinement_id` the one selected refinement of its critique."""
        r = self.get_refinement(refinement_id)
        if r.critique_id != critique_id:
            raise ValidationError(f"refinement {refinement_id} belongs to critique {r.critique_id}, not {critique_id}")
        with self.tx() as c:
            c.execute("UPDATE refinements SET selected = (id = ?) WHERE critique_id = ?", (refinement_id, critique_id))
        return self.get_refinement(refinement_id)

    # -- review -------------------------------------------------------------------------
    def _check_reviewer(self, annotator: Annotator, critique_id: int) -> Critique:
        k = self.get_critique(critique_id)
        if not annotator.is_admin and k.annotator_id != annotator.id:
            raise Forbidden(f"critique {critique_id} was written by another annotator; "
                            "only its author or an admin may review its refinements")
        return k

    def accept_refinement(self, annotator: Annotator, refinement_id: int) -> Refinement:
        """Accept one refinement (the selected one, or another: it becomes the selected one).

        The other refinements of the critique are marked not accepted, reviewed by the same person.
        """
        r = self.get_refinement(refinement_id)
        self._check_reviewer(annotator, r.critique_id)
        if r.variant == "no_feedback":
            raise ValidationError(f"refinement {refinement_id} was sampled without the critique (a baseline for the "
                                  "selectors), so it is no refinement of it: accept one made with the critique, "
                                  "or write your own")
        ts = now()
        with self.tx() as c:
            c.execute(
                "UPDATE refinements SET selected = (id = :r), accepted = (id = :r), reviewed_by = :a,"
                " reviewed_at = :ts WHERE critique_id = :k",
                {"r": refinement_id, "a": annotator.id, "ts": ts, "k": r.critique_id})
        return self.get_refinement(refinement_id)

    def edit_refinement(self, annotator: Annotator, critique_id: int, text: str) -> Refinement:
        """Store a reviewer's own text as an accepted, selected refinement (variant `edit`)."""
        self._check_reviewer(annotator, critique_id)
        text = (text or "").strip()
        if not text:
            raise ValidationError("refinement: the edited text must not be empty")
        ts = now()
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO refinements (critique_id, text, generator, variant, created) VALUES (?,?,?,?,?)",
                (critique_id, text, f"human:{annotator.name}", "edit", ts))
            rid = cur.lastrowid
            c.execute(
                "UPDATE refinements SET selected = (id = :r), accepted = (id = :r), reviewed_by = :a,"
                " reviewed_at = :ts WHERE critique_id = :k",
                {"r": rid, "a": annotator.id, "ts": ts, "k": critique_id})
        return self.get_refinement(rid)

    # -- listing ------------------------------------------------------------------------
    def count_accepted_refinements(self, project: str | int) -> int:
        """How many current critiques of a project have an accepted refinement (what the ILF
        datasets and exports are made of)."""
        p = self.get_project(project)
        return self.scalar(
            "SELECT COUNT(DISTINCT k.id) FROM refinements f JOIN critiques k ON k.id = f.critique_id"
            " JOIN candidates c ON c.id = k.candidate_id JOIN documents d ON d.id = c.document_id"
            " WHERE d.project_id = ? AND k.current = 1 AND f.accepted = 1", (p.id,))

    def critique_items(self, project: str | int, *, annotator: Annotator | None = None,
                       critique_ids: Iterable[int] | None = None) -> list[CritiqueItem]:
        """Current critiques of a project with candidate, document and refinements.

        `annotator`: only the critiques this annotator wrote. `critique_ids`: only these.
        """
        p = self.get_project(project)
        sql = ("SELECT k.*, a.name AS annotator_name FROM critiques k"
               " JOIN candidates c ON c.id = k.candidate_id JOIN documents d ON d.id = c.document_id"
               " JOIN annotators a ON a.id = k.annotator_id WHERE d.project_id = ? AND k.current = 1")
        params: list = [p.id]
        if annotator is not None:
            sql += " AND k.annotator_id = ?"
            params.append(annotator.id)
        wanted = None
        if critique_ids is not None:
            wanted = [int(i) for i in critique_ids]
            sql += f" AND k.id IN ({','.join('?' * len(wanted))})"
            params.extend(wanted)
        rows = self.all(sql + " ORDER BY k.id", tuple(params))
        if wanted is not None:
            missing = set(wanted) - {r["id"] for r in rows}
            if missing:
                raise NotFound(f"critique(s) {sorted(missing)} are not current critiques of project {p.name!r}")
        refs: dict[int, list[Refinement]] = {}
        for r in self.all(
            "SELECT f.* FROM refinements f JOIN critiques k ON k.id = f.critique_id"
            " JOIN candidates c ON c.id = k.candidate_id JOIN documents d ON d.id = c.document_id"
            " WHERE d.project_id = ? AND k.current = 1 ORDER BY f.id", (p.id,)
        ):
            refs.setdefault(r["critique_id"], []).append(_refinement(r))
        docs: dict[int, Document] = {}
        items = []
        for r in rows:
            cand = self.get_candidate(r["candidate_id"])
            if cand.document_id not in docs:
                docs[cand.document_id] = self.get_document(cand.document_id)
            items.append(CritiqueItem(
                critique=Critique.from_row(r), candidate=cand, document=docs[cand.document_id],
                annotator=r["annotator_name"], refinements=tuple(refs.get(r["id"], ()))))
        return items
