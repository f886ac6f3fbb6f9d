"""What the admin pages do with files, kept out of the page scripts so tests can call it directly.

`import_upload` writes an uploaded file's bytes to a temporary file (keeping its suffix, so the
format can be told from the name) and hands it to `training.data.imports.import_file`;
`preview_upload` shows its first rows after the column mapping; `export_bytes` runs one export
into a temporary file (or a `datasets` folder, zipped) and returns its bytes for `st.download_button`.
No SQL and no torch here: everything goes through `training`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from training.data import exports, formats, imports, sources
from training.errors import ImportFileError, TokenwiseError
from training.store import Store

IMPORT_FORMATS = ("auto", *formats.FORMATS)
FORMAT_HELP = {"auto": "auto: tell the format from the first row (after the column mapping)",
               **{name: f"{name}: {f.description}" for name, f in formats.FORMATS.items()}}
EXPORT_FORMATS = exports.EXPORT_FORMATS + exports.FOLDER_FORMATS  # hf: a folder, downloaded as a .zip
MIME = {"jsonl": "application/jsonl", "parquet": "application/vnd.apache.parquet", "hf": "application/zip"}
FILE_NAME = {"jsonl": "jsonl", "parquet": "parquet", "hf": "hf.zip"}
PREVIEW_ROWS = 5
PREVIEW_CHARS = 80  # per cell


@contextlib.contextmanager
def _as_file(filename: str, data: bytes) -> Iterator[Path]:
    """The uploaded bytes as a temporary file that keeps the upload's name (its suffix tells the kind).
    A message about the file names the upload, not the temporary path."""
    name = Path(filename or "upload.jsonl").name
    if not Path(name).suffix:
        name += ".jsonl"
    with tempfile.TemporaryDirectory(prefix="tokenwise-import-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            yield path
        except TokenwiseError as e:
            e.args = tuple(a.replace(str(path), name) if isinstance(a, str) else a for a in e.args)
            if isinstance(e, ImportFileError):
                e.path = name
            raise


@dataclass(frozen=True)
class Preview:
    rows: list[dict]  # the first rows after the column mapping, long values cut for the screen
    detected: str | None  # the format the first row shows (None: unknown, see `note`)
    note: str
    read: list[dict] = field(default_factory=list)  # the same rows as Tokenwise reads them (preference formats)


def _cell(v) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def preview_upload(filename: str, data: bytes, mapping: dict[str, str] | None = None,
                   n: int = PREVIEW_ROWS, *, options: formats.Options | None = None, fmt: str = "auto") -> Preview:
    """The first `n` rows of an upload as they will be read (columns renamed by `mapping`), and
    the format detected from them; `read`: those rows as the import reads them, in the format
    chosen (`fmt`, or the detected one) with the form's `options` (rater and score columns).
    Reads only those rows."""
    seen = formats.FirstProblem()
    with _as_file(filename, data) as path:
        first = list(itertools.islice(sources.records(path, seen), n))
    mapped = [(line, formats.apply_mapping(obj, mapping or {})) for line, obj in first if isinstance(obj, dict)]
    detected, note = formats.detect(first, mapping, seen)
    use = detected if fmt == "auto" else fmt
    opts = options or formats.Options(mapping=mapping or {})
    read = as_read(use, first, opts) if use in formats.FORMATS else []
    return Preview([{"line": line, **{k: _cell(v) for k, v in obj.items()}} for line, obj in mapped],
                   detected, note, read)


class _RowProblems:
    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, line: int, fld: str, msg: str) -> None:
        self.found.append(f"{fld}: {msg}")


SHOWN_JUDGMENTS = 3  # a row's judgments the preview spells out (each rater's ranking, in turn)


def _ranking(ranks: list[int]) -> str:
    """[2, 1, 2] -> "2 > 1 = 3": the candidates' numbers best first, ties joined by "="."""
    return " > ".join(" = ".join(str(i + 1) for i in group) for group in formats.rank_groups(ranks))


def _read_rows(fmt: str, rows: list[tuple[int, object]], options: formats.Options):
    """(line, item or None, problems) per row read alone; for a format whose document gathers
    several rows (formats.WHOLE_FILE), per document found among these rows (the import reads the
    whole file)."""
    if fmt in formats.WHOLE_FILE:
        problems = _RowProblems()
        items = list(formats.read_rows(fmt, rows, problems, options))
        if not items:
            problems.add(rows[0][0] if rows else 1, "rows", "no document is complete among these first rows "
                         "(the import reads the whole file)")
            return [(rows[0][0] if rows else 1, None, problems)]
        return [(it.line, it, _RowProblems()) for it in items]
    out = []
    for line, obj in rows:
        if not isinstance(obj, dict):
            continue
        problems = _RowProblems()
        try:
            item = formats.parse(fmt, obj, line, problems, options)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:  # shown, not a crash
            problems.add(line, "row", f"cannot be read: {type(e).__name__}: {e}")
            item = None
        out.append((line, item, problems))
    return out


def as_read(fmt: str, rows: list[tuple[int, object]], options: formats.Options) -> list[dict]:
    """Rows of a preference format as Tokenwise reads them, one line each: the prompt, the
    candidates numbered, the ranking by those numbers ("2 > 1", ties "1 = 2"; several raters' in
    turn, "1 > 2 · 2 > 1"), the raters, and what is wrong with a row that cannot be read. [] for
    documents (their columns say it all)."""
    if formats.FORMATS[fmt].parse is None:
        return []
    out = []
    for line, item, problems in _read_rows(fmt, rows, options):
        if item is None:
            out.append({"line": line, "prompt": "", "ranking": "", "rater": "", "problem": "; ".join(problems.found),
                        "candidates": ""})
            continue
        shown, more = item.judgments[:SHOWN_JUDGMENTS], len(item.judgments) - SHOWN_JUDGMENTS
        rankings = " · ".join(_ranking(j.ranks) for j in shown) + (f" · +{more} more" if more > 0 else "")
        out.append({"line": line, "prompt": _cell(item.text), "ranking": rankings if len(item.candidates) > 1 else "",
                    "rater": " · ".join(j.rater or "(source)" for j in shown) if any(j.rater for j in shown) else "",
                    "problem": "",
                    "candidates": _cell(" | ".join(f"{i + 1}. {c}" for i, c in enumerate(item.candidates)))})
    return out  # (the long candidates last, so the ranking and a row's problem show without scrolling)


def import_options(mapping: str = "", rater_field: str = "", score_field: str = "") -> formats.Options | None:
    """formats.Options from the form's text fields; None when all are empty (ValueError names a bad mapping)."""
    parsed = formats.parse_mapping(mapping)
    if not parsed and not rater_field.strip() and not score_field.strip():
        return None
    return formats.Options(mapping=parsed, rater_field=rater_field.strip() or None,
                           score_field=score_field.strip() or None)


def export_kinds() -> tuple[str, ...]:
    """What can be exported now (the ILF exports join exports.EXPORT_KINDS once training.ilf.dataset adds them)."""
    return tuple(exports.EXPORT_KINDS)


NEW_PROJECT = "A new project, made for this file"  # the import form's last choice of project


def import_upload(store: Store, project: str | int, filename: str, data: bytes, *, fmt: str = "auto",
                  source_annotator: str = imports.DEFAULT_SOURCE, options: formats.Options | None = None,
                  skip_bad: bool = False, create: bool = False) -> imports.ImportReport:
    """Import uploaded bytes into `project`; returns imports.import_file's ImportReport.

    Raises ImportFileError (with `.problems`, a list of (line, field, message)) when the file is
    refused; nothing is written then. `options` (a column mapping, the rater and score columns)
    is passed on only when given; `skip_bad` leaves out the bad rows and imports the rest;
    `create` makes the project for the file when it does not exist (and not if the file is refused).
    """
    extra = {"options": options} if options is not None else {}
    with _as_file(filename, data) as path:
        return imports.import_file(store, str(path), project, fmt=fmt, source_annotator=source_annotator,
                                   skip_bad=skip_bad, create=create, **extra)


def target_note(shape: tuple[str | None, int | None, str], existing: tuple[str, int] | None
                ) -> tuple[str, str] | None:
    """What the import form says under the preview about the project the file goes to, as (kind,
    plain text), kind "caption" or "warning"; None when there is nothing to say. `shape`: the file's
    (format, K, task) from upload_shape, or (None, None, why it cannot be told); `existing`: the
    chosen project's (name, K), None for a new one made for the file. A format whose documents
    have 2..K outputs (OASST) fits any project whose K is at least the file's."""
    fmt, k, kind_or_why = shape
    variable = fmt in formats.VARIABLE_K
    if existing is None:
        if k is None:
            return "warning", f"Cannot tell how many outputs a document has: {kind_or_why}"
        return "caption", ((f"The new project will have K = {k} outputs per document at most (the most a prompt "
                            "has in the file's first rows; a document may have fewer)" if variable else
                            f"The new project will have K = {k} outputs per document (as the file's first row)")
                           + f" and the task {kind_or_why} (Settings changes the task; K stays).")
    name, project_k = existing
    if k is not None and (k > project_k if variable else k != project_k):
        return ("warning", (f"{name} has K = {project_k}, but the file's first row has {k} outputs: its rows "
                            "will be refused. Import into a new project instead.") if not variable else
                (f"{name} has K = {project_k}, but some of the file's prompts have {k} outputs: those rows will "
                 "be refused. Import into a new project instead."))
    return None


def upload_shape(filename: str, data: bytes, *, fmt: str = "auto", options: formats.Options | None = None
                 ) -> tuple[str, int, str]:
    """(format, K, kind) of a new project for the uploaded file (imports.new_project_shape)."""
    with _as_file(filename, data) as path:
        return imports.new_project_shape(str(path), fmt, options)


def export_bytes(db_path: str, project: str | int, what: str, fmt: str) -> bytes:
    """One export (`what` in export_kinds(), `fmt` in EXPORT_FORMATS) as the bytes of its file.

    Opens its own Store: st.download_button calls it lazily, outside the page's `with` block.
    """
    with Store(db_path) as s, tempfile.TemporaryDirectory(prefix="tokenwise-export-") as tmp:
        if fmt in exports.FOLDER_FORMATS:  # the `datasets` folder (as `tokenwise export --format hf`), zipped
            folder = Path(tmp) / what
            exports.write_export(exports.export_rows(s, project, what), str(folder), fmt, kind=what)
            return Path(shutil.make_archive(str(Path(tmp) / "export"), "zip", root_dir=tmp, base_dir=what)).read_bytes()
        out = Path(tmp) / f"export.{fmt}"
        exports.write_export(exports.export_rows(s, project, what), str(out), fmt, kind=what)
        return out.read_bytes()


def import_summary(report: imports.ImportReport) -> str:
    """What an import added, in one line for the page."""
    by = f" by {report.source_annotator}" if report.source_annotator and (report.rankings or report.critiques) else ""
    return (f"imported {report.counts()}{by} ({report.format})."
            + (f" S{report.skipped_note()[1:]}." if report.skipped else "")
            + (f" {report.merged_note()}." if report.merged else "")
            + (f" {report.queue_note()[0].upper()}{report.queue_note()[1:]}." if report.rankings and report.complete
               else "")
            + (f" Note: {report.fields_note()}." if report.unshown_fields else ""))
