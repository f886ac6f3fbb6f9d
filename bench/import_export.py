"""Import/export throughput and peak memory of training.data.imports/exports against a plain pandas baseline.

    python bench/import_export.py            # N = 100000 documents, K = 4
    python bench/import_export.py --n 5000   # quick

What it does, in a temporary folder:
  1. writes N documents with K candidates as a documents JSONL file;
  2. tokenwise:  training.data.imports.import_file into a fresh database (validate pass + one-transaction
                 write pass), then export documents as JSONL and as Parquet;
  3. baseline:   pandas read_json(lines=True) + to_sql into a plain SQLite table (candidates as
                 JSON text), then read_sql + to_json(lines) and to_parquet of that table.
  4. savers during an import: --savers annotator processes (default 20) save rankings in
                 another project of the same database, one every ~0.25 s each (as the Annotate page
                 does: drafts.save, 5 s busy timeout, retried), while a second N-document import
                 runs; each save's wall time is its wait. Counts saves, errors and the longest wait.
                 Twice: into a project without documents (the flip is O(1)) and into one that has a
                 document (the flip moves N rows); the JSON line's figure is the first, the second
                 is printed beside it.
Every step runs in its own fresh Python process, which reports its wall time, its RSS after its
imports (start MB) and its peak RSS (ru_maxrss), so the steps do not share memory or caches.
Prints a table: rows/s, peak MB and the ratio to the baseline step of the same kind (rows per
CPU-second of the step's process: wall time depends on what else runs), then one JSON line.

    nice -n 10 python bench/import_export.py            # N = 100000 documents, K = 4, 20 savers
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_file(path: Path, n: int, k: int) -> None:
    words = ["storm", "coast", "council", "budget", "match", "season", "market", "prices", "river", "bridge", "school", "report", "vote", "court", "health", "energy"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            body = " ".join(words[(i * 7 + j) % len(words)] for j in range(120))
            f.write(json.dumps({
                "id": f"doc-{i}", "title": f"Report {i}", "text": body,
                "candidates": [" ".join(words[(i + j * 3 + t) % len(words)] for t in range(20)) for j in range(k)],
                "meta": {"i": i},
            }) + "\n")


# -- steps (each runs in a fresh process) ------------------------------------------------------
def step_tokenwise_import(d: Path, k: int) -> int:
    from training.data.imports import import_file
    from training.store import Store

    with Store(d / "tw.db") as s:
        s.create_project("bench", k=k)
        return import_file(s, d / "docs.jsonl", "bench").documents


def step_tokenwise_export(d: Path, fmt: str) -> int:
    from training.data.exports import export_rows, write_export
    from training.store import Store

    with Store(d / "tw.db") as s:
        return write_export(export_rows(s, "bench", "documents"), d / f"tw_out.{fmt}", fmt, kind="documents")


def step_pandas_import(d: Path, k: int) -> int:
    import sqlite3

    import pandas as pd

    df = pd.read_json(d / "docs.jsonl", lines=True)
    df["candidates"] = df["candidates"].map(json.dumps)
    df["meta"] = df["meta"].map(json.dumps)
    with sqlite3.connect(d / "pd.db") as conn:
        df.to_sql("documents", conn, index=False, if_exists="replace")
    return len(df)


def step_pandas_export(d: Path, fmt: str) -> int:
    import sqlite3

    import pandas as pd

    with sqlite3.connect(d / "pd.db") as conn:
        df = pd.read_sql("SELECT * FROM documents", conn)
    df["candidates"] = df["candidates"].map(json.loads)
    if fmt == "jsonl":
        df.to_json(d / "pd_out.jsonl", orient="records", lines=True, force_ascii=False)
    else:
        df.to_parquet(d / "pd_out.parquet", index=False)
    return len(df)


STEPS = {
    "tokenwise import": (step_tokenwise_import, "k"),
    "pandas import": (step_pandas_import, "k"),
    "tokenwise export jsonl": (step_tokenwise_export, "jsonl"),
    "pandas export jsonl": (step_pandas_export, "jsonl"),
    "tokenwise export parquet": (step_tokenwise_export, "parquet"),
    "pandas export parquet": (step_pandas_export, "parquet"),
}


# -- saves during an import ----------------------------------------------------------------------
SAVER_DOCS = 400  # documents of the savers' project, each saved by every saver (overlap = savers)


def saver(d: Path, index: int) -> None:
    """One annotator process: save rankings until the stop file appears; print its waits."""
    import random
    import sqlite3

    from training.annotation import drafts as A
    from training.errors import TokenwiseError
    from training.store import Store

    rng = random.Random(index)
    with Store(d / "live.db", busy_timeout_ms=5000) as s:
        who, project = s.get_annotator(f"saver{index}"), s.get_project("live")
        (d / f"ready{index}").touch()
        while not (d / "go").exists():
            time.sleep(0.01)
        waits, errors = [], []
        while not (d / "stop").exists():
            doc = s.next_document(who, project)
            if doc is None:
                break
            draft = A.Draft.new(doc, started=time.time() - 5)
            draft.ranks.update({c.id: i + 1 for i, c in enumerate(doc.candidates)})
            t0 = time.perf_counter()
            try:
                A.save(s, who, project, doc, draft)
            except (TokenwiseError, sqlite3.Error) as e:  # a lost save: what this step counts
                errors.append(repr(e))
            waits.append(time.perf_counter() - t0)
            time.sleep(rng.uniform(0.15, 0.35))
    print(json.dumps({"saves": len(waits) - len(errors), "errors": errors, "waits": waits}))


def step_import_with_savers(d: Path, k: int, savers: int, nonempty: bool) -> dict:
    """A second import into live.db while `savers` processes save; their counts and waits."""
    from training.store import NewDocument, Store

    for f in ("live.db", "live.db-wal", "live.db-shm", "go", "stop", *(f"ready{i}" for i in range(savers))):
        (d / f).unlink(missing_ok=True)
    with Store(d / "live.db") as s:
        s.create_project("bench", k=k)
        if nonempty:
            s.add_documents("bench", [NewDocument("already-here", "text", [f"c{j}" for j in range(k)])])
        s.create_project("live", k=3, overlap=savers)
        s.add_documents("live", (NewDocument(f"l{i}", f"Live document {i}.", ["a", "b", "c"])
                                 for i in range(SAVER_DOCS)))
        for i in range(savers):
            s.add_annotator(f"saver{i}")
    procs = [subprocess.Popen([sys.executable, __file__, "--saver", str(i), "--dir", str(d)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT) for i in range(savers)]
    while not all((d / f"ready{i}").exists() for i in range(savers)):
        time.sleep(0.05)
    (d / "go").touch()
    time.sleep(1.0)  # saves before the import starts too
    t0 = time.perf_counter()
    imp = run_step("tokenwise import live", d, k)
    import_s = time.perf_counter() - t0
    time.sleep(0.5)
    (d / "stop").touch()
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    waits = [w for r in results for w in r["waits"]]
    return {"saves": sum(r["saves"] for r in results), "errors": sum(len(r["errors"]) for r in results),
            "max_wait_ms": round(max(waits) * 1e3, 1), "p99_wait_ms": round(_pct(waits, 99) * 1e3, 1),
            "import_seconds": round(import_s, 1), "import_rows": imp["rows"],
            "error_examples": sorted({e for r in results for e in r["errors"]})[:3]}


def step_tokenwise_import_live(d: Path, k: int) -> int:
    from training.data.imports import import_file
    from training.store import Store

    with Store(d / "live.db") as s:
        return import_file(s, d / "docs.jsonl", "bench").documents


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))] if xs else float("nan")


def worker(name: str, d: Path, k: int) -> None:
    fn, arg = {**STEPS, "tokenwise import live": (step_tokenwise_import_live, "k")}[name]
    # import the heavy modules first so "start MB" is the cost of the process before any rows
    if name.startswith("pandas"):
        import pandas  # noqa: F401
    else:
        import training.data.exports
        import training.data.imports  # noqa: F401
    start = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    rows = fn(d, k if arg == "k" else arg)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"rows": rows, "seconds": secs, "cpu": cpu, "start_mb": start, "peak_mb": peak_mb()}))


def run_step(name: str, d: Path, k: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--dir", str(d), "--k", str(k)],
        check=False, capture_output=True, text=True, cwd=ROOT,
    )
    if proc.returncode != 0:
        sys.exit(f"step {name!r} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="documents to generate (default 100000)")
    ap.add_argument("--k", type=int, default=4, help="candidates per document (default 4)")
    ap.add_argument("--savers", type=int, default=20, help="annotator processes saving during an import (default 20)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--saver", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, Path(args.dir), args.k)
        return
    if args.saver is not None:
        saver(Path(args.dir), args.saver)
        return

    with tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
        d = Path(tmp)
        t0 = time.perf_counter()
        make_file(d / "docs.jsonl", args.n, args.k)
        size = (d / "docs.jsonl").stat().st_size / 2**20
        print(f"{args.n} documents, K={args.k}: {size:.1f} MB JSONL written in {time.perf_counter() - t0:.1f}s"
              f" (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
        results = {name: run_step(name, d, args.k) for name in STEPS}
        sizes = {p.name: p.stat().st_size / 2**20 for p in d.iterdir() if p.is_file()}
        during = step_import_with_savers(d, args.k, args.savers, False) if args.savers else None
        during_nonempty = step_import_with_savers(d, args.k, args.savers, True) if args.savers else None

    header = f"{'step':<26}{'rows':>9}{'wall s':>8}{'cpu s':>8}{'rows/s':>9}{'rows/cpu-s':>11}" \
             f"{'start MB':>9}{'peak MB':>8}{'speed vs pandas':>16}{'peak vs pandas':>15}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        rate, cpu_rate = r["rows"] / r["seconds"], r["rows"] / max(r["cpu"], 1e-9)
        if name.startswith("tokenwise"):
            base = results[name.replace("tokenwise", "pandas")]
            speed = f"{cpu_rate / (base['rows'] / max(base['cpu'], 1e-9)):.2f}x"
            mem = f"{r['peak_mb'] / base['peak_mb']:.2f}x"
        else:
            speed = mem = "1.00x"
        print(f"{name:<26}{r['rows']:>9}{r['seconds']:>8.1f}{r['cpu']:>8.1f}{rate:>9.0f}{cpu_rate:>11.0f}"
              f"{r['start_mb']:>9.0f}{r['peak_mb']:>8.0f}{speed:>16}{mem:>15}")
    print("files (MB): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(sizes.items()) if not k.endswith("-shm")))
    print("start MB = RSS after the step's imports; peak MB = ru_maxrss of the step's process;"
          " speed vs pandas compares rows per CPU-second (wall time depends on what else runs).")

    def vs(kind: str) -> float:
        mine, base = results[f"tokenwise {kind}"], results[f"pandas {kind}"]
        return round((mine["rows"] / mine["cpu"]) / (base["rows"] / base["cpu"]), 2)

    for what, dur in (("an empty project", during), ("a project with documents", during_nonempty)):
        if dur is not None:
            print(f"{args.savers} savers during a second {dur['import_rows']}-document import into {what} "
                  f"({dur['import_seconds']}s wall): {dur['saves']} saves, {dur['errors']} errors, "
                  f"longest wait {dur['max_wait_ms']} ms, p99 {dur['p99_wait_ms']} ms"
                  + (f"; errors: {dur['error_examples']}" if dur["errors"] else ""))
    print(json.dumps({
        "bench": "import_export", "docs": args.n, "import_vs_pandas": vs("import"),
        "import_peak_mb": round(results["tokenwise import"]["peak_mb"], 1),
        "export_jsonl_vs_pandas": vs("export jsonl"), "export_parquet_vs_pandas": vs("export parquet"),
        "saves_during_import": None if during is None else
        {k: during[k] for k in ("saves", "errors", "max_wait_ms")},
        "saves_during_import_into_nonempty": None if during_nonempty is None else
        {k: during_nonempty[k] for k in ("saves", "errors", "max_wait_ms")},
    }))


if __name__ == "__main__":
    main()
