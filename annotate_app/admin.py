"""What the admin pages do with files, kept out of the page scripts so tests can call it directly.

`import_upload` writes an uploaded file's bytes to a temporary file (keeping its suffix, so the
format can be told from the name) and hands it to `training.data.imports.import_file`; `export_bytes` runs
one export into a temporary file and returns its bytes for `st.download_button`.
No SQL and no torch here: everything goes through `training`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from training.data import exports, imports
from training.store import Store

IMPORT_FORMATS = imports.IMPORT_FORMATS
EXPORT_FORMATS = exports.EXPORT_FORMATS
MIME = {"jsonl": "application/jsonl", "parquet": "application/vnd.apache.parquet"}


def export_kinds() -> tuple[str, ...]:
    """What can be exported now (the ILF exports join exports.EXPORT_KINDS once training.ilf.dataset adds them)."""
    return tuple(exports.EXPORT_KINDS)


def import_upload(store: Store, project: str | int, filename: str, data: bytes, *, fmt: str = "auto",
                  source_annotator: str = "import") -> imports.ImportReport:
    """Import uploaded bytes into `project`; returns imports.import_file's ImportReport.

    Raises ImportFileError (with `.problems`, a list of (line, field, message)) when the file is
    refused; nothing is written then.
    """
    suffix = Path(filename or "upload").suffix or ".jsonl"
    with tempfile.TemporaryDirectory(prefix="tokenwise-import-") as tmp:
        path = Path(tmp) / f"{Path(filename or 'upload').stem}{suffix}"
        path.write_bytes(data)
        return imports.import_file(store, str(path), project, fmt=fmt, source_annotator=source_annotator)


def export_bytes(db_path: str, project: str | int, what: str, fmt: str) -> bytes:
    """One export (`what` in export_kinds(), `fmt` in EXPORT_FORMATS) as the bytes of its file.

    Opens its own Store: st.download_button calls it lazily, outside the page's `with` block.
    """
    with Store(db_path) as s, tempfile.TemporaryDirectory(prefix="tokenwise-export-") as tmp:
        out = Path(tmp) / f"export.{fmt}"
        exports.write_export(exports.export_rows(s, project, what), str(out), fmt, kind=what)
        return out.read_bytes()


def import_summary(report: imports.ImportReport) -> str:
    """What an import added, in one line for the page."""
    by = f" by {report.source_annotator}" if report.source_annotator and (report.rankings or report.critiques) else ""
    return (f"imported {report.documents} documents, {report.candidates} candidates, "
            f"{report.rankings} rankings, {report.critiques} critiques{by} ({report.format}).")
