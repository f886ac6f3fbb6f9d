"""Every page at 1440x900 on the demo as `make run` leaves it (its reward-model job done): each page
opens without an error and loads nothing from another origin, and a screenshot of the screen as seen goes to
tests/e2e/screenshots/pages/<page>.png (the README's pictures are copied from there into
annotate_app/screenshots/).

Run: python -m pytest tests/e2e/test_pages_screenshots_browser.py -q
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from annotate_app.app import PAGES

JOB_TIMEOUT_S = 240


def test_every_page_at_1440x900(live_server, browser, e2e):
    srv = live_server(worker=True, demo_job=True)
    job = e2e.wait_job(srv.db_path, JOB_TIMEOUT_S)  # nobody clicks anything: the queued demo job runs
    assert job.status == "done", (job.status, job.error)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(e2e.timeout_ms)
    requested: list[str] = []
    context.on("request", lambda r: requested.append(r.url))
    page = context.new_page()
    try:
        e2e.sign_in(page, srv.url, srv.tokens["admin"])
        folder = e2e.shot(page, "signed_in").parent / "pages"
        folder.mkdir(exist_ok=True)
        seconds = {}
        for file, title, _, _ in PAGES:
            t0 = time.perf_counter()
            page.locator('[data-testid="stSidebarNavLink"]').filter(has_text=title).first.click()
            page.wait_for_timeout(100)  # the run starts
            e2e.wait_idle(page)
            seconds[title] = round(time.perf_counter() - t0, 2)  # click to the end of the page's run
            page.wait_for_timeout(1500)  # charts and tables draw after the run ends
            e2e.wait_idle(page)
            assert page.locator('[data-testid="stException"]').count() == 0, title
            page.screenshot(path=str(folder / f"{file.removesuffix('.py')}.png"))
        print("seconds from the click to the end of the page's run:", seconds)  # shown with pytest -s
        # offline and private: the sign-in page and every page load nothing from another origin
        # (no fonts, icons, favicon, images or telemetry)
        origin = urlsplit(srv.url)[:2]
        elsewhere = sorted({u for u in requested if urlsplit(u).scheme not in ("data", "blob", "about")
                            and urlsplit(u)[:2] != origin})
        assert requested and elsewhere == [], elsewhere
    finally:
        context.close()
