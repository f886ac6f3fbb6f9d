"""Finding documents: FTS5 search, filters (status, annotator, disagreement, model contradiction),
one document with everything attached, and what an annotator may see."""

import math
from types import SimpleNamespace

import pytest

from training.annotation.browse import BrowseFilter, browse, disagreement, document_view, model_tau
from training.errors import NotFound, ValidationError
from training.store import NewDocument
from training.store.search import fts_query


@pytest.fixture
def data(store):
    store.create_project("news", kind="summarize", k=3, overlap=2)
    store.add_documents("news", [
        NewDocument("flood", "The river rose and the old bridge closed for repairs.", ["bridge shut", "rain", "cats"],
                    title="Flood"),
        NewDocument("cafe", "A café opened near the station; its crêpes sell out by noon.", ["café", "crêpes", "x"],
                    title="Food"),
        NewDocument("vote", "The council voted to keep the bridge toll.", ["toll kept", "vote", "y"], title="Toll",
                    meta={"source": "Town paper", "label": 2}),
    ])
    ann, _ = store.add_annotator("ann")
    bob, _ = store.add_annotator("bob")
    admin, _ = store.add_annotator("root", role="admin")
    docs = {d.ext_id: d for d in store.documents("news")}
    f = docs["flood"].candidates
    store.save_ranking(ann, docs["flood"].id, {f[0].id: 1, f[1].id: 2, f[2].id: 3})
    store.save_ranking(bob, docs["flood"].id, {f[0].id: 3, f[1].id: 2, f[2].id: 1})  # the opposite order
    v = docs["vote"].candidates
    store.save_ranking(bob, docs["vote"].id, {v[0].id: 1, v[1].id: 2, v[2].id: 3})
    store.save_critique(bob, v[1].id, "Says nothing about the toll.")
    return SimpleNamespace(p=store.get_project("news"), docs=docs, ann=ann, bob=bob, admin=admin)


def test_fts_query_quotes_words_and_ignores_operators():
    assert fts_query('river "bridge" OR NEAR(') == '"river" "bridge" "OR" "NEAR"*'
    assert fts_query("  ¿? ") is None


def test_search_finds_words_prefixes_and_accents_and_follows_new_documents(store, data):
    p, docs = data.p, data.docs
    assert sorted(store.search_documents(p.id, "bridge")) == [docs["flood"].id, docs["vote"].id]
    assert store.search_documents(p.id, "bridge toll") == [docs["vote"].id]
    assert store.search_documents(p.id, "crepes") == [docs["cafe"].id]  # diacritics folded
    assert store.search_documents(p.id, "cou") == [docs["vote"].id]  # the last word is a prefix
    store.add_documents("news", [NewDocument("late", "A late bridge story.", ["a", "b", "c"])])
    assert len(store.search_documents(p.id, "bridge")) == 3
    store.create_project("other")
    assert store.search_documents(store.get_project("other").id, "bridge") == []


def test_deleted_documents_leave_the_index(store, data):
    p, docs = data.p, data.docs
    store.sync_search_index()
    with store.tx() as c:
        for table, col in (("rankings", "document_id"), ("skips", "document_id")):
            c.execute(f"DELETE FROM {table} WHERE {col} = ?", (docs["vote"].id,))
        c.execute("DELETE FROM critiques WHERE candidate_id IN (SELECT id FROM candidates WHERE document_id = ?)",
                  (docs["vote"].id,))
        c.execute("DELETE FROM candidates WHERE document_id = ?", (docs["vote"].id,))
        c.execute("DELETE FROM documents WHERE id = ?", (docs["vote"].id,))
    assert store.search_documents(p.id, "toll") == []


def test_filters_by_status_annotator_and_disagreement(store, data):
    p, ann, admin = data.p, data.ann, data.admin
    rows = browse(store, p, admin, BrowseFilter())
    assert [r.ext_id for r in rows] == ["flood", "cafe", "vote"]
    assert [r.ext_id for r in browse(store, p, admin, BrowseFilter(status="unranked"))] == ["cafe"]
    assert [r.ext_id for r in browse(store, p, admin, BrowseFilter(status="ranked"))] == ["flood", "vote"]
    hd = browse(store, p, admin, BrowseFilter(status="high_disagreement"))
    assert [r.ext_id for r in hd] == ["flood"] and hd[0].disagreement == pytest.approx(-1.0)
    assert [r.ext_id for r in browse(store, p, admin, BrowseFilter(annotator_id=ann.id))] == ["flood"]
    assert [r.ext_id for r in browse(store, p, admin, BrowseFilter(query="bridge", status="ranked",
                                                                    sort="document"))] == ["flood", "vote"]
    with pytest.raises(ValidationError, match="status"):
        BrowseFilter(status="weird")


def test_model_contradiction_sorts_suspect_labels_first(store, data):
    docs, admin = data.docs, data.admin
    rm = store.add_model("reward", "models/rm", project="news")
    store.update_project("news", active_reward_model=rm.id)
    v = docs["vote"].candidates  # the model agrees with bob on "vote", then contradicts him
    store.put_token_rewards(rm.id, [(v[0].id, ["a"], [0.9], 3.0), (v[1].id, ["b"], [0.5], 2.0),
                                    (v[2].id, ["c"], [0.1], 1.0)])
    p = store.get_project("news")
    rows = browse(store, p, admin, BrowseFilter(status="ranked", sort="model_contradiction"))
    assert rows[0].ext_id == "vote" and rows[0].model_tau == pytest.approx(1.0)
    store.put_token_rewards(rm.id, [(v[0].id, ["a"], [0.1], 1.0), (v[1].id, ["b"], [0.5], 2.0),
                                    (v[2].id, ["c"], [0.9], 3.0)])
    rows = browse(store, p, admin, BrowseFilter(status="model_disagrees", sort="model_contradiction"))
    assert [r.ext_id for r in rows] == ["vote"] and rows[0].model_tau == pytest.approx(-1.0)


def test_document_view_has_everything_and_annotators_see_only_their_own(store, data):
    p, docs, ann, admin = data.p, data.docs, data.ann, data.admin
    view = document_view(store, docs["vote"].id, admin)
    assert view.title == "Toll" and [c.ranks for c in view.candidates] == [{"bob": 1}, {"bob": 2}, {"bob": 3}]
    assert view.candidates[1].critiques == [("bob", "Says nothing about the toll.")]
    assert view.context == []  # no field shown until the project names one
    store.update_project("news", context_fields=["source"])
    assert document_view(store, docs["vote"].id, admin).context == [("source", "Town paper")]
    flood = document_view(store, docs["flood"].id, ann)
    assert [c.ranks for c in flood.candidates] == [{"ann": 1}, {"ann": 2}, {"ann": 3}]  # not bob's
    assert all(c.source == "" for c in flood.candidates) and math.isnan(flood.disagreement)
    with pytest.raises(NotFound, match="not one of yours"):
        document_view(store, docs["vote"].id, ann)
    assert [r.ext_id for r in browse(store, p, ann, BrowseFilter())] == ["flood"]
    assert [r.ext_id for r in browse(store, p, ann, BrowseFilter(query="toll"))] == []


def test_disagreement_and_model_tau_by_hand():
    class R:
        def __init__(self, ranks):
            self.ranks = ranks
    assert disagreement([R({1: 1, 2: 2, 3: 3}), R({1: 1, 2: 2, 3: 3})]) == pytest.approx(1.0)
    assert math.isnan(disagreement([R({1: 1, 2: 2})]))
    # consensus of two rankings: means 1.5, 1.5, 3 -> the model's order 1 > 2 > 3 agrees except the tie
    assert model_tau([R({1: 1, 2: 2, 3: 3}), R({1: 2, 2: 1, 3: 3})], {1: 3.0, 2: 2.0, 3: 1.0}) == pytest.approx(
        2 / math.sqrt(3 * 2))


def test_data_page_searches_filters_and_opens_a_document(app_db):
    """AppTest: the admin searches, filters and opens a document; markup in user text stays text."""
    from apptest import open_page

    from training.store import Store

    with Store(app_db.path) as s:
        d = s.documents("p")[0]
        s.save_ranking(app_db.ann, d.id, {c.id: i + 1 for i, c in enumerate(d.candidates)})
        s.save_critique(app_db.ann, d.candidates[1].id, "**bold** <b>not bold</b>")
    at = open_page("data", app_db.boss.id)
    assert not at.exception
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 3
    at.text_input(key="data_query").input("metres 1").run()
    assert list(at.dataframe[0].value["id"]) == ["d1"]
    at.text_input(key="data_query").input("").run()
    at.selectbox(key="data_status").select("ranked").run()
    assert list(at.dataframe[0].value["id"]) == ["d0"]
    # an annotator: only their own documents, no agreement column
    at = open_page("data", app_db.other.id)
    assert not at.exception and not at.dataframe and any("No document" in i.value for i in at.info)
    at = open_page("data", app_db.ann.id)
    assert list(at.dataframe[0].value["id"]) == ["d0"]
    assert "annotator agreement (tau)" not in at.dataframe[0].value.columns
    assert "model vs people (tau)" not in at.dataframe[0].value.columns  # no reward model yet: no empty column


def test_an_annotator_reads_candidates_by_the_letters_of_their_annotate_page(app_db):
    from training.annotation.browse import document_view, labelled_candidates
    from training.annotation.drafts import display_order, labels
    from training.store import Store

    with Store(app_db.path) as s:
        d = s.documents("p")[0]
        s.save_ranking(app_db.ann, d.id, {c.id: i + 1 for i, c in enumerate(d.candidates)})  # (one of theirs)
        view = document_view(s, d.id, app_db.ann)
        admin_view = document_view(s, d.id, app_db.boss)
    ids = [c.id for c in d.candidates]
    names = labels(display_order(app_db.ann.id, d.id, ids))  # what the Annotate page calls them
    assert [(label, c.id) for label, c in labelled_candidates(view, app_db.ann)] == \
        sorted(((f"Candidate {names[c]}", c) for c in ids), key=lambda t: t[0])
    assert [(label, c.id) for label, c in labelled_candidates(admin_view, app_db.boss)] == \
        [(f"Candidate {i + 1}", c) for i, c in enumerate(ids)]
