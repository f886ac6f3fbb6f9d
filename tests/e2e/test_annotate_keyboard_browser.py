"""Keyboard-only ranking on a 1440x900 screen: every candidate is on screen without scrolling,
Tab reaches candidate A's rank, number keys rank the candidates one after another (the focus moves
on by itself), and Ctrl+Enter saves while a rank radio has the focus.

Run: python -m pytest tests/e2e/test_annotate_keyboard_browser.py -q
"""

from __future__ import annotations

from training.annotation.drafts import display_order
from training.store import Store

GROUP = '[data-testid="stRadioGroup"][aria-label^="Rank of candidate"]'
FOCUSED_GROUP = (f"() => {{ const a = document.activeElement; const g = a && a.closest('{GROUP}'); "
                 "return g ? g.getAttribute('aria-label') : null; }")


def annotator_screen(live_server, browser, e2e):
    """The demo's annotator signed in on a 1440x900 screen: (server, context, page, rank rows)."""
    srv = live_server()
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(e2e.timeout_ms)
    page = context.new_page()
    e2e.sign_in(page, srv.url, srv.tokens["annotator"])
    groups = page.locator(GROUP)
    groups.first.wait_for()
    e2e.wait_idle(page)
    return srv, context, page, groups


def test_rank_with_number_keys_and_save_with_ctrl_enter(live_server, browser, e2e):
    srv, context, page, groups = annotator_screen(live_server, browser, e2e)
    try:
        k = groups.count()
        assert k >= 2
        # every candidate's rank row is on the first screen: no scrolling needed
        for i in range(k):
            box = groups.nth(i).bounding_box()
            assert box is not None and box["y"] + box["height"] <= 900, (i, box)
        page.screenshot(path=str(e2e.shot(page, "annotate_full").with_name("annotate.png")))  # 1440x900, as seen

        # keyboard only: Tab until candidate A's rank row has the focus
        for _ in range(80):
            if page.evaluate(FOCUSED_GROUP) == "Rank of candidate A":
                break
            page.keyboard.press("Tab")
        assert page.evaluate(FOCUSED_GROUP) == "Rank of candidate A"
        for i in range(k):  # A gets 1, B gets 2, ...: the focus moves on after each number
            assert page.evaluate(FOCUSED_GROUP) == f"Rank of candidate {chr(ord('A') + i)}"
            page.keyboard.press(str(i + 1))
            page.wait_for_function(
                f"() => document.querySelector('[aria-label=\"Rank of candidate {chr(ord('A') + i)}\"] "
                f"input[type=\"radio\"]:checked') !== null", timeout=e2e.timeout_ms)
            e2e.wait_idle(page)
        assert page.evaluate(FOCUSED_GROUP) is not None  # a rank radio has the focus: Ctrl+Enter must still save
        page.keyboard.press("Control+Enter")
        e2e.wait_text(page, "Saved your ranking")
        e2e.wait_idle(page)

        with Store(srv.db_path) as s:
            carol = s.authenticate(srv.tokens["annotator"])
            mine = s.my_rankings(carol, "demo")
            assert len(mine) == 1
            doc = s.get_document(mine[0].document_id)
            assert [g for g in mine[0].order] == [
                [c] for c in display_order(carol.id, doc.id, [c.id for c in doc.candidates])]
    finally:
        context.close()


def test_ctrl_enter_from_a_critique_box_saves_the_critique_too(live_server, browser, e2e):
    """Ctrl+Enter while typing a critique: the text is sent first (the box loses the focus), then saved."""
    srv, context, page, groups = annotator_screen(live_server, browser, e2e)
    try:
        k = groups.count()
        for i in range(k):  # rank with the number keys, as above (focus the row, press its rank)
            groups.nth(i).locator('input[type="radio"]').first.focus()
            page.keyboard.press(str(i + 1))
            e2e.wait_idle(page)
        page.get_by_role("button", name="Critique").nth(k - 1).click()
        box = page.get_by_label(f"Critique of candidate {chr(ord('A') + k - 1)}", exact=True)
        box.wait_for()
        page.wait_for_function("() => document.activeElement && document.activeElement.tagName === 'TEXTAREA'")
        page.keyboard.type("Too vague: name the vote count.")  # no click: opening the box put the cursor there
        page.keyboard.press("Control+Enter")  # the focus is in the text box, its value not sent yet
        e2e.wait_text(page, "Saved your ranking")
        e2e.wait_idle(page)
        # the next document starts clean: no critique box left open over it, the focus on A's rank row
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stPopoverBody\"]')")
        page.wait_for_function(f"() => ({FOCUSED_GROUP})() === 'Rank of candidate A'")
        page.keyboard.press("1")  # and ranking goes on from the keyboard
        page.wait_for_function("() => document.querySelector('[aria-label=\"Rank of candidate A\"] "
                               "input[type=\"radio\"]:checked') !== null")
        e2e.wait_idle(page)
        with Store(srv.db_path) as s:
            carol = s.authenticate(srv.tokens["annotator"])
            [mine] = s.my_rankings(carol, "demo")
            crits = s.my_critiques(carol, mine.document_id)
            assert len(s.my_rankings(carol, "demo")) == 1  # the next one only has a draft
        assert [c.text for c in crits.values()] == ["Too vague: name the vote count."]
        assert list(crits) == [mine.order[-1][0]]  # on the candidate ranked last
    finally:
        context.close()


def test_escape_closes_a_critique_box_and_keeps_what_was_typed(live_server, browser, e2e):
    """Escape closes the critique's popover; the text typed in it is kept (in the box when it is
    opened again, and in the saved critique)."""
    srv, context, page, groups = annotator_screen(live_server, browser, e2e)
    try:
        k = groups.count()
        for i in range(k):
            groups.nth(i).locator('input[type="radio"]').first.focus()
            page.keyboard.press(str(i + 1))
            e2e.wait_idle(page)
        name = f"Critique of candidate {chr(ord('A') + k - 1)}"
        page.get_by_role("button", name="Critique").nth(k - 1).click()
        page.get_by_label(name, exact=True).click()
        page.keyboard.type("Misses the date of the vote.")
        page.keyboard.press("Escape")
        page.get_by_label(name, exact=True).wait_for(state="hidden")
        e2e.wait_idle(page)
        page.get_by_role("button", name="Critique").nth(k - 1).click()
        assert page.get_by_label(name, exact=True).input_value() == "Misses the date of the vote."
        page.keyboard.press("Escape")
        e2e.wait_idle(page)
        page.locator('[data-testid="stBaseButton-primary"]').filter(has_text="Save").click()
        e2e.wait_text(page, "Saved your ranking")
        with Store(srv.db_path) as s:
            carol = s.authenticate(srv.tokens["annotator"])
            [mine] = s.my_rankings(carol, "demo")
            assert [c.text for c in s.my_critiques(carol, mine.document_id).values()] == ["Misses the date of the vote."]
    finally:
        context.close()


def test_twelve_outputs_of_an_imported_llm_ranker_task_are_ranked_from_the_keyboard(live_server, browser, e2e,
                                                                                     tmp_path):
    """K = 12 (Label Studio's LLM Ranker template ranks 12 answers): ranks 10 to 12 take two digits,
    a lone 1 stands after a pause, and the ranking saved is the one typed."""
    import json

    from training.data.imports import import_file

    srv = live_server()
    items = [{"id": f"m{i}", "title": f"Model{i}", "body": f"Answer {i}: about {i * 7}% of jobs change."}
             for i in range(12)]
    path = tmp_path / "llm-ranker.json"
    path.write_text(json.dumps([{"id": 1, "data": {"prompt": "AI and jobs?", "items": items}, "annotations": []}]))
    with Store(srv.db_path) as s:
        s.create_project("ranker", kind="qa", k=12)
        import_file(s, path, "ranker", source_annotator="label-studio")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(e2e.timeout_ms)
    page = context.new_page()
    try:
        e2e.sign_in(page, srv.url, srv.tokens["annotator"])
        page.locator(GROUP).first.wait_for()
        page.get_by_label("Project", exact=True).click()
        page.get_by_role("option", name="ranker").click()
        e2e.wait_text(page, "From 10 on, type both digits")
        page.wait_for_function(f"() => document.querySelectorAll('{GROUP}').length === 12", timeout=e2e.timeout_ms)
        # another project's first document starts with the focus on A too: no Tab
        page.wait_for_function(f"() => ({FOCUSED_GROUP})() === 'Rank of candidate A'", timeout=e2e.timeout_ms)
        ranks = [12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]  # A is the worst; B (a lone 1, after the pause) the best
        for i, r in enumerate(ranks):
            name = chr(ord("A") + i)
            assert page.evaluate(FOCUSED_GROUP) == f"Rank of candidate {name}"
            page.keyboard.type(str(r), delay=80)
            page.wait_for_function(
                f"() => {{ const c = document.querySelector('[aria-label=\"Rank of candidate {name}\"] "
                f"input[type=\"radio\"]:checked'); return c !== null && c.closest('label').innerText.trim() "
                f"=== '{r}'; }}", timeout=e2e.timeout_ms)
            e2e.wait_idle(page)
        page.keyboard.press("Control+Enter")
        e2e.wait_text(page, "Saved your ranking")
        with Store(srv.db_path) as s:
            carol = s.authenticate(srv.tokens["annotator"])
            [mine] = s.my_rankings(carol, "ranker")
            doc = s.get_document(mine.document_id)
            shown = display_order(carol.id, doc.id, [c.id for c in doc.candidates])
            assert [g[0] for g in mine.order] == [shown[ranks.index(r)] for r in range(1, 13)]
    finally:
        context.close()


def test_a_page_just_opened_has_the_focus_on_candidate_a(live_server, browser, e2e):
    """No Tab needed for the first document either: after signing in, a number key ranks A."""
    _, context, page, _ = annotator_screen(live_server, browser, e2e)
    try:
        page.wait_for_function(f"() => ({FOCUSED_GROUP})() === 'Rank of candidate A'", timeout=e2e.timeout_ms)
        page.keyboard.press("1")
        page.wait_for_function("() => document.querySelector('[aria-label=\"Rank of candidate A\"] "
                               "input[type=\"radio\"]:checked') !== null", timeout=e2e.timeout_ms)
        assert page.evaluate(FOCUSED_GROUP) == "Rank of candidate B"
    finally:
        context.close()


DOC_MARK = ("() => { const m = document.querySelector('[class*=\"st-key-twdoc-\"]'); "
            "return m ? m.className.match(/st-key-(twdoc-[A-Za-z0-9_-]+)/)[1] : null; }")


def test_ctrl_enter_right_after_the_last_number_and_skip_leave_the_focus_on_the_next_document(
        live_server, browser, e2e):
    """A fast annotator: digits 0.1 s apart and Ctrl+Enter at once; the next document starts with
    the focus on A all the same (a pending move to the next row must not keep it on the old one).
    Skip does the same, and so does coming back to the page from another one."""
    srv, context, page, groups = annotator_screen(live_server, browser, e2e)
    try:
        page.wait_for_function(f"() => ({FOCUSED_GROUP})() === 'Rank of candidate A'", timeout=e2e.timeout_ms)
        k = groups.count()
        first = page.evaluate(DOC_MARK)
        page.keyboard.type("".join(str(i + 1) for i in range(k)), delay=100)
        page.keyboard.press("Control+Enter")
        e2e.wait_text(page, "Saved your ranking")
        page.wait_for_function(f"() => ({DOC_MARK})() !== '{first}'", timeout=e2e.timeout_ms)
        page.wait_for_function(f"() => ({FOCUSED_GROUP})() === 'Rank of candidate A'", timeout=e2e.timeout_ms)
        with Store(srv.db_path) as s:
            carol = s.authenticate(srv.tokens["annotator"])
            [mine] = s.my_rankings(carol, "demo")
            assert len(mine.order) == k  # every digit landed before the save

        second = page.evaluate(DOC_MARK)
        page.get_by_role("button", name="Skip for now").click()
        page.wait_for_function(f"() => ({DOC_MARK})() !== '{second}'", timeout=e2e.timeout_ms)
        page.wait_for_function(f"() => ({FOCUSED_GROUP})() === 'Rank of candidate A'", timeout=e2e.timeout_ms)

        page.get_by_role("link", name="My entries").click()
        e2e.wait_idle(page)
        page.get_by_role("link", name="Annotate").click()
        page.wait_for_function(f"() => ({FOCUSED_GROUP})() === 'Rank of candidate A'", timeout=e2e.timeout_ms)
        page.keyboard.press("1")
        page.wait_for_function("() => document.querySelector('[aria-label=\"Rank of candidate A\"] "
                               "input[type=\"radio\"]:checked') !== null", timeout=e2e.timeout_ms)
    finally:
        context.close()


def test_a_fast_typist_saves_every_document_and_ctrl_enter_too_early_shows_why(live_server, browser, e2e):
    """Digits 80 ms apart, three documents in a row: each ranking is whole (Save turns on) and
    saved (on a loaded server such clicks reach one rerun together: test_app_annotate reproduces
    that case exactly). Ctrl+Enter before the ranking is complete brings the reason Save is
    disabled into view."""
    srv, context, page, groups = annotator_screen(live_server, browser, e2e)
    try:
        with Store(srv.db_path) as s:
            carol = s.authenticate(srv.tokens["annotator"])
        page.wait_for_function(f"() => ({FOCUSED_GROUP})() === 'Rank of candidate A'", timeout=e2e.timeout_ms)
        page.keyboard.press("Control+Enter")  # nothing ranked yet (the keys script is running: A has the focus)
        page.wait_for_function("() => { const w = document.querySelector('.st-key-save-problems'); if (!w) return false;"
                               " const r = w.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight + 2; }",
                               timeout=e2e.timeout_ms)
        for n in range(1, 4):
            page.wait_for_function(f"() => ({FOCUSED_GROUP})() === 'Rank of candidate A'", timeout=e2e.timeout_ms)
            k = groups.count()
            page.keyboard.type("".join(str(k - i) for i in range(k - 1)), delay=80)  # K-1 digits: the last is filled
            # the ranking the fast digits make is whole: Save turns on (Ctrl+Enter at once: the test above)
            page.wait_for_function("() => { const b = document.querySelector('.st-key-annotate_save button');"
                                   " return b && !b.disabled; }", timeout=e2e.timeout_ms)
            page.keyboard.press("Control+Enter")
            deadline = page.evaluate("() => Date.now()") + e2e.timeout_ms
            while True:
                with Store(srv.db_path) as s:
                    done = len(s.my_rankings(carol, "demo"))
                if done == n or page.evaluate("() => Date.now()") > deadline:
                    break
                page.wait_for_timeout(200)
            assert done == n, f"document {n} was not saved"
            e2e.wait_idle(page)
        with Store(srv.db_path) as s:
            assert all(len(r.order) == k for r in s.my_rankings(carol, "demo"))  # whole rankings, no tie
    finally:
        context.close()
