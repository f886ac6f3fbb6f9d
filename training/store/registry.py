"""The model registry (checkpoints and their cards) and the per-token reward cache."""

from __future__ import annotations

import json
from collections.abc import Iterable

from ..errors import NotFound, ValidationError
from .base import StoreBase, now
from .records import ModelRecord, TokenRewards

MODEL_KINDS = ("reward", "policy", "ilf")


class RegistryMixin(StoreBase):
    # -- models -------------------------------------------------------------------------
    def add_model(
        self,
        kind: str,
        path: str,
        *,
        base_model: str | None = None,
        project: str | int | None = None,
        job_id: int | None = None,
        name: str | None = None,
        data_snapshot: dict | None = None,
        metrics: dict | None = None,
        card: dict | None = None,
    ) -> ModelRecord:
        """Register a saved checkpoint. `data_snapshot`: what it was trained on (ids, annotators, sha256)."""
        if kind not in MODEL_KINDS:
            raise ValidationError(f"model kind: {kind!r} is not one of {', '.join(MODEL_KINDS)}")
        if not path:
            raise ValidationError("model path: must not be empty")
        project_id = None if project is None else self.get_project(project).id  # type: ignore[attr-defined]
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO models (kind, name, path, base_model, project_id, job_id, data_snapshot,"
                " metrics, card, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (kind, name, str(path), base_model, project_id, job_id,
                 json.dumps(data_snapshot or {}), json.dumps(metrics or {}, default=float),
                 json.dumps(card or {}, default=str), now()),
            )
        return self.get_model(cur.lastrowid)

    def get_model(self, model_id: int) -> ModelRecord:
        row = self.one("SELECT * FROM models WHERE id = ?", (int(model_id),))
        if row is None:
            raise NotFound(f"model {model_id} does not exist (list them with the Models page)")
        return ModelRecord.from_row(row)

    def find_model_by_path(self, path: str) -> ModelRecord | None:
        """The newest registered model saved at `path`, or None."""
        row = self.one("SELECT * FROM models WHERE path = ? ORDER BY id DESC LIMIT 1", (str(path),))
        return None if row is None else ModelRecord.from_row(row)

    def list_models(self, project: str | int | None = None, kind: str | None = None) -> list[ModelRecord]:
        """Registered models, newest first; optionally of one project and/or one kind."""
        sql, params = "SELECT * FROM models WHERE 1 = 1", []
        if project is not None:
            sql += " AND project_id = ?"
            params.append(self.get_project(project).id)  # type: ignore[attr-defined]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return [ModelRecord.from_row(r) for r in self.all(sql + " ORDER BY id DESC", tuple(params))]

    def update_model_metrics(self, model_id: int, metrics: dict) -> ModelRecord:
        """Merge `metrics` into a model's metrics (e.g. an evaluation run after training)."""
        m = self.get_model(model_id)
        with self.tx() as c:
            c.execute("UPDATE models SET metrics = ? WHERE id = ?",
                      (json.dumps({**m.metrics, **metrics}, default=float), m.id))
        return self.get_model(m.id)

    # -- token rewards cache ------------------------------------------------------------
    def put_token_rewards(
        self, model_id: int, rows: Iterable[tuple[int, list[str], list[float], float | None]]
    ) -> int:
        """Cache (candidate_id, tokens, rewards, score) rows for a model in one transaction
        (replacing earlier values); return how many were written."""
        self.get_model(model_id)
        ts = now()
        n = 0
        with self.tx() as c:
            for cand_id, tokens, rewards, score in rows:
                if len(tokens) != len(rewards):
                    raise ValidationError(
                        f"token rewards for candidate {cand_id}: {len(tokens)} tokens but {len(rewards)} rewards")
                c.execute(
                    "INSERT INTO token_rewards (candidate_id, model_id, tokens, rewards, score, created)"
                    " VALUES (?,?,?,?,?,?) ON CONFLICT (candidate_id, model_id) DO UPDATE SET"
                    " tokens = excluded.tokens, rewards = excluded.rewards, score = excluded.score,"
                    " created = excluded.created",
                    (int(cand_id), int(model_id), json.dumps(list(tokens), ensure_ascii=False),
                     json.dumps([float(r) for r in rewards]), None if score is None else float(score), ts),
                )
                n += 1
        return n

    def token_rewards(self, model_id: int, candidate_ids: Iterable[int]) -> dict[int, TokenRewards]:
        """candidate id -> cached TokenRewards for this model (candidates not scored are absent)."""
        ids = [int(i) for i in candidate_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.all(
            f"SELECT * FROM token_rewards WHERE model_id = ? AND candidate_id IN ({marks})", (int(model_id), *ids))
        return {r["candidate_id"]: TokenRewards.from_row(r) for r in rows}

    def count_token_rewards(self, model_id: int) -> int:
        return self.scalar("SELECT COUNT(*) FROM token_rewards WHERE model_id = ?", (int(model_id),))

    def scored_models(self, project: str | int) -> list[ModelRecord]:
        """Reward models with cached token rewards for candidates of this project, newest first."""
        p = self.get_project(project)  # type: ignore[attr-defined]
        rows = self.all(
            "SELECT * FROM models m WHERE m.kind = 'reward' AND EXISTS (SELECT 1 FROM token_rewards t"
            " JOIN candidates c ON c.id = t.candidate_id JOIN documents d ON d.id = c.document_id"
            " WHERE t.model_id = m.id AND d.project_id = ?) ORDER BY m.id DESC", (p.id,))
        return [ModelRecord.from_row(r) for r in rows]
