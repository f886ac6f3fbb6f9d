"""Export what annotators made, as JSONL, Parquet or a Hugging Face `datasets` folder.

    from training.data.exports import export_rows, write_export
    write_export(export_rows(store, "news", "pairs"), "pairs.parquet", fmt="parquet", kind="pairs")

Export kinds: documents (the import shape: an export of an import gives the same rows back),
rankings, pairs (TRL; every ranking expanded to all ordered pairs, ties dropped), critiques, and
the ILF datasets (built by training.ilf.dataset). Rows stream from the database in batches, so
memory stays flat however large the project is.

Documents, the largest export, has a fast path with the same bytes: `export_rows` returns a
`DocumentRows`, which iterates as dicts like every kind, and which `write_export` writes without
making them: SQLite quotes every string of a JSONL line (json_quote writes them as json.dumps
does) and hands them over as UTF-8 bytes, which are joined and written without decoding (meta
JSON text is spliced in as stored when it is already in json.dumps' form); Parquet is written
from Arrow arrays built per batch of BATCH_ROWS documents (the same row groups as before).
Tests compare both paths byte for byte.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from training.data.context import project_context
from training.errors import ValidationError
from training.store import Store
from training.store.records import Document, Project

EXPORT_KINDS = ("documents", "rankings", "pairs", "critiques", "ilf-sft", "ilf-feedback")
EXPORT_FORMATS = ("jsonl", "parquet")  # one file each
FOLDER_FORMATS = ("hf",)  # a folder: the Hugging Face `datasets` layout
BATCH = 500  # documents read per query
BATCH_ROWS = 2000  # rows per Parquet row group (and per fast-path batch)


# -- export -----------------------------------------------------------------------------------
AGGREGATES = ("none", "majority")


def export_rows(store: Store, project: str | int, what: str, aggregate: str = "none") -> Iterator[dict]:
    """Rows of one export kind (see EXPORT_KINDS), streamed from the database.

    `aggregate="majority"` (pairs only): one pair per candidate pair of a document, in the
    direction most of its rankings give (ties and even splits dropped), instead of one per
    judgment. Checks `what` and the project at once (not on first iteration)."""
    p = store.get_project(project)
    if aggregate not in AGGREGATES:
        raise ValidationError(f"aggregate: {aggregate!r} is not one of {', '.join(AGGREGATES)}")
    if aggregate != "none" and what != "pairs":
        raise ValidationError(f"aggregate: only pairs can be aggregated, not {what}")
    if what == "pairs" and aggregate == "majority":
        return _export_majority_pairs(store, p)
    if what == "documents":
        return DocumentRows(store, p)
    if what == "rankings":
        return _export_rankings(store, p)
    if what == "pairs":
        return _export_pairs(store, p)
    if what == "critiques":
        return _export_critiques(store, p)
    if what in ("ilf-sft", "ilf-feedback"):  # accepted refinements (see training.ilf.dataset.build_dataset)
        from training.ilf.dataset import build_dataset

        return iter(build_dataset(store, p.id, variant=what.removeprefix("ilf-")))
    raise ValidationError(f"export: {what!r} is not one of {', '.join(EXPORT_KINDS)}")



def _batches(store: Store, p: Project) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for doc in store.iter_documents(p.id, batch_size=BATCH):
        batch.append(doc)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _names(store: Store) -> dict[int, str]:
    return {a.id: a.name for a in store.list_annotators()}


class DocumentRows:
    """The documents export: iterates as dicts; `write_export` uses its batch methods instead."""

    def __init__(self, store: Store, p: Project):
        self.store, self.project = store, p

    def __iter__(self) -> Iterator[dict]:
        return _export_documents(self.store, self.project)

    def jsonl_chunks(self) -> Iterator[tuple[bytes, int]]:
        """(UTF-8 bytes of a batch of finished JSONL lines, how many lines)."""
        for rows, cands in self.store.iter_document_json(self.project.id, batch_size=BATCH_ROWS):
            yield b"".join([
                b'{"id": %b, "title": %b, "text": %b, "candidates": [%b]%b%b}\n' % (
                    ext_id, title, text, cands.get(doc_id, b""),
                    b"" if ref == b"null" else b', "reference": ' + ref,
                    b"" if meta == b"{}" else _meta_bytes(meta))
                for doc_id, ext_id, title, text, ref, meta in rows]), len(rows)

    def arrow_batches(self) -> Iterator:
        import pyarrow as pa

        schema = _parquet_schemas()["documents"]
        for cols in self.store.iter_document_columns(self.project.id, batch_size=BATCH_ROWS):
            offsets = [0, *itertools.accumulate(cols["n_candidates"])]
            candidates = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(cols["candidates"], pa.string()))
            meta = [_meta_text(m) for m in cols["meta"]]
            yield pa.RecordBatch.from_arrays(
                [pa.array(cols["id"], pa.string()), pa.array(cols["title"], pa.string()),
                 pa.array(cols["text"], pa.string()), candidates, pa.array(cols["reference"], pa.string()),
                 pa.array(meta, pa.string())], schema=schema)


def _meta_text(text: str | None) -> str | None:
    """A document's stored meta as json.dumps(meta, ensure_ascii=False) writes it; None when empty.

    Tokenwise writes meta with json.dumps (store, imports), so an object's text is used as it is,
    unless it holds a \\u escape (written with ensure_ascii, or an escaped character): then, like
    anything else, it is parsed and written again."""
    if text in (None, "", "{}"):
        return None
    if "\\u" in text or not text.startswith("{"):
        meta = json.loads(text)
        return json.dumps(meta, ensure_ascii=False) if meta else None
    return text


def _meta_bytes(stored: bytes | None) -> bytes:
    """`, "meta": {...}` for the JSONL fast path (b"" when empty), as _meta_text says."""
    if stored is None or stored in (b"", b"{}"):
        return b""
    meta = stored if b"\\u" not in stored and stored.startswith(b"{") else _meta_text(stored.decode())
    return b"" if meta is None else b', "meta": ' + (meta if isinstance(meta, bytes) else meta.encode())


def _export_documents(store: Store, p: Project) -> Iterator[dict]:
    for doc in store.iter_documents(p.id, batch_size=BATCH):
        row: dict[str, Any] = {"id": doc.ext_id, "title": doc.title, "text": doc.text,
                               "candidates": [c.text for c in doc.candidates]}
        if doc.reference is not None:
            row["reference"] = doc.reference
        if doc.meta:
            row["meta"] = doc.meta
        yield row


def _ranked_documents(store: Store, p: Project) -> Iterator[tuple[Document, dict[int, str], list]]:
    """(document, candidate id -> text, its current rankings) for every document, batch by batch."""
    for batch in _batches(store, p):
        by_doc = store.rankings_of([d.id for d in batch])
        for doc in batch:
            yield doc, {c.id: c.text for c in doc.candidates}, by_doc.get(doc.id, [])


def _export_rankings(store: Store, p: Project) -> Iterator[dict]:
    """Each current ranking with its document's title and text, and the candidates' sources (the
    model or policy that wrote each; none for a blind evaluation round's project)."""
    names = _names(store)
    blind = store.round_of_project(p.id) is not None
    for doc, texts, rankings in _ranked_documents(store, p):
        sources = {c.id: c.source for c in doc.candidates}
        for r in rankings:
            yield {
                "document_id": doc.id, "document_ext_id": doc.ext_id, "title": doc.title, "text": doc.text,
                "annotator": names[r.annotator_id],
                "ranking_ids": r.order, "ranking_texts": [[texts[c] for c in g] for g in r.order],
                "ranking_sources": None if blind else [[sources[c] for c in g] for g in r.order],
                "seconds": r.seconds, "version": r.version, "created": r.created,
            }


def ranking_pairs(order: list[list[int]]) -> Iterator[tuple[int, int]]:
    """All ordered (better, worse) pairs of a ranking given as groups best first; ties give none."""
    for i, better in enumerate(order):
        for worse in order[i + 1:]:
            for a in better:
                for b in worse:
                    yield a, b


def _export_pairs(store: Store, p: Project) -> Iterator[dict]:
    names = _names(store)
    for doc, texts, rankings in _ranked_documents(store, p):
        prompt = project_context(p, doc)
        for r in rankings:
            for a, b in ranking_pairs(r.order):
                yield {"prompt": prompt, "chosen": texts[a], "rejected": texts[b],
                       "annotator": names[r.annotator_id], "document_id": doc.id,
                       "document_ext_id": doc.ext_id, "chosen_id": a, "rejected_id": b}


def _export_majority_pairs(store: Store, p: Project) -> Iterator[dict]:
    for doc, texts, rankings in _ranked_documents(store, p):
        votes: dict[tuple[int, int], int] = {}
        for r in rankings:
            for a, b in ranking_pairs(r.order):
                votes[(a, b)] = votes.get((a, b), 0) + 1
        prompt = project_context(p, doc)
        for (a, b), n in sorted(votes.items()):
            against = votes.get((b, a), 0)
            if n > against:
                yield {"prompt": prompt, "chosen": texts[a], "rejected": texts[b], "annotator": "majority",
                       "votes": n, "against": against, "document_id": doc.id,
                       "document_ext_id": doc.ext_id, "chosen_id": a, "rejected_id": b}


def _export_critiques(store: Store, p: Project) -> Iterator[dict]:
    names = _names(store)
    for batch in _batches(store, p):
        by_doc = store.critiques_of([d.id for d in batch])
        for doc in batch:
            texts = {c.id: c.text for c in doc.candidates}
            for k in by_doc.get(doc.id, []):
                cand = texts[k.candidate_id]
                span = None if k.span_start is None else cand[k.span_start:k.span_end]
                yield {"document_id": doc.id, "document_ext_id": doc.ext_id, "title": doc.title,
                       "text": doc.text, "candidate_id": k.candidate_id, "candidate": cand,
                       "critique": k.text, "span_start": k.span_start, "span_end": k.span_end,
                       "span_text": span, "annotator": names[k.annotator_id], "version": k.version,
                       "created": k.created}


# -- writing ----------------------------------------------------------------------------------
def _parquet_schemas():
    import pyarrow as pa

    ids = pa.list_(pa.list_(pa.int64()))
    return {
        "documents": pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string()),
                                ("candidates", pa.list_(pa.string())), ("reference", pa.string()),
                                ("meta", pa.string())]),
        "rankings": pa.schema([("document_id", pa.int64()), ("document_ext_id", pa.string()),
                               ("title", pa.string()), ("text", pa.string()),
                               ("annotator", pa.string()), ("ranking_ids", ids),
                               ("ranking_texts", pa.list_(pa.list_(pa.string()))),
                               ("ranking_sources", pa.list_(pa.list_(pa.string()))),
                               ("seconds", pa.float64()), ("version", pa.int64()), ("created", pa.string())]),
        "pairs": pa.schema([("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()),
                            ("annotator", pa.string()), ("document_id", pa.int64()),
                            ("document_ext_id", pa.string()), ("chosen_id", pa.int64()),
                            ("rejected_id", pa.int64())]),
        "critiques": pa.schema([("document_id", pa.int64()), ("document_ext_id", pa.string()),
                                ("title", pa.string()), ("text", pa.string()), ("candidate_id", pa.int64()),
                                ("candidate", pa.string()), ("critique", pa.string()),
                                ("span_start", pa.int64()), ("span_end", pa.int64()),
                                ("span_text", pa.string()), ("annotator", pa.string()),
                                ("version", pa.int64()), ("created", pa.string())]),
    }


def write_export(rows: Iterable[dict], out: str | Path | IO[str] | None = None, fmt: str = "jsonl",
                 *, kind: str | None = None) -> int:
    """Write rows as JSONL (to a path, an open text file, or stdout when `out` is None), as
    Parquet (to a path, in batches), or in the Hugging Face `datasets` layout ("hf": `out` is a
    folder that gets data/train-00000-of-00001.parquet and a README.md dataset card, so
    `datasets.load_dataset(out)` or a hub upload reads it). Returns the number of rows written.

    Parquet: `kind` (an export kind) picks a fixed column schema; otherwise the schema is
    inferred from the first batch (columns that are all null there become strings). Object
    values (a document's meta) are stored as JSON text."""
    if fmt not in EXPORT_FORMATS + FOLDER_FORMATS:
        raise ValidationError(f"format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS + FOLDER_FORMATS)}")
    if fmt == "parquet":
        if out is None or not isinstance(out, (str, Path)):
            raise ValidationError("parquet export: needs an output file (--out FILE.parquet)")
        return _write_parquet(rows, Path(out), kind)
    if fmt == "hf":
        if out is None or not isinstance(out, (str, Path)):
            raise ValidationError("hf export: needs an output folder (--out DIR)")
        return _write_hf(rows, Path(out), kind)
    if out is None:
        return _write_jsonl(rows, sys.stdout)
    if isinstance(out, (str, Path)):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(rows, DocumentRows):  # the bytes SQLite built go to the file as they are
            n = 0
            with open(out, "wb") as fb:
                for chunk, lines in rows.jsonl_chunks():
                    fb.write(chunk)
                    n += lines
            return n
        with open(out, "w", encoding="utf-8") as f:
            return _write_jsonl(rows, f)
    return _write_jsonl(rows, out)


def _write_jsonl(rows: Iterable[dict], f: IO[str]) -> int:
    if isinstance(rows, DocumentRows):
        n = 0
        binary = getattr(f, "buffer", None) if f is sys.stdout else None  # stdout is UTF-8 text
        if binary is not None:
            f.flush()
        for chunk, lines in rows.jsonl_chunks():
            if binary is not None:
                binary.write(chunk)
            else:
                f.write(chunk.decode("utf-8"))
            n += lines
        return n
    n = 0
    for row in rows:
        f.write(json.dumps(row, ensure_ascii=False))
        f.write("\n")
        n += 1
    return n


def _write_parquet(rows: Iterable[dict], path: Path, kind: str | None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schemas().get(kind) if kind else None
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(rows, DocumentRows):
        return _write_arrow(rows, path)
    writer = None
    n = 0

    def flush(batch: list[dict]) -> None:
        nonlocal writer, schema
        batch = [{k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v for k, v in r.items()}
                 for r in batch]
        if schema is None:
            inferred = pa.Table.from_pylist(batch).schema
            schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f
                                for f in inferred])
        table = pa.Table.from_pylist(batch, schema=schema)
        if writer is None:
            writer = pq.ParquetWriter(str(path), schema)
        writer.write_table(table)

    try:
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            n += 1
            if len(batch) >= BATCH_ROWS:
                flush(batch)
                batch = []
        if batch or writer is None:
            if batch:
                flush(batch)
            elif schema is not None:
                writer = pq.ParquetWriter(str(path), schema)  # an empty file with the right columns
            else:
                pq.write_table(pa.table({}), str(path))
    finally:
        if writer is not None:
            writer.close()
    return n


def _write_arrow(rows: DocumentRows, path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    with pq.ParquetWriter(str(path), _parquet_schemas()["documents"]) as writer:
        for batch in rows.arrow_batches():
            writer.write_table(pa.Table.from_batches([batch]))  # one row group per batch, as before
            n += batch.num_rows
    return n


def _write_hf(rows: Iterable[dict], folder: Path, kind: str | None) -> int:
    if folder.exists() and not folder.is_dir():
        raise ValidationError(f"hf export: {folder} is a file; give a folder (--out DIR)")
    n = _write_parquet(rows, folder / "data" / "train-00000-of-00001.parquet", kind)
    name = kind or "rows"
    (folder / "README.md").write_text(
        "---\n"
        "configs:\n"
        "- config_name: default\n"
        "  data_files:\n"
        "  - split: train\n"
        "    path: data/train-*.parquet\n"
        "---\n\n"
        f"# Tokenwise export: {name}\n\n"
        f"{n} rows exported by `tokenwise export {name} --format hf`. Columns are described by\n"
        f"data/schemas/{name}.schema.json in the Tokenwise repository.\n\n"
        "```python\nfrom datasets import load_dataset\n"
        f"ds = load_dataset(\"{folder.name}\")  # the folder's path\n```\n",
        encoding="utf-8",
    )
    return n
