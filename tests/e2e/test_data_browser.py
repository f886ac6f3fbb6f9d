"""The Data page in a real browser: full-text search, the "reward model disagrees" filter, a document opened."""

from __future__ import annotations

from training.store import Store


def test_search_and_model_disagrees_filter(live_server, page, e2e):
    srv = live_server()
    with Store(srv.db_path) as s:
        docs = s.documents("demo")
        target, other = docs[3], docs[5]
        word = max(target.text.split(), key=len).strip(".,;:!?\"'()")
        rm = s.add_model("reward", "models/rm", project="demo", name="rm")
        s.update_project("demo", active_reward_model=rm.id)
        bob = s.get_annotator("bob")
        # bob ranks the candidates of `other` in order; the model scores them the opposite way
        s.save_ranking(bob, other.id, {c.id: i + 1 for i, c in enumerate(other.candidates)})
        s.put_token_rewards(rm.id, [(c.id, ["x"], [0.5], float(i)) for i, c in enumerate(other.candidates)])

    e2e.sign_in(page, srv.url, srv.tokens["admin"])
    page.get_by_role("link", name="Data").click()
    e2e.wait_text(page, "Search title and text")
    page.get_by_label("Search title and text").fill(word)
    page.get_by_label("Search title and text").press("Enter")
    e2e.wait_idle(page)
    e2e.wait_text(page, "document(s)")
    cell(page, target.ext_id)

    page.get_by_label("Search title and text").fill("")
    page.get_by_label("Search title and text").press("Enter")
    e2e.wait_idle(page)
    page.get_by_label("Show", exact=True).click()
    page.get_by_role("option", name="Reward model disagrees").click()
    e2e.wait_idle(page)
    e2e.wait_text(page, "1 document(s)")
    cell(page, other.ext_id)
    e2e.shot(page, "data")


def cell(page, text: str) -> None:
    """A cell of the (canvas-drawn) data grid: its accessible copy is in the DOM, not visible."""
    page.locator('[data-testid^="glide-cell-"]', has_text=text).first.wait_for(state="attached")
