"""An evaluation round in a real browser: an annotator ranks a blind pair, the admin's live view updates."""

from __future__ import annotations

from training.store import NewDocument, Store


def test_annotator_ranks_a_blind_pair_and_the_win_rate_updates(live_server, page, browser, e2e):
    srv = live_server()
    with Store(srv.db_path) as s:
        src = s.documents("demo")[:2]
        rnd = s.create_round("r1", source_project="demo", model_a="models/policy-7", model_b="smollm2",
                             documents=[d.id for d in src], config={"labels": ["policy-7", "smollm2"]})
        s.open_round(rnd.id, "eval-r1", "summarize", "Which output is better?",
                     [NewDocument(str(d.id), d.text, [f"Answer of A about {d.title}.", f"B wrote on {d.title}."],
                                  title=d.title, sources=["A:policy-7", "B:smollm2"]) for d in src], judge={})

    admin = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    e2e.sign_in(admin, srv.url, srv.tokens["admin"])
    admin.get_by_role("link", name="Evaluation rounds").click()
    e2e.wait_text(admin, "A's win rate")
    e2e.wait_idle(admin)

    e2e.sign_in(page, srv.url, srv.tokens["annotator"])
    page.locator('[aria-label="Rank of candidate A"]').wait_for()  # the label itself is hidden
    page.get_by_label("Project", exact=True).click()  # the project picker: choose the blind project
    page.get_by_role("option", name="eval-r1").click()
    e2e.wait_text(page, "Which output is better?")
    e2e.wait_idle(page)
    assert "policy-7" not in page.content() and "smollm2" not in page.content()  # blind
    page.wait_for_function(  # the demo's K=4 rows are gone once the pair is drawn
        "() => document.querySelectorAll('[data-testid=\"stRadioGroup\"][aria-label^=\"Rank of candidate\"]')"
        ".length === 2", timeout=e2e.timeout_ms)
    groups = page.locator('[data-testid="stRadioGroup"][aria-label^="Rank of candidate"]')
    groups.nth(0).locator('[data-testid="stRadioOption"]').nth(0).click()
    e2e.wait_idle(page)
    groups.nth(1).locator('[data-testid="stRadioOption"]').nth(1).click()
    e2e.wait_idle(page)
    page.locator('[data-testid="stBaseButton-primary"]').filter(has_text="Save").click()
    e2e.wait_text(page, "Saved your ranking")

    with Store(srv.db_path) as s:
        [ranking] = [r for d in s.documents("eval-r1") for r in s.rankings_of([d.id]).get(d.id, [])]
        best = s.get_candidate(ranking.order[0][0]).source[0]
    # the admin's page refreshes by itself (no click): one judgment, won by A or by B
    e2e.wait_text(admin, "100%" if best == "A" else "0%")
    e2e.wait_text(admin, "A 1 · B 0 · tie 0" if best == "A" else "A 0 · B 1 · tie 0")
    e2e.shot(admin, "rounds")
