"""An annotator in a real browser: sign in, rank, critique, save, come back later; an admin signs in.

Run: python -m pytest tests/e2e/test_annotator_browser.py -q   (screenshots: tests/e2e/screenshots/)
"""

from __future__ import annotations

from playwright.sync_api import expect

from training.annotation.drafts import display_order
from training.store import Store

CRITIQUE = 'Wrong: <script>alert("xss")</script><b id="injected">bold</b> says too little; name the cost.'
ADMIN_PAGES = ["Overview", "Projects", "People", "Progress", "Training", "Models"]


def _nav_links(page) -> list[str]:
    page.locator('[data-testid="stSidebarNav"]').wait_for()
    return [t.strip() for t in page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()]


def _no_injection(page) -> None:
    assert page.locator("#injected").count() == 0
    assert page.locator("script", has_text="xss").count() == 0


def test_annotator_ranks_critiques_saves_and_finds_it_again(live_server, page, browser, e2e):
    sign_in, wait_text, wait_idle, shot = e2e.sign_in, e2e.wait_text, e2e.wait_idle, e2e.shot
    srv = live_server()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, srv.url, srv.tokens["annotator"])
    page.locator('[aria-label="Rank of candidate A"]').wait_for()  # the label itself is hidden
    nav = _nav_links(page)
    assert "Annotate" in " ".join(nav) and not any(p in " ".join(nav) for p in ("Projects", "People"))

    groups = page.locator('[data-testid="stRadioGroup"][aria-label^="Rank of candidate"]')
    k = groups.count()
    assert k >= 2
    save = page.locator('[data-testid="stBaseButton-primary"]').filter(has_text="Save")
    assert save.is_disabled()
    wait_text(page, "Save is disabled until")
    title = page.locator('[data-testid="stHeading"]').first.inner_text().strip()  # the document's title
    shot(page, "annotate_start")

    # keyboard: the rank buttons are reachable and work without a mouse (A gets rank 1)
    groups.nth(0).locator('input[type="radio"]').first.focus()
    page.keyboard.press("Space")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stRadioGroup\"][aria-label=\"Rank of candidate A\"]"
        " input[type=\"radio\"]').checked", timeout=e2e.timeout_ms)
    wait_idle(page)
    # the rest with the mouse: B second, C third, ... (rank i+1 is option i)
    for i in range(1, k):
        groups.nth(i).locator('[data-testid="stRadioOption"]').nth(i).click()
        wait_idle(page)
    worst = chr(ord("A") + k - 1)
    page.get_by_role("button", name="Critique").nth(k - 1).click()  # open the popover of the last candidate
    box = page.get_by_label(f"Critique of candidate {worst}", exact=True)
    box.fill(CRITIQUE)
    box.press("Tab")  # a text area sends its value when it loses focus
    wait_idle(page)
    save.wait_for()
    page.wait_for_function(
        "() => { const b = [...document.querySelectorAll('[data-testid=\"stBaseButton-primary\"]')]"
        ".find(e => e.innerText.includes('Save')); return b && !b.disabled; }", timeout=e2e.timeout_ms)
    shot(page, "annotate_ready")
    save.click()
    wait_text(page, "Saved your ranking")
    wait_idle(page)
    _no_injection(page)
    shot(page, "annotate_saved")

    # the database has the rows at once
    with Store(srv.db_path) as s:
        carol = s.authenticate(srv.tokens["annotator"])
        mine = s.my_rankings(carol, "demo")
        assert len(mine) == 1 and sum(len(g) for g in mine[0].order) == k
        assert [len(g) for g in mine[0].order] == [1] * k  # no ties
        crits = s.my_critiques(carol, mine[0].document_id)
        assert [c.text for c in crits.values()] == [CRITIQUE]
        worst_id = mine[0].order[-1][0]
        assert worst_id in crits  # the critique is on the candidate ranked last
        doc = s.get_document(mine[0].document_id)
        # A got rank 1, B rank 2, ...: the order on screen is the annotator's stable shuffle
        assert [g[0] for g in mine[0].order] == display_order(carol.id, doc.id, [c.id for c in doc.candidates])
    assert " ".join(doc.title.split()) == " ".join(title.split())

    # later: a new browser context (no session), sign in again, My entries shows the entry
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(e2e.timeout_ms)
    again = context.new_page()
    again.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        sign_in(again, srv.url, srv.tokens["annotator"])
        again.locator('[data-testid="stSidebarNavLink"]').filter(has_text="My entries").click()
        wait_text(again, "Open an entry")
        wait_text(again, "1 ranking saved by you")
        wait_idle(again)
        again.get_by_role("button", name="Critique").nth(k - 1).click()  # the critique's popover
        # Streamlit fills the text area after the page settles: wait for the value, not just the box
        expect(again.get_by_label(f"Critique of candidate {worst}", exact=True)).to_have_value(
            CRITIQUE, timeout=e2e.timeout_ms)
        again.get_by_text("History (1 ranking version)").click()
        wait_text(again, "Ranking v1 (current)")
        _no_injection(again)
        assert CRITIQUE in again.locator('[data-testid="stText"]').all_inner_texts()[-1]  # shown as text
        shot(again, "mine")
    finally:
        context.close()
    assert dialogs == []  # no script ran


def test_admin_sign_in_lists_admin_pages(live_server, page, e2e):
    sign_in, wait_text, shot = e2e.sign_in, e2e.wait_text, e2e.shot
    srv = live_server()
    # a wrong token: an error, and no page or document
    page.goto(srv.url)
    page.get_by_label("Access token", exact=True).fill(srv.tokens["admin"][:-3] + "xyz")
    page.get_by_role("button", name="Sign in").click()
    wait_text(page, "unknown or wrong token")
    assert page.locator('[data-testid="stSidebarNavLink"]').count() == 0
    assert page.get_by_text("Rank of candidate").count() == 0
    shot(page, "sign_in_wrong_token")

    sign_in(page, srv.url, srv.tokens["admin"])
    page.locator('[aria-label="Rank of candidate A"]').wait_for()  # the label itself is hidden
    e2e.wait_idle(page)
    nav = " ".join(_nav_links(page))
    for name in ["Annotate", "My entries", *ADMIN_PAGES]:
        assert name in nav, (name, nav)
    shot(page, "admin_nav")
    # sign out: back to the sign-in form, no pages
    page.get_by_role("button").filter(has_text="Sign out").click()
    wait_text(page, "Access token")
    assert page.locator('[data-testid="stSidebarNavLink"]').count() == 0


def test_a_page_address_leads_to_sign_in_then_to_that_page(live_server, page, e2e):
    """A reload signs out, and a bookmark opens signed out: the address of any page shows the sign-in
    form (never "page not found"), and signing in opens the page that was asked for."""
    srv = live_server()
    for path, token, heading in (("people", srv.tokens["admin"], "People"),
                                 ("mine", srv.tokens["annotator"], "My entries")):
        page.goto(f"{srv.url}/{path}")
        page.get_by_label("Access token", exact=True).wait_for()
        e2e.wait_idle(page)
        assert page.get_by_text("does not seem to exist").count() == 0
        page.get_by_label("Access token", exact=True).fill(token)
        page.get_by_role("button", name="Sign in").click()
        e2e.wait_text(page, "Signed in as")
        e2e.wait_idle(page)
        page.get_by_role("heading", name=heading).first.wait_for()
        assert page.url.rstrip("/").endswith(f"/{path}"), page.url
        assert page.get_by_text("does not seem to exist").count() == 0
        e2e.shot(page, f"address_{path}")
        page.get_by_role("button", name="Sign out").click()
        page.get_by_label("Access token", exact=True).wait_for()
