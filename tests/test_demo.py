"""The demo projects: content rules of data/demo, and load_demo into a fresh database."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from training.cli import main
from training.data.demo import DEMO_DIR, PROMPT_QUALITIES, SUMMARY_QUALITIES, load_demo, quote_span, read_demo
from training.errors import ValidationError
from training.store import Store

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "schemas" / "documents.schema.json"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DEMO_DIR / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_rows(rows: list[dict], qualities: tuple[str, ...]) -> None:
    schema = json.loads(SCHEMA.read_text()) if SCHEMA.exists() else None
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "ids must be unique"
    first = Counter()
    for r in rows:
        if schema is not None:
            jsonschema.validate(r, schema)
        assert len(r["candidates"]) == len(qualities), r["id"]
        assert sorted(r["meta"]["quality"]) == sorted(qualities), r["id"]
        assert len(set(r["candidates"])) == len(qualities), f"{r['id']}: candidates must differ"
        assert r["title"].strip() and r["text"].strip()
        first[r["meta"]["quality"][0]] += 1
    # positions vary: every quality label comes first in some document
    assert set(first) == set(qualities), first


def test_documents_follow_the_content_rules():
    rows = _rows("documents.jsonl")
    assert len(rows) >= 24
    genres = Counter(r["meta"]["genre"] for r in rows)
    assert set(genres) == {"news", "forum", "review"} and min(genres.values()) >= 8, genres
    for r in rows:
        words = len(r["text"].split())
        assert 80 <= words <= 300, f"{r['id']}: {words} words"
        assert r["reference"] and len(r["reference"].split()) < words / 2
        by_q = dict(zip(r["meta"]["quality"], r["candidates"]))
        # the rambling candidate is the longest, the faithful one fits in a couple of sentences
        assert len(by_q["too_long"].split()) > 2 * len(by_q["faithful"].split()), r["id"]
        assert by_q["faithful"].count(". ") <= 1, r["id"]
    _check_rows(rows, SUMMARY_QUALITIES)


def test_prompt_items_follow_the_content_rules():
    rows = _rows("prompts.jsonl")
    assert len(rows) >= 12
    for r in rows:
        assert "positive" in r["text"] and "negative" in r["text"], r["id"]
        assert r["meta"]["label"] in ("positive", "negative")
        by_q = dict(zip(r["meta"]["quality"], r["candidates"]))
        assert "positive" in by_q["clear_specific"] and "negative" in by_q["clear_specific"]
        assert "positive" not in by_q["vague"] and "negative" not in by_q["vague"]
    assert Counter(r["meta"]["label"] for r in rows) == {"positive": 6, "negative": 6}
    _check_rows(rows, PROMPT_QUALITIES)


def test_annotations_refer_to_existing_documents_labels_and_quotes():
    data = read_demo()  # raises on any dangling reference or missing quote
    ann = data.annotations
    demo_rankings = [r for r in ann["rankings"] if r["project"] == "demo"]
    first10 = [r["id"] for r in data.items["demo"][:10]]
    for who in ("alice", "bob"):
        assert sorted(r["document"] for r in demo_rankings if r["annotator"] == who) == sorted(first10)
        prompt_docs = {r["document"] for r in ann["rankings"] if r["project"] == "demo-prompts" and r["annotator"] == who}
        assert len(prompt_docs) == 4
    assert all(20 <= r["seconds"] <= 120 for r in ann["rankings"])
    # mostly agreeing, with a few honest disagreements
    by = {(r["document"], r["annotator"]): r["order"] for r in demo_rankings}
    agree = sum(by[d, "alice"] == by[d, "bob"] for d in first10)
    assert 5 <= agree < 10
    assert 10 <= len(ann["critiques"]) <= 14
    kinds = Counter(c["candidate"] for c in ann["critiques"])
    assert kinds["factual_error"] + kinds["too_long"] >= len(ann["critiques"]) * 0.7
    quoted = [c for c in ann["critiques"] if c.get("quote")]
    assert quoted
    for c in quoted:
        text = data.candidate_text(c["project"], c["document"], c["candidate"])
        assert text.count(c["quote"]) == 1, "a quote must be unambiguous"
        s, e = quote_span(text, c["quote"])
        assert text[s:e] == c["quote"]


def test_a_quote_missing_from_its_candidate_is_refused_before_anything_is_written(tmp_path, store):
    d = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, d)
    ann = json.loads((d / "annotations.json").read_text())
    bad = next(c for c in ann["critiques"] if c.get("quote"))
    bad["quote"] = "words that are in no candidate"
    (d / "annotations.json").write_text(json.dumps(ann))
    with pytest.raises(ValidationError, match="words that are in no candidate"):
        load_demo(store, data_dir=d)
    assert store.list_projects() == [] and store.list_annotators() == []


def test_load_demo_into_a_fresh_database(store):
    tokens = load_demo(store)
    assert set(tokens) == {"admin", "annotator (carol)"}
    assert store.authenticate(tokens["admin"]).role == "admin"
    carol = store.authenticate(tokens["annotator (carol)"])
    assert (carol.name, carol.role) == ("carol", "annotator")
    assert {a.name: a.role for a in store.list_annotators()} == {
        "admin": "admin", "alice": "annotator", "bob": "annotator", "carol": "annotator"}

    n_docs = {"demo": len(_rows("documents.jsonl")), "demo-prompts": len(_rows("prompts.jsonl"))}
    for name, kind, k in (("demo", "summarize", 4), ("demo-prompts", "prompt", 5)):
        p = store.get_project(name)
        assert (p.kind, p.k, p.overlap, p.allow_ties, p.require_critique_lowest) == (kind, k, 3, False, False)
        assert "rank" in p.instructions.lower() and "critique" in p.instructions.lower()
        assert store.count_documents(name) == n_docs[name]
        assert all(len(d.candidates) == k for d in store.documents(name))
        # carol has done nothing: with overlap 3 every document is in her queue
        assert store.queue_counts(carol, name) == {"done": 0, "assigned": n_docs[name], "left": n_docs[name]}
        assert store.next_document(carol, name) is not None

    docs = {d.id: d for d in store.documents("demo")}
    alice, bob = store.get_annotator("alice"), store.get_annotator("bob")
    ra = {r.document_id: r for r in store.my_rankings(alice, "demo")}
    rb = {r.document_id: r for r in store.my_rankings(bob, "demo")}
    assert len(ra) == 10 and set(ra) == set(rb)
    assert all(docs[i].n_rankings == 2 for i in ra)
    assert all(20 <= r.seconds <= 120 for r in [*ra.values(), *rb.values()])

    def label(doc_id: int, cand_id: int) -> str:
        d = docs[doc_id]
        return d.meta["quality"][next(c.position for c in d.candidates if c.id == cand_id)]

    firsts = Counter(label(d, r.order[0][0]) for d, r in ra.items())
    assert firsts["faithful"] >= 8, firsts
    assert all(len(g) == 1 for r in ra.values() for g in r.order)  # no ties
    assert len(store.my_rankings(alice, "demo-prompts")) == 4 == len(store.my_rankings(bob, "demo-prompts"))

    data = read_demo()
    critiques = store.critiques("demo") + store.critiques("demo-prompts")
    assert len(critiques) == len(data.annotations["critiques"])
    quotes = {c["text"]: c.get("quote") for c in data.annotations["critiques"]}
    for k in critiques:
        cand = store.get_candidate(k.candidate_id)
        quote = quotes[k.text]
        if quote is None:
            assert k.span_start is None and k.span_end is None
        else:
            assert 0 <= k.span_start < k.span_end <= len(cand.text)
            assert cand.text[k.span_start:k.span_end] == quote


def test_loading_the_demo_twice_is_refused_and_changes_nothing(store):
    load_demo(store)
    before = (store.count_documents("demo"), len(store.rankings("demo")), len(store.critiques("demo")),
              len(store.list_annotators()), len(store.list_projects()))
    with pytest.raises(ValidationError, match="already loaded"):
        load_demo(store)
    after = (store.count_documents("demo"), len(store.rankings("demo")), len(store.critiques("demo")),
             len(store.list_annotators()), len(store.list_projects()))
    assert after == before


def test_demo_annotator_names_taken_is_refused(store):
    store.add_annotator("bob")
    with pytest.raises(ValidationError, match="bob"):
        load_demo(store)
    assert store.list_projects() == []


def test_cli_init_demo_prints_and_saves_the_tokens(db_path, capsys):
    assert main(["init", "--db", db_path, "--demo"]) == 0
    out = capsys.readouterr().out
    saved = json.loads(Path(f"{db_path}.demo-tokens.json").read_text())
    assert set(saved) == {"admin", "annotator (carol)"}
    for token in saved.values():
        assert token in out
    with Store(db_path) as s:
        assert s.authenticate(saved["admin"]).is_admin
        assert s.authenticate(saved["annotator (carol)"]).name == "carol"
        assert s.count_documents("demo") >= 24
        # a quick reward model on the demo is queued, for the worker `serve` starts: no click needed
        (job,) = s.list_jobs()
        assert (job.kind, job.status, job.project_id) == ("reward", "queued", s.get_project("demo").id)
        assert (job.config["base_model"], job.config["epochs"], job.config["score_after"]) == ("minilm", 1, True)
        assert job.created_by == s.authenticate(saved["admin"]).id
    assert "queued job #1: a quick reward model on the demo (minilm)" in out
    # a second --demo on the same database is refused with a one-line error, exit 2
    assert main(["init", "--db", db_path, "--demo"]) == 2
    assert "already loaded" in capsys.readouterr().err


def test_cli_init_demo_model_none_queues_nothing(db_path, capsys, monkeypatch):
    monkeypatch.setenv("TOKENWISE_DEMO_MODEL", "tiny-ignored")  # the flag wins over the environment
    assert main(["init", "--db", db_path, "--demo", "--demo-model", "none"]) == 0
    assert "queued job" not in capsys.readouterr().out
    with Store(db_path) as s:
        assert s.list_jobs() == []
