"""Server-side cost of one Annotate click: save a ranking, then load the next document.

1. save + next: what the Annotate page asks the store for per Save click: `save_annotation`
   (the ranking, via training.annotation.drafts.save) and `annotate_view` (the next document
   with its candidates, this annotator's queue counts and the project's totals, both O(1)),
   timed over `--saves` saves on a database of `--docs` documents (K candidates each), against
   a bare sqlite3 INSERT of the same ranking row plus a SELECT of the same next document and
   its candidates, interleaved in the same run on the same file.
2. page click: the Annotate page itself in Streamlit's AppTest (one session, one Store): the
   server time of each of `--clicks` Save clicks, i.e. the time Streamlit's ScriptRunner spends
   running the page for it (the Save button's callback, which saves, and the run that shows the
   next document; AppTest's own polling is left out), and the SQL statements the session's Store
   issues. The page's compiled bytecode is cached across runs, as `streamlit run` caches it
   (AppTest alone would compile the page again for every run).
Prints median and p95 of each, the ratio to bare, then one JSON line.

    nice -n 10 python bench/annotate.py               # 100k documents, 1000 saves, 100 clicks, K=4
    python bench/annotate.py --docs 10000 --saves 200 --clicks 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotate_app.ui import signed_in_state
from training.annotation import drafts as A
from training.store import NewDocument, Store, now


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[i]


def build(path: str, n_docs: int, k: int, overlap: int) -> tuple[Store, float]:
    """A fresh database: one project, n_docs documents of k candidates, added in ONE transaction."""
    t0 = time.perf_counter()
    s = Store(path)
    s.create_project("bench", kind="summarize", k=k, overlap=overlap)
    sentence = "the council voted on the new budget after a long debate about schools and roads"
    words = sentence.split(" ")
    body = " ".join(words * 8)  # ~100 words, a short news item
    s.add_documents("bench", (
        NewDocument(f"d{i}", f"{i}: {body}", [f"summary {j} of document {i}: {' '.join(words[j:j + 9])}"
                                               for j in range(k)], title=f"Document {i}")
        for i in range(n_docs)
    ))
    return s, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=100_000, help="documents in the database")
    ap.add_argument("--saves", type=int, default=1000, help="rankings saved (and timed)")
    ap.add_argument("--k", type=int, default=4, help="candidates per document")
    ap.add_argument("--overlap", type=int, default=2, help="annotators per document (project setting)")
    ap.add_argument("--clicks", type=int, default=100, help="Save clicks on the Annotate page (AppTest)")
    ap.add_argument("--db", default=None, help="database file (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    if args.saves > args.docs:
        ap.error(f"--saves ({args.saves}) must not exceed --docs ({args.docs})")

    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="tokenwise-bench-")
        args.db = os.path.join(tmp.name, "bench.db")
    # 1. build the database
    store, build_s = build(args.db, args.docs, args.k, args.overlap)
    size_mb = os.path.getsize(args.db) / 1e6
    print(f"built {args.docs} documents x {args.k} candidates in {build_s:.1f}s ({size_mb:.0f} MB, {args.db})")

    ann, _ = store.add_annotator("bench-store")
    bare_ann, _ = store.add_annotator("bench-bare")
    project = store.get_project("bench")
    bare = sqlite3.connect(args.db, isolation_level=None)  # a plain connection, same pragmas as the store
    bare.execute("PRAGMA journal_mode = WAL")
    bare.execute("PRAGMA synchronous = NORMAL")
    bare.execute("PRAGMA foreign_keys = ON")

    # 2. interleave: one Annotate click through the store, then the same rows with bare SQL
    doc = store.next_document(ann, project.id)
    t_store: list[float] = []
    t_bare: list[float] = []
    parts: dict[str, list[float]] = {"save (drafts.save)": [], "next document": [], "queue counts + totals": []}
    for _ in range(args.saves):
        draft = A.Draft.new(doc, started=time.time() - 12.5)
        draft.ranks.update({c.id: r + 1 for r, c in enumerate(reversed(doc.candidates))})
        ranks = {cid: int(r) for cid, r in draft.ranks.items()}
        t0 = time.perf_counter()
        A.save(store, ann, project, doc, draft)
        t1 = time.perf_counter()
        nxt = A.current_document(store, ann, project, None)  # the page unpins a saved document
        t2 = time.perf_counter()
        store.counts(ann, project)
        t3 = time.perf_counter()
        t_store.append(t3 - t0)
        for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
            parts[name].append(dt)

        order = json.dumps([[cid] for cid, _ in sorted(ranks.items(), key=lambda kv: kv[1])])
        t0 = time.perf_counter()
        bare.execute("BEGIN IMMEDIATE")
        bare.execute(
            "INSERT INTO rankings (document_id, annotator_id, order_json, seconds, version, current, created)"
            " VALUES (?,?,?,?,1,1,?)", (doc.id, bare_ann.id, order, 12.5, now()))
        bare.execute("COMMIT")
        bare.execute("SELECT * FROM documents WHERE id = ?", (nxt.id,)).fetchone()
        bare.execute("SELECT * FROM candidates WHERE document_id = ? ORDER BY position", (nxt.id,)).fetchall()
        t_bare.append(time.perf_counter() - t0)
        doc = nxt

    # 3. the page: Save clicks in AppTest, one session (one Store)
    t_click, statements = page_clicks(args.db, store, args.clicks)

    # 4. the table
    rows = [("store: save + next document + queue counts + totals", t_store),
            *((f"  of which {name}", ts) for name, ts in parts.items()),
            ("bare sqlite3: INSERT ranking + SELECT document, candidates", t_bare),
            (f"Annotate page: one Save click (AppTest, {statistics.median(statements):.0f} SQL statements)", t_click)]
    med_ratio = statistics.median(t_store) / statistics.median(t_bare)
    p95_ratio = percentile(t_store, 95) / percentile(t_bare, 95)
    print(f"\n{args.saves} saves on {args.docs} documents (K={args.k}, overlap={args.overlap}); "
          f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs")
    print(f"{'':62s} {'median ms':>10s} {'p95 ms':>10s} {'mean ms':>10s}")
    for name, ts in rows:
        print(f"{name:62s} {statistics.median(ts) * 1e3:10.3f} {percentile(ts, 95) * 1e3:10.3f} "
              f"{statistics.fmean(ts) * 1e3:10.3f}")
    print(f"{'ratio store / bare':62s} {med_ratio:10.1f} {p95_ratio:10.1f}")
    bare.close()
    store.close()
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps({
        "bench": "annotate", "docs": args.docs,
        "save_next_p50_ms": round(statistics.median(t_store) * 1e3, 3),
        "save_next_p95_ms": round(percentile(t_store, 95) * 1e3, 3),
        "bare_p95_ms": round(percentile(t_bare, 95) * 1e3, 3), "ratio_p95": round(p95_ratio, 2),
        "page_click_p50_ms": round(statistics.median(t_click) * 1e3, 3),
        "page_click_p95_ms": round(percentile(t_click, 95) * 1e3, 3),
        "page_click_sql_statements": statistics.median(statements),
    }))


def page_clicks(db: str, store: Store, clicks: int) -> tuple[list[float], list[int]]:
    """Server time and SQL statements of `clicks` Save clicks on the Annotate page in AppTest."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    from streamlit.testing.v1 import AppTest, local_script_runner

    shared_cache = ScriptCache()  # one per server, as in `streamlit run`
    local_script_runner.ScriptCache = lambda: shared_cache

    spent: list[float] = []
    run_script = ScriptRunner._run_script

    def timed(self, rerun_data):  # one call runs the script, and its st.rerun() reruns
        t0 = time.perf_counter()
        try:
            return run_script(self, rerun_data)
        finally:
            spent.append(time.perf_counter() - t0)

    ScriptRunner._run_script = timed

    os.environ["TOKENWISE_DB"] = db
    page = Path(__file__).resolve().parents[1] / "annotate_app" / "app_pages" / "annotate.py"
    who, _ = store.add_annotator("bench-page")
    at = AppTest.from_file(str(page), default_timeout=60)
    for key, value in signed_in_state(who).items():
        at.session_state[key] = value
    at.run()
    times, statements = [], []
    for _ in range(clicks):
        radios = [r for r in at.radio if r.label.startswith("Rank of candidate")]
        for i, r in enumerate(radios):
            r.set_value(i + 1)
        at.run()  # the annotator's choices (their own reruns, not part of the click)
        sql: list[str] = []
        session_store = at.session_state["_session_store"][0]
        session_store.conn.set_trace_callback(sql.append)
        save = next(b for b in at.button if b.label == "Save")
        spent.clear()
        save.click().run()
        times.append(sum(spent))
        session_store.conn.set_trace_callback(None)
        statements.append(len(sql))
        if at.exception or not any("Saved your ranking" in s.value for s in (*at.toast, *at.success)):
            sys.exit(f"the Annotate page did not save: {at.exception or [e.value for e in at.error]}")
    ScriptRunner._run_script = run_script
    return times, statements


if __name__ == "__main__":
    main()
