"""20 annotators in 20 processes save rankings, critiques and revisions into one database at once.

Afterwards nothing is lost (every reported save is a row), no process saw an exception, and the
per-document n_rankings and every queue counter match a recount. An import lets saves land
between its batches.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import time
import traceback
import types

from training.store import NewDocument, Store

N_PROCS = 20
SECONDS = 3.0
MIN_SAVES = 4  # each process saves at least this many, however slow a loaded machine makes it


def annotate_for_a_while(db_path: str, annotator_id: int, ready, start, results, seconds: float) -> None:
    """One annotator's session: take the next document, rank it, critique the worst, sometimes revise."""
    saved = revised = critiques = 0
    try:
        s = Store(db_path)
        me = s.get_annotator(annotator_id)
        ready.put(annotator_id)
        start.wait(timeout=500)
        deadline = time.monotonic() + seconds
        done: list[int] = []
        while time.monotonic() < deadline or saved < MIN_SAVES:
            doc = s.next_document(me, "busy")
            if doc is None:
                break
            ids = [c.id for c in doc.candidates]
            ids = ids[annotator_id % len(ids):] + ids[:annotator_id % len(ids)]  # each annotator differs
            ranks = {cid: i + 1 for i, cid in enumerate(ids)}
            s.save_annotation(me, doc.id, ranks, {ids[-1]: f"annotator {annotator_id}: worst of {doc.ext_id}"},
                              seconds=1.0)
            saved += 1
            critiques += 1
            done.append(doc.id)
            if len(done) % 3 == 0:  # revise an earlier entry: a new version, the old kept
                old = done[len(done) // 2]
                r = s.my_ranking(me, old)
                flipped = {cid: len(r.ranks) + 1 - rank for cid, rank in r.ranks.items()}
                s.save_ranking(me, old, flipped, seconds=2.0)
                revised += 1
        s.close()
        results.put(("ok", annotator_id, saved, revised, critiques))
    except Exception:  # noqa: BLE001  (reported to the parent, which fails the test with it)
        results.put(("error", annotator_id, traceback.format_exc()))


def _collect(q, procs, n: int, limit: float = 500) -> list:
    """Up to n items from q; stops early when every process has exited (a crash must not hang)."""
    out, deadline = [], time.monotonic() + limit
    while len(out) < n and time.monotonic() < deadline:
        try:
            out.append(q.get(timeout=2))
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and q.empty():
                break
    return out


def test_twenty_processes_lose_nothing(db_path, monkeypatch):
    # AppTest (run earlier in this pytest process) installs its page script as __main__; spawn
    # would re-run that script in every child. Give the children a plain __main__ instead.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    with Store(db_path) as s:
        s.create_project("busy", kind="summarize", k=3, overlap=N_PROCS)
        s.add_documents("busy", [NewDocument(f"d{i}", f"text {i}", [f"a{i}", f"b{i}", f"c{i}"])
                                 for i in range(100)])
        ids = [s.add_annotator(f"a{i}")[0].id for i in range(N_PROCS)]

    ctx = mp.get_context("spawn")
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=annotate_for_a_while, args=(db_path, a, ready, start, results, SECONDS))
             for a in ids]
    for p in procs:
        p.start()
    _collect(ready, procs, N_PROCS)  # every process has imported and opened the database ...
    start.set()  # ... then all write at the same time
    reports = _collect(results, procs, N_PROCS)
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():  # pragma: no cover
            p.kill()

    errors = [r for r in reports if r[0] == "error"]
    assert not errors, "\n".join(r[2] for r in errors)
    assert len(reports) == N_PROCS, f"only {len(reports)} of {N_PROCS} processes reported"
    assert [p.exitcode for p in procs] == [0] * N_PROCS
    saved = sum(r[2] for r in reports)
    revised = sum(r[3] for r in reports)
    critiques = sum(r[4] for r in reports)
    assert all(r[2] >= MIN_SAVES for r in reports)

    with Store(db_path) as s:
        assert s.scalar("SELECT COUNT(*) FROM rankings") == saved + revised
        assert s.scalar("SELECT COUNT(*) FROM rankings WHERE current = 1") == saved
        assert s.scalar("SELECT COUNT(*) FROM rankings WHERE version = 2") == revised
        assert s.scalar("SELECT COUNT(*) FROM critiques") == critiques
        for aid, n_saved in ((r[1], r[2]) for r in reports):
            assert s.scalar("SELECT COUNT(*) FROM rankings WHERE annotator_id = ? AND current = 1", (aid,)) == n_saved
        # the counters the queue relies on agree with the table
        mismatched = s.all(
            "SELECT d.id, d.n_rankings, (SELECT COUNT(*) FROM rankings r WHERE r.document_id = d.id"
            " AND r.current = 1) AS n FROM documents d WHERE d.n_rankings != n")
        assert [tuple(r) for r in mismatched] == []
        assert s.check_counters() == []  # every queue counter and total equals a recount
        # never two current rankings by one annotator of one document
        assert s.scalar("SELECT COUNT(*) FROM (SELECT 1 FROM rankings WHERE current = 1"
                        " GROUP BY document_id, annotator_id HAVING COUNT(*) > 1)") == 0
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    print(f"\n{N_PROCS} processes, {SECONDS:.0f} s: {saved} rankings, {revised} revisions, {critiques} critiques")


def test_saves_land_between_an_imports_batches(store, tmp_path, monkeypatch):
    """An import holds the write lock only while it writes one batch: between batches another
    connection that will not wait at all (1 ms busy timeout) saves, and its ranking is counted."""
    import json

    from training.data import imports

    store.create_project("p", k=2, overlap=1)
    store.add_documents("p", [NewDocument(f"d{i}", "text", ["a", "b"]) for i in range(5)])
    ann, _ = store.add_annotator("ann")
    other = Store(store.path, busy_timeout_ms=1)
    saved = []
    write = type(store).write_import_batch

    def write_then_let_someone_save(imp, rows):
        write(store, imp, rows)
        doc = other.next_document(ann, "p")
        a, b = (c.id for c in doc.candidates)
        saved.append(other.save_ranking(ann, doc.id, {a: 1, b: 2}).document_id)

    monkeypatch.setattr(imports, "BATCH", 10)
    monkeypatch.setattr(store, "write_import_batch", write_then_let_someone_save)
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"n{i}", "text": "t", "candidates": ["x", "y"]}) + "\n"
                            for i in range(40)))
    imports.import_file(store, path, "p")
    assert len(saved) == 4 and store.totals("p") == {"documents": 45, "complete": 4, "rankings": 4, "critiques": 0}
    assert store.check_counters() == []
    other.close()
