"""The Training page's short form in a real browser: pick the self-test kind and a preset, Start,
and watch the job's status change in place (no reload, no click) from queued to running to done,
the live view at the top and the detail below following it.

Run: python -m pytest tests/e2e/test_training_form_browser.py -q
"""

from __future__ import annotations

from training.store import Store

METRIC = '[data-testid="stMetricValue"]'


def test_short_form_starts_a_job_whose_status_changes_in_place(live_server, browser, e2e):
    srv = live_server(worker=True)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(e2e.timeout_ms)
    page = context.new_page()
    try:
        e2e.sign_in(page, srv.url, srv.tokens["admin"])
        page.get_by_role("link", name="Training").click()
        e2e.wait_text(page, "Start a job")
        e2e.wait_idle(page)
        page.get_by_label("Job kind", exact=True).click()
        page.get_by_role("option", name="Self-test (no model)").click()
        e2e.wait_text(page, "steps=20, seconds_per_step=0.5")  # the presets, spelled out
        e2e.wait_idle(page)
        page.get_by_role("radiogroup", name="Preset").get_by_text("standard", exact=True).click()
        e2e.wait_idle(page)
        page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads
        page.get_by_role("button", name="Start").click()
        e2e.wait_text(page, "queued")

        # no click from here on: the live view and the detail refresh themselves
        page.get_by_text("(running)").first.wait_for()
        page.locator(METRIC, has_text="running").wait_for()
        page.get_by_text("step ", exact=False).first.wait_for()
        e2e.shot(page, "training_running")
        page.locator(METRIC, has_text="done").wait_for(timeout=120_000)
        e2e.wait_idle(page)
        assert page.evaluate("() => window.__sameDocument === true")
        page.get_by_text("No job is running.").wait_for()  # the live view at the top follows on its next refresh
        assert page.locator(METRIC, has_text="step 20 of 20").count() == 1
        e2e.shot(page, "training")
        with Store(srv.db_path) as s:
            (job,) = s.list_jobs()
            assert (job.kind, job.status, job.config["steps"]) == ("selftest", "done", 20)
    finally:
        context.close()
