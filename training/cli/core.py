"""init, project, annotator, make-tiny-model, serve, worker.

    tokenwise init --db tokenwise.db --demo
    tokenwise serve --db tokenwise.db --port 8501 --host 127.0.0.1

`serve` runs the Streamlit app (with the project's .streamlit/config.toml passed as flags, so it
applies from any working directory) and a worker that it restarts, with a back-off, if it dies.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from training.cli.common import add_db
from training.errors import ValidationError
from training.store import PROJECT_KINDS, ROLES, Store

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "annotate_app" / "app.py"
STREAMLIT_CONFIG = ROOT / ".streamlit" / "config.toml"
log = logging.getLogger(__name__)


SHOW_FIELDS_HELP = ("document fields (columns an import kept beside text and candidates, e.g. passages) that "
                    "annotators see under each document's text and models read after it, comma-separated")
KIND_HELP = "what candidates are: " + "; ".join(f"{k} = {v}" for k, v in PROJECT_KINDS.items())


def register(sub) -> None:
    p = sub.add_parser("init", help="create a database (with the demo projects when --demo)")
    add_db(p)
    p.add_argument("--demo", action="store_true", help="load the demo projects 'demo' and 'demo-prompts'")
    p.add_argument("--demo-model", default=os.environ.get("TOKENWISE_DEMO_MODEL", "minilm"),
                   help="with --demo: queue a quick reward-model job on the demo with this backbone (an alias "
                        "such as minilm, or a folder), which `tokenwise serve` runs so the heatmap is there in "
                        "a few minutes; 'none' queues nothing (default: $TOKENWISE_DEMO_MODEL or minilm)")
    p.add_argument("--admin", metavar="NAME", help="also add an admin named NAME and print their access token "
                   "(the first person to sign in with; more: `tokenwise annotator add`)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("project", help="create or list projects")
    psub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = psub.add_parser("create", help="create an empty project")
    add_db(c)
    c.add_argument("name")
    c.add_argument("--kind", choices=list(PROJECT_KINDS), default="summarize", help=KIND_HELP)
    c.add_argument("--k", type=int, default=4, help="candidates per document (at least 2)")
    c.add_argument("--overlap", type=int, default=1, help="annotators per document")
    c.add_argument("--instructions", default="", help="shown to annotators above each document")
    c.add_argument("--allow-ties", action="store_true", help="let annotators give two candidates one rank")
    c.add_argument("--require-critique-lowest", action="store_true",
                   help="require a critique of the lowest-ranked candidate")
    c.add_argument("--show-fields", default="", metavar="A,B",
                   help=SHOW_FIELDS_HELP)
    c.set_defaults(func=cmd_project_create)
    ls = psub.add_parser("list", help="list projects with their counts")
    add_db(ls)
    ls.set_defaults(func=cmd_project_list)
    st = psub.add_parser("set", help="change a project's settings (not its name or K)")
    add_db(st)
    st.add_argument("name")
    st.add_argument("--kind", choices=list(PROJECT_KINDS),
                    help=KIND_HELP + ". A new kind changes only the prompts models get (generation, policy "
                         "training, ILF) and whether they read the title; documents, rankings and critiques stay")
    st.add_argument("--overlap", type=int, help="annotators per document")
    st.add_argument("--instructions", help="shown to annotators above each document")
    st.add_argument("--allow-ties", action=argparse.BooleanOptionalAction, help="let annotators give two candidates one rank")
    st.add_argument("--require-critique-lowest", action=argparse.BooleanOptionalAction,
                    help="require a critique of the lowest-ranked candidate")
    st.add_argument("--show-fields", metavar="A,B", help=SHOW_FIELDS_HELP + "; '' shows none")
    st.set_defaults(func=cmd_project_set)

    p = sub.add_parser("annotator", help="add, list or revoke annotators, or give one a new token")
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
    t = asub.add_parser("token", help="a new access token for someone (a lost token; after revoking, "
                                      "lets them in again); the old one stops working")
    add_db(t)
    t.add_argument("name")
    t.set_defaults(func=cmd_annotator_token)

    p = sub.add_parser("make-tiny-model", help="build a tiny offline model (tokenizer trained on the demo text)")
    add_db(p, used=False)
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
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder that jobs started from the dashboard may read and write "
                        "(default: the database's folder; or TOKENWISE_DATA_DIR)")
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
        if not existed and args.db != ":memory:":  # annotation data is often private: only its owner reads it
            os.chmod(args.db, 0o600)               # (SQLite gives the -wal and -shm files the same mode)
        print(f"database {args.db}: schema version {s.schema_version()}" + (" (existing)" if existed else ""))
        if args.demo:
            from training.data.demo import load_demo

            tokens = load_demo(s)
            path = tokens_file(args.db)
            path.write_text(json.dumps(tokens, indent=2))
            os.chmod(path, 0o600)
            print(f"demo projects loaded; demo tokens saved to {path}")
            _print_tokens(tokens)
            if args.demo_model.strip().lower() != "none":
                from training.data.demo import queue_demo_reward_job

                job = queue_demo_reward_job(s, args.demo_model.strip())
                print(f"queued job #{job.id}: a quick reward model on the demo ({args.demo_model}); "
                      "`tokenwise serve` runs it and the Rewards page shows its heatmap in a few minutes")
        if args.admin:
            a, token = s.add_annotator(args.admin, role="admin")
            print(f"admin {a.name!r} added. Access token (shown once, keep it safe):\n  {token}")
        if not any(a.is_admin and a.active for a in s.list_annotators()):
            print(next_steps(args.db))
    return 0


def next_steps(db: str) -> str:
    """What a new database without an admin needs before anyone can sign in, as commands."""
    at = "" if db == "tokenwise.db" else f" --db {shlex.quote(db)}"
    steps = [(f"tokenwise annotator add YOUR_NAME --role admin{at}", "prints your access token"),
             (f"tokenwise import FILE --project NAME --create{at}", "your data (README, Formats)"),
             (f"tokenwise serve{at}", "then sign in at http://127.0.0.1:8501")]
    width = max(len(c) for c, _ in steps)
    return "nobody can sign in yet. Next:\n" + "\n".join(f"  {c.ljust(width)}   # {why}" for c, why in steps)


def _print_tokens(tokens: dict[str, str]) -> None:
    for name, token in tokens.items():
        print(f"  {name:<10} {token}")


def cmd_project_create(args) -> int:
    with Store(args.db) as s:
        p = s.create_project(
            args.name, kind=args.kind, k=args.k, overlap=args.overlap, instructions=args.instructions,
            allow_ties=args.allow_ties, require_critique_lowest=args.require_critique_lowest,
            context_fields=args.show_fields,
        )
    print(f"project {p.name!r} created (kind {p.kind}, K={p.k}, overlap {p.overlap})")
    return 0


def cmd_project_set(args) -> int:
    changes = {name: value for name, value in (
        ("kind", args.kind), ("overlap", args.overlap), ("instructions", args.instructions),
        ("allow_ties", args.allow_ties),
        ("require_critique_lowest", args.require_critique_lowest), ("context_fields", args.show_fields),
    ) if value is not None}
    if not changes:
        raise ValidationError("project set: name a setting to change (--kind, --overlap, --instructions, "
                              "--allow-ties, --require-critique-lowest, --show-fields)")
    with Store(args.db) as s:
        p = s.update_project(args.name, **changes)
        fields = s.meta_fields(p.id)
    unknown = [f for f in p.context_fields if f not in fields]
    print(f"project {p.name!r}: kind {p.kind}, overlap {p.overlap}, "
          f"ties {'allowed' if p.allow_ties else 'not allowed'}, "
          f"critique of the lowest {'required' if p.require_critique_lowest else 'optional'}, fields shown: "
          f"{', '.join(p.context_fields) or 'none'}")
    if unknown:
        print(f"note: no document of {p.name!r} has {', '.join(unknown)} yet"
              + (f" (their fields: {', '.join(fields)})" if fields else ""))
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


def cmd_annotator_token(args) -> int:
    with Store(args.db) as s:
        a, token = s.new_token(args.name)
    print(f"annotator {a.name!r} ({a.role}): their old token no longer works. New access token (shown once):")
    print(token)
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


# -- serve: the app and a supervised worker -------------------------------------------------
# Settings serve always passes, whatever the config file says: no usage statistics, no Deploy
# button or developer menu, no browser opened on the server.
FORCED_STREAMLIT = {"server.headless": True, "browser.gatherUsageStats": False, "client.toolbarMode": "minimal",
                    "server.runOnSave": False, "server.fileWatcherType": "none"}


def streamlit_flags(host: str, port: int, config: Path = STREAMLIT_CONFIG) -> list[str]:
    """The project's .streamlit/config.toml as command-line flags (Streamlit reads that file only
    from its working directory; flags apply from anywhere), then FORCED_STREAMLIT, host and port."""
    settings: dict[str, object] = {}
    if config.is_file():
        for section, values in tomllib.loads(config.read_text()).items():
            for key, value in values.items():
                settings[f"{section}.{key}"] = value
    settings.update(FORCED_STREAMLIT)
    settings.update({"server.address": host, "server.port": port})
    flags = []
    for key, value in settings.items():
        flags += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return flags


class Supervisor:
    """Runs the app and the worker; restarts a worker that dies, with a back-off.

    A dead worker is logged, its running job marked failed with the reason (exit code or signal),
    and a new one started after `backoff` s, doubling (up to `max_backoff`) while it keeps dying
    within `healthy_s` of its start. The app keeps serving all along. When the app exits, or on
    SIGTERM / Ctrl+C, both stop.
    """

    def __init__(self, db: str, app_cmd: list[str], worker_cmd: list[str] | None, env: dict,
                 backoff: float = 1.0, max_backoff: float = 60.0, healthy_s: float = 60.0):
        self.db, self.app_cmd, self.worker_cmd, self.env = db, app_cmd, worker_cmd, env
        self.backoff, self.max_backoff, self.healthy_s = backoff, max_backoff, healthy_s
        self.stopping = False
        self.app: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.restarts = 0
        self._delay = backoff  # before the next restart
        self._worker_started = 0.0

    def _start_worker(self) -> None:
        # jobs report their progress on the Training page: no terminal progress bars (model loading,
        # shard writing) filling the server's log
        quiet = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        self.worker = subprocess.Popen(self.worker_cmd, env={**self.env, **quiet})
        self._worker_started = time.monotonic()

    def _worker_died(self, code: int) -> float:
        """Log it, fail its job, and return the delay before the next start."""
        from training.jobs.worker import fail_jobs_of_worker

        pid = self.worker.pid
        how = f"was killed by signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exited with code {code}"
        if code == -signal.SIGKILL:
            how += ", e.g. by the out-of-memory killer"
        with Store(self.db, migrate=False) as s:
            failed = fail_jobs_of_worker(s, pid, f"the worker (pid {pid}) {how}")
        up = time.monotonic() - self._worker_started
        self._delay = self.backoff if up >= self.healthy_s or not self.restarts else min(
            self.max_backoff, self._delay * 2)
        self.restarts += 1
        log.error("worker (pid %s) %s after %.0f s%s; restarting it in %.1f s", pid, how, up,
                  f"; job(s) {failed} marked failed" if failed else "", self._delay)
        return self._delay

    def run(self, poll: float = 0.5) -> int:
        self.app = subprocess.Popen(self.app_cmd, env=self.env)
        if self.worker_cmd:
            self._start_worker()
        restart_at = None
        try:
            while not self.stopping:
                code = self.app.poll()
                if code is not None:
                    log.error("the web app exited with code %s; stopping", code)
                    return code or 1
                if self.worker is not None and restart_at is None and (code := self.worker.poll()) is not None:
                    restart_at = time.monotonic() + self._worker_died(code)
                if restart_at is not None and time.monotonic() >= restart_at:
                    restart_at = None
                    self._start_worker()
                    log.warning("worker restarted (pid %s)", self.worker.pid)
                time.sleep(poll)
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            self.stop()

    def stop(self, *_signal) -> None:
        """SIGTERM handler and the end of run(): terminate both, kill what does not stop."""
        self.stopping = True
        procs = [p for p in (self.app, self.worker) if p is not None]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        if _signal:  # inside the handler: run() wakes up, sees `stopping` and waits in its finally
            return
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def cmd_serve(args) -> int:
    with Store(args.db):  # create/migrate before the app and worker open it
        pass
    env = {**os.environ, "TOKENWISE_DB": str(Path(args.db).resolve())}
    if args.data_dir:
        env["TOKENWISE_DATA_DIR"] = str(Path(args.data_dir).resolve())
    app_cmd = [sys.executable, "-m", "streamlit", "run", str(APP), *streamlit_flags(args.host, args.port)]
    worker_cmd = None if args.no_worker else [sys.executable, "-m", "training.cli", "worker", "--db", args.db]
    print(f"Tokenwise is serving {args.db} at http://{args.host}:{args.port}"
          + ("" if args.no_worker else " (worker running, restarted if it dies)"), flush=True)
    tokens = tokens_file(args.db)
    if tokens.exists():  # never the tokens themselves: this output often lands in logs
        print(f"demo access tokens: in {tokens} (readable only by you)", flush=True)
    sup = Supervisor(args.db, app_cmd, worker_cmd, env)
    signal.signal(signal.SIGTERM, sup.stop)
    return sup.run()
