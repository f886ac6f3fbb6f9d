"""doctor: check the database's counters against a recount from scratch, and fix them (--fix).

Opening the database also removes the rows of imports whose process died (each is reported).

    tokenwise doctor --db tokenwise.db          # lists every difference; exit 1 when there is one
    tokenwise doctor --db tokenwise.db --fix    # rewrites the counters that differ (one transaction)
"""

from __future__ import annotations

import argparse

from training.cli.common import add_db
from training.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check (and with --fix repair) queue counters against a full recount",
                       description=__doc__.split("\n\n")[0])
    add_db(p)
    p.add_argument("--fix", action="store_true", help="replace counters that differ by the recount")
    p.set_defaults(func=doctor)


def doctor(args: argparse.Namespace) -> int:
    with Store(args.db, migrate=False) as s:
        s.migrate()
        for line in s.clean_stale_imports():
            print(line)
        found = s.check_counters(fix=args.fix)
    for line in found:
        print(line)
    if not found:
        print("counters: all equal a recount from scratch")
        return 0
    print(f"{len(found)} difference(s) {'fixed' if args.fix else 'found; run with --fix to repair them'}")
    return 0 if args.fix else 1
