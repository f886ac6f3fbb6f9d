"""Import a source into a project: documents, and the preference data people already have.

    from training.data.imports import import_file, validate_file
    report = import_file(store, "prefs.jsonl.gz", "news")          # all of it, or nothing
    import_file(store, "qa.csv", "news", options=Options(mapping={"prompt": "question", ...}))

Formats (JSON Schemas in data/schemas/; `formats.FORMATS` lists them with an example row each):
  documents  JSONL `{"id", "title", "text", "candidates": [...], "reference"?, "meta"?}`, or CSV
             with a header `id,title,text,candidate_1,...,candidate_K[,reference][,meta]`
             (`title`, `reference`, `meta` optional; `meta` is a JSON object in its cell; K = the
             number of candidate_N columns, and every cell of them must be filled). Plain JSONL
             and CSV take the fast path below (`_stream`); other sources go through `_stream_items`.
  pairs, implicit, sff, ratings, two_answer, scored, slf5k, label_studio, argilla
             the preference formats of training/data/formats.py (and tool_exports.py), read into
             Items from any source of training/data/sources.py (`_stream_items`): rows with the
             same prompt and candidates become one document with one ranking per judgment,
             credited to source annotators (`<source>` or `<source>:<rater>`), never to a person.
Extra keys of preference rows are kept in the document's `meta`; documents rows refuse unknown
keys (put extra data under "meta"). Without an "id", a preference row's id is a hash of its prompt
and candidates, so importing the same file twice is refused as already in the project.

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
     With `skip_bad` the bad rows are left out instead (never written), the good ones written as
     they come, and the report names the first MAX_PROBLEMS problems; a source with no good row
     is still refused.
A process killed mid-way leaves only staged rows, which the next Store open deletes.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from training.data import sources
from training.data.formats import (
    CANDIDATE_COLUMN,
    FORMATS,
    VARIABLE_K,
    FirstProblem,
    Item,
    Judgment,
    Options,
    apply_mapping,
    check_mapping,
    detect_source,
    fold_spaces,
    rank_groups,
    ranks_from_pairwise,
    read_items,
    same_texts,
)
from training.errors import ImportFileError, NotFound, ValidationError
from training.store import ImportRow, ItemJudgment, NewDocument, Store

log = logging.getLogger(__name__)

ITEM_FORMATS = tuple(name for name, f in FORMATS.items() if f.parse is not None)  # training/data/formats.py
IMPORT_FORMATS = ("auto", "documents", *ITEM_FORMATS)
MAX_PROBLEMS = 50
BATCH = 500
PAIRWISE = "pairwise"  # a documents mapping's target: a vote per pair of candidates (formats.ranks_from_pairwise)


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
    unshown_fields: list[str] = field(default_factory=list)  # the documents' other fields, none shown yet
    skipped: int = 0  # skip_bad: rows left out for their problems
    complete: int = 0  # documents the imported rankings brought to the project's overlap
    overlap: int = 0
    most_rankings: int = 0  # the most rankings one document of the project has now (imported ones included)
    merged: int = 0  # rows with their own id and the text and candidates of an earlier row: one document
    merged_ids: list[tuple[str, str]] = field(default_factory=list)  # the first few (row's id, the id it joined)
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # skip_bad: the first MAX_PROBLEMS of them

    def __str__(self) -> str:
        who = self.source_annotator or ""
        by = (f" by {who if who.endswith(' sources') else repr(who)}" if who and (self.rankings or self.critiques)
              else "")
        return (f"imported {self.path} ({self.format}) into project {self.project!r}: {self.counts()}{by} "
                f"in {self.seconds:.1f}s"
                + (f"\n{self.skipped_list()}" if self.skipped else "")
                + (f"\n{self.merged_note()}" if self.merged else "")
                + (f"\n{self.queue_note()}" if self.rankings and self.complete else "")
                + (f"\n{self.fields_note()}" if self.unshown_fields else ""))

    def counts(self) -> str:
        """ "3 documents, 6 candidates, 3 rankings, 1 critique" """
        return ", ".join(_n(n, w) for n, w in ((self.documents, "document"), (self.candidates, "candidate"),
                                                (self.rankings, "ranking"), (self.critiques, "critique")))

    def queue_note(self) -> str:
        """Imported rankings count towards the overlap: documents they complete are in no one's queue."""
        more = max(self.overlap, self.most_rankings) + 1
        return (f"{self.complete} document(s) reached the project's overlap ({self.overlap}) with the imported "
                f"rankings, so they are in no annotator's queue; to have people rank them too, raise the overlap "
                f"above the rankings they have (tokenwise project set {shlex.quote(self.project)} --overlap {more}, "
                "or Projects > Settings)")

    def merged_note(self) -> str:
        """Rows whose own id differs from an earlier row's, with the same text and candidates: one document."""
        shown = ", ".join(f"{a} into {b}" for a, b in self.merged_ids) + (", ..." if self.merged > 3 else "")
        return (f"{_n(self.merged, 'row')} had the same text and candidates as an earlier row with another id "
                f"and joined that row's document (ids {shown})")

    def skipped_list(self) -> str:
        """The rows left out, one line each (the first MAX_PROBLEMS problems)."""
        more = self.skipped - len({ln for ln, _, _ in self.problems})
        return (f"skipped {_n(self.skipped, 'row')} with problems:\n"
                + "\n".join(f"  line {ln}: {fld}: {msg}" for ln, fld, msg in self.problems)
                + (f"\n  ... and {_n(more, 'more row')}" if more > 0 else ""))

    def skipped_note(self) -> str:
        """How many rows were left out and why (the first few problems)."""
        shown = "; ".join(f"line {ln}: {fld}: {msg}" for ln, fld, msg in self.problems[:3])
        return f"skipped {self.skipped} row(s) with problems, such as {shown}"

    def fields_note(self) -> str:
        """Points to the setting that shows the documents' other fields (passages, ...) to annotators,
        warning of those whose names say they hold a judgment (scores, labels, model names)."""
        telling = [f for f in self.unshown_fields if _TELLING.search(f)]
        plain = ",".join(f for f in self.unshown_fields if f not in telling)
        return (f"the documents also have {', '.join(self.unshown_fields)}, which annotators do not see: show the "
                f"ones they need (tokenwise project set {shlex.quote(self.project)} --show-fields "
                f"{shlex.quote(plain) if plain else 'FIELD,...'}, or Projects > Settings)"
                + (f"; {', '.join(telling)} may give the judgment away (a score, label, correction or model name)"
                   if telling else ""))


DEFAULT_SOURCE = "import"  # who imported judgments are credited to, unless the import names one
TOOL_SOURCES = {"label_studio": "label-studio", "argilla": "argilla"}  # the default for those tools' exports


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# Field names that suggest a judgment or who wrote a candidate: shown to annotators, they would bias them.
_TELLING = re.compile(r"score|rating|rank|prefer|label|chosen|rejected|winner|better|safe|model|policy|judge|"
                      r"annotat|worker|vote|feedback|correct|critique|harm|severity|source", re.IGNORECASE)


@dataclass
class _Row:
    """One parsed, valid documents row."""

    line: int
    doc: NewDocument


@dataclass
class _Problems:
    items: list[tuple[int, str, str]] = field(default_factory=list)
    full: bool = False
    stopped_at: int | None = None  # the line of the first problem past the cap: checking stops there
    seen: int = 0  # every problem reported, also past the cap (a row checks it to know it is bad)
    skip: bool = False  # skip_bad: bad rows are left out and the rest written; checking never stops
    bad_lines: set[int] = field(default_factory=set)  # skip_bad: the lines left out

    def add(self, line: int, fld: str, msg: str) -> None:
        self.seen += 1
        if self.skip:
            self.bad_lines.add(line)
        if len(self.items) < MAX_PROBLEMS:
            self.items.append((line, fld, msg))
        elif not self.full and not self.skip:
            self.full = True
            self.stopped_at = line

    def writing(self) -> bool:
        """Whether rows are still written: while the file is clean, or always when skipping bad rows."""
        return self.skip or not self.items

    def finish(self, path, n: int, report: ImportReport) -> None:
        """At the end of a source: refuse it (ImportFileError) when a row was bad, or, skipping bad
        rows, when none was good; else record what was skipped in the report."""
        if n == 0 and not self.items:
            self.add(0, "file", "is empty: no rows found")
        if self.items and not (self.skip and report.documents):
            raise self.error(path)
        report.skipped, report.problems = len(self.bad_lines), list(self.items)

    def error(self, path) -> ImportFileError:
        return ImportFileError(str(path), self.items, self.stopped_at)


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
    if path.suffix.lower() in (".csv", ".tsv"):
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
                    problems.add(n, "json", sources.json_problem(e))
                yield n, None
            except RecursionError:
                if problems is not None:
                    problems.add(n, "json", sources.TOO_DEEP)
                yield n, None


def _csv_records(path: Path, problems: _Problems | None) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(2**31 - 1)
    lines = _lines(path, problems)
    state = {"line": 0}

    def text_lines():
        for n, text in lines:
            state["line"] = n
            yield text

    reader = csv.reader(text_lines(), strict=True, delimiter=sources.delimiter(path))
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    cand_cols = _candidate_columns(tuple(header))
    if problems is not None:
        if "text" not in header:
            problems.add(1, "text", "missing column in the CSV header")
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
        row = _csv_shape(dict(zip(header, cells)), line, problems if problems is not None else _Problems(), cand_cols)
        yield line, row


def detect_format(path: str | Path, mapping: dict[str, str] | None = None) -> str:
    """The format of a source from its first row's keys (after the column mapping; a CSV's
    candidate_N columns are documents); ValidationError names the line and keys otherwise."""
    fmt, why = detect_source(path, mapping)
    if fmt is None:
        raise ValidationError(f"import {path}: {why}")
    return fmt


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


def _taken(row: ImportRow, project: str, made: bool | None = None, what: str = "text") -> str:
    """Why a row's id is refused: in the project already. A row without an id (`made`; by default:
    its id is the hash of its content) has one its author never saw: say it is the same `what`
    (text, or a preference row's prompt) and candidates."""
    if made if made is not None else row.ext_id == _content_id(row.text, *row.candidates):
        return (f"the same {what} and candidates are already in project {project!r} (the row has no id; "
                "was the file imported before?)")
    return f"{row.ext_id!r} is already in project {project!r}"


DOCUMENT_FIELDS = frozenset({"id", "title", "text", "candidates", "reference", "meta"})  # others go to meta


def _parse_documents(obj: dict, line: int, problems: _Problems, k: int) -> _Row | None:
    before = problems.seen
    extra = {key: obj[key] for key in obj if key not in DOCUMENT_FIELDS}  # kept in the document's meta
    ext_id = _ext_id(obj, line, problems, required=False)  # none: a hash of the text and candidates
    title = _text(obj, "title", line, problems, required=False, allow_empty=True) or ""
    text = _text(obj, "text", line, problems)
    reference = _text(obj, "reference", line, problems, required=False, allow_empty=True)
    meta = {} if obj.get("meta") is None else obj["meta"]
    if not isinstance(meta, dict):
        problems.add(line, "meta", f"must be an object, got {_type_name(meta)}")
    elif extra:
        meta = {**extra, **meta}  # a key of "meta" itself wins over a column of the same name
    cands, srcs = obj.get("candidates"), None
    if "candidates" not in obj:
        problems.add(line, "candidates", "missing (required field)")
    elif not isinstance(cands, list):
        problems.add(line, "candidates", f"must be a list of strings, got {_type_name(cands)}")
    else:
        cands, srcs = _candidate_sources(cands)
        for i, c in enumerate(cands):
            where = f"candidates[{i}]" + (".text" if isinstance(obj["candidates"][i], dict) else "")
            if not isinstance(c, str):
                problems.add(line, where, f"must be a string (or {{\"text\", \"source\"}}), got {_type_name(c)}")
            elif not c.strip():
                problems.add(line, where, "is empty")
        if len(cands) < 2:
            problems.add(line, "candidates", f"needs at least 2 candidates, got {len(cands)}")
        elif len(cands) != k:
            problems.add(line, "candidates", f"has {len(cands)} candidates but the project has K={k}")
        elif problems.seen == before and (why := same_texts(cands)):
            problems.add(line, "candidates", why)
    if problems.seen > before:
        return None
    if ext_id is None:  # the same document imported twice gets the same id, and is refused as a duplicate
        ext_id = _content_id(text, *cands)
    return _Row(line, NewDocument(ext_id, text, list(cands), title=title, meta=meta,
                                  reference=reference or None, sources=srcs))


def _candidate_sources(cands: list) -> tuple[list, list[str] | None]:
    """A documents row's candidates as texts, and their sources when some are given as objects
    {"text", "source" (or "model")} (as `--map candidates=a+b` makes them, the columns' names
    the sources): (texts, None) when none names one. A candidate without one is from "import"."""
    if not any(isinstance(c, dict) for c in cands):
        return cands, None
    texts = [c.get("text") if isinstance(c, dict) else c for c in cands]
    named = [c.get("source") or c.get("model") if isinstance(c, dict) else None for c in cands]
    if not any(isinstance(n, str) and n.strip() for n in named):
        return texts, None
    return texts, [n.strip() if isinstance(n, str) and n.strip() else "import" for n in named]


PARSERS = {"documents": _parse_documents}


def _rows(path: Path, fmt: str, k: int, problems: _Problems | None, mapping: dict[str, str] | None = None
          ) -> Iterator[tuple[int, ImportRow | None]]:
    """(line, row) for every row of the file, parsed and checked (None for a bad one, with its
    problems added). Documents rows of the usual shape pass a few type checks (`_plain_document`);
    any other row goes through its format's full check, which words every problem."""
    parse = PARSERS[fmt]
    sink = problems if problems is not None else _Problems()
    fast = fmt == "documents" and k >= 2
    for line, obj in _records(path, problems):
        if mapping and isinstance(obj, dict):
            obj = apply_mapping(obj, mapping)
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
    if len({c.strip() for c in cands}) != k:  # the same text twice: the full check says which two
        return None  # (and folds inner whitespace too, which would be too slow here for every row)
    return ImportRow(ext_id, text, cands, title or "", _meta_json(meta),
                     reference or None)


# -- import -----------------------------------------------------------------------------------
def validate_file(store: Store, path: str | Path, project: str | int, fmt: str = "auto",
                  options: Options | None = None, *, split: str | None = None) -> tuple[str, int]:
    """Check a whole source without writing; raise ImportFileError listing its problems.

    Returns (format, number of rows)."""
    path, p, fmt, options = _open(store, path, project, fmt, options)
    report = ImportReport(str(path), p.name, fmt)
    if fmt in ITEM_FORMATS or not _fast(path, options):
        return fmt, _stream_items(store, path, fmt, p, None, report, options, "import", split, _Problems())
    return fmt, _stream(store, path, fmt, p, None, report, options, _Problems())


SHAPE_ROWS = 5000  # items a variable-K source is read for, to size a new project's K


def new_project_shape(path: str | Path, fmt: str = "auto", options: Options | None = None, *,
                      split: str | None = None) -> tuple[str, int, str]:
    """(format, K, kind) of a new project that takes this source: K the number of outputs of its
    first row that can be read (2 at least: one output and its critique fit in K = 2; for a
    format whose rows differ, VARIABLE_K, the most among its first SHAPE_ROWS items), kind
    `summarize` for documents, sff and slf5k rows (a text and its summaries), else `qa` (a prompt
    and its responses). ValidationError when no row can be read."""
    options = options or Options()
    sources.kind_of(path)
    if fmt == "auto":
        fmt = detect_format(path, options.mapping)
    kind = "summarize" if fmt in ("documents", "sff", "slf5k") else "qa"
    seen = FirstProblem()
    if fmt == "documents":
        for line, obj in sources.records(path, seen, split=split):
            obj = _csv_shape(apply_mapping(obj, options.mapping), line, seen) if isinstance(obj, dict) else None
            if obj is not None and isinstance(obj.get("candidates"), list):
                return fmt, max(2, len(obj["candidates"])), kind
    elif fmt in VARIABLE_K:  # documents of 2..K candidates: K the most in the file's first rows
        most = max((len(it.candidates) for it in itertools.islice(
            read_items(path, fmt, options, split=split, problems=seen)[1], SHAPE_ROWS)), default=0)
        if most:
            return fmt, max(2, most), kind
    else:
        for it in read_items(path, fmt, options, split=split, problems=seen)[1]:
            return fmt, max(2, len(it.candidates)), kind
    raise ValidationError(f"import {path}: no row can be read to tell how many outputs a document has"
                          + (f" ({seen.first})" if seen.first else ""))


def import_file(store: Store, path: str | Path, project: str | int, fmt: str = "auto",
                source_annotator: str = DEFAULT_SOURCE, options: Options | None = None, *,
                split: str | None = None, skip_bad: bool = False, create: bool = False) -> ImportReport:
    """Check and write a source in one streaming pass; all of it lands at once, or none. See the
    module docstring. Rankings and critiques of preference rows are credited to source annotators:
    `source_annotator` for rows that name no rater, `<source_annotator>:<rater>` for each rater a
    row names (annotators of role `source`, made for it if new; a person's name is refused).

    `skip_bad`: the rows with problems are left out (counted in `report.skipped`, the first
    MAX_PROBLEMS named in `report.problems`) and the good ones land, at once as ever; a source
    with no good row is still refused.
    `create`: a project that does not exist is made for the source (`new_project_shape`), and
    deleted again when the source is refused. Without it, its absence is refused with the
    command that makes it."""
    made = None
    if isinstance(project, str) and not store.has_project(project):
        if not create:
            raise NotFound(_no_project(project, path, fmt, options, split))
        _, k, kind = new_project_shape(path, fmt, options, split=split)
        made = store.create_project(project, kind=kind, k=k)
    try:
        return _import(store, path, project, fmt, source_annotator, options, split, skip_bad)
    except BaseException:
        if made is not None:
            store.drop_empty_project(made.id)
        raise


def _no_project(project: str, path, fmt: str, options: Options | None, split: str | None) -> str:
    """Why an import into a missing project is refused, with the command that makes it: K and the
    task read from a local file's first row (a hub dataset is not loaded just to say so)."""
    name = shlex.quote(project)
    try:
        if sources.kind_of(path) != "hub":
            _, k, kind = new_project_shape(path, fmt, options, split=split)
            return (f"project {project!r} does not exist; the file's rows have {k} outputs: create it with "
                    f"`tokenwise project create {name} --kind {kind} --k {k}`, or import with --create to make it so")
    except ValidationError:
        pass  # (the file's own problem is reported when it is imported)
    return (f"project {project!r} does not exist; create it with `tokenwise project create {name} --k K` (K: "
            "the outputs per document), or import with --create to make it from the file")


def _import(store: Store, path: str | Path, project: str | int, fmt: str, source_annotator: str,
            options: Options | None, split: str | None, skip_bad: bool) -> ImportReport:
    t0 = time.perf_counter()
    path, p, fmt, options = _open(store, path, project, fmt, options)
    if source_annotator == DEFAULT_SOURCE:  # another tool's raters are named after it: label-studio:3
        source_annotator = TOOL_SOURCES.get(fmt, source_annotator)
    report = ImportReport(str(path), p.name, fmt)
    complete_before = store.totals(p)["complete"]
    items = fmt in ITEM_FORMATS or not _fast(path, options)
    imp = store.begin_import(p, str(path))  # item imports make their sources as they meet them
    try:
        problems = _Problems(skip=skip_bad)
        if items:
            n = _stream_items(store, path, fmt, p, imp, report, options, source_annotator, split, problems)
            store.recount_import(imp)
        else:
            n = _stream(store, path, fmt, p, imp, report, options, problems)
        log.info("importing %d %s rows from %s into %s: flip", n, fmt, path, p.name)
        store.finish_import(imp)
    except BaseException:
        store.abort_import(imp)  # the staged rows go (finish_import has already done it if it failed)
        raise
    report.seconds = time.perf_counter() - t0
    if report.rankings:
        report.complete, report.overlap = store.totals(p.name)["complete"] - complete_before, p.overlap
        report.most_rankings = store.most_rankings(p.name)  # (this import's and earlier ones')
    if report.documents and not store.get_project(p.name).context_fields:
        report.unshown_fields = [f for f in store.meta_fields(p.name) if f != "turns"]  # turns: drawn as a chat
    log.info("%s", report)
    return report


def _fast(path: Path, options: Options | None = None) -> bool:
    """Documents in a plain JSONL, CSV or TSV file take the fast path (`_stream`); a CSV or TSV with
    a column mapping goes row by row (`_stream_items`), the mapping applied to each row's columns."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv") and options is not None and options.mapping:
        return False
    if options is not None and PAIRWISE in options.mapping:  # votes become rankings: read as items
        return False
    return suffix in (".jsonl", ".csv", ".tsv", ".ndjson", ".txt", "") and path.is_file()


def _open(store: Store, path: str | Path, project: str | int, fmt: str, options: Options | None):
    options = options or Options()
    p = store.get_project(project)
    sources.kind_of(path)  # refuses an unknown extension or a missing file; a bare name is a hub dataset
    path = Path(path)
    if fmt not in IMPORT_FORMATS:
        raise ValidationError(f"format: {fmt!r} is not one of {', '.join(IMPORT_FORMATS)}")
    check_mapping(path, options.mapping)
    if fmt == "auto":
        fmt = detect_format(path, options.mapping)
    return path, p, fmt, options


def _stream(store: Store, path: Path, fmt: str, p, imp, report: ImportReport, options: Options,
            problems: _Problems) -> int:
    """Read, check and (with `imp`, while the file is clean or bad rows are skipped) write every
    row; return the row count. Raises ImportFileError at the end when a row was wrong (`finish`)."""
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
                problems.add(line, "id", _taken(r, p.name))
        if imp is not None and problems.writing():
            rows = [r for r in batch if r.ext_id not in taken]
            store.write_import_batch(imp, rows)
            report.documents += len(rows)
            report.candidates += sum(len(r.candidates) for r in rows)
        batch.clear()
        lines.clear()

    for line, row in _rows(path, fmt, p.k, problems, options.mapping):
        n += 1
        if problems.full:
            break
        if row is None or (problems.skip and line in problems.bad_lines):  # (a line not UTF-8: read to go on)
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
    problems.finish(path, n, report)
    return n


def _stream_items(store: Store, path, fmt: str, p, imp, report: ImportReport, options: Options,
                  source: str, split: str | None, problems: _Problems) -> int:
    """The preference formats (training/data/formats.py), and documents from any other source.

    Rows with the same prompt and candidate texts (`Item.key`) become ONE document with one ranking
    per row: by the row's rater (`<source>:<rater>`), or by the source; a second judgment of the same
    item by the same rater is credited to `<name>#2`, and so on, since one annotator holds one
    current ranking of a document. Written in batches under the staging project (as `_stream`)."""
    if fmt == "documents":
        rows = ((line, obj) for line, obj in sources.records(path, problems, split=split))
        items = _document_items(rows, p.k, problems, options)
    else:
        _, items = read_items(path, fmt, options, split=split, problems=problems)
    # key -> [first line, ext id, hashes of the normalised candidate texts, (doc id, cand ids) once
    #         written, [(item, judgment)] made before it was written, {annotator: judgments}]:
    #         about 0.3 KB per distinct item
    index: dict[str, list] = {}
    ext_seen: dict[str, int] = {}
    names: dict[str, int] = {}  # annotator name -> id (made when first needed)
    new: list[tuple[Item, ImportRow, list]] = []
    more: list[tuple[int, list[int], ItemJudgment]] = []
    pending_more: list[tuple[list, Item, object]] = []
    n = 0
    empty = store.totals(p)["documents"] == 0
    min_k = 1 if fmt == "slf5k" else 2 if fmt in VARIABLE_K else p.k

    def annotator(entry: list, rater: str | None) -> str:
        base = source if rater is None else f"{source}:{rater}"
        judged = entry[5]  # annotator name -> judgments of this item so far
        judged[base] = judged.get(base, 0) + 1
        k = judged[base]
        return base if k == 1 else f"{base}#{k}"

    def to_judgment(entry: list, it: Item, j) -> ItemJudgment | None:
        name = annotator(entry, j.rater)
        if imp is None:
            return None
        if name not in names:
            names[name] = store.import_source(imp, name).id
        where = {t: i for i, t in enumerate(entry[2])}
        pos = [where[hash(fold_spaces(c))] for c in it.candidates]
        ranks = [0] * len(entry[2])
        for i, r in zip(pos, j.ranks):
            ranks[i] = r
        return ItemJudgment(names[name], rank_groups(ranks) if len(ranks) > 1 else [], [(pos[i], t.strip()) for i, t in j.critiques.items()
                                                         if t.strip()])

    def flush() -> None:
        taken = set() if empty else store.existing_ext_ids(p.id, [row.ext_id for _, row, _ in new])
        for it, row, entry in new:
            if row.ext_id in taken:
                problems.add(it.line, "id", _taken(row, p.name, made=it.ext_id is None, what="prompt"))
                for line in sorted({jit.line for jit, _ in entry[4]} - {it.line}):  # its later judgments go too
                    problems.add(line, "id", f"another judgment of the item on line {it.line}, which is already "
                                 f"in project {p.name!r}")
                entry[3] = False  # skipped: later judgments of the item are left out too
        if imp is not None and problems.writing():
            kept = [(row, entry) for _, row, entry in new if row.ext_id not in taken]
            rows = [dataclasses.replace(row, judgments=[to_judgment(entry, jit, j) for jit, j in entry[4]])
                    for row, entry in kept]
            for entry, it, j in pending_more:
                more.append((entry[3][0], entry[3][1], to_judgment(entry, it, j)))
            written = store.write_item_batch(imp, rows, more)
            for (_, entry), ids in zip(kept, written):
                entry[3], entry[4] = ids, []
            report.documents += len(rows)
            report.candidates += sum(len(r.candidates) for r in rows)
            report.rankings += sum(1 for r in rows for j in r.judgments if j.order) + sum(1 for *_, j in more if j.order)
            report.critiques += sum(len(j.critiques) for r in rows for j in r.judgments) + \
                sum(len(j.critiques) for _, _, j in more)
        new.clear()
        more.clear()
        pending_more.clear()

    for it in items:
        n += 1
        if problems.full:
            break
        if problems.skip and it.line in problems.bad_lines:  # (a line not UTF-8: read to go on)
            continue
        if not min_k <= len(it.candidates) <= p.k:
            problems.add(it.line, "candidates", f"has {len(it.candidates)} candidates but the project has "
                         f"K={p.k}" + (" (at most)" if min_k < p.k else "")
                         + ("; import pairs into a project made with --k 2" if p.k != 2 and
                            len(it.candidates) == 2 and min_k == p.k else ""))
            continue
        if why := same_texts(it.candidates):
            problems.add(it.line, "candidates", why)
            continue
        texts = [hash(fold_spaces(c)) for c in it.candidates]
        # documents with ids of their own stay apart, whatever their texts (as a JSONL file's do)
        key = f"id:{it.ext_id}" if fmt == "documents" and it.ext_id is not None else it.key
        entry = index.get(key)
        if entry is not None and key != it.key:
            problems.add(it.line, "id", f"{it.ext_id!r} duplicates line {entry[0]}")
            continue
        if entry is not None and entry[3] is False:
            problems.add(it.line, "id", f"another judgment of the item on line {entry[0]}, which is already in "
                         f"project {p.name!r}")
            continue
        if entry is not None:  # more judgments of an item seen before
            if it.ext_id is not None and it.ext_id != entry[1]:
                report.merged += 1
                if len(report.merged_ids) < 3:
                    report.merged_ids.append((it.ext_id, entry[1]))
            for j in it.judgments:
                if entry[3] is None:
                    entry[4].append((it, j))  # its document is still in this batch
                else:
                    pending_more.append((entry, it, j))
            continue
        ext_id = it.ext_id or it.key
        if ext_id in ext_seen:
            ext_id = f"{ext_id}~{it.key[:8]}"
        ext_seen[ext_id] = it.line
        entry = [it.line, ext_id, texts, None, [(it, j) for j in it.judgments], {}]
        index[key] = entry
        meta = _meta_json(it.meta)
        gp = [_meta_json({"meta": m} if m else None) for m in it.candidate_meta] \
            if it.candidate_meta else None
        new.append((it, ImportRow(ext_id, it.text, list(it.candidates), it.title or "", meta, it.reference,
                                it.sources, gp), entry))
        if len(new) >= BATCH:
            flush()
    if (new or pending_more) and not problems.full:
        flush()
    problems.finish(path, n, report)
    report.source_annotator = (next(iter(names)) if len(names) == 1 else f"{len(names)} sources") if names else None
    return n


@functools.lru_cache(maxsize=64)
def _candidate_columns(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The candidate_N columns among `keys` (a CSV's header), in the order of N."""
    numbered = [(int(m.group(1)), k) for k in keys if (m := CANDIDATE_COLUMN.match(k))]
    return tuple(k for _, k in sorted(numbered))


def _csv_shape(obj: dict, line: int, problems: _Problems, cols: tuple[str, ...] | None = None) -> dict | None:
    """A row in the CSV layout of documents (any CSV/TSV, gzipped or not, mapped or not): the
    candidate_N columns become the candidates list, a "meta" cell is JSON (empty: none), an unnamed
    column (pandas' index) goes. Other rows pass unchanged. None, reported, when meta is not JSON.
    `cols`: the candidate columns when the caller knows them (a CSV's header, read once)."""
    cols = _candidate_columns(tuple(obj)) if cols is None else cols
    if not cols and not isinstance(obj.get("meta"), str) and "" not in obj:
        return obj
    out = {k: v for k, v in obj.items() if k and k not in cols}
    if cols and "candidates" not in out:
        out["candidates"] = [obj[k] for k in cols]
    meta = out.get("meta")
    if isinstance(meta, str):
        if not meta.strip():
            del out["meta"]
            return out
        try:
            out["meta"] = json.loads(meta)
        except (json.JSONDecodeError, RecursionError) as e:
            problems.add(line, "meta", sources.TOO_DEEP if isinstance(e, RecursionError)
                         else f"not valid JSON ({e.msg.removesuffix(' at')})")
            return None
    return out


def _document_items(rows, k: int, problems: _Problems, options: Options):
    """Documents from a source other than plain JSONL/CSV (JSON array, Parquet, .gz, a folder, a hub
    name), as Items without judgments."""
    for line, obj in rows:
        if obj is None:
            continue
        if not isinstance(obj, dict):
            problems.add(line, "line", f"must be a JSON object, got {_type_name(obj)}")
            continue
        obj = _csv_shape(apply_mapping(obj, options.mapping), line, problems)
        votes = obj.pop(PAIRWISE, None) if obj is not None and PAIRWISE in options.mapping else None
        r = None if obj is None else _parse_documents(obj, line, problems, k)
        if r is not None:
            d = r.doc
            judgments = []
            if votes is not None:
                try:
                    ranks = ranks_from_pairwise(votes, len(d.candidates))
                except ValueError as e:
                    problems.add(line, options.mapping[PAIRWISE], str(e))
                    continue
                judgments = [Judgment(ranks)] if ranks else []
            yield Item(line, d.text, list(d.candidates), title=d.title or "", ext_id=str(d.ext_id),
                       reference=d.reference, meta=d.meta or {}, judgments=judgments, sources=d.sources)


def _meta_json(meta: dict | None) -> str:
    """A meta object as the store keeps it; values JSON has no type for (a Parquet date) as text."""
    return json.dumps(meta, ensure_ascii=False, default=str) if meta else "{}"


def _import_row(r: _Row) -> ImportRow:  # the NewDocument of a parsed row, as the store writes it
    d = r.doc
    meta = _meta_json(d.meta)
    return ImportRow(str(d.ext_id), d.text, d.candidates, d.title or "", meta, d.reference, d.sources)
