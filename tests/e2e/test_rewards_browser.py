"""The Rewards page in a real browser: a tiny reward model trained and scored on the demo data."""

from __future__ import annotations

from training.data.tiny import make_tiny_model
from training.rewards.config import RewardConfig
from training.rewards.scoring import score_project
from training.rewards.trainer import train_reward
from training.store import Store


def test_rewards_page_shows_heatmaps(live_server, page, e2e, tmp_path):
    srv = live_server()
    base = make_tiny_model("causal", tmp_path / "tiny")
    with Store(srv.db_path) as s:
        project = s.list_projects()[0]
        rec = train_reward(s, project.id, RewardConfig(base_model=str(base), epochs=2, lr=1e-3, patience=0),
                           tmp_path / "rm")
        n = score_project(s, rec.id, project.id)
        s.update_project(project.id, active_reward_model=rec.id)
        first_doc = s.documents(project.id)[0]
    assert n > 0

    e2e.sign_in(page, srv.url, srv.tokens["admin"])
    page.get_by_role("link", name="Rewards").click()
    e2e.wait_text(page, "Reward model")
    page.locator(".tw-heatmap").first.wait_for(state="visible")
    e2e.wait_idle(page)
    spans = page.locator(".tw-heatmap .tw-tok")
    assert spans.count() > 0
    title = spans.first.get_attribute("title")
    assert 0 < float(title) < 1
    assert page.locator(".tw-heatmap").count() == len(first_doc.candidates)
    # the scale is the model's own: the legend prints real values around the document's mean
    legend = page.locator(".tw-legend").first.inner_text()
    assert "lower reward" in legend and "white = " in legend and "higher reward" in legend
    e2e.wait_text(page, "Backbone: causal (prefix reward)")
    markdown = page.locator('[data-testid="stMarkdownContainer"]')
    markdown.filter(has_text="model rank 1 · P(best)").first.wait_for(state="visible")
    markdown.filter(has_text="SMALL DATA").first.wait_for(state="visible")  # the demo has < 30 rankings
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    path = e2e.shot(page, "rewards")
    assert path.stat().st_size > 10_000
