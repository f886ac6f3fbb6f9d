"""Blind A/B evaluation rounds: the round rows, and the one transaction that opens a round.

    r = store.create_round("r1", source_project="news", model_a="models/policy", model_b="smollm2",
                           documents=[3, 4, 5])
    store.open_round(r.id, "news-eval-r1", kind, docs, judge)   # the blind project, atomically
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..errors import NotFound, ValidationError
from .annotation import NewDocument
from .base import StoreBase, checked_name, now
from .records import EvalRound

ROUND_STATUSES = ("generating", "open", "closed", "failed")


class RoundsMixin(StoreBase):
    def create_round(self, name: str, *, source_project: str | int, model_a: str, model_b: str,
                     documents: Sequence[int], model_a_id: int | None = None, model_b_id: int | None = None,
                     judge_model_id: int | None = None, config: dict | None = None,
                     created_by: int | None = None) -> EvalRound:
        name = checked_name("round", name)
        if not documents:
            raise ValidationError("documents: a round needs at least one document")
        src = self.get_project(source_project)  # type: ignore[attr-defined]
        with self.tx() as c:
            # a round that failed made nothing (no blind project, no card entry): its name is free again
            c.execute("DELETE FROM eval_rounds WHERE name = ? AND status = 'failed' AND project_id IS NULL", (name,))
            if c.execute("SELECT 1 FROM eval_rounds WHERE name = ?", (name,)).fetchone():
                raise ValidationError(f"round {name!r} already exists; choose another name")
            cur = c.execute(
                "INSERT INTO eval_rounds (name, source_project_id, model_a, model_b, model_a_id, model_b_id,"
                " judge_model_id, documents, config, created_by, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (name, src.id, model_a, model_b, model_a_id, model_b_id, judge_model_id,
                 json.dumps([int(d) for d in documents]), json.dumps(config or {}), created_by, now()))
        return self.get_round(cur.lastrowid)

    def get_round(self, name_or_id: str | int) -> EvalRound:
        col = "id" if isinstance(name_or_id, int) else "name"
        row = self.one(f"SELECT * FROM eval_rounds WHERE {col} = ?", (name_or_id,))
        if row is None:
            raise NotFound(f"evaluation round {name_or_id!r} does not exist")
        return EvalRound.from_row(row)

    def list_rounds(self) -> list[EvalRound]:
        return [EvalRound.from_row(r) for r in self.all("SELECT * FROM eval_rounds ORDER BY id DESC")]

    def round_of_project(self, project_id: int) -> EvalRound | None:
        row = self.one("SELECT * FROM eval_rounds WHERE project_id = ?", (int(project_id),))
        return None if row is None else EvalRound.from_row(row)

    def documents_of_rankings(self, ranking_ids: Sequence[int]) -> set[int]:
        """The documents that these rankings (any version) rank."""
        out: set[int] = set()
        ids = [int(i) for i in ranking_ids]
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            marks = ",".join("?" * len(chunk))
            out |= {r[0] for r in self.all(f"SELECT DISTINCT document_id FROM rankings WHERE id IN ({marks})", chunk)}
        return out

    def update_round(self, round_id: int, **changes) -> EvalRound:
        allowed = {"status", "job_id", "result", "closed"}
        bad = set(changes) - allowed
        if bad:
            raise ValidationError(f"round: cannot change {', '.join(sorted(bad))}")
        if "status" in changes and changes["status"] not in ROUND_STATUSES:
            raise ValidationError(f"round status: {changes['status']!r} is not one of {', '.join(ROUND_STATUSES)}")
        if "result" in changes:
            changes["result"] = json.dumps(changes["result"], default=float)
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self.tx() as c:
            c.execute(f"UPDATE eval_rounds SET {sets} WHERE id = ?", (*changes.values(), int(round_id)))
        return self.get_round(int(round_id))

    def open_round(self, round_id: int, project_name: str, kind: str, instructions: str,
                   docs: Sequence[NewDocument], judge: dict, overlap: int = 1,
                   context_fields: Sequence[str] = ()) -> EvalRound:
        """Make the blind K=2 project with its documents (and the source project's context fields),
        and mark the round open: all or nothing."""
        with self.tx() as c:
            p = self.create_project(project_name, kind=kind, k=2, overlap=overlap,  # type: ignore[attr-defined]
                                    instructions=instructions, allow_ties=True, context_fields=context_fields)
            self.add_documents(p.id, docs)  # type: ignore[attr-defined]
            c.execute("UPDATE eval_rounds SET project_id = ?, status = 'open', judge = ? WHERE id = ?",
                      (p.id, json.dumps(judge), int(round_id)))
        return self.get_round(int(round_id))
