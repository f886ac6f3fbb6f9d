"""Import/export throughput and peak memory of training.data.imports/exports against a plain pandas baseline.

    python bench/import_export.py            # N = 100000 documents, K = 4
    python bench/import_export.py --n 5000   # quick

What it does, in a temporary folder:
  1. writes N documents with K candidates as a documents JSONL file;
  2. tokenwise:  training.data.imports.import_file into a fresh database (validate pass + one-transaction
                 write pass), then export documents as JSONL and as Parquet;
  3. baseline:   pandas read_json(lines=True) + to_sql into a plain SQLite table (candidates as
                 JSON text), then read_sql + to_json(lines) and to_parquet of that table.
Every step runs in its own fresh Python process, which reports its wall time, its RSS after its
imports (start MB) and its peak RSS (ru_maxrss), so the steps do not share memory or caches.
Prints a table: rows/s, peak MB and the ratio to the baseline step of the same kind.
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


def worker(name: str, d: Path, k: int) -> None:
    fn, arg = STEPS[name]
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
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, Path(args.dir), args.k)
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


if __name__ == "__main__":
    main()
