"""jobs submit | list | show | cancel | kinds: the background-job queue from the command line.

    tokenwise jobs submit reward --db t.db --project demo --set epochs=2 --set lr=1e-4
    tokenwise jobs list --db t.db [--status running] [--json]
    tokenwise jobs show 3 --db t.db [--json]
    tokenwise jobs cancel 3 --db t.db
    tokenwise jobs kinds [KIND]          (the settings of each kind, with help text)

A worker (`tokenwise worker` or `tokenwise serve`) runs what is queued.
"""

from __future__ import annotations

import dataclasses

from training.cli.common import add_db, print_json
from training.store import Store
from training.store.jobs import STATUSES


def register(sub) -> None:
    p = sub.add_parser("jobs", help="submit, list, show or cancel background jobs")
    jsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    s = jsub.add_parser("submit", help="queue a job and print its id (settings are checked first)")
    s.add_argument("kind", help="job kind (see: tokenwise jobs kinds)")
    add_db(s)
    s.add_argument("--project", help="project name (every kind but selftest needs one)")
    s.add_argument("--config", metavar="FILE.json", help="settings as a JSON object")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one setting (repeatable; overrides --config)")
    s.add_argument("--json", action="store_true", help="print the job as JSON")
    s.set_defaults(func=cmd_submit)

    ls = jsub.add_parser("list", help="list jobs, newest first")
    add_db(ls)
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--project")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    sh = jsub.add_parser("show", help="one job: settings, progress, metrics, log, error")
    sh.add_argument("id", type=int)
    add_db(sh)
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)

    c = jsub.add_parser("cancel", help="cancel a queued job, or stop a running one at its next step")
    c.add_argument("id", type=int)
    add_db(c)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_cancel)

    k = jsub.add_parser("kinds", help="the job kinds and their settings")
    add_db(k, used=False)
    k.add_argument("kind", nargs="?")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_kinds)


def _job_dict(job) -> dict:
    return dataclasses.asdict(job)


def cmd_submit(args) -> int:
    from training.forms import load_config_file, parse_set
    from training.jobs.kinds import submit_job

    values = load_config_file(args.config) if args.config else {}
    values.update(parse_set(args.set))
    with Store(args.db) as s:
        job = submit_job(s, args.kind, values, project=args.project)
    if args.json:
        print_json(_job_dict(job))
    else:
        print(job.id)
    return 0


def cmd_list(args) -> int:
    with Store(args.db) as s:
        jobs = s.list_jobs(status=args.status, project=args.project, limit=args.limit)
        names = {p.id: p.name for p in s.list_projects()}
    if args.json:
        print_json([_job_dict(j) for j in jobs])
        return 0
    if not jobs:
        print("no jobs")
        return 0
    print("id\tkind\tproject\tstatus\tprogress\tcreated")
    for j in jobs:
        print(f"{j.id}\t{j.kind}\t{names.get(j.project_id, '-')}\t{j.status}\t{j.step}/{j.total}\t{j.created}")
    return 0


def cmd_show(args) -> int:
    with Store(args.db) as s:
        j = s.get_job(args.id)
    if args.json:
        print_json(_job_dict(j))
        return 0
    print(f"job {j.id}: {j.kind} ({j.status}) step {j.step}/{j.total}")
    print(f"created {j.created}  started {j.started or '-'}  finished {j.finished or '-'}  worker {j.worker or '-'}")
    print("config: " + ", ".join(f"{k}={v!r}" for k, v in j.config.items()))
    if j.metrics:
        last = j.metrics[-1]
        print("last metrics: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in last.items()))
    if j.result:
        print(f"result: {j.result}")
    if j.error:
        print(f"error: {j.error}")
    if j.log:
        print("log:")
        print(j.log.rstrip("\n"))
    return 0


def cmd_cancel(args) -> int:
    with Store(args.db) as s:
        j = s.request_cancel(args.id)
    if args.json:
        print_json(_job_dict(j))
    elif j.status == "cancelled":
        print(f"job {j.id} cancelled")
    else:
        print(f"job {j.id}: cancel requested; it stops at its next step")
    return 0


def cmd_kinds(args) -> int:
    from training.jobs.kinds import KINDS, get_kind, kind_fields

    kinds = [get_kind(args.kind)] if args.kind else list(KINDS.values())
    out = []
    for k in kinds:
        out.append({"kind": k.name, "title": k.title, "description": k.description,
                    "settings": [dataclasses.asdict(f) for f in kind_fields(k.name)]})
    if args.json:
        print_json(out)
        return 0
    for item in out:
        print(f"{item['kind']}: {item['title']}")
        print(f"  {item['description']}")
        for f in item["settings"]:
            extra = []
            if f["choices"]:
                extra.append("one of " + ", ".join(map(str, f["choices"])))
            if f["min"] is not None:
                extra.append(f">= {f['min']}")
            if f["max"] is not None:
                extra.append(f"<= {f['max']}")
            print(f"    {f['name']} ({f['type']}, default {f['default']!r}){': ' + f['help'] if f['help'] else ''}"
                  + (f" [{'; '.join(extra)}]" if extra else ""))
    return 0
