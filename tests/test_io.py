"""training.data.imports and training.data.exports: import formats, refused files (nothing written), exports, Parquet, schemas, streaming."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import jsonschema
import pyarrow.parquet as pq
import pytest

from training.data.exports import EXPORT_KINDS, export_rows, ranking_pairs, write_export
from training.data.imports import MAX_PROBLEMS, detect_format, import_file
from training.errors import ImportFileError, NotFound, ValidationError
from training.store import NewDocument

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "schemas"
CORE_KINDS = ("documents", "rankings", "pairs", "critiques")  # the ILF kinds are tested in test_ilf.py


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def table_counts(store) -> dict[str, int]:
    return {t: store.db[t].count for t in store.db.table_names()}


DOCS = [
    {"id": "a1", "title": "Storm", "text": "A storm hit the coast on Monday.",
     "candidates": ["Storm hits coast.", "Weather happened.", "A Monday storm hit the coast."]},
    {"id": "a2", "title": "", "text": "Prices rose by 3% — économie, 東京.",
     "candidates": ["Prices up 3%.", "Nothing changed.", "Économie: prices rose."],
     "reference": "Prices rose 3%.", "meta": {"source": "demo", "n": 2}},
    {"id": "a3", "title": "Match", "text": "The home team won 2-1.",
     "candidates": ["Home team wins.", "Team lost.", "2-1 win at home."], "meta": {"league": "x"}},
]

PAIRS = [
    {"prompt": "Summarize: the cat sat on the mat.", "chosen": "A cat sat.", "rejected": "Dogs ran."},
    {"prompt": "Summarize: rain fell all day.", "chosen": "It rained all day.", "rejected": "Sunny."},
    {"prompt": "Summarize: rain fell all day.", "chosen": "Rain all day.", "rejected": "Snow."},
]

SLF5K = [
    {"id": "s1", "subreddit": "r/tifu", "title": "TIFU by locking my keys in",
     "post": "I locked my keys in the car and had to wait two hours for help.",
     "generated_summary_for_feedback": "I locked my keys in the car.",
     "feedback": "Mention the two-hour wait.",
     "ideal_human_summary": "Locked keys in car, waited two hours."},
    {"title": "Moving", "post": "We moved to a new city and I miss my friends.",
     "generated_summary_for_feedback": "Moved cities.", "feedback": "Say that they miss their friends.",
     "ideal_human_summary": ""},
]


# -- valid imports and round trips ---------------------------------------------------------
def test_documents_jsonl_round_trip(store, tmp_path):
    store.create_project("news", k=3)
    report = import_file(store, write_jsonl(tmp_path / "d.jsonl", DOCS), "news")
    assert (report.format, report.documents, report.candidates, report.rankings) == ("documents", 3, 9, 0)
    assert list(export_rows(store, "news", "documents")) == DOCS
    doc = store.get_document_by_ext_id("news", "a2")
    assert doc.reference == "Prices rose 3%." and doc.meta == {"source": "demo", "n": 2}
    assert [c.position for c in doc.candidates] == [0, 1, 2]


def test_documents_csv(store, tmp_path):
    store.create_project("news", k=3)
    path = tmp_path / "d.csv"
    path.write_text(
        "id,title,text,candidate_1,candidate_2,candidate_3,reference,meta\n"
        'c1,T1,"Line one,\nline two",one,two,three,ref one,"{""k"": 1}"\n'
        "\n"
        "c2,,Second text,x,y,z,,\n",
        encoding="utf-8",
    )
    assert detect_format(path) == "documents"
    assert import_file(store, path, "news").documents == 2
    assert list(export_rows(store, "news", "documents")) == [
        {"id": "c1", "title": "T1", "text": "Line one,\nline two", "candidates": ["one", "two", "three"],
         "reference": "ref one", "meta": {"k": 1}},
        {"id": "c2", "title": "", "text": "Second text", "candidates": ["x", "y", "z"]},
    ]


def test_extra_columns_are_kept_in_meta_and_tsv_reads_like_csv(store, tmp_path):
    """Data as people have it: extra fields and columns go to the document's meta (a key of "meta"
    itself wins), an unnamed column (pandas' index) is left out, a .tsv is a CSV with tabs."""
    store.create_project("news", k=2)
    jsonl = write_jsonl(tmp_path / "d.jsonl", [
        {"id": "j1", "text": "T", "candidates": ["a", "b"], "source": "cnn", "score": 0.5},
        {"id": "j2", "text": "T2", "candidates": ["c", "d"], "source": "bbc", "meta": {"source": "kept", "n": 1}},
    ])
    (tmp_path / "d.csv").write_text(",id,text,candidate_1,candidate_2,split\n0,c1,Text,a,b,test\n", encoding="utf-8")
    (tmp_path / "d.tsv").write_text("id\ttext\tcandidate_1\tcandidate_2\tsplit\nt1\tA, with a comma\tx\ty\tdev\n",
                                    encoding="utf-8")
    for path in (jsonl, tmp_path / "d.csv", tmp_path / "d.tsv"):
        import_file(store, path, "news")
    rows = {r["id"]: r for r in export_rows(store, "news", "documents")}
    assert rows["j1"]["meta"] == {"source": "cnn", "score": 0.5}
    assert rows["j2"]["meta"] == {"source": "kept", "n": 1}
    assert rows["c1"]["meta"] == {"split": "test"} and rows["c1"]["candidates"] == ["a", "b"]
    assert rows["t1"]["text"] == "A, with a comma" and rows["t1"]["meta"] == {"split": "dev"}


def test_a_mapping_builds_the_candidates_list_and_documents_need_no_id(store, tmp_path):
    """QA-Feedback's shape (a question, answers in columns "prediction 1".."prediction 4", no id):
    one --map makes documents of it; the id is a hash, so the same file twice is refused."""
    from training.data.formats import Options, parse_mapping

    store.create_project("qa", k=3)
    rows = [{"question": f"Q{i}?", "prediction 1": f"a{i}", "prediction 2": f"b{i}", "prediction 3": f"c{i}",
             "gold": f"g{i}", "preference": [0, 1]} for i in range(3)]
    path = write_jsonl(tmp_path / "qa.jsonl", rows)
    mapping = parse_mapping("text=question,candidates=prediction 1+prediction 2+prediction 3,reference=gold")
    assert import_file(store, path, "qa", options=Options(mapping=mapping)).documents == 3
    out = list(export_rows(store, "qa", "documents"))
    first = out[0]
    assert (first["text"], first["candidates"], first["reference"], first["meta"]) == (
        "Q0?", ["a0", "b0", "c0"], "g0", {"preference": [0, 1]})
    assert len({r["id"] for r in out}) == 3
    before = table_counts(store)
    with pytest.raises(ImportFileError) as e:
        import_file(store, path, "qa", options=Options(mapping=mapping))
    assert [(ln, f) for ln, f, _ in e.value.problems] == [(1, "id"), (2, "id"), (3, "id")]
    assert "the same text and candidates are already in project 'qa'" in e.value.problems[0][2]  # no made-up id
    assert table_counts(store) == before
    # a column the mapping names that no row has (a typo, one of a+b+c) is named, with the columns there
    for spec, named in (("text=question,candidates=prediction 1+prediction 4", "no column 'prediction 4'"),
                        ("text=questoin,candidates=prediction 1+prediction 2", "text='questoin': no column")):
        with pytest.raises(ValidationError, match=named) as e:
            import_file(store, path, "qa", options=Options(mapping=parse_mapping(spec)))
        assert "the file's columns: question, prediction 1" in str(e.value)
    assert table_counts(store) == before
    # an optional column (only in some rows) is fine
    sparse = write_jsonl(tmp_path / "sparse.jsonl", [{"q": "Q?", "a": "x", "b": "y", "c": "z"},
                                                     {"q": "R?", "a": "z", "b": "w", "c": "v", "gold": "g"}])
    spec = "text=q,candidates=a+b+c,reference=gold"
    assert import_file(store, sparse, "qa", options=Options(mapping=parse_mapping(spec))).documents == 2


def test_candidates_named_by_columns_or_given_as_objects_keep_their_sources(store, tmp_path):
    """candidates=a+b+c: each column's name is its candidate's source (which system wrote it), on
    every road (JSONL's fast path, a JSON array, CSV); a documents row may give {"text", "source"}
    objects itself. A wrong object is named by its field."""
    from training.data.formats import Options, parse_mapping

    store.create_project("sums", k=3)
    rows = [{"doc": f"Article {i}.", "original": f"o{i}", "gpt3": f"g{i}", "cot": f"c{i}"} for i in range(2)]
    mapping = Options(mapping=parse_mapping("text=doc,candidates=original+gpt3+cot"))
    write_jsonl(tmp_path / "s.jsonl", rows)
    (tmp_path / "s.json").write_text(json.dumps([{**r, "doc": r["doc"] + " (json)"} for r in rows]))
    (tmp_path / "s.csv").write_text("doc,original,gpt3,cot\nCSV article.,x,y,z\n")
    for name in ("s.jsonl", "s.json", "s.csv"):
        import_file(store, tmp_path / name, "sums", options=mapping)
    objects = write_jsonl(tmp_path / "objects.jsonl", [{"id": "o1", "text": "Objects.", "candidates": [
        {"text": "p", "source": "pegasus"}, {"text": "q", "model": "bart"}, "r"]}])
    import_file(store, objects, "sums")
    got = {d.text: [(c.text, c.source) for c in d.candidates] for d in store.documents("sums")}
    assert got["Article 0."] == [("o0", "original"), ("g0", "gpt3"), ("c0", "cot")]
    assert got["Article 1. (json)"] == [("o1", "original"), ("g1", "gpt3"), ("c1", "cot")]
    assert got["CSV article."] == [("x", "original"), ("y", "gpt3"), ("z", "cot")]
    assert got["Objects."] == [("p", "pegasus"), ("q", "bart"), ("r", "import")]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "b1", "text": "T", "candidates": [{"source": "x"}, "b", "c"]}])
    with pytest.raises(ImportFileError) as e:
        import_file(store, bad, "sums")
    assert [(f, m) for _, f, m in e.value.problems] == [
        ("candidates[0].text", 'must be a string (or {"text", "source"}), got null')]

def test_rows_with_the_same_texts_and_their_own_ids(store, tmp_path):
    """Documents with ids of their own stay apart whatever their texts, from JSONL and from a JSON
    array alike (two systems' identical articles are two documents); preference rows with the same
    prompt and answers are one item rated twice, and the import says which ids joined which."""
    store.create_project("docs", k=2)
    rows = [{"id": f"d{i}", "text": "Same article.", "candidates": ["x", "y"]} for i in range(2)]
    write_jsonl(tmp_path / "d.jsonl", rows)
    (tmp_path / "d.json").write_text(json.dumps([{**r, "id": r["id"] + "j"} for r in rows]))
    assert import_file(store, tmp_path / "d.jsonl", "docs").documents == 2
    assert import_file(store, tmp_path / "d.json", "docs").documents == 2
    store.create_project("prefs", k=2)
    pairs = [{"id": f"p{i}", "prompt": "Capital of Peru?", "chosen": "Lima.", "rejected": "Cusco."} for i in range(5)]
    report = import_file(store, write_jsonl(tmp_path / "p.jsonl", pairs), "prefs")
    assert (report.documents, report.rankings, report.merged) == (1, 5, 4)
    assert report.merged_ids == [("p1", "p0"), ("p2", "p0"), ("p3", "p0")]
    assert ("4 rows had the same text and candidates as an earlier row with another id and joined that row's "
            "document (ids p1 into p0, p2 into p0, p3 into p0, ...)") in str(report)

def test_csv_documents_without_id_through_a_mapping_gzipped_or_from_parquet(store, tmp_path):
    """The documents layout by every road: a CSV with no id column, a CSV whose columns a --map
    names (candidates=a+b), a .tsv.gz with candidate_N columns and a meta cell, and Parquet
    extras that JSON cannot hold as they are (a date) kept as text."""
    import datetime
    import gzip

    import pyarrow as pa

    from training.data.formats import Options, parse_mapping

    store.create_project("news", k=2)
    (tmp_path / "noid.csv").write_text("text,candidate_1,candidate_2\nA text,x,y\n", encoding="utf-8")
    (tmp_path / "mapped.csv").write_text("question,a1,a2,topic\nWhy?,yes,no,why\n", encoding="utf-8")
    with gzip.open(tmp_path / "packed.tsv.gz", "wt", encoding="utf-8") as f:
        f.write('id\ttext\tcandidate_2\tcandidate_1\tmeta\treference\ng1\tZipped\tsecond\tfirst\t{"k": 1}\t\n')
    pq.write_table(pa.table({"id": ["p1"], "text": ["From parquet"], "candidates": [["c", "d"]],
                             "when": [datetime.date(2026, 11, 29)]}), tmp_path / "d.parquet")
    import_file(store, tmp_path / "noid.csv", "news")
    import_file(store, tmp_path / "mapped.csv", "news",
                options=Options(mapping=parse_mapping("text=question,candidates=a1+a2")))
    import_file(store, tmp_path / "packed.tsv.gz", "news")
    import_file(store, tmp_path / "d.parquet", "news")
    rows = {r["text"]: r for r in export_rows(store, "news", "documents")}
    assert rows["A text"]["candidates"] == ["x", "y"] and len(rows["A text"]["id"]) == 16
    assert rows["Why?"]["candidates"] == ["yes", "no"] and rows["Why?"]["meta"] == {"topic": "why"}
    assert (rows["Zipped"]["candidates"], rows["Zipped"]["meta"]) == (["first", "second"], {"k": 1})
    assert "reference" not in rows["Zipped"]
    assert rows["From parquet"]["meta"] == {"when": "2026-11-29"}
    (tmp_path / "deep.csv").write_text('id,text,candidate_1,candidate_2,meta\nz,T,a,b,"' + "[" * 50_000 + '"\n',
                                       encoding="utf-8")
    with pytest.raises(ImportFileError, match="line 2: meta: not valid JSON"):
        import_file(store, tmp_path / "deep.csv", "news")


def test_a_mapping_onto_candidate_columns_and_bad_rows_past_the_problem_cap(store, tmp_path):
    """A mapping may name CSV-layout columns (candidate_1=...); past MAX_PROBLEMS a bad row is
    still refused, not passed on half-checked (a crash before); a preview tells the CSV layout."""
    from annotate_app import admin
    from training.data.formats import Options, parse_mapping

    store.create_project("news", k=2)
    (tmp_path / "m.csv").write_text("key,body,s1,s2\nk1,Text,one,two\n", encoding="utf-8")
    mapping = parse_mapping("id=key,text=body,candidate_1=s1,candidate_2=s2")
    import_file(store, tmp_path / "m.csv", "news", fmt="documents", options=Options(mapping=mapping))
    assert [r["candidates"] for r in export_rows(store, "news", "documents")] == [["one", "two"]]
    many = "key,body,s1\n" + "".join(f"k{i},Text {i},x\n" for i in range(MAX_PROBLEMS + 20))
    (tmp_path / "bad.csv").write_text(many, encoding="utf-8")
    before = table_counts(store)
    with pytest.raises(ImportFileError) as e:  # every row lacks a candidate column
        import_file(store, tmp_path / "bad.csv", "news", fmt="documents",
                    options=Options(mapping=parse_mapping("id=key,text=body")))
    assert len(e.value.problems) == MAX_PROBLEMS and e.value.stopped_at == MAX_PROBLEMS + 2  # (CSV: header first)
    assert table_counts(store) == before
    csv_layout = b"id,text,candidate_1,candidate_2\nz,T,a,b\n"
    assert admin.preview_upload("d.csv", csv_layout).detected == "documents"


def test_jsonl_saved_as_json_with_a_long_first_row_is_read_as_rows(store, tmp_path):
    from training.data import sources

    store.create_project("prefs", k=2)
    long = {"prompt": "p " * (sources.CHUNK // 2 + 10), "chosen": "a", "rejected": "b"}
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(long) + "\n" + json.dumps({**long, "prompt": "q"}) + "\n", encoding="utf-8")
    assert import_file(store, path, "prefs").documents == 2


def test_pairs_round_trip(store, tmp_path):
    store.create_project("prefs", k=2)
    path = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    assert detect_format(path) == "pairs"
    report = import_file(store, path, "prefs", source_annotator="trl-labels")
    assert (report.documents, report.candidates, report.rankings) == (3, 6, 3)
    source = store.get_annotator("trl-labels")
    assert source.role == "source" and source.active
    rows = list(export_rows(store, "prefs", "pairs"))
    assert [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows] == PAIRS
    assert {r["annotator"] for r in rows} == {"trl-labels"}
    # importing the same file again: every line is a duplicate, nothing written
    before = table_counts(store)
    with pytest.raises(ImportFileError) as e:
        import_file(store, path, "prefs", source_annotator="trl-labels")
    assert [(ln, f) for ln, f, _ in e.value.problems] == [(1, "id"), (2, "id"), (3, "id")]
    assert "the same prompt and candidates are already in project 'prefs'" in e.value.problems[0][2]
    assert table_counts(store) == before


def test_pairs_export_expands_rankings_and_drops_ties(store, tmp_path):
    store.create_project("ties", k=3, allow_ties=True)
    store.add_documents("ties", [NewDocument("d", "Body.", ["A", "B", "C"], title="Head")])
    doc = store.get_document_by_ext_id("ties", "d")
    a, b, c = (x.id for x in doc.candidates)
    ann1, _ = store.add_annotator("ann1")
    ann2, _ = store.add_annotator("ann2")
    store.save_ranking(ann1, doc.id, {a: 1, b: 2, c: 3})
    store.save_ranking(ann2, doc.id, {a: 2, b: 1, c: 1})  # B and C tied first
    pairs = [(r["annotator"], r["chosen"], r["rejected"]) for r in export_rows(store, "ties", "pairs")]
    assert pairs == [("ann1", "A", "B"), ("ann1", "A", "C"), ("ann1", "B", "C"),
                     ("ann2", "B", "A"), ("ann2", "C", "A")]
    assert {r["prompt"] for r in export_rows(store, "ties", "pairs")} == {"Head\n\nBody."}
    rankings = list(export_rows(store, "ties", "rankings"))
    assert [r["ranking_ids"] for r in rankings] == [[[a], [b], [c]], [[b, c], [a]]]
    assert rankings[1]["ranking_texts"] == [["B", "C"], ["A"]]
    assert list(ranking_pairs([[1], [2, 3], [4]])) == [(1, 2), (1, 3), (1, 4), (2, 4), (3, 4)]


def test_rankings_export_only_current_version(store, project):
    doc = store.get_document_by_ext_id("p", "d0")
    ids = [c.id for c in doc.candidates]
    ann, _ = store.add_annotator("ann")
    store.save_ranking(ann, doc.id, {ids[0]: 1, ids[1]: 2, ids[2]: 3}, seconds=4.0)
    store.save_ranking(ann, doc.id, {ids[0]: 3, ids[1]: 1, ids[2]: 2}, seconds=2.5)
    [row] = list(export_rows(store, "p", "rankings"))
    assert row["ranking_ids"] == [[ids[1]], [ids[2]], [ids[0]]]
    assert (row["version"], row["seconds"], row["annotator"], row["document_ext_id"]) == (2, 2.5, "ann", "d0")


def test_slf5k_import_and_critiques_export(store, tmp_path):
    store.create_project("tldr", k=2)
    path = write_jsonl(tmp_path / "slf.jsonl", SLF5K)
    assert detect_format(path) == "slf5k"
    report = import_file(store, path, "tldr", source_annotator="slf5k")
    assert (report.documents, report.candidates, report.critiques, report.rankings) == (2, 2, 2, 0)
    doc = store.get_document_by_ext_id("tldr", "s1")
    assert doc.title == "TIFU by locking my keys in" and doc.text.startswith("I locked my keys")
    assert [c.text for c in doc.candidates] == ["I locked my keys in the car."]
    assert doc.reference == "Locked keys in car, waited two hours." and doc.meta == {"subreddit": "r/tifu"}
    crit = list(export_rows(store, "tldr", "critiques"))
    assert [(r["candidate"], r["critique"], r["annotator"]) for r in crit] == [
        (row["generated_summary_for_feedback"], row["feedback"], "slf5k") for row in SLF5K]
    second = store.get_document(crit[1]["document_id"])
    assert second.reference is None  # an empty ideal summary is no reference


def test_critiques_export_with_span(store, project):
    doc = store.get_document_by_ext_id("p", "d1")
    cand = doc.candidates[1]
    ann, _ = store.add_annotator("ann")
    store.save_critique(ann, cand.id, "Repeats itself.", span=(0, 6))
    [row] = list(export_rows(store, "p", "critiques"))
    assert (row["candidate"], row["critique"], row["span_text"]) == (cand.text, "Repeats itself.", cand.text[:6])
    assert (row["span_start"], row["span_end"], row["document_ext_id"]) == (0, 6, "d1")


# -- refused files: every problem named by line and field, nothing written -------------------
GOOD = {"id": "n1", "title": "t", "text": "some text", "candidates": ["a", "b", "c"]}


def jl(*rows) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


BAD_FILES = [
    # (name, file name, bytes, format, expected (line, field) pairs)
    ("not json", "f.jsonl", jl(GOOD, "{not json"), "documents", [(2, "json")]),
    ("missing text", "f.jsonl", jl({k: v for k, v in GOOD.items() if k != "text"}), "documents", [(1, "text")]),
    ("whitespace text", "f.jsonl", jl({**GOOD, "text": "  \t "}), "documents", [(1, "text")]),
    ("candidates not a list", "f.jsonl", jl({**GOOD, "candidates": {"a": 1}}), "documents", [(1, "candidates")]),
    ("candidate not a string", "f.jsonl", jl(GOOD, {**GOOD, "id": "n2", "candidates": ["a", 2, "c"]}),
     "documents", [(2, "candidates[1]")]),
    ("empty candidate", "f.jsonl", jl({**GOOD, "candidates": ["a", " ", "c"]}), "documents", [(1, "candidates[1]")]),
    ("id wrong type", "f.jsonl", jl({**GOOD, "id": [1]}), "documents", [(1, "id")]),
    ("title wrong type", "f.jsonl", jl({**GOOD, "title": 5}), "documents", [(1, "title")]),
    ("meta wrong type", "f.jsonl", jl({**GOOD, "meta": "x"}), "documents", [(1, "meta")]),
    ("row not an object", "f.jsonl", jl(GOOD, "[1, 2]"), "documents", [(2, "line")]),
    ("duplicate in file", "f.jsonl", jl(GOOD, {**GOOD, "candidates": ["x", "y", "z"]}), "documents", [(2, "id")]),
    ("already in project", "f.jsonl", jl(GOOD, {**GOOD, "id": "d1"}), "documents", [(2, "id")]),
    ("one candidate", "f.jsonl", jl({**GOOD, "candidates": ["a"]}), "documents", [(1, "candidates")]),
    ("K differs", "f.jsonl", jl(GOOD, {**GOOD, "id": "n2", "candidates": ["a", "b", "c", "d"]}),
     "documents", [(2, "candidates")]),
    ("not utf-8", "f.jsonl", jl(GOOD) + b'{"id": "n2", "text": "caf\xe9", "candidates": ["a", "b", "c"]}\n', "documents", [(2, "encoding")]),
    ("empty file", "f.jsonl", b"", "documents", [(0, "file")]),
    ("blank lines only", "f.jsonl", b"\n  \n", "documents", [(0, "file")]),
    ("pairs into K=3", "f.jsonl", jl({"prompt": "p", "chosen": "c", "rejected": "r"}), "pairs",
     [(1, "candidates")]),
    ("slf5k empty feedback", "f.jsonl", jl({**SLF5K[0], "feedback": " "}), "slf5k", [(1, "feedback")]),
    ("slf5k missing post", "f.jsonl", jl({k: v for k, v in SLF5K[0].items() if k != "post"}), "slf5k",
     [(1, "post")]),
    ("csv empty cell", "f.csv", b"id,title,text,candidate_1,candidate_2,candidate_3\nx,t,body,a,,c\n",
     "documents", [(2, "candidates[1]")]),
    ("csv short row", "f.csv", b"id,title,text,candidate_1,candidate_2,candidate_3\nx,t,body,a,b\n",
     "documents", [(2, "row")]),
    ("csv two candidate columns", "f.csv", b"id,text,candidate_1,candidate_2\nx,body,a,b\n",
     "documents", [(2, "candidates")]),
    ("csv bad quoting", "f.csv", b'id,text,candidate_1,candidate_2,candidate_3\nx,"b"junk,a,b,c\ny,t,a,b,c\n',
     "documents", [(2, "row")]),
    ("csv not utf-8", "f.csv", b"id,text,candidate_1,candidate_2,candidate_3\nx,b\xff,a,b,c\n", "documents",
     [(2, "encoding")]),
]


@pytest.mark.parametrize("name,fname,data,fmt,expected", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_refused_file_names_line_and_field_and_writes_nothing(store, project, tmp_path, name, fname, data,
                                                              fmt, expected):
    path = tmp_path / fname
    path.write_bytes(data)
    before = table_counts(store)
    with pytest.raises(ImportFileError) as e:
        import_file(store, path, "p", fmt=fmt, source_annotator="src")
    got = [(ln, f) for ln, f, _ in e.value.problems]
    assert got == expected, e.value.problems
    line, fld = expected[0]
    assert f"line {line}: {fld}:" in str(e.value)
    assert table_counts(store) == before
    with pytest.raises(NotFound):
        store.get_annotator("src")  # the source annotator was not created either


def _damaged_files() -> list[tuple[str, bytes, str]]:
    """(file name, bytes, what the message must say) for files a reader cannot get through."""
    import gzip

    pairs = b"".join(b'{"prompt": "p%d", "chosen": "a", "rejected": "b"}\n' % i for i in range(3000))
    packed = gzip.compress(pairs)
    return [
        ("bad.jsonl.gz", b"not gzip at all", "cannot be read at its start: BadGzipFile"),
        ("cut.jsonl.gz", packed[: len(packed) * 2 // 3], "cannot be read after row"),
        ("bad.parquet", b"PAR1 not a parquet file PAR1", "cannot be read at its start: ArrowInvalid"),
        ("latin1.csv", "prompt,chosen,rejected\ncaf\xe9,a,b\n".encode("latin-1"), "not UTF-8 (byte 0xe9)"),
        ("deep.jsonl", b"[" * 100_000 + b"\n", "line 1: json: not valid JSON (nested too deeply)"),
        ("deep.json", b"[" + b"[" * 100_000, "nested too deeply"),
        ("latin1.jsonl", '{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n'.encode("latin-1"),
         "line 1: encoding: not UTF-8"),
        ("cut.json", b'[{"id": "a"', "line 1: json: item 1 of the array is not valid JSON"),
        ("numbers.json", b"[1, 2, 3]", "must be a JSON object, got a number"),
        ("two-lists.json", (b'{"train": [\n  {"prompt": "p", "chosen": "a", "rejected": "b"}],\n'
                            b' "test": [{"prompt": "q", "chosen": "a", "rejected": "b"}]}\n'),
         "the file is one JSON object spread over several lines, not a list of rows"),
        ("control.jsonl", b'{"prompt": "a\tb\x01", "chosen": "a", "rejected": "b"}\n',
         "not valid JSON (Invalid control character at column"),
        ("brace.jsonl", b'{"prompt": "p", "chosen": "a", "rejected": "b"\n',  # a closing brace missing
         'not valid JSON (it ends at column 46 before the row is complete: a closing }, ] or " missing?)'),
    ]


@pytest.mark.parametrize("fmt", ["auto", "pairs"])
def test_a_damaged_file_is_refused_by_name_and_nothing_changes(store, tmp_path, fmt):
    """Damaged gzip or Parquet files, text that is not UTF-8, JSON nested too deeply, a first row that
    cannot be read: one ValidationError that says what is wrong (no traceback), the database as it was."""
    from annotate_app import admin

    store.create_project("prefs", k=2)
    import_file(store, write_jsonl(tmp_path / "ok.jsonl", PAIRS), "prefs")
    before = table_counts(store)
    for name, data, says in _damaged_files():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValidationError) as e:
            import_file(store, path, "prefs", fmt=fmt)
        assert says in str(e.value) or (fmt != "auto" and "nested too deeply" in says), (name, str(e.value))
        assert table_counts(store) == before and store.check_counters() == [], name
        if fmt == "auto" and "after row" not in says:  # the dashboard's preview of its first rows says it too
            try:
                preview = admin.preview_upload(name, data)
                assert preview.detected is None and says.split(": ", 1)[-1][:20] in preview.note, (name, preview)
            except ValidationError as e:
                assert says in str(e) and "tokenwise-import-" not in str(e), (name, str(e))


def test_refused_file_lists_every_problem_up_to_the_cap(store, project, tmp_path):
    rows = [GOOD] + [{**GOOD, "id": f"x{i}", "text": ""} for i in range(3)] + ["oops"]
    with pytest.raises(ImportFileError) as e:
        import_file(store, write_jsonl(tmp_path / "f.jsonl", rows), "p")
    assert [(ln, f) for ln, f, _ in e.value.problems] == [(2, "text"), (3, "text"), (4, "text"), (5, "line")]
    many = [{**GOOD, "id": f"x{i}", "candidates": ["a"]} for i in range(200)]
    with pytest.raises(ImportFileError) as e:
        import_file(store, write_jsonl(tmp_path / "g.jsonl", many), "p")
    assert len(e.value.problems) == MAX_PROBLEMS  # real problems only; where checking stopped is said apart
    assert {f for _, f, _ in e.value.problems} == {"candidates"} and e.value.stopped_at == MAX_PROBLEMS + 1
    assert e.value.count() == f"{MAX_PROBLEMS} problems or more" and "checking stopped at line 51" in str(e.value)


def test_import_into_missing_project_says_how_to_create_it(store, tmp_path):
    with pytest.raises(NotFound, match="tokenwise project create"):
        import_file(store, write_jsonl(tmp_path / "d.jsonl", DOCS), "nope")


def test_import_lands_whole_or_not_at_all(store, tmp_path, monkeypatch):
    """A failure after some batches were written removes every row already staged."""
    from training.data import imports

    store.create_project("prefs", k=2)
    before = table_counts(store)
    calls = []

    def failing(imp, rows, more=()):
        calls.append(len(rows))
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return type(store).write_item_batch(store, imp, rows, more)

    monkeypatch.setattr(imports, "BATCH", 1)
    monkeypatch.setattr(store, "write_item_batch", failing)
    with pytest.raises(RuntimeError):
        import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS), "prefs")
    assert calls == [1, 1, 1]
    assert table_counts(store) == before
    assert store.check_counters() == []


def test_format_option_checks(store, project, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD])
    with pytest.raises(ValidationError, match="format"):
        import_file(store, path, "p", fmt="xml")
    with pytest.raises(ValidationError, match="does not exist"):
        import_file(store, tmp_path / "missing.jsonl", "p")


# -- exports: unknown kinds, Parquet, schemas --------------------------------------------------
def test_unknown_export_kind_lists_known_ones(store, project):
    with pytest.raises(ValidationError) as e:
        export_rows(store, "p", "everything")
    for kind in EXPORT_KINDS:
        assert kind in str(e.value)


def _annotated(store, tmp_path):
    store.create_project("news", k=3, allow_ties=True)
    import_file(store, write_jsonl(tmp_path / "d.jsonl", DOCS), "news")
    ann, _ = store.add_annotator("ann")
    for i, doc in enumerate(store.iter_documents("news")):
        a, b, c = (x.id for x in doc.candidates)
        store.save_ranking(ann, doc.id, {a: 1, b: 1 + (i % 2), c: 3}, seconds=1.5 * i)
        store.save_critique(ann, b, f"Too vague ({i}).", span=(0, 3) if i else None)


def test_parquet_export_readable(store, tmp_path):
    _annotated(store, tmp_path)
    assert set(CORE_KINDS) <= set(EXPORT_KINDS)
    for kind in CORE_KINDS:
        rows = list(export_rows(store, "news", kind))
        assert rows, kind
        out = tmp_path / f"{kind}.parquet"
        assert write_export(export_rows(store, "news", kind), out, "parquet", kind=kind) == len(rows)
        table = pq.read_table(out).to_pylist()
        assert len(table) == len(rows)
        for got, want in zip(table, rows):
            want = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v for k, v in want.items()}
            assert {k: got[k] for k in want} == want
    # without a fixed schema (an export kind added later), the schema is inferred
    out = tmp_path / "x.parquet"
    write_export(iter([{"a": None, "b": 1}, {"a": "s", "b": 2}]), out, "parquet")
    assert pq.read_table(out).to_pylist() == [{"a": None, "b": 1}, {"a": "s", "b": 2}]
    with pytest.raises(ValidationError, match="needs an output file"):
        write_export(export_rows(store, "news", "pairs"), None, "parquet")


def test_jsonl_export_to_file(store, tmp_path):
    _annotated(store, tmp_path)
    out = tmp_path / "sub" / "pairs.jsonl"
    n = write_export(export_rows(store, "news", "pairs"), out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert n == len(lines) == 2 + 3 + 2  # docs 0 and 2 have a tie for first (2 pairs), doc 1 none (3)
    assert [json.loads(x) for x in lines] == list(export_rows(store, "news", "pairs"))


def test_exported_rows_and_samples_match_schemas(store, tmp_path):
    _annotated(store, tmp_path)
    for kind, name in [("documents", "documents"), ("rankings", "rankings"), ("pairs", "pairs"),
                       ("critiques", "critiques")]:
        validator = jsonschema.Draft202012Validator(schema(name))
        for row in export_rows(store, "news", kind):
            validator.validate(row)
    for name, rows in [("documents", DOCS), ("pairs", PAIRS), ("slf5k", SLF5K)]:
        jsonschema.Draft202012Validator.check_schema(schema(name))
        for row in rows:
            jsonschema.Draft202012Validator(schema(name)).validate(row)
    # the schemas refuse what the importer refuses
    for name, bad in [("documents", {**GOOD, "candidates": ["a"]}), ("documents", {**GOOD, "text": " "}),
                      ("pairs", {"prompt": "p", "chosen": "c"}),
                      ("slf5k", {**SLF5K[0], "feedback": ""})]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(schema(name)).validate(bad)
    # ... and take what it takes: extra fields (kept in meta), an SLF5K row without a title
    jsonschema.Draft202012Validator(schema("documents")).validate({**GOOD, "extra": 1})
    jsonschema.Draft202012Validator(schema("slf5k")).validate({k: v for k, v in SLF5K[0].items() if k != "title"})


# -- streaming ------------------------------------------------------------------------------
def test_import_streams_with_modest_memory(store, tmp_path):
    n = 20_000
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"id": f"doc-{i}", "title": f"Title {i}", "text": f"Body of document {i}. " * 8,
                                "candidates": [f"cand {j} of {i}" for j in range(3)]}) + "\n" for i in range(n))
    size_mb = path.stat().st_size / 2**20
    store.create_project("big", k=3)
    tracemalloc.start()
    try:
        report = import_file(store, path, "big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.documents == n and store.count_documents("big") == n
    # reading the file whole would need at least its size; streaming keeps ~2 MB (ids seen so far).
    assert peak < size_mb * 2**20, (peak / 2**20, size_mb)  # less than the file itself (~6 MB)


def test_bad_meta_type_is_named(store, project, tmp_path):
    with pytest.raises(ImportFileError) as e:
        import_file(store, write_jsonl(tmp_path / "f.jsonl", [{**GOOD, "meta": []}]), "p")
    assert [(ln, f) for ln, f, _ in e.value.problems] == [(1, "meta")]


def test_schema_readme_lists_every_format():
    readme = (SCHEMAS / "README.md").read_text()
    for name in ("documents", "pairs", "slf5k", "rankings", "critiques"):
        assert f"`{name}.schema.json`" in readme
        jsonschema.Draft202012Validator.check_schema(schema(name))
    for kind in EXPORT_KINDS:  # the ILF kinds included
        assert f"export {kind}" in readme


def test_hf_layout_export(store, tmp_path):
    _annotated(store, tmp_path)
    out = tmp_path / "hf_pairs"
    n = write_export(export_rows(store, "news", "pairs"), out, "hf", kind="pairs")
    table = pq.read_table(out / "data" / "train-00000-of-00001.parquet").to_pylist()
    assert len(table) == n == 7
    assert table == list(export_rows(store, "news", "pairs"))
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "path: data/train-*.parquet" in card
    with pytest.raises(ValidationError, match="needs an output folder"):
        write_export(export_rows(store, "news", "pairs"), None, "hf")


def test_ids_extras_bom_and_crlf(store, tmp_path):
    store.create_project("prefs", k=2)
    path = tmp_path / "p.jsonl"
    rows = [{"id": 7, "prompt": "P", "chosen": "C", "rejected": "R", "score_chosen": 9.5},
            {"prompt": "P2", "chosen": "C2", "rejected": "R2"}]
    path.write_bytes("\ufeff".encode() + b"".join(json.dumps(r).encode() + b"\r\n" for r in rows))
    assert import_file(store, path, "prefs").documents == 2
    doc = store.get_document_by_ext_id("prefs", "7")
    assert (doc.text, doc.meta) == ("P", {"score_chosen": 9.5})
    second = store.iter_documents("prefs")
    assert [len(d.ext_id) for d in second] == [1, 16]  # no id: a 16-hex-digit content hash


# -- streaming import: invisible until the flip, cleaned up after a kill -------------------------
def table_rows(store) -> dict[str, list[tuple]]:
    """Every row of every table (what "the database content" means in the tests below)."""
    return {t: sorted(map(tuple, store.conn.execute(f"SELECT * FROM [{t}]").fetchall()), key=repr)
            for t in store.db.table_names()}


def big_docs(n: int, bad_line: int | None = None) -> list:
    rows = [{"id": f"b{i}", "title": f"T{i}", "text": f"Text {i}.", "candidates": [f"x{i}", f"y{i}", f"z{i}"]}
            for i in range(n)]
    if bad_line is not None:
        rows[bad_line - 1]["candidates"] = ["only one"]
    return rows


def test_refused_import_leaves_the_database_unchanged(store, project, tmp_path, monkeypatch):
    """Even after batches were staged (the bad line is near the end), every row is as before."""
    from training.data import imports

    monkeypatch.setattr(imports, "BATCH", 5)
    ann, _ = store.add_annotator("ann")
    doc = store.documents("p")[0]
    store.save_ranking(ann, doc.id, {c.id: i + 1 for i, c in enumerate(doc.candidates)})
    before = table_rows(store)
    with pytest.raises(ImportFileError) as e:
        import_file(store, write_jsonl(tmp_path / "b.jsonl", big_docs(40, bad_line=38)), "p")
    assert [(ln, f) for ln, f, _ in e.value.problems] == [(38, "candidates")]
    assert table_rows(store) == before
    pairs = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    store.create_project("prefs", k=2)
    before = table_rows(store)
    with pytest.raises(ValidationError, match="is a person"):  # an existing person is never credited
        import_file(store, pairs, "prefs", source_annotator="ann")
    assert table_rows(store) == before


def test_staged_rows_are_invisible_until_the_flip(store, project, tmp_path, monkeypatch):
    from training.data import imports

    monkeypatch.setattr(imports, "BATCH", 4)
    ann, _ = store.add_annotator("ann")
    seen = {}
    flip = type(store).finish_import

    def look_then_flip(imp):
        seen["staged"] = store.scalar("SELECT COUNT(*) FROM documents WHERE project_id = ?", (imp.staging_id,))
        seen["documents"] = [d.ext_id for d in store.iter_documents("p")]
        seen["totals"] = store.totals("p")
        seen["queue"] = store.queue_counts(ann, "p")
        seen["export"] = len(list(export_rows(store, "p", "documents")))
        seen["projects"] = [q.name for q in store.list_projects()]
        return flip(store, imp)

    monkeypatch.setattr(store, "finish_import", look_then_flip)
    import_file(store, write_jsonl(tmp_path / "b.jsonl", big_docs(10)), "p")
    assert seen == {"staged": 10, "documents": ["d0", "d1", "d2"], "export": 3, "projects": ["p"],
                    "totals": {"documents": 3, "complete": 0, "rankings": 0, "critiques": 0},
                    "queue": {"done": 0, "assigned": 3, "left": 3}}
    assert store.totals("p")["documents"] == 13 and store.queue_counts(ann, "p")["left"] == 13
    assert store.check_counters() == [] and store.db["imports"].count == 0
    assert [q["name"] for q in store.db["projects"].rows] == ["p"]  # the staging project is gone


KILLED_IMPORT = """
import sys, time
import training.data.imports as imports
from training.store import Store
imports.BATCH = 10
s = Store(sys.argv[1])
write = s.write_import_batch
def slow(imp, rows):
    write(imp, rows)
    print("batch", flush=True)
    time.sleep(0.2)
s.write_import_batch = slow
imports.import_file(s, sys.argv[2], "p")
"""


def test_killed_import_leaves_no_visible_rows_and_the_next_open_cleans_up(store, project, db_path, tmp_path):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    before = table_rows(store)
    path = write_jsonl(tmp_path / "b.jsonl", big_docs(500))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_IMPORT, db_path, str(path)],
                            stdout=subprocess.PIPE, text=True, env=env)
    for _ in range(3):  # three batches are committed
        assert proc.stdout.readline() == "batch\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    raw = sqlite3.connect(db_path)  # what a reader sees before anybody cleans up
    assert raw.execute("SELECT COUNT(*) FROM documents WHERE project_id = ?", (project.id,)).fetchone() == (3,)
    assert raw.execute("SELECT COUNT(*) FROM documents").fetchone()[0] >= 33
    raw.close()
    assert store.totals("p")["documents"] == 3 and len(list(export_rows(store, "p", "documents"))) == 3
    from training.store import Store

    with Store(db_path) as s:  # the next open removes the dead import's rows
        assert table_rows(s) == before
        assert s.check_counters() == []


# -- issue 13 item 6: imported rankings are a source's, never a person's --------------------------
def test_imported_rankings_are_credited_to_a_source_never_to_a_person(store, tmp_path, db_path, monkeypatch):
    from training.errors import AuthError

    store.create_project("prefs", k=2)
    store.add_annotator("boss", role="admin")
    store.add_annotator("gone")
    store.revoke_annotator("gone")
    path = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    before = table_rows(store)
    for person in ("boss", "gone"):  # an admin, a revoked annotator: both refused, nothing written
        with pytest.raises(ValidationError, match=f"'{person}' is a person"):
            import_file(store, path, "prefs", source_annotator=person)
        assert table_rows(store) == before
    import_file(store, path, "prefs", source_annotator="trl-labels")
    source = store.get_annotator("trl-labels")
    assert source.role == "source" and source.is_source and not source.is_admin
    assert {r.annotator_id for r in store.rankings("prefs")} == {source.id}
    with pytest.raises(AuthError, match="cannot sign in"):  # a signed-in session naming it is ended
        store.active_annotator(source.id)
    assert {r["annotator"] for r in export_rows(store, "prefs", "pairs")} == {"trl-labels"}
    # the People page lists it as a source
    from apptest import open_page

    monkeypatch.setenv("TOKENWISE_DB", db_path)
    at = open_page("people.py", store.get_annotator("boss").id)
    table = at.dataframe[0].value
    assert table.loc[table["name"] == "trl-labels", "role"].tolist() == ["source"]


# -- streaming export: the fast path writes the same bytes as the row-by-row one ------------------
def test_documents_fast_export_is_byte_identical(store, tmp_path, monkeypatch):
    from training.data import exports

    monkeypatch.setattr(exports, "BATCH_ROWS", 3)  # several batches and row groups
    store.create_project("x", k=2)
    odd = 'quote " backslash \\ tab \t newline \n bell \x07 nul-ish \x1f é 中 \u2028 😀 </script>'
    rows = [
        {"id": "a1", "title": "", "text": odd, "candidates": [odd, "plain"]},
        {"id": 7, "title": "Ünïcode", "text": "t", "candidates": ["x", "y"], "reference": odd,
         "meta": {"lang": "fr", "score": 0.1, "n": 3, "nested": {"k": [1, 2.5, None, True]}, "é": "ü"}},
        {"id": "a3", "title": "T", "text": "t", "candidates": ["", "y"], "reference": ""},
        {"id": "a4", "title": "T", "text": "t", "candidates": ["x", "y"], "meta": {"esc": "\\u00e9 literal"}},
    ]
    rows[2]["candidates"][0] = "z"
    import_file(store, write_jsonl(tmp_path / "d.jsonl", rows), "x")
    store.add_documents("x", [NewDocument(f"s{i}", f"via the store {i}", ["é", "b"], meta={"ü": i, "q": '"'})
                              for i in range(4)] + [NewDocument("s9", "no meta", ["a", "b"])])
    assert isinstance(export_rows(store, "x", "documents"), exports.DocumentRows)
    for fmt in ("jsonl", "parquet"):
        fast, slow = tmp_path / f"fast.{fmt}", tmp_path / f"slow.{fmt}"
        assert write_export(export_rows(store, "x", "documents"), fast, fmt, kind="documents") == 9
        assert write_export(list(export_rows(store, "x", "documents")), slow, fmt, kind="documents") == 9
        assert fast.read_bytes() == slow.read_bytes(), fmt
    lines = (tmp_path / "fast.jsonl").read_text(encoding="utf-8").split("\n")
    assert json.loads(lines[0])["text"] == odd and json.loads(lines[1])["meta"]["é"] == "ü"
    store.create_project("empty", k=2)
    for fmt in ("jsonl", "parquet"):
        fast, slow = tmp_path / f"e-fast.{fmt}", tmp_path / f"e-slow.{fmt}"
        write_export(export_rows(store, "empty", "documents"), fast, fmt, kind="documents")
        write_export([], slow, fmt, kind="documents")
        assert fast.read_bytes() == slow.read_bytes(), fmt


def test_plain_document_fast_check_agrees_with_the_full_check():
    """Rows the fast check passes become exactly what the full check makes; others it leaves alone."""
    from training.data.imports import _import_row, _parse_documents, _plain_document, _Problems

    rows = [GOOD, {**GOOD, "id": 12, "title": None, "reference": None, "meta": None},
            {**GOOD, "id": "  padded  ", "reference": "", "meta": {"é": [1, 2.5]}},
            {k: v for k, v in GOOD.items() if k not in ("title", "reference", "meta")}]
    for obj in rows:
        assert _plain_document(obj, 3) == _import_row(_parse_documents(obj, 1, _Problems(), 3))
    bad = [{**GOOD, "id": True}, {**GOOD, "id": " "}, {**GOOD, "text": " "}, {**GOOD, "candidates": ["a", "b"]},
           {**GOOD, "candidates": ["a", "b", 3]}, {**GOOD, "candidates": ["a", "b", " "]}, {**GOOD, "title": 3},
           {**GOOD, "meta": []}, {**GOOD, "reference": 1}]
    for obj in bad:
        assert _plain_document(obj, 3) is None
        problems = _Problems()
        assert _parse_documents(obj, 1, problems, 3) is None and problems.items
    extra = {**GOOD, "extra": 1}  # not plain (the full check puts it in meta)
    assert _plain_document(extra, 3) is None and _parse_documents(extra, 1, _Problems(), 3).doc.meta["extra"] == 1


def test_import_into_an_empty_project_takes_its_place(store, tmp_path, monkeypatch):
    """The O(1) flip: the staging project becomes the project, with its name, settings, jobs,
    models and another import still running; the counters are exact."""
    from training.data import imports

    first_id = store.create_project("fresh", k=3, overlap=2, instructions="Be fair.", allow_ties=True).id
    job = store.submit("reward", {"epochs": 1}, project="fresh")
    model = store.add_model("reward", str(tmp_path / "rm"), project="fresh")
    store.update_project("fresh", active_reward_model=model.id)
    other = store.begin_import(store.get_project("fresh"), "other.jsonl")  # a second import, still writing
    monkeypatch.setattr(imports, "BATCH", 4)
    import_file(store, write_jsonl(tmp_path / "b.jsonl", big_docs(10)), "fresh")
    p = store.get_project("fresh")
    assert (p.instructions, p.k, p.overlap, p.allow_ties, p.active_reward_model) == ("Be fair.", 3, 2, True, model.id)
    assert [q.name for q in store.list_projects()] == ["fresh"]
    assert store.get_job(job.id).project_id == p.id and store.get_model(model.id).project_id == p.id
    assert store.totals("fresh") == {"documents": 10, "complete": 0, "rankings": 0, "critiques": 0}
    assert store.check_counters() == []
    assert p.id != first_id and store.get_project(first_id) == p  # whoever holds the old id finds it
    store.update_project(first_id, show_rewards=True)
    store.write_import_batch(other, [imports.ImportRow("late", "t", ["a", "b", "c"])])
    store.finish_import(other)  # the second import lands in the same project (now by moving rows)
    assert store.totals("fresh")["documents"] == 11 and store.check_counters() == []
    assert store.db["imports"].count == 0 and [r["name"] for r in store.db["projects"].rows] == ["fresh"]
    import_file(store, write_jsonl(tmp_path / "c.jsonl", [{**r, "id": "c" + r["id"]} for r in big_docs(20)]), "fresh")  # a second take-over
    last = store.get_project("fresh")
    assert last.id not in (first_id, p.id) and last.show_rewards
    assert store.get_project(first_id) == store.get_project(p.id) == last
    store.create_project("later", k=2)
    import_file(store, write_jsonl(tmp_path / "d.jsonl", [{**r, "id": "d" + r["id"]} for r in big_docs(40)]), "fresh")
    assert [q.name for q in store.list_projects()] == ["fresh", "later"]  # its new id does not move it last


def test_a_save_racing_an_imports_take_over_counts_in_the_new_project(store, project, tmp_path, monkeypatch):
    """The project's id changes under a save that read its document just before the flip: the
    counters it keeps are still the project's (they are found inside the save's transaction)."""
    from training.data import imports

    ann, _ = store.add_annotator("ann")
    doc = store.documents("p")[0]
    path = write_jsonl(tmp_path / "b.jsonl", big_docs(10))  # more than the project's 3: it takes over
    read_head = type(store)._doc_head

    def head_then_flip(document_id):
        head = read_head(store, document_id)
        monkeypatch.setattr(store, "_doc_head", lambda d: read_head(store, d))
        imports.import_file(store, path, "p")
        return head

    monkeypatch.setattr(store, "_doc_head", head_then_flip)
    store.save_annotation(ann, doc.id, {c.id: i + 1 for i, c in enumerate(doc.candidates)},
                          {doc.candidates[0].id: "Too short."})
    assert store.get_project("p").id != project.id
    assert store.totals("p") == {"documents": 13, "complete": 0, "rankings": 1, "critiques": 1}
    assert store.check_counters() == []


def test_candidates_with_the_same_text_are_refused_by_every_road(store, tmp_path):
    """JSONL and CSV (the fast path), a mapped JSON array and Parquet all name the row and the two
    candidates; nothing is imported."""
    import pandas as pd

    from training.data.formats import Options, parse_mapping

    store.create_project("news", k=3)
    rows = [{"id": "a", "text": "T.", "candidates": ["x", "y", "z"]},
            {"id": "b", "text": "U.", "candidates": ["one", "two", " one "]}]
    flat = [{"key": r["id"], "body": r["text"], **{f"s{i}": c for i, c in enumerate(r["candidates"])}} for r in rows]
    jsonl = write_jsonl(tmp_path / "d.jsonl", rows)
    csv = tmp_path / "d.csv"
    pd.DataFrame([{"id": r["id"], "text": r["text"], **{f"candidate_{i + 1}": c for i, c in enumerate(r["candidates"])}}
                  for r in rows]).to_csv(csv, index=False)
    arr = tmp_path / "d.json"
    arr.write_text(json.dumps(flat))
    parquet = tmp_path / "d.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    before = table_counts(store)
    for path, line, options in ((jsonl, 2, None), (csv, 3, None), (parquet, 2, None),  # a CSV's line 1: its header
                                (arr, 2, Options(mapping=parse_mapping("id=key,text=body,candidates=s0+s1+s2")))):
        with pytest.raises(ImportFileError) as e:
            import_file(store, path, "news", options=options)
        same = "candidates 1 and 3 have the same text, which no one can rank apart; fix or drop the row"
        assert e.value.problems == [(line, "candidates", same)], path
    assert table_counts(store) == before


def test_rows_under_one_key_of_a_json_object_are_read_as_they_are(store, tmp_path):
    """{"cnndm": [rows]} (SumCoT's shape): the rows under the object's one list of objects."""
    store.create_project("prefs", k=2)
    path = tmp_path / "one-object.json"
    path.write_text(json.dumps({"name": "set", "cnndm": [{"prompt": f"p{i}", "chosen": "a", "rejected": "b"}
                                                          for i in range(3)]}, indent=2))
    report = import_file(store, path, "prefs")
    assert (report.format, report.documents, report.rankings) == ("pairs", 3, 3)
