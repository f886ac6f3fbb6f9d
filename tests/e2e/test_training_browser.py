"""The training dashboard in a real browser: start a reward-model job on the demo project with the
tiny model, watch the worker finish it, then open its heatmap on the Rewards page."""

from __future__ import annotations

from pathlib import Path

from training.data.tiny import make_tiny_model
from training.store import Store

JOB_TIMEOUT_MS = 240_000  # the worker imports torch, trains and scores on a loaded 2-core machine


def test_start_reward_job_watch_it_finish_open_heatmap(live_server, page, e2e):
    srv = live_server(worker=True)
    # inside the server's data folder (beside its database): the dashboard takes no path outside it
    make_tiny_model("causal", Path(srv.db_path).parent / "tiny")
    e2e.sign_in(page, srv.url, srv.tokens["admin"])

    page.get_by_role("link", name="Training").click()
    e2e.wait_text(page, "Start a job")
    e2e.wait_idle(page)
    # the first kind is "Train reward model" and the first project is the demo
    page.get_by_label("Backbone", exact=True).click()
    page.get_by_role("option", name="other: a folder or a model id…").click()
    e2e.wait_idle(page)  # each change reruns the page; a click during a rerun can land on the old page
    page.get_by_label("Backbone: a folder inside the data folder, or a registry id").fill("tiny")
    page.get_by_label("Backbone: a folder inside the data folder, or a registry id").press("Tab")
    e2e.wait_idle(page)
    page.get_by_text("Advanced: every setting").click()
    page.get_by_role("spinbutton", name="epochs").fill("2")
    page.get_by_role("textbox", name="lr", exact=True).fill("0.001")
    page.get_by_role("textbox", name="lr", exact=True).press("Tab")
    e2e.wait_idle(page)
    page.get_by_role("button", name="Start").click()
    e2e.wait_text(page, "queued")
    e2e.shot(page, "training_queued")

    # the live view follows the job; when it ends the page redraws with its final status
    page.locator('[data-testid="stMetricValue"]', has_text="done").wait_for(timeout=JOB_TIMEOUT_MS)
    e2e.wait_idle(page)
    e2e.shot(page, "training_done")

    with Store(srv.db_path) as s:
        job = s.list_jobs(limit=1)[0]
        assert (job.kind, job.status) == ("reward", "done")
        demo = s.get_project("demo")
        assert demo.active_reward_model == job.result["model_id"]
        assert job.result["scored"] == sum(len(d.candidates) for d in s.documents("demo"))

    # the Models page shows the new model as the demo's active reward model
    page.get_by_role("link", name="Models").click()
    e2e.wait_text(page, "This is the project's active reward model.")
    e2e.wait_idle(page)
    e2e.shot(page, "models")

    page.get_by_role("link", name="Rewards").click()
    page.locator(".tw-heatmap").first.wait_for(state="visible")
    e2e.wait_idle(page)
    assert page.locator(".tw-heatmap .tw-tok").count() > 0
    e2e.shot(page, "training_heatmap")
