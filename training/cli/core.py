"""init, project, annotator, make-tiny-model, serve, worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from training.cli.common import add_db
from training.errors import ValidationError
from training.store import ROLES, Store

APP = Path(__file__).resolve().parents[2] / "annotate_app" / "app.py"


def register(sub) -> None:
    p = sub.add_parser("init", help="create a database (with the demo projects when --demo)")
    add_db(p)
    p.add_argument("--demo", action="store_true", help="load the demo projects 'demo' and 'demo-prompts'")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("project", help="create or list projects")
    psub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = psub.add_parser("create", help="create an empty project")
    add_db(c)
    c.add_argument("name")
    c.add_argument("--kind", choices=["summarize", "prompt"], default="summarize", help="what candidates are")
    c.add_argument("--k", type=int, default=4, help="candidates per document (at least 2)")
    c.add_argument("--overlap", type=int, default=1, help="annotators per document")
    c.add_argument("--instructions", default="", help="shown to annotators above each document")
    c.add_argument("--allow-ties", action="store_true", help="let annotators give two candidates one rank")
    c.add_argument("--require-critique-lowest", action="store_true",
                   help="require a critique of the lowest-ranked candidate")
    c.set_defaults(func=cmd_project_create)
    ls = psub.add_parser("list", help="list projects with their counts")
    add_db(ls)
    ls.set_defaults(func=cmd_project_list)

    p = sub.add_parser("annotator", help="add, list or revoke annotators")
    asub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = asub.add_parser("add", help="add an annotator and print their access token (shown once)")
    add_db(a)
    a.add_argument("name")
    a.add_argument("--role", choices=ROLES, default="annotator")
    a.set_defaults(func=cmd_annotator_add)
    ls = asub.add_parser("list", help="list annotators")
    add_db(ls)
    ls.set_defaults(func=cmd_annotator_list)
    r = asub.add_parser("revoke", help="revoke an annotator's token (their entries stay)")
    add_db(r)
    r.add_argument("name")
    r.set_defaults(func=cmd_annotator_revoke)

    p = sub.add_parser("make-tiny-model", help="build a tiny offline model (tokenizer trained on the demo text)")
    p.add_argument("--kind", choices=["causal", "seq2seq"], default="causal")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to save_pretrained into")
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_tiny_model)

    p = sub.add_parser("serve", help="start the web app and a worker")
    add_db(p)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default localhost only)")
    p.add_argument("--no-worker", action="store_true", help="do not start a background worker")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run queued training jobs from the database")
    add_db(p)
    p.add_argument("--once", action="store_true", help="run at most one job, then exit")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between polls of the queue")
    p.add_argument("--heartbeat-timeout", type=float, default=120.0,
                   help="seconds without a heartbeat after which a running job counts as dead (failed)")
    p.set_defaults(func=cmd_worker)


def tokens_file(db: str) -> Path:
    """Where `init --demo` keeps the demo tokens, so `make run` can print them again."""
    return Path(f"{db}.demo-tokens.json")


def cmd_init(args) -> int:
    existed = Path(args.db).exists()
    with Store(args.db) as s:
        print(f"database {args.db}: schema version {s.schema_version()}" + (" (existing)" if existed else ""))
        if args.demo:
            from training.data.demo import load_demo

            tokens = load_demo(s)
            path = tokens_file(args.db)
            path.write_text(json.dumps(tokens, indent=2))
            os.chmod(path, 0o600)
            print(f"demo projects loaded; demo tokens saved to {path}")
            _print_tokens(tokens)
    return 0


def _print_tokens(tokens: dict[str, str]) -> None:
    for name, token in tokens.items():
        print(f"  {name:<10} {token}")


def cmd_project_create(args) -> int:
    with Store(args.db) as s:
        p = s.create_project(
            args.name, kind=args.kind, k=args.k, overlap=args.overlap, instructions=args.instructions,
            allow_ties=args.allow_ties, require_critique_lowest=args.require_critique_lowest,
        )
    print(f"project {p.name!r} created (kind {p.kind}, K={p.k}, overlap {p.overlap})")
    return 0


def cmd_project_list(args) -> int:
    with Store(args.db) as s:
        for p in s.list_projects():
            pr = s.progress(p.id)
            print(f"{p.name}\t{p.kind}\tK={p.k}\toverlap={p.overlap}\tdocuments={pr.documents}"
                  f"\trankings={pr.rankings}\tcritiques={pr.critiques}")
    return 0


def cmd_annotator_add(args) -> int:
    with Store(args.db) as s:
        a, token = s.add_annotator(args.name, role=args.role)
    print(f"annotator {a.name!r} ({a.role}) added. Access token (shown once, keep it safe):")
    print(token)
    return 0


def cmd_annotator_list(args) -> int:
    with Store(args.db) as s:
        for a in s.list_annotators():
            print(f"{a.name}\t{a.role}\t{'active' if a.active else 'revoked'}\t{a.created}")
    return 0


def cmd_annotator_revoke(args) -> int:
    with Store(args.db) as s:
        a = s.revoke_annotator(args.name)
    print(f"annotator {a.name!r} revoked")
    return 0


def cmd_make_tiny_model(args) -> int:
    from training.data.tiny import make_tiny_model

    out = make_tiny_model(args.kind, args.out, vocab_size=args.vocab_size, seed=args.seed)
    print(f"tiny {args.kind} model saved to {out}")
    return 0


def cmd_worker(args) -> int:
    from training.jobs.worker import run_worker

    run_worker(args.db, once=args.once, poll=args.poll, heartbeat_timeout=args.heartbeat_timeout)
    return 0


def cmd_serve(args) -> int:
    if not APP.exists():
        raise ValidationError(f"app entry point {APP} is missing")
    with Store(args.db):  # create/migrate before the app and worker open it
        pass
    env = {**os.environ, "TOKENWISE_DB": str(Path(args.db).resolve())}
    app = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(args.port),
         "--server.address", args.host, "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        env=env,
    )
    procs = [app]
    if not args.no_worker:
        procs.append(subprocess.Popen([sys.executable, "-m", "training.cli", "worker", "--db", args.db], env=env))
    print(f"Tokenwise is serving {args.db} at http://{args.host}:{args.port}"
          + ("" if args.no_worker else " (worker running)"), flush=True)
    tokens = tokens_file(args.db)
    if tokens.exists():
        print("demo access tokens:")
        _print_tokens(json.loads(tokens.read_text()))
    sys.stdout.flush()

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0
