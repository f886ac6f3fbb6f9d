"""`tokenwise serve`: the project's Streamlit settings from any folder, and a supervised worker.

The live test starts a real `tokenwise serve` (Streamlit + worker) outside the repository, kills
the worker with SIGKILL in the middle of a job, and checks that the app keeps answering, the job
is failed with the reason, a new worker runs the next job, and SIGTERM stops everything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from training.cli.core import FORCED_STREAMLIT, Supervisor, streamlit_flags, tokens_file
from training.jobs.kinds import submit_job
from training.store import Store


def _flags(argv: list[str]) -> dict[str, str]:
    return {argv[i][2:]: argv[i + 1] for i in range(0, len(argv), 2)}


def test_streamlit_settings_are_flags_from_the_config_file(tmp_path):
    flags = _flags(streamlit_flags("0.0.0.0", 9000))
    assert flags["client.toolbarMode"] == "minimal"  # no Deploy button, no developer menu
    assert flags["browser.gatherUsageStats"] == "false"
    assert flags["server.headless"] == "true"
    assert flags["theme.primaryColor"] == "#2563eb"  # from .streamlit/config.toml
    assert flags["server.enableXsrfProtection"] == "true"
    assert (flags["server.address"], flags["server.port"]) == ("0.0.0.0", "9000")
    # a config file that asks for usage statistics and the full toolbar does not get them
    cfg = tmp_path / "config.toml"
    cfg.write_text('[browser]\ngatherUsageStats = true\n[client]\ntoolbarMode = "developer"\n[theme]\nbase = "dark"\n')
    flags = _flags(streamlit_flags("127.0.0.1", 8501, config=cfg))
    assert flags["browser.gatherUsageStats"] == "false" and flags["client.toolbarMode"] == "minimal"
    assert flags["theme.base"] == "dark"
    assert set(FORCED_STREAMLIT) <= set(flags)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
        return r.status == 200
    return False


def _wait(cond, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_supervisor_restarts_a_dead_worker_with_a_back_off(db_path):
    """Without Streamlit: a 'worker' that dies at once is restarted, the delay doubling."""
    Store(db_path).close()
    app = [sys.executable, "-c", "import time; time.sleep(60)"]
    # the worker runs without terminal progress bars (its jobs report on the Training page): it exits 3 only so
    dying = [sys.executable, "-c", ("import os, sys; sys.exit(3 if os.environ.get('TQDM_DISABLE') == '1' and "
                                    "os.environ.get('HF_HUB_DISABLE_PROGRESS_BARS') == '1' else 9)")]
    sup = Supervisor(db_path, app, dying, dict(os.environ), backoff=0.1, max_backoff=0.4, healthy_s=60)
    delays = []
    real_died = sup._worker_died

    def recording_died(code):
        delays.append(real_died(code))
        if len(delays) == 4:
            sup.stopping = True
        return delays[-1]

    sup._worker_died = recording_died
    assert sup.run(poll=0.02) == 0
    assert sup.worker.returncode == 3  # (the progress bars were off)
    assert delays == [0.1, 0.2, 0.4, 0.4] and sup.restarts == 4  # doubling, capped at max_backoff
    assert sup.app.poll() is not None  # stopped with the supervisor


def test_killed_worker_under_serve_app_keeps_answering_worker_comes_back(tmp_path):
    db_path = str(tmp_path / "t.db")
    with Store(db_path) as s:
        slow = submit_job(s, "selftest", {"steps": 2000, "seconds_per_step": 0.05})
    tokens_file(db_path).write_text('{"admin": "tw_0123456789ab_demo-secret"}')  # as `init --demo` leaves it
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - the child writes to it until it ends
    env = {k: v for k, v in os.environ.items() if k != "TOKENWISE_DB"}
    serve = subprocess.Popen([sys.executable, "-m", "training.cli", "serve", "--db", db_path, "--port", str(port)],
                             cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        _wait(lambda: _answers(url), "the app to answer")
        with Store(db_path) as s:
            job = _wait(lambda: (j := s.get_job(slow.id)).step >= 1 and j, "the worker to run the slow job")
        os.kill(job.pid, signal.SIGKILL)
        with Store(db_path) as s:
            failed = _wait(lambda: (j := s.get_job(slow.id)).status == "failed" and j, "the job to be failed")
        assert f"the worker (pid {job.pid}) was killed by signal 9 (SIGKILL)" in failed.error
        assert failed.error.endswith("submit the job again")
        assert serve.poll() is None and _answers(url)  # the app kept serving
        with Store(db_path) as s:
            quick = submit_job(s, "selftest", {"steps": 2, "seconds_per_step": 0})
            done = _wait(lambda: (j := s.get_job(quick.id)).status == "done" and j, "a new worker to run a job")
        assert done.pid != job.pid and _alive(done.pid)
        out = (tmp_path / "serve.log").read_text()
        assert "was killed by signal 9" in out and "restarting it in" in out and "worker restarted" in out
        assert "demo-secret" not in out and f"in {tokens_file(db_path)}" in out  # where, never what
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
        _wait(lambda: not _alive(done.pid), "the worker to stop with serve", timeout=30)
        assert not _answers(url)
    finally:
        if serve.poll() is None:
            serve.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()


def test_every_command_takes_db(tmp_path, capsys):
    """The README says every command takes --db: the parser agrees, group by group."""
    from training.cli import build_parser, main

    parser = build_parser()
    missing = []
    for action in parser._subparsers._group_actions:  # the top-level commands
        for name, sub in action.choices.items():
            groups = [a for a in sub._actions if isinstance(a, type(action))]
            leaves = [(f"{name} {n}", p) for g in groups for n, p in g.choices.items()] or [(name, sub)]
            missing += [cmd for cmd, p in leaves if "--db" not in p._option_string_actions]
    assert missing == [], missing
    db = str(tmp_path / "k.db")
    assert main(["jobs", "kinds", "--db", db]) == 0 and "selftest" in capsys.readouterr().out
