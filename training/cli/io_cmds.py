"""import, export: files in and out of a project (training.data.imports and .exports do the work)."""

from __future__ import annotations

import argparse
import os
import sys

from training.cli.common import add_db, out_format
from training.data.exports import AGGREGATES, EXPORT_FORMATS, EXPORT_KINDS, FOLDER_FORMATS
from training.data.imports import IMPORT_FORMATS, MAX_PROBLEMS
from training.errors import ImportFileError, ValidationError
from training.store import Store

IMPORT_HELP = f"""\
Import a file (or a `datasets` folder, or a hub dataset name) into an existing project, in one
pass: every row is checked and written in short batches that stay invisible until the end. If any
row is wrong, every problem is printed as `line N: field: message` and nothing is left written
(exit status 2); otherwise everything appears in the project at once.

Sources: .jsonl, .json (an array, or one object holding a list of rows), .csv, .tsv, .parquet,
each also .gz; a folder written by datasets.save_to_disk; a Hugging Face dataset name with --split
(from the local cache offline). --format auto tells the format from the first row (after --map);
`tokenwise import --formats` lists them with an example row each. Columns Tokenwise does not read
are kept in each document's meta; `tokenwise project set NAME --show-fields A,B` shows some to
annotators. Rows with the same prompt and candidates become one document with one ranking per row; the rater comes from a worker/annotator/rater column (or --rater-field),
credited as the source annotator `<source>:<rater>`; rows without one are judgments of
--source-annotator. JSON Schemas are in data/schemas/. At most {MAX_PROBLEMS} problems are listed.
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
        "import", help="import documents or preference data (TRL, summarize-from-feedback, ratings, ...) "
                       "into a project (all or nothing)",
        description=IMPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db(p)
    p.add_argument("file", metavar="SOURCE", nargs="?",
                   help="a file (.jsonl .json .csv .tsv .parquet, optionally .gz), a datasets folder, or a hub name")
    p.add_argument("--formats", action="store_true", help="list the formats with an example row each, and stop")
    p.add_argument("--project", metavar="NAME",
                   help="project to import into (create it first: tokenwise project create NAME --k 4, or --create)")
    p.add_argument("--create", action="store_true",
                   help="make the project when it does not exist: K from the file's first row (its number of "
                        "outputs), task summarize for documents and summaries, qa for prompts and responses; a "
                        "refused file leaves no project behind")
    p.add_argument("--format", default="auto", choices=IMPORT_FORMATS, help="file format (default: auto)")
    p.add_argument("--map", default="", metavar="NAME=COLUMN,...",
                   help="rename the file's columns first, e.g. prompt=question,chosen=good,rejected=bad; "
                        "a+b+c makes a list: text=question,candidates=answer 1+answer 2")
    p.add_argument("--rater-field", default=None, metavar="COLUMN",
                   help="column naming who judged (default: worker, annotator, rater, labeler or judge)")
    p.add_argument("--score-field", default=None, metavar="PATH",
                   help="ratings and scored: a response's score (dotted path, e.g. annotations.helpfulness.Rating; "
                        "default: overall_score, score, rating; scored rows also helpfulness, reward, rank)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="leave out the rows with problems (the first 50 are named) and import the rest; by default "
                        "one bad row refuses the whole file")
    p.add_argument("--split", default=None, help="hub dataset split (default: train)")
    p.add_argument("--source-annotator", default="import", metavar="NAME",
                   help="source credited with the rankings (pairs) and critiques (slf5k) in the file: an"
                        " annotator of role source, created when missing, that cannot sign in; a person's"
                        " name is refused; a row's rater is credited as NAME:rater (default: import; label-studio"
                        " and argilla for those tools' exports)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "export", help="export documents, rankings, pairs, critiques or ILF datasets as JSONL or Parquet",
        description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db(p)
    p.add_argument("what", metavar="WHAT", help=f"what to export: one of {', '.join(EXPORT_KINDS)}")
    p.add_argument("--project", required=True, metavar="NAME", help="project to export from")
    p.add_argument("--out", metavar="FILE", help="output file (default: JSONL on stdout)")
    p.add_argument("--aggregate", choices=AGGREGATES, default="none",
                   help="pairs: majority = one pair per candidate pair of a document, the way most rankings "
                        "go (ties and even splits dropped); none = one pair per judgment")
    p.add_argument("--format", choices=EXPORT_FORMATS + FOLDER_FORMATS, default=None,
                   help="jsonl, parquet, or hf (the Hugging Face `datasets` layout: a folder with"
                        " data/train-*.parquet and a README.md); default: parquet for a .parquet --out,"
                        " jsonl otherwise; parquet and hf need --out")
    p.set_defaults(func=cmd_export)


def cmd_import(args) -> int:
    import json

    from training.data.formats import FORMATS, Options, parse_mapping
    from training.data.imports import import_file

    if args.formats:
        for f in FORMATS.values():
            print(f"{f.name:11s} {f.description}\n            e.g. {json.dumps(f.example, ensure_ascii=False)}")
        return 0
    if not args.file or not args.project:
        raise ValidationError("import: give SOURCE and --project NAME (or --formats to list the formats)")
    try:
        mapping = parse_mapping(args.map)
    except ValueError as e:
        raise ValidationError(str(e)) from None
    options = Options(rater_field=args.rater_field, score_field=args.score_field, mapping=mapping)
    with Store(args.db) as s:
        try:
            report = import_file(s, args.file, args.project, fmt=args.format,
                                 source_annotator=args.source_annotator, options=options, split=args.split,
                                 skip_bad=args.skip_bad_rows, create=args.create)
        except ImportFileError as e:
            print(f"tokenwise: error: {e.path}: nothing imported, {e.count()}:", file=sys.stderr)
            for line, field, msg in e.problems:
                print(f"line {line}: {field}: {msg}", file=sys.stderr)
            if e.stopped_at is not None:
                print(f"checking stopped at line {e.stopped_at}; fix these and import again to see the rest",
                      file=sys.stderr)
            if not args.skip_bad_rows and not (e.problems and e.problems[0][0] == 0):
                print("to import the rows without problems, if any, and leave these out: --skip-bad-rows", file=sys.stderr)
            return 2
    print(report)  # (with --skip-bad-rows: the rows left out, a line each)
    return 0


def cmd_export(args) -> int:
    from training.data.exports import export_rows, write_export

    fmt = out_format(args.out, args.format)
    if fmt in ("parquet", "hf") and not args.out:
        raise ValidationError(f"--format {fmt}: needs --out ({'FILE.parquet' if fmt == 'parquet' else 'DIR'});"
                              " only JSONL is written to stdout")
    with Store(args.db) as s:
        rows = export_rows(s, args.project, args.what, aggregate=args.aggregate)
        try:
            n = write_export(rows, args.out, fmt, kind=args.what)
        except BrokenPipeError:  # `tokenwise export ... | head`: the reader has gone, that is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return 0
    if args.out:
        print(f"exported {n} {args.what} rows from project {args.project!r} to {args.out} ({fmt})")
    return 0
