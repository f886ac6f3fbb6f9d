"""training.annotation.drafts: stable order, quotes, draft checks, and the one-transaction save."""

from __future__ import annotations

import pytest

from training.annotation import drafts as A
from training.errors import Forbidden, ValidationError
from training.store import NewDocument


def _setup(store, **project_kw):
    p = store.create_project("q", kind="summarize", k=3, overlap=2, **project_kw)
    store.add_documents("q", [NewDocument(f"d{i}", f"Text {i}.", [f"alpha {i}", f"The Beta {i}", f"gamma {i}"])
                              for i in range(4)])
    ann, _ = store.add_annotator("ann")
    return p, ann, store.documents("q")


def _ranked(doc, order):
    """A draft where `order` (candidate ids best first) gets ranks 1..K."""
    d = A.Draft.new(doc, started=0.0)
    d.ranks.update({cid: i + 1 for i, cid in enumerate(order)})
    return d


def test_display_order_is_a_stable_permutation_that_varies():
    ids = [11, 12, 13, 14, 15]
    first = A.display_order(1, 7, ids)
    assert sorted(first) == ids
    assert A.display_order(1, 7, list(reversed(ids))) == first  # input order does not matter
    assert A.display_order(1, 7, ids) == first
    orders = {tuple(A.display_order(a, d, ids)) for a in range(1, 6) for d in range(1, 6)}
    assert len(orders) > 5  # 25 (annotator, document) pairs do not all share one order
    # no position bias: each candidate comes first about equally often over many documents
    firsts = [A.display_order(1, d, ids)[0] for d in range(2000)]
    assert all(300 < firsts.count(c) < 500 for c in ids)


def test_labels_and_letters():
    assert [A.letter(i) for i in (0, 1, 25, 26, 27)] == ["A", "B", "Z", "AA", "AB"]
    assert A.labels([9, 4]) == {9: "A", 4: "B"}


def test_find_span_exact_case_insensitive_and_refused():
    text = "The cat sat on the mat."
    assert A.find_span(text, "") is None and A.find_span(text, "   ") is None
    assert A.find_span(text, "sat on") == (8, 14)
    assert A.find_span(text, " the mat ") == (15, 22)  # stripped, then found
    assert A.find_span(text, "THE CAT") == (0, 7)
    with pytest.raises(ValidationError, match="'dog' is not in candidate B"):
        A.find_span(text, "dog", "B")


def test_ranking_problems_explain_what_is_missing():
    names = {1: "A", 2: "B", 3: "C"}
    assert A.ranking_problems({1: 1, 2: None, 3: None}, names, allow_ties=False) == [
        "Give a rank to candidates B and C."]
    msgs = A.ranking_problems({1: 1, 2: 1, 3: 2}, names, allow_ties=False)
    assert len(msgs) == 1 and "A and B share rank 1" in msgs[0] and "ties" in msgs[0]
    assert A.ranking_problems({1: 1, 2: 1, 3: 2}, names, allow_ties=True) == []
    assert "Ranks go from 1 to 3" in A.ranking_problems({1: 1, 2: 2, 3: 4}, names, allow_ties=True)[0]
    assert A.ranking_problems({1: 3, 2: 1, 3: 2}, names, allow_ties=False) == []


def test_critique_problems_blank_quote_and_lowest(store):
    p, _, docs = _setup(store, require_critique_lowest=True)
    doc = docs[0]
    a, b, c = (x.id for x in doc.candidates)
    names = {a: "A", b: "B", c: "C"}
    d = _ranked(doc, [a, b, c])
    assert A.problems(p, doc, d, names) == [
        "This project needs a critique of the lowest-ranked candidate: write one for C."]
    d.critiques[c] = "   "
    assert any("critique of candidate C is blank" in m for m in A.problems(p, doc, d, names))
    d.critiques[c] = "Too vague; name the animal."
    d.quotes[c] = "delta"
    assert any("'delta' is not in candidate C" in m for m in A.problems(p, doc, d, names))
    d.quotes[c] = "gamma"
    d.quotes[b] = "Beta"
    assert A.problems(p, doc, d, names) == ["Candidate B has a quote but no critique: write the critique too."]
    del d.quotes[b]
    assert A.problems(p, doc, d, names) == []


def test_save_writes_ranking_and_critiques_together(store):
    p, ann, docs = _setup(store)
    doc = docs[0]
    a, b, c = (x.id for x in doc.candidates)
    d = _ranked(doc, [b, c, a])
    d.critiques[a] = " Wrong subject; say beta. "
    d.quotes[a] = "alpha"
    ranking, crits = A.save(store, ann, p, doc, d, now=12.5)
    assert ranking.order == [[b], [c], [a]] and ranking.seconds == 12.5 and ranking.version == 1
    assert len(crits) == 1 and crits[0].text == "Wrong subject; say beta." and (crits[0].span_start,
                                                                                   crits[0].span_end) == (0, 5)
    assert store.get_document(doc.id).n_rankings == 1
    assert store.next_document(ann, "q").id != doc.id  # done: never shown twice


def test_save_refuses_incomplete_and_saves_nothing(store):
    p, ann, docs = _setup(store)
    doc = docs[0]
    d = A.Draft.new(doc)
    d.ranks[doc.candidates[0].id] = 1
    d.critiques[doc.candidates[0].id] = "fine"
    with pytest.raises(ValidationError, match="Give a rank"):
        A.save(store, ann, p, doc, d)
    assert store.scalar("SELECT COUNT(*) FROM rankings") == 0
    assert store.scalar("SELECT COUNT(*) FROM critiques") == 0


def test_save_annotation_is_one_transaction(store):
    """A critique that fails inside the save rolls the ranking back too."""
    _, ann, docs = _setup(store)
    doc = docs[0]
    ranks = {c.id: i + 1 for i, c in enumerate(doc.candidates)}
    bad_span = {doc.candidates[0].id: ("ok text", (0, 999))}
    with pytest.raises(ValidationError, match="span"):
        store.save_annotation(ann, doc.id, ranks, bad_span)
    assert store.scalar("SELECT COUNT(*) FROM rankings") == 0
    assert store.get_document(doc.id).n_rankings == 0
    with pytest.raises(ValidationError, match="not in document"):
        store.save_annotation(ann, doc.id, ranks, {docs[1].candidates[0].id: "other doc"})
    assert store.scalar("SELECT COUNT(*) FROM critiques") == 0


def test_revision_keeps_old_versions_and_skips_unchanged(store):
    p, ann, docs = _setup(store)
    doc = docs[0]
    a, b, c = (x.id for x in doc.candidates)
    d = _ranked(doc, [a, b, c])
    d.critiques[c] = "Off topic."
    A.save(store, ann, p, doc, d)
    # reopen from what was saved: same ranking, critique edited
    d2 = A.Draft.from_saved(doc, store.my_ranking(ann, doc.id), store.my_critiques(ann, doc.id))
    assert d2.ranks == {a: 1, b: 2, c: 3} and d2.critiques == {c: "Off topic."}
    d2.critiques[c] = "Off topic: it talks about gamma."
    r2, _ = A.save(store, ann, p, doc, d2)
    assert r2.version == 1  # ranking unchanged: no new version
    assert [k.version for k in store.critique_history(ann, c)] == [1, 2]
    # now change the ranking
    d2.ranks.update({a: 3, c: 1})
    r3, _ = A.save(store, ann, p, doc, d2)
    hist = store.ranking_history(ann, doc.id)
    assert [(h.version, h.current) for h in hist] == [(1, False), (2, True)]
    assert hist[0].order == [[a], [b], [c]] and r3.order == [[c], [b], [a]]
    assert store.get_document(doc.id).n_rankings == 1  # a revision is not a second ranking
    # a saved critique cannot be emptied
    d2.critiques[c] = ""
    with pytest.raises(ValidationError, match="cannot be emptied"):
        A.save(store, ann, p, doc, d2)


def test_annotators_only_touch_their_own(store):
    p, ann, docs = _setup(store)
    other, _ = store.add_annotator("other")
    doc = docs[0]
    r, _ = A.save(store, ann, p, doc, _ranked(doc, [c.id for c in doc.candidates]))
    with pytest.raises(Forbidden):
        store.get_my_ranking(other, r.id)
    assert store.my_rankings(other, "q") == []
    assert store.ranking_history(other, doc.id) == []
    assert store.critique_history(other, doc.candidates[0].id) == []


def test_draft_seconds():
    d = A.Draft(document_id=1, started=100.0)
    assert d.seconds(now=142.26) == 42.3
    assert d.seconds(now=50.0) == 0.0


def test_is_changed(store):
    docs = _setup(store)[2]
    doc = docs[0]
    a, b, c = (x.id for x in doc.candidates)
    saved = _ranked(doc, [a, b, c])
    saved.critiques[a] = "Too long."
    d = _ranked(doc, [a, b, c])
    d.critiques.update({a: " Too long. ", b: "  "})  # whitespace only differs
    assert not A.is_changed(d, saved)
    d.quotes[a] = "alpha"
    assert A.is_changed(d, saved)
    assert A.is_changed(_ranked(doc, [b, a, c]), _ranked(doc, [a, b, c]))


def test_current_document_stays_put_while_others_save(store):
    p = store.create_project("busy", k=2, overlap=3)
    store.add_documents("busy", [NewDocument(f"d{i}", f"t{i}", ["x", "y"]) for i in range(3)])
    me, _ = store.add_annotator("me")
    other, _ = store.add_annotator("other")
    d0, d1, _ = store.documents("busy")
    shown = A.current_document(store, me, p, None)
    assert shown.id == d0.id
    store.save_ranking(other, d1.id, {d1.candidates[0].id: 1, d1.candidates[1].id: 2})
    assert store.next_document(me, "busy").id == d1.id  # the queue moved on ...
    assert A.current_document(store, me, p, shown.id).id == d0.id  # ... the screen did not
    store.save_ranking(me, d0.id, {d0.candidates[0].id: 1, d0.candidates[1].id: 2})
    assert A.current_document(store, me, p, shown.id).id == d1.id  # saved: the next one
    assert A.current_document(store, me, p, 999).id == d1.id  # a stale pin is ignored
    q = store.create_project("other", k=2)
    assert A.current_document(store, me, q, d1.id) is None  # a pin from another project too


def test_save_retries_a_locked_database_then_says_busy(db_path):
    """A writer that holds the lock through one attempt: the retry lands. One that holds it
    through every attempt: StoreBusy, nothing written, the draft unchanged."""
    import sqlite3
    import threading

    from training.errors import StoreBusy
    from training.store import Store

    with Store(db_path) as setup:
        p, ann, docs = _setup(setup)
    store = Store(db_path, busy_timeout_ms=50)
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    draft = _ranked(docs[0], [c.id for c in docs[0].candidates])
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreBusy, match="still on this page"):
        A.save(store, ann, p, docs[0], draft, attempts=2, backoff_s=0.01)
    assert store.my_ranking(ann, docs[0].id) is None
    assert draft.ranks == {c.id: i + 1 for i, c in enumerate(docs[0].candidates)}
    threading.Timer(0.1, lambda: holder.execute("ROLLBACK")).start()  # released during the pause
    ranking, _ = A.save(store, ann, p, docs[0], draft, attempts=3, backoff_s=0.3)
    assert ranking.version == 1 and store.my_ranking(ann, docs[0].id) == ranking
    holder.close()
    store.close()


def test_annotate_view_reads_the_document_and_o1_counts(store):
    p, ann, docs = _setup(store)
    view = A.annotate_view(store, ann, p, None)
    assert view.doc.id == docs[0].id
    assert view.counts == {"done": 0, "assigned": 4, "left": 4}
    assert view.totals == {"documents": 4, "complete": 0, "rankings": 0, "critiques": 0}
    A.save(store, ann, p, docs[0], _ranked(docs[0], [c.id for c in docs[0].candidates]))
    view = A.annotate_view(store, ann, p, docs[0].id)  # a saved document is not pinned any more
    assert view.doc.id == docs[1].id and view.counts["done"] == 1 and view.totals["rankings"] == 1
    assert view.replaced == docs[0].id  # (saved elsewhere: the page says so and drops its draft)
    assert A.annotate_view(store, ann, p, docs[1].id).replaced is None  # still on screen
    assert A.annotate_view(store, ann, p, None).replaced is None  # nothing was pinned


def test_short_title_cuts_at_a_word_boundary():
    assert A.short_title("Short title") == "Short title"
    assert A.short_title("  many   spaces\nand lines ") == "many spaces and lines"
    title = "Marrowby votes to turn Dunmore Street car park into a market hall, after a long debate"
    assert len(title) == 86
    out = A.short_title(title, limit=40)  # "Marrowby votes to turn Dunmore Street c" would cut "car"
    assert out == "Marrowby votes to turn Dunmore Street…" and len(out) <= 40
    assert A.short_title("a, b, c, dddddddddd", limit=10) == "a, b, c…"  # no dangling comma
    assert A.short_title("x" * 50, limit=10) == "x" * 9 + "…"  # one long word: cut inside it
    assert A.short_title(title, limit=86) == title


def test_swap_rank_by_hand():
    ranks = {10: 1, 11: 2, 12: 3}
    assert A.swap_rank(ranks, 12, 1) == {10: 3}  # C to 1: A, who had 1, takes C's 3
    assert A.swap_rank(ranks, 11, 2) == {}  # unchanged
    assert A.swap_rank(ranks, 11, None) == {}
    assert A.swap_rank({10: 1, 11: None, 12: None}, 11, 1) == {10: None}  # B had no rank: A gives 1 up
    assert A.swap_rank({10: 2, 11: 2, 12: 1}, 12, 2) == {10: 1, 11: 1}  # a clash already there: both move


def test_last_rank_fills_the_one_rank_left_by_hand():
    assert A.last_rank({10: 1, 11: None}) == {11: 2}  # a pair: A is the best, so B is the worst
    assert A.last_rank({10: None, 11: 1}) == {10: 2}
    assert A.last_rank({10: 3, 11: None, 12: 1, 13: 4}) == {11: 2}
    assert A.last_rank({10: 1, 11: None, 12: None}) == {}  # two left: nothing to infer
    assert A.last_rank({10: 1, 11: 1, 12: None}) == {}  # a clash: the free rank is not clear
    assert A.last_rank({10: 1, 11: 5, 12: None}) == {}  # a rank out of 1..K
    assert A.last_rank({10: 1, 11: 2}) == {}  # all ranked


def test_rewritten_critiques_by_hand():
    saved = A.Draft(7, ranks={1: 1, 2: 2}, critiques={1: "Vague.", 2: ""}, quotes={1: "", 2: ""})
    same = A.Draft(7, ranks={1: 2, 2: 1}, critiques={1: " Vague. ", 2: "New one."}, quotes={1: None, 2: ""})
    assert A.rewritten_critiques(same, saved) == []  # a new rank or a first critique rewrites nothing
    assert A.rewritten_critiques(A.Draft(7, critiques={1: "Too vague."}), saved) == [1]
    assert A.rewritten_critiques(A.Draft(7, critiques={1: "Vague."}, quotes={1: "x"}), saved) == [1]
