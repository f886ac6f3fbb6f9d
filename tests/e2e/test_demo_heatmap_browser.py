"""`make run` in a real browser: `tokenwise init --demo` queues a quick reward model on the demo and
`tokenwise serve` runs it in its worker, so the Rewards page has a heatmap without anyone starting
a job (here with a tiny model instead of MiniLM).

Run: python -m pytest tests/e2e/test_demo_heatmap_browser.py -q
"""

from __future__ import annotations

from training.store import Store

JOB_TIMEOUT_S = 240  # the worker imports torch, trains and scores on a loaded 2-core machine


def test_demo_heatmap_appears_after_serve_without_starting_a_job(live_server, page, e2e):
    srv = live_server(worker=True, demo_job=True)
    job = e2e.wait_job(srv.db_path, JOB_TIMEOUT_S)  # nobody clicks anything: the queued demo job runs
    assert (job.kind, job.status) == ("reward", "done"), (job.status, job.error, job.log[-2000:])
    with Store(srv.db_path) as s:
        assert s.get_project("demo").active_reward_model == job.result["model_id"]

    e2e.sign_in(page, srv.url, srv.tokens["admin"])
    page.get_by_role("link", name="Rewards").click()
    page.locator(".tw-heatmap").first.wait_for(state="visible")
    e2e.wait_idle(page)
    assert page.locator(".tw-heatmap .tw-tok").count() > 0
