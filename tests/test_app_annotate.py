"""AppTest of the Annotate and My entries pages over a fresh database (fixtures: tests/conftest.py)."""

from __future__ import annotations

from training.annotation import drafts as A
from training.store import NewDocument, Store


def _texts(at) -> list[str]:
    return [t.value for t in at.text]


def _shown(app_db, annotator):
    """The document the page shows next, and its candidate ids in display order (A, B, C)."""
    with Store(app_db.path) as s:
        doc = s.next_document(annotator, "p")
    return doc, A.display_order(annotator.id, doc.id, [c.id for c in doc.candidates])


def _radio(at, label):
    return next(r for r in at.radio if r.label == f"Rank of candidate {label}")


def _rank_in_order(at) -> None:
    """Rank the shown candidates A > B > C."""
    for i, label in enumerate("ABC"):
        _radio(at, label).set_value(i + 1)


def test_no_project_shows_empty_state(db_path, monkeypatch, app_test):
    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        a, _ = s.add_annotator("solo")
    for page in ("annotate.py", "mine.py"):
        at = app_test(page, a.id).run()
        assert not at.exception
        assert any("no project yet" in i.value for i in at.info)
        assert not at.radio


def test_annotate_shows_document_progress_and_instructions(app_db, app_test):
    at = app_test("annotate.py", app_db.ann.id).run()
    assert not at.exception
    doc, order = _shown(app_db, app_db.ann)
    texts = _texts(at)
    assert "Rank by faithfulness to the document." in texts
    assert doc.text in texts
    by_id = {c.id: c.text for c in doc.candidates}
    shown = [t for t in texts if t in by_id.values()]
    assert shown == [by_id[cid] for cid in order]  # the stable shuffled order
    assert at.progress[0].proto.text == "You: 0 done, 3 left in your queue"
    with Store(app_db.path) as s:
        need = 3 * s.get_project("p").overlap
    assert any(c.value.startswith(f"Project p: 0 of {need} rankings done (3 documents × ") for c in at.caption)
    assert [r.label for r in at.radio] == ["Rank of candidate A", "Rank of candidate B", "Rank of candidate C"]
    assert all(r.value is None for r in at.radio)


def test_incomplete_ranking_disables_save_complete_saves(app_db, app_test):
    at = app_test("annotate.py", app_db.ann.id).run()
    doc, order = _shown(app_db, app_db.ann)
    save = next(b for b in at.button if b.label == "Save")
    assert save.disabled
    assert "• Give a rank to candidates A, B and C." in _texts(at)

    _radio(at, "A").set_value(2)
    _radio(at, "B").set_value(2)  # typed after A's (rows run in order): the rank moves to B, no clash
    at.run()
    assert next(b for b in at.button if b.label == "Save").disabled
    assert [_radio(at, x).value for x in "ABC"] == [None, 2, None]
    assert "• Give a rank to candidates A and C." in _texts(at)

    _radio(at, "B").set_value(1)
    _radio(at, "C").set_value(3)
    at.text_area(key=f"annotate:crit:{doc.id}:{order[2]}").input("Not about the river; describe the flood.")
    at.text_input(key=f"annotate:quote:{doc.id}:{order[2]}").input("A cat")
    at.run()
    save = next(b for b in at.button if b.label == "Save")
    assert not save.disabled
    save.click().run()
    assert not at.exception
    assert any("Saved your ranking" in s.value and "1 critique" in s.value for s in at.toast)
    with Store(app_db.path) as s:
        r = s.my_ranking(app_db.ann, doc.id)
        assert r.order == [[order[1]], [order[0]], [order[2]]] and r.version == 1
        assert r.seconds is not None and r.seconds >= 0
        crit = s.my_critiques(app_db.ann, doc.id)[order[2]]
        assert crit.text == "Not about the river; describe the flood."
        assert (crit.span_start, crit.span_end) == (0, 5)
        assert s.get_document(doc.id).n_rankings == 1
    # the next document is shown, and progress moved
    assert at.progress[0].proto.text == "You: 1 done, 2 left in your queue"
    assert doc.text not in _texts(at)


def test_blank_critique_and_bad_quote_are_refused(app_db, app_test):
    at = app_test("annotate.py", app_db.ann.id).run()
    doc, order = _shown(app_db, app_db.ann)
    _rank_in_order(at)
    at.text_area(key=f"annotate:crit:{doc.id}:{order[0]}").input("   ")
    at.run()
    assert next(b for b in at.button if b.label == "Save").disabled
    assert any("critique of candidate A is blank" in t for t in _texts(at))
    at.text_area(key=f"annotate:crit:{doc.id}:{order[0]}").input("Say which river.")
    at.text_input(key=f"annotate:quote:{doc.id}:{order[0]}").input("no such words")
    at.run()
    assert next(b for b in at.button if b.label == "Save").disabled
    assert any("'no such words' is not in candidate A" in t for t in _texts(at))
    with Store(app_db.path) as s:
        assert s.scalar("SELECT COUNT(*) FROM rankings") == 0
        assert s.scalar("SELECT COUNT(*) FROM critiques") == 0


def test_draft_survives_reruns_and_leaving_the_page(app_db, app_test):
    at = app_test("app.py", app_db.ann.id).run()  # the whole app, to go to another page and back
    doc, order = _shown(app_db, app_db.ann)
    _radio(at, "A").set_value(3)
    at.text_area(key=f"annotate:crit:{doc.id}:{order[1]}").input("Half written")
    at.run()
    at.run()
    assert _radio(at, "A").value == 3
    assert at.text_area(key=f"annotate:crit:{doc.id}:{order[1]}").value == "Half written"
    # leaving the page drops its widget state; the draft in the session brings it back
    at.switch_page("app_pages/mine.py").run()
    assert [t.value for t in at.title] == ["My entries"] and not at.radio
    at.switch_page("app_pages/annotate.py").run()
    assert _radio(at, "A").value == 3
    assert at.text_area(key=f"annotate:crit:{doc.id}:{order[1]}").value == "Half written"
    with Store(app_db.path) as s:
        assert s.scalar("SELECT COUNT(*) FROM rankings") == 0  # nothing saved until Save


def test_ties_and_required_lowest_critique(app_db, app_test):
    with Store(app_db.path) as s:
        s.update_project("p", allow_ties=True, require_critique_lowest=True)
    at = app_test("annotate.py", app_db.ann.id).run()
    doc, order = _shown(app_db, app_db.ann)
    _radio(at, "A").set_value(1)
    _radio(at, "B").set_value(1)
    _radio(at, "C").set_value(2)
    at.run()
    assert next(b for b in at.button if b.label == "Save").disabled
    assert any("needs a critique of the lowest-ranked candidate" in t and "for C" in t for t in _texts(at))
    at.text_area(key=f"annotate:crit:{doc.id}:{order[2]}").input("Wrong animal.")
    at.run()
    next(b for b in at.button if b.label == "Save").click().run()
    with Store(app_db.path) as s:
        assert s.my_ranking(app_db.ann, doc.id).order == [sorted(order[:2]), [order[2]]]


def test_skip_then_all_done(app_db, app_test):
    at = app_test("annotate.py", app_db.ann.id).run()
    first, _ = _shown(app_db, app_db.ann)
    next(b for b in at.button if b.label == "Skip for now").click().run()
    assert any("Skipped" in s.value for s in at.toast)
    second, _ = _shown(app_db, app_db.ann)
    assert second.id != first.id and second.text in _texts(at)
    with Store(app_db.path) as s:
        assert s.scalar("SELECT COUNT(*) FROM skips WHERE document_id = ?", (first.id,)) == 1
        for d in s.documents("p"):
            s.save_ranking(app_db.ann, d.id, {c.id: i + 1 for i, c in enumerate(d.candidates)})
    at.run()
    assert any("All done — thank you" in s.value for s in at.success)
    assert not at.radio
    assert at.progress[0].proto.text == "You: 3 done, 0 left in your queue"


def test_my_entries_revision_creates_version_2_and_keeps_1(app_db, app_test):
    with Store(app_db.path) as s:
        doc = s.documents("p")[1]
        a, b, c = (x.id for x in doc.candidates)
        s.save_annotation(app_db.ann, doc.id, {a: 1, b: 2, c: 3}, {c: "Off topic."}, seconds=9)
    order = A.display_order(app_db.ann.id, doc.id, [a, b, c])
    names = A.labels(order)
    at = app_test("mine.py", app_db.ann.id).run()
    assert not at.exception
    assert at.dataframe[0].value["document"].tolist() == ["River report 1"]
    # the saved ranking and critique are filled in
    assert {names[cid]: _radio(at, names[cid]).value for cid in order} == {names[a]: 1, names[b]: 2, names[c]: 3}
    assert at.text_area(key=f"revise1.0:crit:{doc.id}:{c}").value == "Off topic."
    assert next(b_ for b_ in at.button if b_.label == "Save revision").disabled  # nothing changed yet

    with Store(app_db.path) as s:  # the critique has refinements: changing it is said to leave them behind
        crit = s.my_critiques(app_db.ann, doc.id)[c]
        s.add_refinements(crit.id, ["It is about a cat."], generator="tiny")
    _radio(at, names[a]).set_value(2)
    _radio(at, names[b]).set_value(1)
    at.run()
    assert not at.warning  # a new ranking keeps the critique and its refinements
    at.text_area(key=f"revise1.0:crit:{doc.id}:{c}").input("Off topic: a cat, not the river.")
    at.run()
    assert any(f"changes the critique of {names[c]}" in w.value and "1 refinement of the old one" in w.value
               for w in at.warning)
    next(b_ for b_ in at.button if b_.label == "Save revision").click().run()
    assert not at.exception
    assert any("ranking version 2" in m.value for m in at.success)
    with Store(app_db.path) as s:
        hist = s.ranking_history(app_db.ann, doc.id)
        assert [(h.version, h.current) for h in hist] == [(1, False), (2, True)]
        assert hist[0].order == [[a], [b], [c]] and hist[1].order == [[b], [a], [c]]
        assert [k.text for k in s.critique_history(app_db.ann, c)] == [
            "Off topic.", "Off topic: a cat, not the river."]
        assert s.get_document(doc.id).n_rankings == 1
    history = _texts(at)
    assert any(t.startswith("Ranking v1,") for t in history)
    assert any(t.startswith("Ranking v2 (current)") for t in history)
    assert any("Critique of " + names[c] + " v1" in t and "Off topic." in t for t in history)
    # the page now edits version 2
    assert _radio(at, names[b]).value == 1


def test_my_entries_empty_state(app_db, app_test):
    at = app_test("mine.py", app_db.ann.id).run()
    assert any("not saved anything" in i.value for i in at.info)
    assert not at.dataframe


def test_document_stays_on_screen_while_another_annotator_saves(app_db, app_test):
    at = app_test("annotate.py", app_db.ann.id).run()
    doc, _ = _shown(app_db, app_db.ann)
    _radio(at, "A").set_value(1)
    at.run()
    with Store(app_db.path) as s:
        d1 = s.documents("p")[1]
        s.save_ranking(app_db.other, d1.id, {c.id: i + 1 for i, c in enumerate(d1.candidates)})
        assert s.next_document(app_db.ann, "p").id == d1.id  # the queue now prefers d1
    at.run()
    assert doc.text in _texts(at) and d1.text not in _texts(at)
    assert _radio(at, "A").value == 1


def test_my_entries_discard_changes_restores_the_saved_entry(app_db, app_test):
    with Store(app_db.path) as s:
        doc = s.documents("p")[0]
        a, b, c = (x.id for x in doc.candidates)
        s.save_annotation(app_db.ann, doc.id, {a: 1, b: 2, c: 3}, {}, seconds=4)
    names = A.labels(A.display_order(app_db.ann.id, doc.id, [a, b, c]))
    at = app_test("mine.py", app_db.ann.id).run()
    _radio(at, names[a]).set_value(3)
    _radio(at, names[c]).set_value(1)
    at.run()
    assert not next(x for x in at.button if x.label == "Save revision").disabled
    next(x for x in at.button if x.label == "Discard changes").click().run()
    assert _radio(at, names[a]).value == 1 and _radio(at, names[c]).value == 3
    assert next(x for x in at.button if x.label == "Save revision").disabled
    with Store(app_db.path) as s:
        assert [r.version for r in s.ranking_history(app_db.ann, doc.id)] == [1]


def test_a_reload_keeps_the_half_written_draft_after_signing_in_again(app_db, app_test):
    """Issue 13: a reload is a new browser session (empty session state). The draft is kept on the
    server for the annotator, and only they get it back, after signing in with their token."""
    at = app_test("app.py", app_db.ann.id).run()
    doc, order = _shown(app_db, app_db.ann)
    _radio(at, "A").set_value(3)
    at.text_area(key=f"annotate:crit:{doc.id}:{order[1]}").input("Half written")
    at.run()
    fresh = app_test("app.py").run()  # the reload: no session, the sign-in page
    assert not fresh.radio and not any("Half written" in t.value for t in fresh.text_area)
    fresh.text_input[0].input(app_db.tokens["ann"])
    next(b for b in fresh.button if b.label == "Sign in").click().run()
    assert not fresh.exception
    assert _radio(fresh, "A").value == 3
    assert fresh.text_area(key=f"annotate:crit:{doc.id}:{order[1]}").value == "Half written"
    other = app_test("app.py", app_db.other.id).run()  # another annotator never sees it
    assert all(t.value != "Half written" for t in other.text_area)
    _radio(fresh, "B").set_value(1)
    _radio(fresh, "C").set_value(2)
    fresh.run()
    next(b for b in fresh.button if b.label == "Save").click().run()
    from annotate_app import ui

    assert not fresh.exception and ui.kept(app_db.ann.id, f"draft:{app_db.ann.id}:{doc.id}") is None  # saved


def test_save_meeting_a_locked_database_keeps_the_draft(app_db, app_test, monkeypatch):
    """A writer holds the lock through every retry: the page says so and the draft stays; once
    the lock is gone, the same click saves it."""
    import sqlite3

    monkeypatch.setenv("TOKENWISE_BUSY_TIMEOUT_MS", "50")
    at = app_test("annotate.py", app_db.ann.id).run()
    doc, order = _shown(app_db, app_db.ann)
    _rank_in_order(at)
    at.text_area(key=f"annotate:crit:{doc.id}:{order[0]}").input("Say how far it rose.")
    at.run()
    holder = sqlite3.connect(app_db.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer (an import's batch, a job) holds the lock
    try:
        next(b for b in at.button if b.label == "Save").click().run()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not at.exception
    assert any("Not saved: the database stayed busy" in e.value.replace("\\", "") and "still on this page" in e.value
               for e in at.error)  # (the message is Markdown-escaped)
    assert [_radio(at, label).value for label in "ABC"] == [1, 2, 3]
    assert at.text_area(key=f"annotate:crit:{doc.id}:{order[0]}").value == "Say how far it rose."
    assert at.progress[0].proto.text == "You: 0 done, 3 left in your queue"
    with Store(app_db.path) as s:
        assert s.scalar("SELECT COUNT(*) FROM rankings") == 0
    next(b for b in at.button if b.label == "Save").click().run()
    assert any("Saved your ranking" in s.value for s in at.toast)
    with Store(app_db.path) as s:
        assert s.my_ranking(app_db.ann, doc.id).order == [[order[0]], [order[1]], [order[2]]]
        assert s.my_critiques(app_db.ann, doc.id)[order[0]].text == "Say how far it rose."


def test_critique_typed_just_before_save_is_saved(app_db, app_test):
    """The browser sends the last edit and the click together: the save callback sees both."""
    at = app_test("annotate.py", app_db.ann.id).run()
    doc, order = _shown(app_db, app_db.ann)
    _rank_in_order(at)
    at.run()
    at.text_area(key=f"annotate:crit:{doc.id}:{order[2]}").input("Not about the river.")
    next(b for b in at.button if b.label == "Save").click().run()
    assert any("with 1 critique" in s.value for s in at.toast)
    with Store(app_db.path) as s:
        assert s.my_critiques(app_db.ann, doc.id)[order[2]].text == "Not about the river."
    assert at.progress[0].proto.text == "You: 1 done, 2 left in your queue"


def test_a_one_output_document_asks_for_a_critique_not_a_rank(db_path, monkeypatch, app_test):
    """SLF5K-style rows (one summary and its feedback) in a K=4 project: the page shows the output
    with its critique box open and no rank row, and Save needs a critique."""
    import json

    from training.data.imports import import_file

    monkeypatch.setenv("TOKENWISE_DB", db_path)
    path = db_path + ".slf5k.jsonl"
    with open(path, "w") as f:
        f.write(json.dumps({"post": "The harbour closed.", "generated_summary_for_feedback": "A storm came.",
                            "feedback": "Say why it closed.", "ideal_human_summary": "The storm closed it."}) + "\n")
    with Store(db_path) as s:
        s.create_project("fb", k=4)
        import_file(s, path, "fb")
        ann, _ = s.add_annotator("ann")
    at = app_test("annotate.py", ann.id).run()
    assert not at.exception and not at.radio
    assert any("One output" in c.value for c in at.caption)
    assert at.button(key="annotate_save").disabled
    at.text_area(key=next(t.key for t in at.text_area)).set_value("Too vague about the cause.").run()
    at.button(key="annotate_save").click().run()
    assert not at.exception
    with Store(db_path) as s:
        doc = s.documents("fb")[0]
        assert [c.text for c in s.my_critiques(ann, doc.id).values()] == ["Too vague about the cause."]
        assert s.my_ranking(ann, doc.id).order == [[doc.candidates[0].id]]


def test_a_document_saved_in_another_tab_is_replaced_with_a_word(app_db, app_test):
    """Two tabs on one document: after tab 1 saves, tab 2's next run shows the next document and
    says why, instead of switching under the cursor without a word."""
    tab2 = app_test("annotate.py", app_db.ann.id).run()
    doc, order = _shown(app_db, app_db.ann)
    assert doc.text in _texts(tab2)
    with Store(app_db.path) as s:  # tab 1 saves it
        s.save_ranking(app_db.ann, doc.id, {cid: i + 1 for i, cid in enumerate(order)})
    _radio(tab2, "A").set_value(1)
    tab2.run()
    assert not tab2.exception
    assert any("no longer in your queue" in i.value for i in tab2.info)
    assert doc.text not in _texts(tab2)
    assert _radio(tab2, "A").value is None  # the click did not carry over to the new document
    tab2.run()
    assert not any("no longer in your queue" in i.value for i in tab2.info)  # said once


def test_the_critique_button_shows_a_check_as_soon_as_the_text_arrives(app_db, app_test):
    """The popover's icon and help say "written" on the rerun that sends the critique, not one later."""
    at = app_test("annotate.py", app_db.ann.id).run()
    doc, order = _shown(app_db, app_db.ann)

    def icons():
        return [(p.proto.popover.help, p.proto.popover.icon) for p in at.get("popover")]

    assert {icon for _, icon in icons()} == {":material/edit:"}
    at.text_area(key=f"annotate:crit:{doc.id}:{order[1]}").input("Say which river.").run()
    assert icons() == [("Critique of candidate A", ":material/edit:"),
                       ("Critique of candidate B (written)", ":material/check:"),
                       ("Critique of candidate C", ":material/edit:")]
    at.text_area(key=f"annotate:crit:{doc.id}:{order[1]}").input("  ").run()  # blanked again
    assert icons()[1] == ("Critique of candidate B", ":material/edit:")


def test_a_rank_taken_from_another_candidate_swaps_with_it(app_db, app_test):
    """Without ties, giving C the rank A holds moves A to C's old rank: one click, no clash to fix."""
    at = app_test("annotate.py", app_db.ann.id).run()
    _, order = _shown(app_db, app_db.ann)
    _rank_in_order(at)
    at.run()
    _radio(at, "C").set_value(1).run()
    assert [_radio(at, x).value for x in "ABC"] == [3, 2, 1]
    assert not at.button(key="annotate_save").disabled
    at.button(key="annotate_save").click().run()
    assert not at.exception
    with Store(app_db.path) as s:
        [mine] = s.my_rankings(app_db.ann, "p")
    assert mine.order == [[order[2]], [order[1]], [order[0]]]  # C, B, A


def test_a_rank_given_to_an_unranked_candidate_moves_there(app_db, app_test):
    """A is 3, then B (no rank yet) gets 3: the rank moves to B and A waits for one (no clash to
    untangle before Save); ranking A next fills C, the last one left."""
    at = app_test("annotate.py", app_db.ann.id).run()
    _, order = _shown(app_db, app_db.ann)
    _radio(at, "A").set_value(3).run()
    _radio(at, "B").set_value(3).run()
    assert [_radio(at, x).value for x in "ABC"] == [None, 3, None]
    _radio(at, "A").set_value(1).run()
    assert [_radio(at, x).value for x in "ABC"] == [1, 3, 2]
    at.button(key="annotate_save").click().run()
    with Store(app_db.path) as s:
        [mine] = s.my_rankings(app_db.ann, "p")
    assert mine.order == [[order[0]], [order[2]], [order[1]]]  # A, C, B

def test_rank_clicks_that_reach_one_run_together_still_fill_and_swap(app_db, app_test):
    """A fast typist's clicks can reach the server in one rerun (each its own callback, the draft
    not redrawn in between): the last candidate still takes the rank left, and a swap sees the
    other rows as the browser has them."""
    at = app_test("annotate.py", app_db.ann.id).run()
    _radio(at, "A").set_value(3)
    _radio(at, "B").set_value(1)
    at.run()  # both changes in one run
    assert [_radio(at, x).value for x in "ABC"] == [3, 1, 2]
    _radio(at, "A").set_value(1)  # A takes B's 1 (B gets A's 3) ...
    _radio(at, "C").set_value(3)  # ... and in the same run C takes that 3 (B gets C's 2)
    at.run()
    assert [_radio(at, x).value for x in "ABC"] == [1, 2, 3]
    assert not at.button(key="annotate_save").disabled

def test_the_last_candidate_takes_the_rank_left_so_k_minus_1_clicks_rank_k(app_db, app_test):
    at = app_test("annotate.py", app_db.ann.id).run()
    _, order = _shown(app_db, app_db.ann)
    _radio(at, "B").set_value(1).run()
    assert _radio(at, "C").value is None  # two left: nothing filled yet
    _radio(at, "C").set_value(3).run()
    assert [_radio(at, x).value for x in "ABC"] == [2, 1, 3]
    assert not at.button(key="annotate_save").disabled
    at.button(key="annotate_save").click().run()
    with Store(app_db.path) as s:
        [mine] = s.my_rankings(app_db.ann, "p")
    assert mine.order == [[order[1]], [order[0]], [order[2]]]  # B, A, C


def test_a_new_session_opens_the_project_chosen_last(app_db, app_test):
    """Signing in again (or a reload) comes back to the project this person worked in last."""
    with Store(app_db.path) as s:
        s.create_project("second", k=2)
        s.add_documents("second", [NewDocument("s1", "Second text.", ["one", "two"])])
    at = app_test("annotate.py", app_db.ann.id).run()
    assert at.selectbox(key="project").value == "p"
    at.selectbox(key="project").set_value("second").run()
    assert not at.exception
    again = app_test("annotate.py", app_db.ann.id).run()  # a new session
    assert again.selectbox(key="project").value == "second"
    other = app_test("annotate.py", app_db.other.id).run()  # somebody else's choice is their own
    assert other.selectbox(key="project").value == "p"


def test_a_card_line_holds_up_to_8_rank_options_and_a_readable_critique_button_at_1440():
    """The widths of a card's first line against what Chromium measured at 1440x900 (widgets.py):
    a 516 px line, each column 11 px short of its share; options 33 px with a digit, 61 "1 best",
    69 "K worst", 16 px apart; the letter and its help 40 px; the button 110 px, 55 as an icon."""
    from annotate_app import widgets

    def option_px(label: str) -> int:
        return {"best": 61, "worst": 69}.get(label.split()[-1], 33)

    for k in range(2, 9):
        widths = widgets.card_columns(k)
        head, rank, button = (w / sum(widths) * 516 - 11 for w in widths)
        labels = [widgets.rank_label(r, k) for r in range(1, k + 1)]
        assert rank >= sum(option_px(x) for x in labels) + 16 * (k - 1), k
        assert head >= 40 and button >= (55 if k >= widgets.ICON_ONLY_K else 110), k
    assert [widgets.rank_label(r, 5) for r in range(1, 6)] == ["1 best", "2", "3", "4", "5 worst"]
    assert [widgets.rank_label(r, 7) for r in range(1, 8)] == ["1", "2", "3", "4", "5", "6", "7"]


def test_seven_candidates_rank_by_numbers_and_keep_the_critique_buttons_name(db_path, monkeypatch, app_test):
    """K=7: plain numbers (the caption says 1 is the best, 7 the worst); the Critique buttons show
    their icon only but keep their label (the accessible name) and tooltip."""
    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        s.create_project("seven", k=7, overlap=1)
        s.add_documents("seven", [NewDocument("d0", "The river rose.", [f"Answer {j}." for j in range(7)])])
        ann, _ = s.add_annotator("ann")
    at = app_test("annotate.py", ann.id).run()
    assert not at.exception
    assert len(at.radio) == 7 and all(r.options == [str(i) for i in range(1, 8)] for r in at.radio)
    assert any("**1 is the best**, 7 the worst" in c.value and "(the button at the right of each card)" in c.value
               for c in at.caption)
    pops = [p.proto.popover for p in at.get("popover")]
    assert [(p.label, p.help) for p in pops] == [("Critique", f"Critique of candidate {x}") for x in "ABCDEFG"]
    assert any("st-key-critique-icon-" in h.proto.body for h in at.get("html"))  # annotate_screen's style


def test_on_a_narrow_screen_every_critique_button_is_its_icon(app_db, app_test):
    """K=3: the Critique buttons sit in containers keyed "critique-btn-...", whose label the page's
    style hides below 1400 px only (a 1280 laptop keeps each rank row on one line)."""
    from annotate_app import annotate_screen

    at = app_test("annotate.py", app_db.ann.id).run()
    assert len(at.get("popover")) == 3
    assert "@media (max-width: 1399px)" in annotate_screen.COMPACT_CSS
    narrow = annotate_screen.COMPACT_CSS.split("@media (max-width: 1399px)")[1]
    assert "st-key-critique-btn-" in narrow and "st-key-critique-btn-" not in annotate_screen.COMPACT_CSS.split("@media")[0]

    def block_ids(node):  # the page's containers, by their proto id (which ends with the key)
        out = [node.proto.id] if type(node).__name__ == "Block" and getattr(node.proto, "id", "") else []
        return out + [i for ch in getattr(node, "children", {}).values() for i in block_ids(ch)]

    keyed = [i for i in block_ids(at._tree) if "-critique-" in i]
    assert len(keyed) == 3 and all("-critique-btn-annotate-" in i for i in keyed), keyed
