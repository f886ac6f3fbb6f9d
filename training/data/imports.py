"""Import files into a project: read, validate and write documents, pairs and SLF5K rows.

    from training.data.imports import import_file, validate_file
    report = import_file(store, "docs.jsonl", "news")            # all of it, or nothing

Formats (JSON Schemas in data/schemas/):
  documents  JSONL `{"id", "title", "text", "candidates": [...], "reference"?, "meta"?}`, or CSV
             with a header `id,title,text,candidate_1,...,candidate_K[,reference][,meta]`
             (`title`, `reference`, `meta` optional; `meta` is a JSON object in its cell; K = the
             number of candidate_N columns, and every cell of them must be filled).
  pairs      TRL preference JSONL `{"prompt", "chosen", "rejected"}` (+ optional "id"): one document
             per line (text = prompt) with two candidates, ranked chosen > rejected by the source
             annotator. The project must have K=2.
  slf5k      SLF5K-style JSONL `{"title", "post", "generated_summary_for_feedback", "feedback",
             "ideal_human_summary"}` (+ optional "id"): a document (title, post) with the generated
             summary as its one candidate, the feedback as the source annotator's critique of it,
             and the ideal summary as the document's reference.
Extra keys of pairs and slf5k rows are kept in the document's `meta`; documents rows refuse
unknown keys (put extra data under "meta"). Without an "id", pairs and slf5k rows get a
content hash as id, so importing the same file twice is refused as duplicates.

How an import runs (one streaming pass; memory stays flat):
  1. read the file line by line (orjson; the standard parser only to word an error) and check
     every row, collecting every problem as (line, field, message): not UTF-8, not JSON, a
     missing/empty/wrongly typed field, a duplicate id (in the file or already in the project),
     too few candidates, a K other than the project's.
  2. while no problem has been found, write the rows in batches of BATCH, each batch one short
     transaction under the import's hidden staging project (training/store/imports.py), so
     annotators' saves land between batches and none of these rows is visible yet.
  3. the end: any problem -> the staged rows are deleted and ImportFileError lists every problem
     (first MAX_PROBLEMS); otherwise one flip makes all the rows the project's at once.
A process killed mid-way leaves only staged rows, which the next Store open deletes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from training.errors import ImportFileError, ValidationError
from training.store import ImportRow, NewDocument, Store

log = logging.getLogger(__name__)

IMPORT_FORMATS = ("auto", "documents", "pairs", "slf5k")
MAX_PROBLEMS = 50
BATCH = 500

SLF5K_FIELDS = ("title", "post", "generated_summary_for_feedback", "feedback", "ideal_human_summary")


@dataclass
class ImportReport:
    path: str
    project: str
    format: str
    documents: int = 0
    candidates: int = 0
    rankings: int = 0
    critiques: int = 0
    source_annotator: str | None = None
    seconds: float = 0.0

    def __str__(self) -> str:
        by = f" by {self.source_annotator!r}" if self.source_annotator and (self.rankings or self.critiques) else ""
        return (f"imported {self.path} ({self.format}) into project {self.project!r}: "
                f"{self.documents} documents, {self.candidates} candidates, "
                f"{self.rankings} rankings, {self.critiques} critiques{by} in {self.seconds:.1f}s")


@dataclass
class _Row:
    """One parsed, valid input row: the document to add, plus what the source annotator did."""

    line: int
    doc: NewDocument
    ranking: bool = False  # pairs: candidate 0 (chosen) ranked above candidate 1 (rejected)
    critique: str | None = None  # slf5k: feedback on candidate 0


@dataclass
class _Problems:
    items: list[tuple[int, str, str]] = field(default_factory=list)
    full: bool = False

    def add(self, line: int, fld: str, msg: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append((line, fld, msg))
        elif not self.full:
            self.full = True
            self.items.append((line, "file", f"more than {MAX_PROBLEMS} problems; stopped checking here"))


# -- reading --------------------------------------------------------------------------------
def _lines(path: Path, problems: _Problems | None) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line, decoded as UTF-8 one line at a time.

    A line that is not UTF-8 is reported (with its number) and yielded with replacement
    characters so the check can go on and report the rest of the file too."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            yield n, _decode(n, raw, problems)


def _decode(n: int, raw: bytes, problems: _Problems | None) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if problems is not None:
            problems.add(n, "encoding", f"not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1});"
                         " save the file as UTF-8")
        text = raw.decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff") if n == 1 else text


def _records(path: Path, problems: _Problems | None) -> Iterator[tuple[int, Any]]:
    """(line, parsed object) for every non-blank row of a JSONL or CSV file.

    Unparseable JSON yields (line, None) after reporting it."""
    if path.suffix.lower() == ".csv":
        yield from _csv_records(path, problems)
        return
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:  # the fast path: orjson reads the bytes (and checks they are UTF-8) at once
                yield n, orjson.loads(raw)
                continue
            except orjson.JSONDecodeError:
                pass
            # blank, a BOM, not UTF-8, NaN, or bad JSON: the standard parser words the problem
            text = _decode(n, raw, problems)
            if not text.strip():
                continue
            try:
                yield n, json.loads(text)
            except json.JSONDecodeError as e:
                if problems is not None and not (problems.items and problems.items[-1][:2] == (n, "encoding")):
                    problems.add(n, "json", f"not valid JSON ({e.msg} at column {e.colno})")
                yield n, None


def _csv_records(path: Path, problems: _Problems | None) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(2**31 - 1)
    lines = _lines(path, problems)
    state = {"line": 0}

    def text_lines():
        for n, text in lines:
            state["line"] = n
            yield text

    reader = csv.reader(text_lines(), strict=True)
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    cand_cols = [i for i, h in enumerate(header) if h.startswith("candidate_")]
    known = {"id", "title", "text", "reference", "meta"}
    for h in header:
        if h not in known and not h.startswith("candidate_") and problems is not None:
            problems.add(1, h or "header", "unknown column; columns are id,title,text,candidate_1..candidate_K"
                         "[,reference][,meta]")
    if problems is not None:
        for req in ("id", "text"):
            if req not in header:
                problems.add(1, req, "missing column in the CSV header")
        if len(cand_cols) < 2:
            problems.add(1, "candidates", f"the header has {len(cand_cols)} candidate_N column(s); "
                         "a document needs at least 2")
    start = state["line"] + 1
    while True:
        line = start
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # e.g. text after a closing quote
            start = state["line"] + 1
            if problems is not None:
                problems.add(line, "row", f"not valid CSV ({e})")
            yield line, None
            continue
        start = state["line"] + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            if problems is not None:
                problems.add(line, "row", f"has {len(cells)} cells but the header has {len(header)}")
            yield line, None
            continue
        row: dict[str, Any] = {h: c for h, c in zip(header, cells) if not h.startswith("candidate_")}
        row["candidates"] = [cells[i] for i in cand_cols]
        if "meta" in row:
            if row["meta"].strip():
                try:
                    row["meta"] = json.loads(row["meta"])
                except json.JSONDecodeError as e:
                    if problems is not None:
                        problems.add(line, "meta", f"not valid JSON ({e.msg})")
                    yield line, None
                    continue
            else:
                del row["meta"]
        if "reference" in row and not row["reference"].strip():
            del row["reference"]
        yield line, row


def detect_format(path: str | Path) -> str:
    """Guess documents / pairs / slf5k from a file's suffix and its first row's keys."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return "documents"
    for _, obj in _records(path, None):
        if isinstance(obj, dict):
            if {"prompt", "chosen", "rejected"} <= obj.keys():
                return "pairs"
            if "generated_summary_for_feedback" in obj or "post" in obj:
                return "slf5k"
            return "documents"
        break
    return "documents"


# -- validating one row -----------------------------------------------------------------------
def _type_name(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number")


def _text(obj: dict, key: str, line: int, problems: _Problems, *, required: bool = True,
          allow_empty: bool = False) -> str | None:
    if key not in obj or (obj[key] is None and not required):
        if required:
            problems.add(line, key, "missing (required field)")
        return None
    v = obj[key]
    if not isinstance(v, str):
        problems.add(line, key, f"must be a string, got {_type_name(v)}")
        return None
    if not allow_empty and not v.strip():
        problems.add(line, key, "is empty")
        return None
    return v


def _ext_id(obj: dict, line: int, problems: _Problems, *, required: bool) -> str | None:
    if "id" not in obj or obj["id"] is None:
        if required:
            problems.add(line, "id", "missing (required field)")
        return None
    v = obj["id"]
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        problems.add(line, "id", f"must be a string or an integer, got {_type_name(v)}")
        return None
    v = str(v).strip()
    if not v:
        problems.add(line, "id", "is empty")
        return None
    return v


def _content_id(*parts: str) -> str:
    h = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return h[:16]


def _parse_documents(obj: dict, line: int, problems: _Problems, k: int) -> _Row | None:
    before = len(problems.items)
    unknown = set(obj) - {"id", "title", "text", "candidates", "reference", "meta"}
    for key in sorted(unknown):
        problems.add(line, key, "unknown field (put extra data under \"meta\")")
    ext_id = _ext_id(obj, line, problems, required=True)
    title = _text(obj, "title", line, problems, required=False, allow_empty=True) or ""
    text = _text(obj, "text", line, problems)
    reference = _text(obj, "reference", line, problems, required=False, allow_empty=True)
    meta = {} if obj.get("meta") is None else obj["meta"]
    if not isinstance(meta, dict):
        problems.add(line, "meta", f"must be an object, got {_type_name(meta)}")
    cands = obj.get("candidates")
    if "candidates" not in obj:
        problems.add(line, "candidates", "missing (required field)")
    elif not isinstance(cands, list):
        problems.add(line, "candidates", f"must be a list of strings, got {_type_name(cands)}")
    else:
        for i, c in enumerate(cands):
            if not isinstance(c, str):
                problems.add(line, f"candidates[{i}]", f"must be a string, got {_type_name(c)}")
            elif not c.strip():
                problems.add(line, f"candidates[{i}]", "is empty")
        if len(cands) < 2:
            problems.add(line, "candidates", f"needs at least 2 candidates, got {len(cands)}")
        elif len(cands) != k:
            problems.add(line, "candidates", f"has {len(cands)} candidates but the project has K={k}")
    if len(problems.items) > before:
        return None
    return _Row(line, NewDocument(ext_id, text, list(cands), title=title, meta=meta,
                                  reference=reference or None))


def _extras(obj: dict, known: Iterable[str]) -> dict:
    extra = {k: v for k, v in obj.items() if k not in set(known) and k != "meta"}
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    return {**meta, **extra}


def _parse_pairs(obj: dict, line: int, problems: _Problems, k: int) -> _Row | None:
    before = len(problems.items)
    prompt = _text(obj, "prompt", line, problems)
    chosen = _text(obj, "chosen", line, problems)
    rejected = _text(obj, "rejected", line, problems)
    ext_id = _ext_id(obj, line, problems, required=False)
    if k != 2:
        problems.add(line, "candidates", f"a pair has 2 candidates but the project has K={k};"
                     " import pairs into a project made with --k 2")
    if len(problems.items) > before:
        return None
    ext_id = ext_id or _content_id(prompt, chosen, rejected)
    meta = _extras(obj, ("id", "prompt", "chosen", "rejected"))
    return _Row(line, NewDocument(ext_id, prompt, [chosen, rejected], meta=meta), ranking=True)


def _parse_slf5k(obj: dict, line: int, problems: _Problems, k: int) -> _Row | None:
    before = len(problems.items)
    title = _text(obj, "title", line, problems, allow_empty=True)
    post = _text(obj, "post", line, problems)
    summary = _text(obj, "generated_summary_for_feedback", line, problems)
    feedback = _text(obj, "feedback", line, problems)
    ideal = _text(obj, "ideal_human_summary", line, problems, allow_empty=True)
    ext_id = _ext_id(obj, line, problems, required=False)
    if len(problems.items) > before:
        return None
    ext_id = ext_id or _content_id(title, post, summary)
    meta = _extras(obj, ("id",) + SLF5K_FIELDS)
    doc = NewDocument(ext_id, post, [summary], title=title, meta=meta, reference=ideal.strip() and ideal or None)
    return _Row(line, doc, critique=feedback)


PARSERS = {"documents": _parse_documents, "pairs": _parse_pairs, "slf5k": _parse_slf5k}


def _rows(path: Path, fmt: str, k: int, problems: _Problems | None) -> Iterator[tuple[int, ImportRow | None]]:
    """(line, row) for every row of the file, parsed and checked (None for a bad one, with its
    problems added). Documents rows of the usual shape pass a few type checks (`_plain_document`);
    any other row goes through its format's full check, which words every problem."""
    parse = PARSERS[fmt]
    sink = problems if problems is not None else _Problems()
    fast = fmt == "documents" and k >= 2
    for line, obj in _records(path, problems):
        if obj is None:
            yield line, None
        elif not isinstance(obj, dict):
            sink.add(line, "line", f"must be a JSON object, got {_type_name(obj)}")
            yield line, None
        elif fast and (row := _plain_document(obj, k)) is not None:
            yield line, row
        else:
            parsed = parse(obj, line, sink, k)
            yield line, None if parsed is None else _import_row(parsed)


_DOCUMENT_KEYS = frozenset({"id", "title", "text", "candidates", "reference", "meta"})


def _plain_document(obj: dict, k: int) -> ImportRow | None:
    """The same row `_parse_documents` makes, for a row with nothing wrong; None = check it fully."""
    if not obj.keys() <= _DOCUMENT_KEYS:
        return None
    ext_id, text, cands = obj.get("id"), obj.get("text"), obj.get("candidates")
    title, reference, meta = obj.get("title"), obj.get("reference"), obj.get("meta")
    if type(ext_id) is str:
        ext_id = ext_id.strip()
    elif type(ext_id) is int:
        ext_id = str(ext_id)
    else:
        return None
    if (not ext_id or type(text) is not str or not text.strip() or type(cands) is not list or len(cands) != k
            or (title is not None and type(title) is not str) or (reference is not None and type(reference) is not str)
            or (meta is not None and type(meta) is not dict)):
        return None
    for c in cands:
        if type(c) is not str or not c.strip():
            return None
    return ImportRow(ext_id, text, cands, title or "", json.dumps(meta, ensure_ascii=False) if meta else "{}",
                     reference or None)


# -- import -----------------------------------------------------------------------------------
def validate_file(store: Store, path: str | Path, project: str | int, fmt: str = "auto") -> tuple[str, int]:
    """Check a whole file without writing; raise ImportFileError listing its problems.

    Returns (format, number of rows)."""
    path, p, fmt = _open(store, path, project, fmt)
    report = ImportReport(str(path), p.name, fmt)
    return fmt, _stream(store, path, fmt, p, None, report)


def import_file(store: Store, path: str | Path, project: str | int, fmt: str = "auto",
                source_annotator: str = "import") -> ImportReport:
    """Check and write a file in one streaming pass; all of it lands at once, or none. See the module
    docstring. Pairs and SLF5K rankings and critiques are credited to the source `source_annotator`
    (an annotator of role `source`, made for it if new; a person's name is refused)."""
    t0 = time.perf_counter()
    path, p, fmt = _open(store, path, project, fmt)
    report = ImportReport(str(path), p.name, fmt)
    imp = store.begin_import(p, str(path), source=None if fmt == "documents" else source_annotator)
    if imp.source is not None:
        report.source_annotator = imp.source.name
    try:
        n = _stream(store, path, fmt, p, imp, report)
        log.info("importing %d %s rows from %s into %s: flip", n, fmt, path, p.name)
        store.finish_import(imp)
    except BaseException:
        store.abort_import(imp)  # the staged rows go (finish_import has already done it if it failed)
        raise
    report.seconds = time.perf_counter() - t0
    log.info("%s", report)
    return report


def _open(store: Store, path: str | Path, project: str | int, fmt: str):
    path = Path(path)
    p = store.get_project(project)
    if not path.is_file():
        raise ValidationError(f"import file {path}: does not exist")
    return path, p, _resolve_format(path, fmt)


def _stream(store: Store, path: Path, fmt: str, p, imp, report: ImportReport) -> int:
    """Read, check and (with `imp`, while the file is clean) write every row; return the row count.

    Raises ImportFileError at the end when any row was wrong."""
    problems = _Problems()
    seen: dict[str, int] = {}  # id -> first line (ids only: a few MB for 100k rows)
    batch: list[ImportRow] = []
    lines: list[int] = []
    n = 0
    # Ids already in the project are looked up per batch; an empty project has none (and a
    # document added meanwhile under one of the file's ids still makes the final flip refuse it all).
    empty = store.totals(p)["documents"] == 0

    def flush() -> None:
        taken = set() if empty else store.existing_ext_ids(p.id, [r.ext_id for r in batch])
        for r, line in zip(batch, lines):
            if r.ext_id in taken:
                problems.add(line, "id", f"{r.ext_id!r} is already in project {p.name!r}")
        if imp is not None and not problems.items:
            store.write_import_batch(imp, batch)
            report.documents += len(batch)
            report.candidates += sum(len(r.candidates) for r in batch)
            report.rankings += sum(r.ranked for r in batch)
            report.critiques += sum(r.critique is not None for r in batch)
        batch.clear()
        lines.clear()

    for line, row in _rows(path, fmt, p.k, problems):
        n += 1
        if problems.full:
            break
        if row is None:
            continue
        if row.ext_id in seen:
            problems.add(line, "id", f"{row.ext_id!r} duplicates line {seen[row.ext_id]}")
            continue
        seen[row.ext_id] = line
        batch.append(row)
        lines.append(line)
        if len(batch) >= BATCH:
            flush()
    if batch and not problems.full:
        flush()
    if n == 0 and not problems.items:
        problems.add(0, "file", "is empty: no rows found")
    if problems.items:
        raise ImportFileError(str(path), problems.items)
    return n


def _import_row(r: _Row) -> ImportRow:  # the NewDocument of a parsed row, as the store writes it
    d = r.doc
    meta = json.dumps(d.meta, ensure_ascii=False) if d.meta else "{}"
    return ImportRow(str(d.ext_id), d.text, d.candidates, d.title or "", meta, d.reference, r.ranking,
                     None if r.critique is None else r.critique.strip())


def _resolve_format(path: Path, fmt: str) -> str:
    if fmt not in IMPORT_FORMATS:
        raise ValidationError(f"format: {fmt!r} is not one of {', '.join(IMPORT_FORMATS)}")
    if fmt == "auto":
        return detect_format(path)
    if path.suffix.lower() == ".csv" and fmt != "documents":
        raise ValidationError(f"format: CSV files hold documents; {fmt} files are JSONL")
    return fmt
