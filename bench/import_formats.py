"""Import speed and memory per preference format, on generated 100k-row files (rows per second, peak MB).

    python bench/import_formats.py            # 100k rows per format
    python bench/import_formats.py --rows 20000

Each format's file is written first (text made up here), then imported by a fresh process into a
new project, so peak memory is the import's own (ru_maxrss). A table, then one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORDS = ["the", "river", "rose", "after", "three", "days", "of", "rain", "and", "the", "town", "closed", "its",
         "old", "bridge", "for", "repairs"]


def sentence(i: int, n: int = 12) -> str:
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(n)) + f" {i}."


def row(fmt: str, i: int) -> dict:
    p, a, b, c = sentence(i, 30), sentence(i + 1), sentence(i + 2), sentence(i + 3)
    if fmt == "pairs":
        return {"prompt": p, "chosen": a, "rejected": b, "worker": f"w{i % 7}"}
    if fmt == "implicit":
        return {"chosen": f"\n\nHuman: {p}\n\nAssistant: {a}", "rejected": f"\n\nHuman: {p}\n\nAssistant: {b}"}
    if fmt == "sff":
        return {"info": {"id": f"p{i}", "title": f"post {i}", "post": p},
                "summaries": [{"text": a, "policy": "sup", "note": "too short" if i % 3 == 0 else ""},
                              {"text": b, "policy": "ppo", "note": ""}], "choice": i % 2, "worker": f"w{i % 5}"}
    if fmt == "ratings":
        return {"instruction": p, "completions": [{"model": "m1", "response": a, "overall_score": i % 10},
                                                  {"model": "m2", "response": b, "overall_score": (i * 3) % 10},
                                                  {"model": "m3", "response": c, "overall_score": 5}]}
    if fmt == "two_answer":
        return {"history": p, "human_ref_A": a, "human_ref_B": b, "score_A": i % 9, "score_B": (i * 5) % 9}
    if fmt == "scored":  # one response per row, two rows per prompt (HelpSteer-like)
        return {"prompt": sentence(i // 2, 30), "response": a, "helpfulness": i % 5, "verbosity": 2}
    if fmt == "slf5k":
        return {"title": f"t{i}", "post": p, "generated_summary_for_feedback": a, "feedback": "name the bridge",
                "ideal_human_summary": b}
    if fmt == "label_studio":  # a task of the pairwise template, two annotators, a critique from one
        def ann(user: int, side: str, critique: bool = False) -> dict:
            result = [{"from_name": "comparison", "to_name": "comparison", "type": "pairwise",
                       "value": {"selected": side}}]
            if critique:
                result.append({"from_name": "why", "to_name": "answer2", "type": "textarea",
                               "value": {"text": ["misses the date"]}})
            return {"id": 2 * i + user, "completed_by": user, "result": result, "was_cancelled": False}
        return {"id": i, "data": {"prompt": p, "answer1": a, "answer2": b}, "predictions": [],
                "annotations": [ann(1, "left", i % 3 == 0), ann(2, "left" if i % 4 else "right")]}
    if fmt == "argilla":  # Argilla 2 records.to_json: a ranking question and a critique per output
        return {"id": f"r{i}", "fields": {"prompt": p, "response1": a, "response2": b}, "metadata": {"batch": i % 4},
                "responses": {"ranking": [{"value": ["response1", "response2"], "user_id": "u1"},
                                          {"value": ["response2", "response1"][:: 1 if i % 5 else -1],
                                           "user_id": "u2"}],
                              "critique_response2": [{"value": "too vague", "user_id": "u1"}]}}
    if fmt == "oasst":  # OASST messages: a prompt, then its three ranked replies (4 rows a tree)
        root, n = f"m{i - i % 4}", i % 4
        return {"message_id": f"m{i}", "parent_id": None if n == 0 else root, "role": "prompter" if n == 0 else
                "assistant", "text": p if n == 0 else a, "rank": None if n == 0 else (n + i // 4) % 3, "lang": "en",
                "deleted": False, "message_tree_id": root}
    raise ValueError(fmt)


K = {"pairs": 2, "implicit": 2, "sff": 2, "ratings": 3, "two_answer": 2, "scored": 2, "slf5k": 2, "label_studio": 2,
     "argilla": 2, "oasst": 3}
JSON_ARRAY = ("label_studio", "argilla")  # the tools write one JSON array


def child(path: str, fmt: str) -> None:
    from training.data.imports import import_file
    from training.store import Store

    db = str(Path(path).with_suffix(".db"))
    with Store(db) as s:
        s.create_project("p", kind="prompt", k=K[fmt])
        t0 = time.perf_counter()
        rep = import_file(s, path, "p")
        secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"format": rep.format, "documents": rep.documents, "rankings": rep.rankings,
                      "critiques": rep.critiques, "seconds": secs, "peak_mb": peak}))


def main() -> None:
    a = argparse.ArgumentParser()
    a.add_argument("--rows", type=int, default=100_000)
    a.add_argument("--child", nargs=2, metavar=("PATH", "FORMAT"))
    args = a.parse_args()
    if args.child:
        child(*args.child)
        return
    work = Path(tempfile.mkdtemp(prefix="import-formats-"))
    results = []
    print(f"{args.rows} rows per format; each import in its own process")
    for fmt in K:
        path = work / (f"{fmt}.jsonl.gz" if fmt == "pairs" else f"{fmt}.json" if fmt in JSON_ARRAY else f"{fmt}.jsonl")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "wt", encoding="utf-8") as f:
            if fmt in JSON_ARRAY:
                f.write("[\n" + ",\n".join(json.dumps(row(fmt, i)) for i in range(args.rows)) + "\n]\n")
            else:
                for i in range(args.rows):
                    f.write(json.dumps(row(fmt, i)) + "\n")
        out = subprocess.run([sys.executable, __file__, "--child", str(path), fmt], capture_output=True, text=True,
                             check=False)
        if out.returncode:
            print(out.stderr[-2000:])
            raise SystemExit(f"{fmt}: import failed")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["rows_per_s"] = args.rows / r["seconds"]
        results.append(r)
        print(f"  {fmt:11s} {r['rows_per_s']:9.0f} rows/s  {r['peak_mb']:6.0f} MB peak  "
              f"{r['documents']} documents, {r['rankings']} rankings, {r['critiques']} critiques", flush=True)
    print("\n| format | rows/s | peak MB | documents | rankings |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['format']} | {r['rows_per_s']:.0f} | {r['peak_mb']:.0f} | {r['documents']} | {r['rankings']} |")
    print(json.dumps({"bench": "import_formats", "rows": args.rows, "results": results}))


if __name__ == "__main__":
    main()
