"""The Review refinements page (AppTest): accept the selected one, pick another, edit, permissions."""

from __future__ import annotations

import pytest

from training.store import Store


@pytest.fixture
def review_db(app_db):
    """Critiques by ann on documents 0 and 1, three refinements each, the second one selected."""
    with Store(app_db.path) as s:
        docs = s.documents("p")
        refs = {}
        for d in docs[:2]:
            k = s.save_critique(app_db.ann, d.candidates[1].id, "Say how far the river rose.")
            rs = s.add_refinements(k.id, [f"Rain fell, the river rose {d.id} m.", f"The river rose {d.id} metres.",
                                          "A cat."], generator="test")
            s.save_refinement_scores({r.id: {"scores": {"incorporates": 0.1 * i}, "ensemble_score": 0.1 * i}
                                      for i, r in enumerate(rs)}, selector="instructrm")
            s.mark_selected(k.id, rs[1].id)
            refs[k.id] = rs
    app_db.refs = refs
    return app_db


def run(at):
    at.run()
    assert not at.exception, at.exception
    return at


def test_accept_selected_then_pick_another(review_db, app_test):
    at = run(app_test("review.py", review_db.ann.id))
    assert len(at.dataframe) == 1
    # the selector that picked is named and explained; a score no refinement has gets no column
    assert any("picked by the instructrm selector" in m.value for m in at.markdown)
    assert any("0.5 means no better than the original" in c.value for c in at.caption)
    assert "InstructRM" in at.dataframe[0].value.columns and "reward" not in at.dataframe[0].value.columns
    (_, rs1), (k2, rs2) = review_db.refs.items()
    assert at.radio[0].value == rs1[1].id  # the selected one is preselected
    at.button(key="review_accept").click()
    run(at)
    assert "Accepted refinement #2" in at.success[0].value
    with Store(review_db.path) as s:
        assert s.get_refinement(rs1[1].id).accepted is True
        assert s.get_refinement(rs1[0].id).accepted is False
    # the reviewed critique left the queue; pick the third refinement of the next one
    assert at.selectbox(key="review_pick").value == k2
    at.radio[0].set_value(rs2[2].id)
    at.button(key="review_accept").click()
    run(at)
    with Store(review_db.path) as s:
        r = s.get_refinement(rs2[2].id)
        assert r.accepted and r.selected and r.reviewed_by == review_db.ann.id
        assert not s.get_refinement(rs2[1].id).selected


def test_edit_is_stored_as_an_accepted_human_refinement(review_db, app_test):
    at = run(app_test("review.py", review_db.ann.id))
    k1 = next(iter(review_db.refs))
    at.text_area[0].set_value("The river rose two metres after the rain.")
    form_button = next(b for b in at.button if b.label == "Save my edit")
    form_button.click()
    run(at)
    with Store(review_db.path) as s:
        item = s.critique_items("p", critique_ids=[k1])[0]
        assert item.accepted.text == "The river rose two metres after the rain."
        assert item.accepted.variant == "edit" and item.accepted.generator == "human:ann"


def test_other_annotators_see_only_their_own_admins_see_all(review_db, app_test):
    at = run(app_test("review.py", review_db.other.id))
    assert not at.dataframe and "Nothing to review" in at.info[0].value
    assert [t.key for t in at.toggle] == ["review_unreviewed"]  # annotators have no "every annotator" toggle
    # an admin who ran the jobs sees every annotator's critiques at once
    at = run(app_test("review.py", review_db.boss.id))
    assert at.toggle(key="review_everyone").value is True
    assert len(at.dataframe) == 1 and any("by ann" in m.value for m in at.markdown)
    # turned off: their own (none), and the message says what the toggle hides, not that no job ran
    at.toggle(key="review_everyone").set_value(False)
    run(at)
    assert not at.dataframe
    [info] = [i.value for i in at.info]
    assert info == ("Nothing to review here. 2 critiques are hidden while \"Every annotator's critiques\" is off: "
                    "other annotators wrote them.")


def test_an_empty_queue_names_the_toggle_that_hides_reviewed_critiques(review_db, app_test):
    rs1, rs2 = review_db.refs.values()
    with Store(review_db.path) as s:
        s.accept_refinement(review_db.ann, rs1[1].id)
        s.accept_refinement(review_db.ann, rs2[0].id)
    at = run(app_test("review.py", review_db.ann.id))
    assert not at.dataframe
    assert at.info[0].value == ("Nothing to review here. 2 critiques are hidden by \"Only unreviewed\": "
                                "they were reviewed already.")
    at.toggle(key="review_unreviewed").set_value(False)
    run(at)
    assert len(at.dataframe) == 1 and "(2 to show)" in at.selectbox(key="review_pick").label
    # an admin with both toggles against them: both are named
    at = run(app_test("review.py", review_db.boss.id))
    at.toggle(key="review_everyone").set_value(False)
    run(at)
    assert at.info[0].value == ("Nothing to review here. 2 critiques are hidden: other annotators wrote them and they "
                                "were reviewed already (turn \"Every annotator's critiques\" on and "
                                "\"Only unreviewed\" off).")


def test_no_refinement_yet_points_to_the_jobs(app_db, app_test):
    with Store(app_db.path) as s:
        s.save_critique(app_db.ann, s.documents("p")[0].candidates[0].id, "Too short.")
    at = run(app_test("review.py", app_db.boss.id))
    assert "Refinements appear when the \"ILF: refine\" and then \"ILF: select\" jobs" in at.info[0].value


def test_baselines_made_without_the_critique_are_shown_but_not_offered(review_db, app_test):
    """The no_feedback refinements (the PMI/InstructRM selectors' baseline) are in the table, marked,
    but are not choices; even one the selector marked is not preselected."""
    (k1, rs1), _ = review_db.refs.items()
    with Store(review_db.path) as s:
        [base] = s.add_refinements(k1, ["The river rose."], generator="test", variant="no_feedback")
        s.mark_selected(k1, base.id)
    at = run(app_test("review.py", review_db.ann.id))
    table = at.dataframe[0].value
    assert table["variant"].tolist() == ["feedback"] * 3 + ["no_feedback (baseline: without the critique)"]
    assert any(c.value == "Refinement #4 (selected) · baseline, made without the critique: not a choice"
               for c in at.caption)
    radio = at.radio(key=f"review_choice:{k1}")
    assert radio.options == ["#1", "#2", "#3"] and radio.value == rs1[0].id
    at.button(key="review_accept").click()
    run(at)
    with Store(review_db.path) as s:
        assert s.get_refinement(rs1[0].id).accepted and not s.get_refinement(base.id).accepted


def test_a_critique_with_baselines_only_offers_no_choice_but_an_edit(review_db, app_test):
    with Store(review_db.path) as s:
        doc = s.documents("p")[2]
        k = s.save_critique(review_db.ann, doc.candidates[0].id, "Name the river.")
        s.add_refinements(k.id, ["A river rose."], generator="test", variant="no_feedback")
    at = app_test("review.py", review_db.ann.id)
    at.session_state["review_pick"] = k.id
    run(at)
    assert not at.radio and not any(b.key == "review_accept" for b in at.button)
    assert any("Every refinement here is a baseline made without the critique" in i.value for i in at.info)
    assert at.text_area[0].value == doc.candidates[0].text  # the edit starts from the original output


def test_page_needs_a_signed_in_user(review_db, app_test):
    at = run(app_test("review.py"))
    assert "sign in" in at.warning[0].value.lower()


def test_a_reselection_after_review_keeps_the_reviewers_choice_preselected(review_db, app_test):
    """The selector runs again (--reselect-reviewed) and marks another refinement: the page still
    opens on the one the annotator accepted, and says which is which."""
    (k1, rs1), _ = review_db.refs.items()
    with Store(review_db.path) as s:
        s.accept_refinement(review_db.ann, rs1[0].id)
        s.mark_selected(k1, rs1[2].id)  # a later selection picks #3
    at = app_test("review.py", review_db.ann.id)
    at.session_state["review_unreviewed"] = False
    at = run(at)
    at.selectbox(key="review_pick").set_value(k1)
    run(at)
    assert at.radio[0].value == rs1[0].id  # the accepted one, not the newly selected one
    assert at.radio[0].options[:1] == ["#1 (accepted)"] and "selected" in at.radio[0].options[2]
