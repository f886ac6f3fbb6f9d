"""Every page's first render on the demo, timed (bench/page_render.py): none above 3 s, none fails.

The issue asks for this check (target 1.5 s; the bound here is twice that, for loaded CI
machines). The full table, with each page alone in a fresh process, is `python bench/page_render.py`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "page_render.py"
MAX_S = 3.0


@pytest.mark.slow
def test_every_page_renders_on_the_demo_within_3_s(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("page_render", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    db_path, admin_id = bench.demo_database(str(tmp_path))
    monkeypatch.setenv("TOKENWISE_DB", db_path)
    files = bench.page_files(None)
    assert "annotate.py" in files and "jobs.py" in files and len(files) >= 10
    rows = bench.measure(db_path, admin_id, files)
    assert [r for r in rows if r["error"]] == []
    slow = {r["page"]: r["first_s"] for r in rows if r["first_s"] > MAX_S}
    assert slow == {}, f"pages over {MAX_S} s on their first render: {slow}"
