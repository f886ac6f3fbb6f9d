"""The schema, as an ordered list of sqlite-utils migrations.

Never edit an applied migration: add a new one at the end. `SCHEMA_VERSION` is the number of
migrations and is written to `PRAGMA user_version` once they are applied, so a database made by
an older Tokenwise is brought up to date the first time a newer one opens it.
"""

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("tokenwise")


@migrations()
def m001_annotation(db: Database) -> None:
    """Projects, documents, candidates, annotators, rankings, critiques, skips."""
    db["projects"].create(
        {
            "id": int,
            "name": str,
            "kind": str,
            "instructions": str,
            "k": int,
            "overlap": int,
            "allow_ties": int,
            "require_critique_lowest": int,
            "show_rewards": int,
            "created": str,
        },
        pk="id",
        not_null={"name", "kind", "k", "overlap"},
        defaults={"instructions": "", "allow_ties": 0, "require_critique_lowest": 0, "show_rewards": 0},
    )
    db["projects"].create_index(["name"], unique=True)
    db["documents"].create(
        {
            "id": int,
            "project_id": int,
            "ext_id": str,
            "title": str,
            "text": str,
            "meta": str,
            "reference": str,
            "n_rankings": int,
            "created": str,
        },
        pk="id",
        foreign_keys=[("project_id", "projects", "id")],
        not_null={"project_id", "ext_id", "text"},
        defaults={"title": "", "meta": "{}", "n_rankings": 0},
    )
    db["documents"].create_index(["project_id", "ext_id"], unique=True)
    db["documents"].create_index(["project_id", "n_rankings", "id"])
    db["candidates"].create(
        {
            "id": int,
            "document_id": int,
            "position": int,
            "text": str,
            "source": str,
            "gen_params": str,
            "created": str,
        },
        pk="id",
        foreign_keys=[("document_id", "documents", "id")],
        not_null={"document_id", "text"},
        defaults={"source": "import", "gen_params": "{}"},
    )
    db["candidates"].create_index(["document_id", "position"])
    db["annotators"].create(
        {
            "id": int,
            "name": str,
            "role": str,
            "token_prefix": str,
            "token_hash": str,
            "token_salt": str,
            "active": int,
            "created": str,
            "revoked": str,
        },
        pk="id",
        not_null={"name", "role", "token_prefix", "token_hash", "token_salt"},
        defaults={"active": 1},
    )
    db["annotators"].create_index(["name"], unique=True)
    db["annotators"].create_index(["token_prefix"], unique=True)
    db["rankings"].create(
        {
            "id": int,
            "document_id": int,
            "annotator_id": int,
            "order_json": str,
            "seconds": float,
            "version": int,
            "current": int,
            "created": str,
        },
        pk="id",
        foreign_keys=[("document_id", "documents", "id"), ("annotator_id", "annotators", "id")],
        not_null={"document_id", "annotator_id", "order_json"},
        defaults={"version": 1, "current": 1},
    )
    db["critiques"].create(
        {
            "id": int,
            "candidate_id": int,
            "annotator_id": int,
            "text": str,
            "span_start": int,
            "span_end": int,
            "version": int,
            "current": int,
            "created": str,
        },
        pk="id",
        foreign_keys=[("candidate_id", "candidates", "id"), ("annotator_id", "annotators", "id")],
        not_null={"candidate_id", "annotator_id", "text"},
        defaults={"version": 1, "current": 1},
    )
    db["skips"].create(
        {"annotator_id": int, "document_id": int, "created": str},
        pk=("annotator_id", "document_id"),
        foreign_keys=[("document_id", "documents", "id"), ("annotator_id", "annotators", "id")],
    )
    # One current entry per (document, annotator) and per (candidate, annotator); old versions stay.
    db.execute(
        "CREATE UNIQUE INDEX idx_rankings_current ON rankings(document_id, annotator_id) WHERE current = 1"
    )
    db.execute("CREATE INDEX idx_rankings_annotator ON rankings(annotator_id, current)")
    db.execute(
        "CREATE UNIQUE INDEX idx_critiques_current ON critiques(candidate_id, annotator_id) WHERE current = 1"
    )
    db.execute("CREATE INDEX idx_critiques_annotator ON critiques(annotator_id, current)")


@migrations()
def m002_learning(db: Database) -> None:
    """Refinements, jobs, the model registry, cached token rewards; active models per project."""
    db["refinements"].create(
        {
            "id": int,
            "critique_id": int,
            "text": str,
            "generator": str,
            "variant": str,  # feedback | no_feedback | human | edit
            "scores": str,  # JSON: {template_name: score}
            "ensemble_score": float,
            "rm_score": float,
            "selector": str,
            "selected": int,
            "accepted": int,  # NULL unreviewed, 1 accepted, 0 rejected
            "reviewed_by": int,
            "reviewed_at": str,
            "created": str,
        },
        pk="id",
        foreign_keys=[("critique_id", "critiques", "id"), ("reviewed_by", "annotators", "id")],
        not_null={"critique_id", "text"},
        defaults={"variant": "feedback", "scores": "{}", "selected": 0},
    )
    db["refinements"].create_index(["critique_id"])
    db["jobs"].create(
        {
            "id": int,
            "kind": str,
            "project_id": int,
            "config": str,
            "status": str,
            "step": int,
            "total": int,
            "metrics": str,  # JSON list of {step, name: value, ...}
            "log": str,
            "error": str,
            "pid": int,
            "worker": str,
            "heartbeat": str,
            "cancel_requested": int,
            "result": str,  # JSON: e.g. {"model_id": 3}
            "created_by": int,
            "created": str,
            "started": str,
            "finished": str,
        },
        pk="id",
        foreign_keys=[("project_id", "projects", "id"), ("created_by", "annotators", "id")],
        not_null={"kind", "config", "status"},
        defaults={"status": "queued", "step": 0, "total": 0, "metrics": "[]", "log": "", "cancel_requested": 0},
    )
    db["jobs"].create_index(["status", "id"])
    db["models"].create(
        {
            "id": int,
            "kind": str,  # reward | policy | ilf
            "name": str,
            "path": str,
            "base_model": str,
            "project_id": int,
            "job_id": int,
            "data_snapshot": str,
            "metrics": str,
            "card": str,
            "created": str,
        },
        pk="id",
        foreign_keys=[("project_id", "projects", "id"), ("job_id", "jobs", "id")],
        not_null={"kind", "path"},
        defaults={"data_snapshot": "{}", "metrics": "{}", "card": "{}"},
    )
    db["token_rewards"].create(
        {
            "id": int,
            "candidate_id": int,
            "model_id": int,
            "tokens": str,
            "rewards": str,
            "score": float,
            "created": str,
        },
        pk="id",
        foreign_keys=[("candidate_id", "candidates", "id"), ("model_id", "models", "id")],
        not_null={"candidate_id", "model_id", "tokens", "rewards"},
    )
    db["token_rewards"].create_index(["candidate_id", "model_id"], unique=True)
    db["projects"].add_column("active_reward_model", int)
    db["projects"].add_column("active_policy_model", int)
    db["projects"].add_column("templates", str)  # JSON: ILF prompt templates; NULL = data/ilf_templates.json


@migrations()
def m003_counters_and_imports(db: Database) -> None:
    """Counters for O(1) queue counts and progress (backfilled here; see store/counters.py), and
    imports that write in batches into a hidden staging project until their final flip
    (store/imports.py). Annotators of role `source` (what an import credits) need no change."""
    from .counters import write_counts

    db["projects"].add_column("staging_for", int)  # NULL, or the project a staging import goes into
    db.execute(
        "CREATE TABLE project_counts (project_id INTEGER PRIMARY KEY REFERENCES projects(id),"
        " documents INTEGER NOT NULL DEFAULT 0, open INTEGER NOT NULL DEFAULT 0,"
        " untouched INTEGER NOT NULL DEFAULT 0,"
        " rankings INTEGER NOT NULL DEFAULT 0, critiques INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute(
        "CREATE TABLE annotator_counts (project_id INTEGER NOT NULL REFERENCES projects(id),"
        " annotator_id INTEGER NOT NULL REFERENCES annotators(id), rankings INTEGER NOT NULL DEFAULT 0,"
        " rankings_open INTEGER NOT NULL DEFAULT 0, critiques INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (project_id, annotator_id)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE imports (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id),"
        " staging_id INTEGER REFERENCES projects(id), path TEXT, pid INTEGER, host TEXT,"
        " started TEXT, heartbeat TEXT)"
    )
    write_counts(db.conn)


@migrations()
def m004_eval_rounds(db: Database) -> None:
    """Blind A/B evaluation rounds: two models' outputs on held-out documents, ranked by people
    in a K=2 project of their own (training/evaluation/rounds.py)."""
    db.execute(
        "CREATE TABLE eval_rounds (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " source_project_id INTEGER NOT NULL REFERENCES projects(id),"
        " project_id INTEGER REFERENCES projects(id),"  # the blind project, made once outputs exist
        " model_a TEXT NOT NULL, model_b TEXT NOT NULL,"  # what was loaded: a path or a name
        " model_a_id INTEGER REFERENCES models(id), model_b_id INTEGER REFERENCES models(id),"
        " judge_model_id INTEGER REFERENCES models(id), job_id INTEGER REFERENCES jobs(id),"
        " status TEXT NOT NULL DEFAULT 'generating',"  # generating | open | closed | failed
        " documents TEXT NOT NULL DEFAULT '[]', config TEXT NOT NULL DEFAULT '{}',"
        " judge TEXT NOT NULL DEFAULT '{}', result TEXT NOT NULL DEFAULT '{}',"
        " created_by INTEGER REFERENCES annotators(id), created TEXT NOT NULL, closed TEXT)"
    )


@migrations()
def m005_search(db: Database) -> None:
    """Full-text search over documents (SQLite FTS5), filled incrementally by `sync_search_index`
    up to `search_state.upto`; a deleted document leaves the index at once and lowers the mark."""
    db.execute("CREATE VIRTUAL TABLE documents_fts USING fts5(title, text, tokenize = 'unicode61 remove_diacritics 2')")
    db.execute("CREATE TABLE search_state (upto INTEGER NOT NULL)")
    db.execute("INSERT INTO search_state (upto) VALUES (0)")
    db.execute(
        "CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN"
        " DELETE FROM documents_fts WHERE rowid = OLD.id;"
        " UPDATE search_state SET upto = MIN(upto, OLD.id - 1);"
        " END"
    )


@migrations()
def m006_import_sources(db: Database) -> None:
    """The source annotators an import made for the raters named in its file (deleted with the
    import if it is refused or its process dies)."""
    db.execute("CREATE TABLE import_sources (import_id INTEGER NOT NULL, annotator_id INTEGER NOT NULL,"
               " PRIMARY KEY (import_id, annotator_id)) WITHOUT ROWID")


@migrations()
def m007_project_moves(db: Database) -> None:
    """Where a project went when an import's flip gave it a new id (store/imports.py `_take_over`):
    whoever still holds the old id (a running job, a page) finds the project by it."""
    db.execute("CREATE TABLE project_moves (old_id INTEGER PRIMARY KEY, new_id INTEGER NOT NULL)")


@migrations()
def m008_context_fields(db: Database) -> None:
    """The document fields (keys of its meta) annotators see under its text: passages, a source
    article, the conversation before a reply (a JSON list of names; [] = none)."""
    db["projects"].add_column("context_fields", str, not_null_default="[]")


SCHEMA_VERSION = len(migrations._migrations)
