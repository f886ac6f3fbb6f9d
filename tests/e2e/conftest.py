"""Browser tests: a real `tokenwise serve` and headless Chromium (Playwright, sync API).

Fixtures others reuse:

    def test_x(live_server, page):
        srv = live_server()                 # or live_server(worker=True) to run the job worker too
        srv.url, srv.db_path, srv.tokens    # tokens: {"admin": ..., "annotator": ..., <demo names>: ...}
        sign_in(page, srv.url, srv.tokens["admin"])
        page.get_by_role("link", name="Projects").click()
        wait_text(page, "Projects")
        shot(page, "projects")              # tests/e2e/screenshots/projects.png

`live_server()` loads the demo (training.data.demo.load_demo) into a fresh database, or a small project
when the demo is not there, starts the server on a free port, waits for HTTP 200 on /, and stops
it after the test. All tests here carry the `e2e` marker and skip when /usr/bin/chromium is missing.
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
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
TIMEOUT_MS = int(os.environ.get("TOKENWISE_E2E_TIMEOUT_MS", "60000"))  # slow, loaded 2-core CI machines


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if not os.path.exists(CHROMIUM):
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing: install it with `make chromium`"))


@dataclass(frozen=True)
class LiveServer:
    url: str
    db_path: str
    tokens: dict[str, str]
    process: subprocess.Popen

    def __iter__(self):  # url, db_path, tokens = live_server()
        return iter((self.url, self.db_path, self.tokens))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_database(db_path: str) -> dict[str, str]:
    """The demo when training.data.demo is there, else one small project; returns access tokens."""
    from training.store import NewDocument, Store

    with Store(db_path) as s:
        try:
            from training.data.demo import load_demo
        except ImportError:
            s.create_project("demo", kind="summarize", k=3, overlap=2,
                             instructions="Rank the summaries from most to least faithful.")
            s.add_documents("demo", [
                NewDocument(f"d{i}", f"The council met on day {i} and approved the new bridge.",
                            [f"The council approved a bridge on day {i}.", f"A bridge fell on day {i}.",
                             f"Day {i} was sunny."], title=f"Council news {i}")
                for i in range(4)])
            tokens = {"admin": s.add_annotator("admin", role="admin")[1],
                      "annotator": s.add_annotator("carol")[1]}
        else:
            raw = load_demo(s)
            tokens = dict(raw)
            tokens["annotator"] = next(v for k, v in raw.items() if k.startswith("annotator"))
        # a second annotator for tests that need two people
        tokens["dave"] = s.add_annotator("dave")[1]
    return tokens


def init_demo(db_path: str, folder: Path) -> dict[str, str]:
    """`tokenwise init --demo --demo-model <a tiny model>`: the demo plus its queued reward job."""
    import json

    from training.data.tiny import make_tiny_model

    make_tiny_model("causal", folder / "tiny")
    subprocess.run([sys.executable, "-m", "training.cli", "init", "--db", db_path, "--demo",
                    "--demo-model", str(folder / "tiny")], check=True, capture_output=True, cwd=folder)
    raw = json.loads(Path(f"{db_path}.demo-tokens.json").read_text())
    return {**raw, "annotator": next(v for k, v in raw.items() if k.startswith("annotator"))}


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tokenwise serve exited with {proc.returncode} before {url} answered")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer HTTP 200 within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # `tokenwise serve` terminates streamlit and the worker
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in the server's own process group


@pytest.fixture
def live_server(tmp_path_factory):
    """A factory: live_server(worker=False, demo_job=False) -> LiveServer(url, db_path, tokens, process).

    demo_job: the database is made as `make run` makes it, by `tokenwise init --demo`, which queues
    the demo's quick reward-model job; with a tiny model (built in the data folder) instead of MiniLM.
    """
    started: list[subprocess.Popen] = []

    def start(worker: bool = False, demo_job: bool = False) -> LiveServer:
        folder = tmp_path_factory.mktemp("live")
        db_path = str(folder / "tokenwise.db")
        if demo_job:
            tokens = init_demo(db_path, folder)
        else:
            tokens = make_database(db_path)
        port = free_port()
        cmd = [sys.executable, "-m", "training.cli", "serve", "--db", db_path, "--port", str(port)]
        if not worker:
            cmd.append("--no-worker")
        with open(folder / "serve.log", "wb") as log:  # the child keeps its own copy of the handle
            # started outside the repository: serve must bring the project's Streamlit settings itself
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "TOKENWISE_DB": db_path}, cwd=folder)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(url + "/", proc)
        except (RuntimeError, TimeoutError):
            _stop(proc)
            raise RuntimeError((folder / "serve.log").read_text()[-3000:]) from None
        return LiveServer(url, db_path, tokens, proc)

    yield start
    for proc in started:
        _stop(proc)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install it with `make chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies, no session) and one page in it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    yield p
    context.close()


# -- helpers for tests: reach them through the `e2e` fixture below ----------------------------
def wait_text(page, text: str, timeout: int = TIMEOUT_MS) -> None:
    """Wait until `text` is visible somewhere in the app (Streamlit reruns are asynchronous)."""
    page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout)


def wait_idle(page, timeout: int = TIMEOUT_MS) -> None:
    """Wait until Streamlit has finished the current run (no 'Running...' status widget)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def sign_in(page, url: str, token: str) -> None:
    page.goto(url)
    page.locator('[data-testid="stApp"]').wait_for(timeout=TIMEOUT_MS)
    page.get_by_label("Access token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    wait_text(page, "Signed in as")
    wait_idle(page)


def shot(page, name: str, max_height: int = 5000) -> Path:
    """Screenshot the whole app into tests/e2e/screenshots/NAME.png.

    Streamlit scrolls inside its own container, so `full_page` alone shows one screen: the
    viewport is made as tall as the content for the shot, then put back.
    """
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
        "[data-testid=\"stMainBlockContainer\"], [data-testid=\"stSidebarContent\"]')]"
        ".map(e => e.scrollHeight), 0)")
    page.set_viewport_size({"width": size["width"], "height": min(max(size["height"], height + 40), max_height)})
    try:
        page.wait_for_timeout(300)  # let the layout settle at the new size
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    return path


def wait_job(db_path: str, timeout_s: float = 240):
    """The database's only job once it has ended (or at the timeout), polled without any click."""
    from training.store import Store

    deadline = time.monotonic() + timeout_s
    while True:
        with Store(db_path) as s:
            (job,) = s.list_jobs()
        if job.status in ("done", "failed", "cancelled") or time.monotonic() > deadline:
            return job
        time.sleep(2)


@pytest.fixture
def e2e():
    """The helpers as one object (test files cannot import conftest): e2e.sign_in(page, url, token),
    e2e.wait_text(page, text), e2e.wait_idle(page), e2e.shot(page, name), e2e.wait_job(db_path, timeout_s),
    e2e.timeout_ms."""
    from types import SimpleNamespace

    return SimpleNamespace(sign_in=sign_in, wait_text=wait_text, wait_idle=wait_idle, shot=shot,
                           wait_job=wait_job, timeout_ms=TIMEOUT_MS)
