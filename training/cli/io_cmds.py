"""import, export: files in and out of a project (training.data.imports and .exports do the work)."""

from __future__ import annotations

import argparse
import os
import sys

from training.cli.common import add_db, out_format
from training.data.exports import EXPORT_FORMATS, EXPORT_KINDS, FOLDER_FORMATS
from training.data.imports import IMPORT_FORMATS, MAX_PROBLEMS
from training.errors import ImportFileError, ValidationError
from training.store import Store

IMPORT_HELP = f"""\
Import a file into an existing project, in one pass: every line is checked and written in short
batches that stay invisible until the end. If any line is wrong, every problem is printed as
`line N: field: message` and nothing is left written (exit status 2); otherwise everything
appears in the project at once.

formats (--format auto guesses from the suffix and the first row):
  documents  JSONL: {{"id", "title", "text", "candidates": [...], "reference"?, "meta"?}}
             CSV:   header id,title,text,candidate_1,...,candidate_K[,reference][,meta]
             every document needs the project's K candidates
  pairs      TRL JSONL: {{"prompt", "chosen", "rejected"}} (+ optional "id"); each line becomes a
             document with 2 candidates ranked chosen > rejected by --source-annotator
             (the project needs K=2)
  slf5k      JSONL: {{"title", "post", "generated_summary_for_feedback", "feedback",
             "ideal_human_summary"}} (+ optional "id"); the summary is the candidate, the feedback
             a critique by --source-annotator, the ideal summary the document's reference

JSON Schemas of every format are in data/schemas/. At most {MAX_PROBLEMS} problems are listed.
"""

EXPORT_HELP = """\
Export what a project holds, one row per line (JSONL), as Parquet, or as a Hugging Face
`datasets` folder (--format hf).

what:
  documents  the import shape {"id", "title", "text", "candidates", "reference"?, "meta"?}
  rankings   one row per current ranking: candidate ids and texts, best first, ties kept
  pairs      TRL {"prompt", "chosen", "rejected"} + annotator and ids: every ranking expanded
             to all ordered pairs, ties dropped
  critiques  candidate, critique, quoted span, annotator, document
  ilf-sft, ilf-feedback
             ILF datasets {"prompt", "completion"} from accepted refinements (training.ilf.dataset):
             context -> refinement, and context + output -> feedback + refinement
"""


def register(sub) -> None:
    p = sub.add_parser(
        "import", help="import documents, TRL pairs or SLF5K rows into a project (all or nothing)",
        description=IMPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db(p)
    p.add_argument("file", metavar="FILE", help="a .jsonl or .csv file (UTF-8)")
    p.add_argument("--project", required=True, metavar="NAME",
                   help="project to import into (create it first: tokenwise project create NAME --k 4)")
    p.add_argument("--format", default="auto", choices=IMPORT_FORMATS, help="file format (default: auto)")
    p.add_argument("--source-annotator", default="import", metavar="NAME",
                   help="source credited with the rankings (pairs) and critiques (slf5k) in the file: an"
                        " annotator of role source, created when missing, that cannot sign in; a person's"
                        " name is refused (default: import)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "export", help="export documents, rankings, pairs, critiques or ILF datasets as JSONL or Parquet",
        description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db(p)
    p.add_argument("what", metavar="WHAT", help=f"what to export: one of {', '.join(EXPORT_KINDS)}")
    p.add_argument("--project", required=True, metavar="NAME", help="project to export from")
    p.add_argument("--out", metavar="FILE", help="output file (default: JSONL on stdout)")
    p.add_argument("--format", choices=EXPORT_FORMATS + FOLDER_FORMATS, default=None,
                   help="jsonl, parquet, or hf (the Hugging Face `datasets` layout: a folder with"
                        " data/train-*.parquet and a README.md); default: parquet for a .parquet --out,"
                        " jsonl otherwise; parquet and hf need --out")
    p.set_defaults(func=cmd_export)


def cmd_import(args) -> int:
    from training.data.imports import import_file

    with Store(args.db) as s:
        try:
            report = import_file(s, args.file, args.project, fmt=args.format,
                                 source_annotator=args.source_annotator)
        except ImportFileError as e:
            print(f"tokenwise: error: {e.path}: nothing imported, {len(e.problems)} problem(s):", file=sys.stderr)
            for line, field, msg in e.problems:
                print(f"line {line}: {field}: {msg}", file=sys.stderr)
            return 2
    print(report)
    return 0


def cmd_export(args) -> int:
    from training.data.exports import export_rows, write_export

    fmt = out_format(args.out, args.format)
    if fmt in ("parquet", "hf") and not args.out:
        raise ValidationError(f"--format {fmt}: needs --out ({'FILE.parquet' if fmt == 'parquet' else 'DIR'});"
                              " only JSONL is written to stdout")
    with Store(args.db) as s:
        rows = export_rows(s, args.project, args.what)
        try:
            n = write_export(rows, args.out, fmt, kind=args.what)
        except BrokenPipeError:  # `tokenwise export ... | head`: the reader has gone, that is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return 0
    if args.out:
        print(f"exported {n} {args.what} rows from project {args.project!r} to {args.out} ({fmt})")
    return 0
