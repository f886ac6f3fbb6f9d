"""How long each dashboard page takes to render on the demo (Streamlit AppTest, no browser).

Loads the demo into a fresh database, then opens every page of annotate_app/app.py as the demo's
admin. "cold": the page alone in a fresh process (Streamlit imported, nothing else: it pays every
import the page does at load, as the first visitor of a new server does). "first" and "warm":
every page one after the other in this one process (as one server process serves them), its
first render and a second one. Baseline in the same run: an empty page (st.title only) through
the same AppTest machinery, the fixed cost every page pays. Prints a table, then one JSON line.
Exits 1 when a page's cold or first render is above --max-s (default 3 s; the target is 1.5 s).

    python bench/page_render.py
    python bench/page_render.py --max-s 3 --pages annotate overview
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamlit.testing.v1 import AppTest

from annotate_app.ui import signed_in_state
from training.store import Store

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT / "annotate_app" / "app_pages"
TARGET_S = 1.5


def _empty_page() -> None:
    import streamlit as st

    st.title("empty")


def render_s(at: AppTest) -> tuple[float, str | None]:
    t0 = time.perf_counter()
    at.run()
    dt = time.perf_counter() - t0
    if at.exception:
        return dt, str(at.exception[0].message)[:120]
    if any("sign in" in w.value for w in at.warning):  # the measured page must be the signed-in one
        return dt, "showed the sign-in message"
    return dt, None


def page_files(only: list[str] | None) -> list[str]:
    from annotate_app.app import PAGES

    files = [f for f, *_ in PAGES]
    if only:
        files = [f for f in files if f.removesuffix(".py") in only]
    return files


def measure(db_path: str, admin_id: int, files: list[str], timeout_s: float = 120) -> list[dict]:
    """[{page, first_s, warm_s, error}] for each page file, in order."""
    os.environ["TOKENWISE_DB"] = db_path
    rows = []
    for f in files:
        at = AppTest.from_file(str(PAGES_DIR / f), default_timeout=timeout_s)
        with Store(db_path) as s:
            for key, value in signed_in_state(s.get_annotator(admin_id)).items():
                at.session_state[key] = value
        first, err = render_s(at)
        warm, _ = render_s(at)
        rows.append({"page": f.removesuffix(".py"), "first_s": round(first, 3), "warm_s": round(warm, 3),
                     "error": err})
    return rows


def cold_s(db_path: str, admin_id: int, f: str) -> float:
    """The first render of page `f` in a fresh Python process."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--one", f, "--db", db_path, "--admin", str(admin_id)],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return float(out.stdout.strip().splitlines()[-1])


def demo_database(folder: str) -> tuple[str, int]:
    from training.data.demo import load_demo
    from training.store import Store

    path = str(Path(folder) / "demo.db")
    with Store(path) as s:
        load_demo(s)
        admin = next(a for a in s.list_annotators() if a.name == "admin")
    return path, admin.id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-s", type=float, default=3.0, help="fail when a first render takes longer")
    ap.add_argument("--pages", nargs="*", help="only these pages (file names without .py)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: time one page file in this process
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--admin", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        render_s(AppTest.from_function(_empty_page, default_timeout=60))  # Streamlit's own imports
        [row] = measure(args.db, args.admin, [args.one])
        print(row["first_s"])
        return 0
    os.environ.setdefault("TOKENWISE_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="tokenwise-pages-") as tmp:
        db_path, admin_id = demo_database(tmp)
        base = AppTest.from_function(_empty_page, default_timeout=60)
        render_s(base)
        baseline, _ = render_s(AppTest.from_function(_empty_page, default_timeout=60))
        files = page_files(args.pages)
        cold = {f.removesuffix(".py"): round(cold_s(db_path, admin_id, f), 3) for f in files}
        rows = measure(db_path, admin_id, files)
        for r in rows:
            r["cold_s"] = cold[r["page"]]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'page':<14} {'cold s':>8} {'first s':>8} {'warm s':>8}  {'first vs empty':>14}  status")
    print(f"{'(empty page)':<14} {'':>8} {baseline:>8.3f} {'':>8}  {'1.0x':>14}")
    slow = []
    for r in rows:
        worst = max(r["first_s"], r["cold_s"])
        ok = r["error"] is None and worst <= args.max_s
        status = "ok" if ok else (f"error: {r['error']}" if r["error"] else f"over {args.max_s:g} s")
        if worst > TARGET_S and ok:
            status = f"ok (over the {TARGET_S:g} s target)"
        if not ok:
            slow.append(r["page"])
        print(f"{r['page']:<14} {r['cold_s']:>8.3f} {r['first_s']:>8.3f} {r['warm_s']:>8.3f}  "
              f"{r['first_s'] / baseline:>13.1f}x  {status}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}; peak RSS {peak_mb:.0f} MB")
    print(json.dumps({"bench": "page_render", "empty_page_s": round(baseline, 3), "max_s": args.max_s,
                      "pages": {r["page"]: {"cold_s": r["cold_s"], "first_s": r["first_s"], "warm_s": r["warm_s"]}
                                for r in rows},
                      "slowest_s": max(max(r["first_s"], r["cold_s"]) for r in rows), "failed": slow,
                      "peak_rss_mb": round(peak_mb)}))
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
