"""Where import rows come from: files of every common kind, `datasets` folders, hub dataset names.

    for line, obj in records("prefs.jsonl.gz", problems):   # (row number, dict) one at a time
        ...

Sources, each read as a stream so memory stays flat with the file's size:
  *.jsonl / *.ndjson    one JSON object per line (line = the line number)
  *.json                a JSON array of objects (read incrementally), or JSONL under a .json name
  *.csv, *.tsv          a header row, then one object per row (values are strings)
  *.parquet             row groups read one batch at a time (line = the row number, from 1)
  any of these + .gz    decompressed on the fly
  a folder              written by `datasets.Dataset.save_to_disk` (its *.arrow files, read with pyarrow)
  NAME (no such path)   a Hugging Face dataset, `datasets.load_dataset(NAME, split=SPLIT)`: from the
                        local cache when the hub cannot be reached
A row that is not valid JSON is reported as (line, "json", message) and yielded as None, so a
check can go on and name every bad line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from training.errors import ValidationError

log = logging.getLogger(__name__)

CHUNK = 1 << 16
FILE_KINDS = ("jsonl", "json", "csv", "parquet")
TOO_DEEP = "not valid JSON (nested too deeply)"
# what a damaged file raises while it is read: a bad or cut-off .gz, a broken Parquet footer, a
# CSV quirk, bytes that are not UTF-8 in a CSV or JSON array (JSONL reports those per line)
UNREADABLE = (OSError, EOFError, zlib.error, csv.Error, UnicodeDecodeError)


def kind_of(path: str | Path) -> str:
    """jsonl | json | csv | parquet | folder | hub, from the name (a .gz suffix is looked through)."""
    p = Path(path)
    if p.is_dir():
        return "folder"
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1].lstrip(".") if suffixes else ""
    if p.exists():
        if ext in ("jsonl", "ndjson", "txt", ""):
            return "jsonl"
        if ext == "tsv":
            return "csv"  # with tabs (`delimiter`)
        if ext in FILE_KINDS:
            return ext
        raise ValidationError(f"import file {p}: unknown extension {ext!r}; use .jsonl, .json, .csv, .tsv or "
                              ".parquet (optionally .gz), or a folder written by datasets.save_to_disk")
    if ext in (*FILE_KINDS, "tsv", "ndjson", "txt", "gz") or str(path).startswith((".", "/", "~")):
        raise ValidationError(f"import file {p}: does not exist")
    return "hub"


def json_problem(e: json.JSONDecodeError) -> str:
    """A JSON parse error in words: "not valid JSON (Expecting ',' delimiter at column 12)", or,
    when the text stops first, that it ends too soon (a closing brace missing, say)."""
    if e.pos >= len(e.doc.rstrip()):
        return f"not valid JSON (it ends at column {len(e.doc.rstrip())} before the row is complete: a closing }}, ] or \" missing?)"
    return f"not valid JSON ({e.msg.removesuffix(' at')} at column {e.colno})"


def _open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed on the fly when it ends in .gz (the caller closes it)."""
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _open_text(path: Path) -> IO[str]:
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="strict", newline="")


def _jsonl(path: Path, problems) -> Iterator[tuple[int, Any]]:
    with _open_binary(path) as raw:
        for n, line in enumerate(raw, start=1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                if problems is not None:
                    problems.add(n, "encoding", f"not UTF-8 (byte 0x{line[e.start]:02x} at column {e.start + 1})")
                yield n, None
                continue
            if n == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue
            try:
                yield n, json.loads(text)
            except json.JSONDecodeError as e:
                if problems is not None:
                    problems.add(n, "json", json_problem(e))
                yield n, None
            except RecursionError:
                if problems is not None:
                    problems.add(n, "json", TOO_DEEP)
                yield n, None


def _json_array(path: Path, problems) -> Iterator[tuple[int, Any]]:
    """Objects of a top-level JSON array, decoded one at a time from a sliding buffer.

    `line` is the object's position in the array (from 1). A file that does not start with "["
    is read as JSONL. A broken item ends the read (an array cannot be resynchronised)."""
    with _open_text(path) as f:
        buf = f.read(CHUNK).lstrip("\ufeff")
        if not buf.lstrip().startswith("["):
            f.close()
            if _one_object(buf):  # {"data": [rows]}: the rows under its one list of objects
                yield from _rows_under_a_key(path, problems)
                return
            yield from _jsonl(path, problems)
            return
        dec = json.JSONDecoder()
        pos, n, eof = buf.index("[") + 1, 0, False

        def refill():
            nonlocal buf, pos, eof
            more = f.read(CHUNK)
            eof = not more
            buf, pos = buf[pos:] + more, 0

        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(buf):
                if eof:
                    if problems is not None:
                        problems.add(n + 1, "json", "the JSON array is not closed with ]")
                    return
                refill()
                continue
            if buf[pos] == "]":
                return
            try:
                obj, end = dec.raw_decode(buf, pos)
            except RecursionError:
                if problems is not None:
                    problems.add(n + 1, "json", f"item {n + 1} of the array: {TOO_DEEP}")
                yield n + 1, None
                return
            except json.JSONDecodeError as e:
                if eof:
                    if problems is not None:
                        problems.add(n + 1, "json", f"item {n + 1} of the array is not valid JSON "
                                     f"({e.msg.removesuffix(' at')})")
                    yield n + 1, None
                    return
                refill()
                continue
            if end == len(buf) and not eof:  # a number or literal may go on in the next chunk
                refill()
                continue
            n += 1
            yield n, obj
            pos = end
            if len(buf) - pos < CHUNK and not eof:
                refill()


ONE_OBJECT = ("the file is one JSON object spread over several lines, not a list of rows: a .json file "
              "holds an array of rows ([{...}, {...}]), one row per line, or one object with one list of rows "
              "under a key ({\"data\": [{...}, ...]})")


def _rows_under_a_key(path: Path, problems) -> Iterator[tuple[int, Any]]:
    """The rows of a .json file that is one object holding one list of objects (a common export:
    {"cnndm": [...]}, {"data": [...]}), numbered from 1. Read whole (such files are not streamed)."""
    try:
        with _open_text(path) as f:
            obj = json.load(f)
    except json.JSONDecodeError as e:
        if problems is not None:
            problems.add(1, "json", json_problem(e))
        yield 1, None
        return
    except RecursionError:
        if problems is not None:
            problems.add(1, "json", TOO_DEEP)
        yield 1, None
        return
    lists = [k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)] \
        if isinstance(obj, dict) else []
    if len(lists) != 1:
        if problems is not None:
            keys = ", ".join(map(str, obj)) if isinstance(obj, dict) else ""
            problems.add(1, "json", ONE_OBJECT + (f"; its keys: {keys}" if keys else "")
                         + ("; several of them hold lists of rows: save the one to import on its own "
                            "(e.g. jq '.KEY' file.json)" if len(lists) > 1 else ""))
        yield 1, None
        return
    log.info("%s: reading the %d rows under %r", path, len(obj[lists[0]]), lists[0])
    yield from enumerate(obj[lists[0]], start=1)


def _one_object(start: str) -> bool:
    """Whether a .json file that does not start with "[" is one object over several lines (its first
    line, which would be a row in JSON lines, is not a whole JSON value)."""
    body = start.lstrip()
    if "\n" not in body:  # the first line goes on past what was read (a long row): read it as JSON lines
        return False
    first = body.split("\n", 1)[0]
    if not first.startswith("{") or first.rstrip().endswith("}"):  # a whole (if broken) row is a row
        return False
    try:
        json.loads(first)
    except (json.JSONDecodeError, RecursionError):
        return True
    return False


def delimiter(path: Path) -> str:
    """A tab for a .tsv file (also .tsv.gz), or for a file whose header has tabs and no comma (Label
    Studio's converter names its TSV "result.csv"); else a comma."""
    if ".tsv" in [s.lower() for s in path.suffixes[-2:]]:
        return "\t"
    try:
        with _open_text(path) as f:
            header = f.readline()
    except UNREADABLE:
        return ","  # (reading the file says what is wrong with it)
    return "\t" if "\t" in header and "," not in header else ","


def _csv(path: Path, problems) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(2**31 - 1)
    with _open_text(path) as f:
        reader = csv.DictReader(f, delimiter=delimiter(path))
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            if None in row:
                if problems is not None:
                    problems.add(reader.line_num, "row", "has more cells than the header")
                yield reader.line_num, None
                continue
            yield reader.line_num, row


def _arrow_rows(batches) -> Iterator[tuple[int, Any]]:
    n = 0
    for batch in batches:
        for row in batch.to_pylist():
            n += 1
            yield n, row


def _parquet(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    with _open_binary(path) as src:
        yield from _arrow_rows(pq.ParquetFile(src).iter_batches(batch_size=1024))


def _saved_dataset(folder: Path) -> Iterator[tuple[int, Any]]:
    """A folder from `datasets.Dataset.save_to_disk`: its Arrow stream files, in order."""
    import pyarrow as pa

    state = folder / "state.json"
    if state.is_file():
        files = [folder / d["filename"] for d in json.loads(state.read_text())["_data_files"]]
    else:
        files = sorted(folder.glob("*.arrow"))
    if not files:
        raise ValidationError(f"import folder {folder}: no *.arrow files; is it a folder written by "
                              "datasets.save_to_disk? (a DatasetDict: name one split's subfolder)")

    def batches():
        for f in files:
            with pa.memory_map(str(f)) as src:
                yield from pa.ipc.open_stream(src)

    yield from _arrow_rows(batches())


def _hub(name: str, split: str | None) -> Iterator[tuple[int, Any]]:
    try:
        import datasets
    except ImportError:
        raise ValidationError(f"import {name!r}: not a file or folder, and the `datasets` package (needed to "
                              "load a dataset by name) is not installed: pip install datasets") from None
    try:
        ds = datasets.load_dataset(name, split=split or "train", streaming=False)
    except Exception as e:  # noqa: BLE001 - any failure: offline, unknown name, unknown split
        offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE")
        where = "the local cache (the hub is offline here)" if offline else "the hub or the local cache"
        raise ValidationError(f"import {name!r}: not a file or folder, and {where} has no such dataset "
                              f"(split {split or 'train'!r}): {str(e).splitlines()[0][:200]}") from None
    yield from enumerate(ds, start=1)


def records(source: str | Path, problems=None, *, split: str | None = None) -> Iterator[tuple[int, Any]]:
    """(line, object) for every row of `source`; unreadable rows are reported and yielded as None.

    A file that cannot be read on (a damaged .gz or Parquet file, a CSV that is not UTF-8) raises
    ValidationError naming the file, the last row read and the reason."""
    kind = kind_of(source)
    path = Path(source)
    if kind == "jsonl":
        rows = _jsonl(path, problems)
    elif kind == "json":
        rows = _json_array(path, problems)
    elif kind == "csv":
        rows = _csv(path, problems)
    elif kind == "parquet":
        rows = _parquet(path)
    elif kind == "folder":
        rows = _saved_dataset(path)
    else:
        return _hub(str(source), split)
    return readable(rows, source)


def readable(rows: Iterator[tuple[int, Any]], source: str | Path) -> Iterator[tuple[int, Any]]:
    """`rows`, with a read error of the file turned into one ValidationError that names it."""
    line = 0
    try:
        for line, obj in rows:
            yield line, obj
    except Exception as e:
        if not isinstance(e, UNREADABLE) and not type(e).__module__.startswith("pyarrow"):
            raise
        where = f"after row {line}" if line else "at its start"
        reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        if isinstance(e, UnicodeDecodeError):
            reason = f"not UTF-8 (byte 0x{e.object[e.start]:02x}); save the file as UTF-8"
        raise ValidationError(f"import file {source}: cannot be read {where}: {reason[:300]}") from None
