"""training.store: migrations, connection settings, transactions, tokens, rankings, queue, critiques."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from training.errors import AuthError, NotFound, ValidationError
from training.store import SCHEMA_VERSION, NewDocument, Store
from training.store.migrations import migrations


def ids(doc):
    return [c.id for c in doc.candidates]


# -- schema and connection ------------------------------------------------------------------
def test_old_database_is_migrated_and_keeps_its_rows(db_path):
    db = Database(db_path)
    migrations.apply(db, stop_before="m002_learning")
    db.execute("PRAGMA user_version = 1")
    assert "jobs" not in db.table_names() and "documents" in db.table_names()
    db["projects"].insert({"name": "old", "kind": "summarize", "k": 2, "overlap": 1, "created": "then"})
    db["documents"].insert({"project_id": 1, "ext_id": "x", "text": "kept", "created": "then"})
    db.conn.commit()
    db.close()

    with Store(db_path) as s:
        assert s.schema_version() == SCHEMA_VERSION >= 5
        tables = set(s.db.table_names())
        assert {"refinements", "jobs", "models", "token_rewards", "eval_rounds"} <= tables
        assert "active_reward_model" in s.db["projects"].columns_dict
        p = s.get_project("old")
        assert p.active_reward_model is None and p.k == 2
        assert [d.text for d in s.documents("old", with_candidates=False)] == ["kept"]
    with Store(db_path) as s:  # opening again changes nothing
        assert s.schema_version() == SCHEMA_VERSION and s.count_documents("old") == 1


def test_wal_and_foreign_keys(store):
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.scalar("PRAGMA foreign_keys") == 1
    with pytest.raises(sqlite3.IntegrityError), store.tx() as c:
        c.execute("INSERT INTO candidates (document_id, position, text) VALUES (999, 0, 'orphan')")
    assert store.db["candidates"].count == 0


def test_failed_multi_row_write_rolls_back_whole(store, project):
    before = {t: store.db[t].count for t in ("documents", "candidates")}
    batch = [NewDocument("new1", "t", ["a", "b", "c"]), NewDocument("new2", "t", ["a", "b", "c"]),
             NewDocument("d1", "duplicate id", ["a", "b", "c"])]
    with pytest.raises(ValidationError, match="'d1' already exists"):
        store.add_documents("p", batch)
    assert {t: store.db[t].count for t in before} == before
    with pytest.raises(ValidationError, match="at least 2"):
        store.add_documents("p", [NewDocument("new1", "t", ["a", "b", "c"]), NewDocument("one", "t", ["a"])])
    assert {t: store.db[t].count for t in before} == before
    # a nested write joins the outer transaction and goes with it
    with pytest.raises(RuntimeError), store.tx():
        store.add_documents("p", [NewDocument("new1", "t", ["a", "b", "c"])])
        raise RuntimeError("boom")
    assert {t: store.db[t].count for t in before} == before


def test_documents_helpers(store, project):
    assert store.add_documents("p", [NewDocument("solo", "t", ["only"])], min_candidates=1) == 1
    assert [c.text for c in store.get_document_by_ext_id("p", "solo").candidates] == ["only"]
    with pytest.raises(NotFound):
        store.get_document_by_ext_id("p", "nope")
    assert store.existing_ext_ids("p", ["d0", "zz", "d2"]) == {"d0", "d2"}
    streamed = list(store.iter_documents("p", batch_size=2))
    assert [d.ext_id for d in streamed] == ["d0", "d1", "d2", "solo"]
    assert [[c.text for c in d.candidates] for d in streamed] == [
        [c.text for c in d.candidates] for d in store.documents("p")]


# -- tokens --------------------------------------------------------------------------------------
def test_tokens(store, db_path):
    ann, token = store.add_annotator("ann")
    assert store.authenticate(token) == ann
    prefix, secret = token.split("_", 2)[1:]
    with pytest.raises(AuthError, match="wrong token"):
        store.authenticate(f"tw_{prefix}_{secret}x")
    with pytest.raises(AuthError, match="wrong token"):
        store.authenticate(f"tw_000000000000_{secret}")
    for bad in ("", "hello", "tw_only", "xx_a_b"):
        with pytest.raises(AuthError):
            store.authenticate(bad)
    row = dict(store.one("SELECT * FROM annotators WHERE id = ?", (ann.id,)))
    assert secret not in " ".join(str(v) for v in row.values())
    assert row["token_prefix"] == prefix and len(row["token_hash"]) == 64
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert secret.encode() not in Path(db_path).read_bytes()
    store.revoke_annotator("ann")
    with pytest.raises(AuthError, match="revoked"):
        store.authenticate(token)
    with pytest.raises(AuthError, match="revoked"):
        store.active_annotator(ann.id)
    with pytest.raises(ValidationError, match="already exists"):
        store.add_annotator("ann")


# -- rankings ----------------------------------------------------------------------------------
def test_ranking_validation(store, project):
    ann, _ = store.add_annotator("ann")
    doc = store.get_document_by_ext_id("p", "d0")
    a, b, c = ids(doc)
    other = ids(store.get_document_by_ext_id("p", "d1"))[0]
    with pytest.raises(ValidationError, match="have no rank"):
        store.save_ranking(ann, doc.id, {a: 1, b: 2})
    with pytest.raises(ValidationError, match="not in document"):
        store.save_ranking(ann, doc.id, {a: 1, b: 2, c: 3, other: 4})
    for bad in (0, 4, 1.5, True):
        with pytest.raises(ValidationError, match="whole numbers 1..3"):
            store.save_ranking(ann, doc.id, {a: 1, b: 2, c: bad})
    with pytest.raises(ValidationError, match="does not allow ties"):
        store.save_ranking(ann, doc.id, {a: 1, b: 1, c: 2})
    assert store.my_ranking(ann, doc.id) is None
    store.update_project("p", allow_ties=True)
    r = store.save_ranking(ann, doc.id, {a: 2, b: 1, c: 1})
    assert r.order == [[b, c], [a]] and r.ranks == {a: 2, b: 1, c: 1}


def test_revision_keeps_old_versions(store, project):
    ann, _ = store.add_annotator("ann")
    doc = store.get_document_by_ext_id("p", "d0")
    a, b, c = ids(doc)
    first = store.save_ranking(ann, doc.id, {a: 1, b: 2, c: 3}, seconds=3.0)
    second = store.save_ranking(ann, doc.id, {a: 3, b: 2, c: 1}, seconds=1.0)
    history = store.ranking_history(ann, doc.id)
    assert [(r.version, r.current, r.order) for r in history] == [
        (1, False, [[a], [b], [c]]), (2, True, [[c], [b], [a]])]
    assert (first.id, second.id) == (history[0].id, history[1].id)
    assert store.get_document(doc.id).n_rankings == 1  # a revision is not a second annotator
    assert [r.id for r in store.rankings("p")] == [second.id]
    assert len(store.rankings("p", current_only=False)) == 2
    assert [r.id for r in store.rankings_of([doc.id])[doc.id]] == [second.id]


# -- the queue ---------------------------------------------------------------------------------
def test_queue_order(store, project):
    """Documents closest to the overlap first, done ones never again, skipped ones last."""
    alice, _ = store.add_annotator("alice")
    bob, _ = store.add_annotator("bob")
    d0, d1, d2 = (store.get_document_by_ext_id("p", f"d{i}") for i in range(3))

    def rank(who, doc):
        x, y, z = ids(doc)
        store.save_ranking(who, doc.id, {x: 1, y: 2, z: 3})

    assert store.next_document(bob, "p").id == d0.id  # nothing ranked yet: id order
    rank(alice, d1)
    assert store.next_document(bob, "p").id == d1.id  # d1 is one ranking from its overlap of 2
    store.skip(bob, d1.id)
    assert store.next_document(bob, "p").id == d0.id
    rank(bob, d0)
    assert store.next_document(bob, "p").id == d2.id
    rank(bob, d2)
    assert store.next_document(bob, "p").id == d1.id  # the skipped one comes back last
    rank(bob, d1)
    assert store.next_document(bob, "p") is None  # d1 reached its overlap; bob did d0, d2
    assert store.queue_counts(bob, "p") == {"done": 3, "assigned": 3, "left": 0}
    seen = []
    while (doc := store.next_document(alice, "p")) is not None:
        seen.append(doc.id)
        rank(alice, doc)
    assert seen == [d0.id, d2.id]  # alice's own d1 never comes back
    assert store.progress("p").complete == 3


# -- critiques ---------------------------------------------------------------------------------
def test_critiques(store, project):
    ann, _ = store.add_annotator("ann")
    cand = store.get_document_by_ext_id("p", "d0").candidates[1]
    for empty in ("", "   \n"):
        with pytest.raises(ValidationError, match="must not be empty"):
            store.save_critique(ann, cand.id, empty)
    for span in ((3, 3), (5, 2), (-1, 2), (0, len(cand.text) + 1)):
        with pytest.raises(ValidationError, match="span"):
            store.save_critique(ann, cand.id, "Too long.", span=span)
    assert store.critiques("p") == []
    first = store.save_critique(ann, cand.id, "  Too long.  ", span=(0, 4))
    assert (first.text, first.span_start, first.span_end, first.version) == ("Too long.", 0, 4, 1)
    second = store.save_critique(ann, cand.id, "Repeats the same words.")
    assert (second.version, second.current, second.span_start) == (2, True, None)
    assert [k.id for k in store.critiques("p")] == [second.id]
    assert [(k.version, k.current) for k in store.critiques("p", current_only=False)] == [(1, False), (2, True)]
    assert store.my_critiques(ann, cand.document_id) == {cand.id: second}
    assert [k.id for k in store.critiques_of([cand.document_id])[cand.document_id]] == [second.id]


# -- counters (O(1) queue counts and progress) -------------------------------------------------
def scanned_queue_counts(store, annotator, project) -> dict[str, int]:
    """The queue counts computed by scanning (how queue_counts worked before the counters)."""
    p = store.get_project(project)
    done = store.scalar("SELECT COUNT(*) FROM rankings r JOIN documents d ON d.id = r.document_id"
                        " WHERE r.annotator_id = ? AND r.current = 1 AND d.project_id = ?", (annotator.id, p.id))
    left = sum(1 for d in store.documents(p.id, with_candidates=False)
               if d.n_rankings < p.overlap and store.my_ranking(annotator, d.id) is None)
    return {"done": done, "assigned": done + left, "left": left}


def scanned_next_document(store, annotator, project) -> int | None:
    """The queue rule by scanning: open, not ranked and not skipped by this annotator, most
    rankings first, then id; then the skipped ones, oldest skip first."""
    p = store.get_project(project)
    docs = [d for d in store.documents(p.id, with_candidates=False)
            if d.n_rankings < p.overlap and store.my_ranking(annotator, d.id) is None]
    skipped = {r["document_id"]: r["created"] for r in store.all(
        "SELECT document_id, created FROM skips WHERE annotator_id = ?", (annotator.id,))}
    fresh = sorted((d for d in docs if d.id not in skipped), key=lambda d: (-d.n_rankings, d.id))
    later = sorted((d for d in docs if d.id in skipped), key=lambda d: (skipped[d.id], d.id))
    first = (fresh or later or [None])[0]
    return None if first is None else first.id


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counters_equal_a_recount_after_random_writes(store, seed):
    """Property-style: random saves, revisions, critiques, skips, imports and overlap changes;
    after every step the counters equal a recount from scratch and the scanned queue counts."""
    import random

    rng = random.Random(seed)
    store.create_project("a", k=3, overlap=2)
    store.create_project("b", k=3, overlap=1, allow_ties=True)
    people = [store.add_annotator(f"ann{i}")[0] for i in range(4)]
    n_docs = {"a": 0, "b": 0}

    def import_docs(name: str) -> None:
        start = n_docs[name]
        n = rng.randint(1, 4)
        store.add_documents(name, [NewDocument(f"{name}{i}", f"text {i}", [f"x{i}", f"y{i}", f"z{i}"])
                                   for i in range(start, start + n)])
        n_docs[name] += n

    import_docs("a")
    import_docs("b")
    for _step in range(80):
        name = rng.choice("ab")
        docs = store.documents(name)
        who = rng.choice(people)
        doc = rng.choice(docs)
        op = rng.choices(["rank", "annotate", "critique", "skip", "import", "overlap"], [5, 4, 2, 2, 1, 1])[0]
        ranks = dict(zip(ids(doc), rng.sample([1, 2, 3], 3)))
        if op == "rank":
            store.save_ranking(who, doc.id, ranks, seconds=rng.random() * 10)
        elif op == "annotate":
            cand = rng.choice(doc.candidates)
            store.save_annotation(who, doc.id, ranks, {cand.id: rng.choice(["Too long.", "Wrong date."])})
        elif op == "critique":
            store.save_critique(who, rng.choice(doc.candidates).id, rng.choice(["Vague.", "Off topic."]))
        elif op == "skip":
            store.skip(who, doc.id)
        elif op == "import":
            import_docs(name)
        else:
            store.update_project(name, overlap=rng.randint(1, 3))
        assert store.check_counters() == [], (_step, op)
        for p in ("a", "b"):
            assert store.queue_counts(who, p) == scanned_queue_counts(store, who, p)
            nxt = store.next_document(who, p)
            assert (nxt and nxt.id) == scanned_next_document(store, who, p), (_step, op, p)
    totals = store.totals("a")
    assert totals["rankings"] == len(store.rankings("a")) and totals["critiques"] == len(store.critiques("a"))
    assert totals["documents"] == len(store.documents("a"))


def test_check_counters_reports_and_fixes(store, project):
    ann, _ = store.add_annotator("ann")
    doc = store.get_document_by_ext_id("p", "d0")
    store.save_ranking(ann, doc.id, dict(zip(ids(doc), [1, 2, 3])))
    assert store.check_counters() == []
    with store.tx() as c:
        c.execute("UPDATE project_counts SET rankings = 7")
        c.execute("UPDATE annotator_counts SET rankings_open = 0")
        c.execute("UPDATE documents SET n_rankings = 5 WHERE id = ?", (doc.id,))
    found = store.check_counters()
    assert f"document {doc.id}: n_rankings is 5, counted 1" in found
    assert f"project {project.id}: rankings is 7, counted 1" in found
    assert f"project {project.id}, annotator {ann.id}: rankings_open is 0, counted 1" in found
    assert store.check_counters(fix=True) == found
    assert store.check_counters() == []
    assert store.queue_counts(ann, "p") == scanned_queue_counts(store, ann, "p")


def test_migration_backfills_counters(db_path):
    """A database from before the counters (schema 2) with rankings gets exact counters on open."""
    db = Database(db_path)
    migrations.apply(db, stop_before="m003_counters_and_imports")
    db.execute("PRAGMA user_version = 2")
    db["projects"].insert({"name": "old", "kind": "summarize", "k": 2, "overlap": 1, "created": "then"})
    db["annotators"].insert({"name": "ann", "role": "annotator", "token_prefix": "x", "token_hash": "h",
                             "token_salt": "s", "created": "then"})
    for i in range(3):
        db["documents"].insert({"project_id": 1, "ext_id": f"d{i}", "text": "t", "created": "then",
                                "n_rankings": int(i == 0)})
        db["candidates"].insert_all([{"document_id": i + 1, "position": j, "text": f"c{j}"} for j in range(2)])
    db["rankings"].insert({"document_id": 1, "annotator_id": 1, "order_json": "[[1], [2]]", "created": "then"})
    db["critiques"].insert({"candidate_id": 1, "annotator_id": 1, "text": "Short.", "created": "then"})
    db.conn.commit()
    db.close()
    with Store(db_path) as s:
        assert s.schema_version() == SCHEMA_VERSION and s.check_counters() == []
        assert s.totals("old") == {"documents": 3, "complete": 1, "rankings": 1, "critiques": 1}
        ann = s.get_annotator("ann")
        assert s.queue_counts(ann, "old") == {"done": 1, "assigned": 3, "left": 2}


def test_doctor_command(store, project, db_path, capsys):
    from training.cli import main

    assert main(["doctor", "--db", db_path]) == 0
    assert "all equal a recount" in capsys.readouterr().out
    with store.tx() as c:
        c.execute("UPDATE project_counts SET documents = 9")
    assert main(["doctor", "--db", db_path]) == 1
    assert f"project {project.id}: documents is 9, counted 3" in capsys.readouterr().out
    assert main(["doctor", "--db", db_path, "--fix"]) == 0
    assert main(["doctor", "--db", db_path]) == 0
