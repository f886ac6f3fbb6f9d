"""Issue 13 in a real browser against `tokenwise serve` (started outside the repository):

1. a revoked admin loses the live Training view at its next refresh and cannot cancel the job;
2. a revoked admin's click on an export button downloads nothing;
4. Markdown in user text (an image, bold, a colour) is shown as text: a local HTTP listener
   proves the browser never fetches the image; 5. no Deploy button (the minimal toolbar).

Run: python -m pytest tests/e2e/test_security_browser.py -q   (screenshots: tests/e2e/screenshots/)
"""

from __future__ import annotations

import http.server
import re
import threading
import time
import urllib.request
from typing import ClassVar

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from training.jobs.kinds import submit_job
from training.store import Store


def _no_deploy_button(page) -> None:
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0


def test_revoked_admin_loses_the_live_view_and_cannot_cancel(live_server, page, e2e):
    srv = live_server(worker=True)
    with Store(srv.db_path) as s:
        job = submit_job(s, "selftest", {"steps": 3000, "seconds_per_step": 0.1})
    e2e.sign_in(page, srv.url, srv.tokens["admin"])
    _no_deploy_button(page)
    page.get_by_role("link", name="Training").click()
    e2e.wait_text(page, "Running now")
    page.get_by_role("button", name="Cancel", exact=True).wait_for()
    e2e.shot(page, "security_training_live")
    with Store(srv.db_path) as s:
        s.revoke_annotator("admin")
    # the next refresh of the live view (every 2 s) re-checks the admin: the page becomes sign-in
    page.get_by_label("Access token", exact=True).wait_for(timeout=30_000)
    assert page.get_by_text("Running now").count() == 0
    assert page.get_by_role("button", name="Cancel", exact=True).count() == 0
    e2e.shot(page, "security_training_revoked")
    with Store(srv.db_path) as s:
        j = s.get_job(job.id)
        assert j.status == "running" and not j.cancel_requested
        step = j.step
    time.sleep(3)
    assert page.get_by_text(f"step {step}").count() == 0  # nothing of the job is drawn any more


def test_revoked_admin_cannot_download_an_export(live_server, page, e2e):
    srv = live_server()
    e2e.sign_in(page, srv.url, srv.tokens["admin"])
    page.get_by_role("link", name="Projects").click()
    page.get_by_role("tab", name="Export").click()
    buttons = page.get_by_role("button", name="jsonl")
    buttons.first.wait_for()
    e2e.wait_idle(page)  # a click while the tab's run is still drawing can be lost with the redraw
    with page.expect_download() as ok:  # the control: before revocation a click downloads
        buttons.nth(0).click()
    assert ok.value.suggested_filename.endswith(".jsonl")
    e2e.shot(page, "security_export")
    with Store(srv.db_path) as s:
        s.revoke_annotator("admin")
    with pytest.raises(PlaywrightTimeout), page.expect_download(timeout=10_000):
        buttons.nth(1).click()  # built only after the re-check, which fails: no file


IMG_PATH = "/tokenwise-leak.png"


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()


def test_markdown_in_user_text_is_shown_as_text_and_fetches_nothing(live_server, page, e2e, listener):
    base, hits = listener
    md = f"![x]({base}{IMG_PATH}) **bold** :red[red]"
    srv = live_server()
    with Store(srv.db_path) as s:
        project = s.list_projects()[0]
        doc = s.documents(project.id)[0]
        writer, token = s.add_annotator(f"Eve {md}")
        k = s.save_critique(writer, doc.candidates[0].id, f"Crit {md}")
        rs = s.add_refinements(k.id, [f"Ref one {md}", f"Ref two {md}"], generator="test")
        s.mark_selected(k.id, rs[0].id)
    for who, name in ((token, "annotator"), (srv.tokens["admin"], "admin")):  # (admins see every annotator's)
        e2e.sign_in(page, srv.url, who)
        page.get_by_role("link", name="Review refinements").click()
        e2e.wait_text(page, "Review refinements")
        e2e.wait_text(page, f"Crit {md}")  # the literal characters, as written
        e2e.wait_text(page, f"Ref two {md}")
        page.get_by_role("button", name="Accept this refinement").wait_for()
        e2e.wait_idle(page)
        assert page.locator(f'img[src*="{IMG_PATH}"]').count() == 0
        assert page.locator("strong", has_text=re.compile(r"^\s*bold\s*$")).count() == 0  # no **bold**
        assert page.locator('a[href*="tokenwise-leak"]').count() == 0  # no link either
        _no_deploy_button(page)
        e2e.shot(page, f"security_review_markdown_{name}")
    page.get_by_role("link", name="People").click()  # the name sits in a table, a select box, a label
    e2e.wait_text(page, "Revoke access")
    e2e.wait_idle(page)
    assert page.locator(f'img[src*="{IMG_PATH}"]').count() == 0
    e2e.shot(page, "security_people_markdown")
    time.sleep(2)  # any image request would have been made by now
    assert [h for h in hits if IMG_PATH in h] == []
    with urllib.request.urlopen(base + IMG_PATH, timeout=5):  # the control: the listener records
        pass
    assert hits == [IMG_PATH]
