"""`tokenwise` command line. One module per command group; each has `register(subparsers)`.

Errors from the library (TokenwiseError) print as one line on stderr and exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training.errors import NotFound, TokenwiseError

from . import core, doctor_cmds, ilf_cmds, io_cmds, jobs_cmds, round_cmds, train_cmds
from .common import DEFAULT_DB

GROUPS = (core, io_cmds, train_cmds, ilf_cmds, jobs_cmds, round_cmds, doctor_cmds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenwise",
        description="Tokenwise: rank and critique model outputs, learn token-level rewards, build ILF data.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    parser.add_argument("--db", dest="root_db", metavar="PATH", default=None,
                        help=f"SQLite database, before the command or after it (default ./{DEFAULT_DB})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def resolve_db(args: argparse.Namespace) -> argparse.Namespace:
    """`tokenwise --db X cmd` and `tokenwise cmd --db X` alike; neither: the command's default
    (DEFAULT_DB, or None for one whose database is optional: train sft registers nowhere then)."""
    if getattr(args, "db", DEFAULT_DB) is None:
        args.db = args.root_db or getattr(args, "db_default", None)
    return args


def check_db_exists(args: argparse.Namespace) -> None:
    """Only `init` creates a database: any other command given a path with no file there (a typo,
    the wrong folder) would otherwise create an empty one and answer as if it were the real one."""
    db = getattr(args, "db", None)
    if args.command == "init" or not db or db == ":memory:" or not getattr(args, "db_used", True):
        return
    if getattr(args, "formats", False):  # `import --formats` only lists the formats
        return
    if not Path(db).exists():
        raise NotFound(f"no database at {db}: create one with `tokenwise init --db {db}` "
                       "(add --demo for the demo projects), or pass the path of an existing one")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = resolve_db(parser.parse_args(argv))
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        check_db_exists(args)
        return int(args.func(args) or 0)
    except TokenwiseError as e:
        print(f"tokenwise: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tokenwise: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tokenwise ... | head`: the reader has gone, which is fine
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
