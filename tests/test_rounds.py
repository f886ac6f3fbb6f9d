"""Blind A/B evaluation rounds: creation -> job -> blind project -> rankings -> results -> cards."""

import json

import pytest

from training.errors import ValidationError
from training.evaluation.config import RoundConfig
from training.evaluation.rounds import close_round, round_results, start_round
from training.jobs.worker import run_worker
from training.stats import wilson_interval
from training.store import NewDocument


def test_config_refuses_equal_models():
    with pytest.raises(ValidationError, match="model_b: must differ"):
        RoundConfig(name="r", model_a="x", model_b=" x ")


def test_defaults_compare_the_active_policy_with_its_base(store, tiny_causal):
    from training.evaluation.rounds import resolve_pair

    store.create_project("news", kind="summarize", k=2)
    with pytest.raises(ValidationError, match="model_a: project 'news' has no active policy"):
        resolve_pair(store, store.get_project("news"), RoundConfig())
    m = store.add_model("policy", "models/p", base_model=str(tiny_causal), name="pol", project="news")
    store.update_project("news", active_policy_model=m.id)
    a, b = resolve_pair(store, store.get_project("news"), RoundConfig())
    assert a == ("models/p", "pol", m.id) and b == (str(tiny_causal), str(tiny_causal), None)


@pytest.fixture
def setup(store, tiny_causal, tmp_path):
    from training.data.tiny import make_tiny_model

    other = make_tiny_model("causal", tmp_path / "tiny-b", seed=1)
    store.create_project("news", kind="summarize", k=2)
    store.add_documents("news", [NewDocument(f"n{i}", f"River {i} rose after rain in town {i}.",
                                             [f"River {i} rose.", f"Town {i}."], title=f"T{i}",
                                             meta={"passage": f"Gauge {i} read high.", "label": "policy-a"})
                                 for i in range(6)])
    store.update_project("news", context_fields=["passage"])  # annotators read the passage too
    docs = store.documents("news")
    trained_on = [docs[0].id, docs[1].id]
    a = store.add_model("policy", str(tiny_causal), name="policy-a", project="news",
                        data_snapshot={"document_ids": trained_on})
    admin, _ = store.add_annotator("root", role="admin")
    return {"a": a, "b_path": str(other), "trained_on": trained_on, "admin": admin}


def test_round_from_creation_to_the_cards(store, db_path, setup):
    job = start_round(store, "news", {"name": "r1", "model_a": str(setup["a"].id), "model_b": setup["b_path"],
                                      "documents": 10, "max_new_tokens": 6, "overlap": 2},
                      created_by=setup["admin"].id)
    assert job.kind == "eval_round" and job.status == "queued"
    with pytest.raises(ValidationError, match="exists already"):  # same blind project name
        store.create_project("eval-r2", kind="summarize", k=2)
        start_round(store, "news", {"name": "r2", "model_a": "x", "model_b": "y"})
    with pytest.raises(ValidationError, match="at most 95 characters"):  # eval-<name> must be a name too
        start_round(store, "news", {"name": "r" * 96, "model_a": "x", "model_b": "y"})
    with pytest.raises(ValidationError, match="one line"):
        start_round(store, "news", {"name": "r\n3", "model_a": "x", "model_b": "y"})
    assert run_worker(db_path, once=True) == 1
    assert store.get_job(job.id).status == "done", store.get_job(job.id).error
    rnd = store.get_round("r1")
    assert rnd.status == "open" and rnd.job_id == job.id and rnd.model_a_id == setup["a"].id
    assert set(rnd.documents).isdisjoint(setup["trained_on"]) and len(rnd.documents) == 4  # 6 - 2 trained on
    blind = store.get_project(rnd.project_id)
    assert (blind.name, blind.k, blind.overlap, blind.context_fields) == ("eval-r1", 2, 2, ["passage"])
    docs = store.documents(blind.id)
    # the fields people see come along (nothing else of the source's meta: it may name a model)
    assert all(set(d.meta) == {"passage"} and d.meta["passage"].startswith("Gauge ") for d in docs)
    sides = [[c.source.split(":")[0] for c in d.candidates] for d in docs]
    assert all(sorted(s) == ["A", "B"] for s in sides)
    # the A/B order is drawn per pair from the OS's randomness: the same call twice differs (a seed
    # and the round's name, both visible to annotators, would tell them which model wrote which)
    from training.evaluation.rounds import blind_order

    assert blind_order(64) != blind_order(64) and 10 < sum(blind_order(64)) < 54

    # the annotator's view and the exports never name the model
    from training.data.exports import export_rows

    for what in ("documents", "rankings", "pairs"):
        for row in export_rows(store, blind.id, what):
            assert "policy-a" not in str(row) and setup["b_path"] not in str(row)

    ann = [store.add_annotator(n)[0] for n in ("ann", "bob")]
    for i, d in enumerate(docs):  # ann prefers A everywhere; bob prefers B on the first document
        side = {c.source[0]: c.id for c in d.candidates}
        store.save_ranking(ann[0], d.id, {side["A"]: 1, side["B"]: 2})
        if i == 0:
            store.save_ranking(ann[1], d.id, {side["A"]: 2, side["B"]: 1})
        elif i == 1:
            store.save_ranking(ann[1], d.id, {side["A"]: 1, side["B"]: 1})  # a tie
    res = round_results(store, store.get_round("r1"))
    assert res.judgments == 6 and res.wins == {"A": 4, "B": 1, "tie": 1}
    assert res.win_rate_a == pytest.approx(0.8) and res.ci95 == pytest.approx(wilson_interval(4, 5))
    assert res.documents == 4 and res.preferred_docs == {"A": 3, "B": 0, "tie": 1}  # a tie judgment is not a loss
    assert res.agreement_pairs == 2 and res.agreement == 0.0

    rnd = close_round(store, rnd.id)
    assert rnd.status == "closed" and rnd.result["preferred_docs"]["A"] == 3
    [entry] = store.get_model(setup["a"].id).metrics["eval_rounds"]
    assert entry["summary"].startswith(f"preferred to {setup['b_path']} on 3 of 4 documents (win rate 80%")
    with pytest.raises(ValidationError, match="only an open round"):
        close_round(store, rnd.id)


def test_round_with_a_judge_reports_its_verdict_and_disagreements(store, setup):
    from training.evaluation.rounds import run_round

    rnd_out = run_round(store, "news", RoundConfig(name="j", model_a=str(setup["a"].id), model_b=setup["b_path"],
                                                   max_new_tokens=4, exclude_trained=False))
    rnd = store.get_round(rnd_out["round_id"])
    assert rnd.judge == {} and rnd_out["judge_model"] is None  # no active reward model: no verdict
    # a stored verdict (as a judge reward model writes it) is compared with the people
    first, second = (str(i) for i in rnd.documents[:2])
    verdict = {first: {"A": 0.9, "B": 0.1}, second: {"A": 0.1, "B": 0.9}}
    store.conn.execute("UPDATE eval_rounds SET judge = ? WHERE id = ?", (json.dumps(verdict), rnd.id))
    rnd = store.get_round(rnd.id)
    ann, _ = store.add_annotator("cy")
    for d in store.documents(rnd.project_id)[:2]:
        side = {c.source[0]: c.id for c in d.candidates}
        store.save_ranking(ann, d.id, {side["A"]: 1, side["B"]: 2})
    res = round_results(store, rnd)
    assert res.judge == {"A": 1, "B": 1, "tie": 0} and res.judge_agrees == 0.5
    assert [x["people"] + x["judge"] for x in res.disagreements] == ["AB"]


def test_rounds_page_shows_the_live_result_and_closes_the_round(app_db, tiny_causal):
    """AppTest: an open round's win rate, judge and close button; annotators never reach the page."""
    from apptest import open_page

    from training.store import Store

    with Store(app_db.path) as s:
        s.create_project("news", kind="summarize", k=2)
        s.add_documents("news", [NewDocument(f"n{i}", f"Text {i}.", [f"a{i}", f"b{i}"]) for i in range(3)])
        m = s.add_model("policy", str(tiny_causal), name="pol-1", project="news", base_model="base-lm")
        admin = s.get_annotator(app_db.boss.id)
        src = s.documents("news")
        rnd = s.create_round("r", source_project="news", model_a=str(tiny_causal), model_b="base-lm",
                             documents=[d.id for d in src], model_a_id=m.id,
                             config={"labels": ["pol-1 <b>x</b>", "base-lm"]})
        s.open_round(rnd.id, "eval-r", "summarize", "Which is better?",
                     [NewDocument(str(d.id), d.text, ["answer a", "answer b"], sources=["A:pol-1", "B:base-lm"])
                      for d in src], judge={})
        for d in s.documents("eval-r"):
            a, b = d.candidates
            s.save_ranking(admin, d.id, {a.id: 1, b.id: 2})
    at = open_page("rounds", app_db.boss.id)
    assert not at.exception
    shown = " ".join(m.value for m in at.metric)
    assert "100%" in shown and "3" in shown  # A won all 3 judgments
    assert any("pol\\-1 \\<b\\>x\\</b\\>" in m.value for m in at.markdown)  # a label is text, not markup
    assert "no judge model" in " ".join(c.value for c in at.caption)
    # B is not registered; the label is data, so the tooltip (Markdown) gets it escaped
    assert "model card of A \\(pol\\-1 \\<b\\>x\\</b\\>\\)" in at.button(key="round_close").help
    at.button(key="round_close").click().run()
    assert not at.exception
    assert any("written to the model card of A" in m.value for m in at.success)
    with Store(app_db.path) as s:
        assert s.get_round("r").status == "closed"
        assert s.get_model(m.id).metrics["eval_rounds"][0]["preferred_on"] == 3
        # a closed round takes no more rankings, and annotators no longer find it to annotate
        ann = s.get_annotator(app_db.ann.id)
        d = s.documents("eval-r")[0]
        with pytest.raises(ValidationError, match="'r' is closed"):
            s.save_ranking(ann, d.id, {d.candidates[0].id: 2, d.candidates[1].id: 1})
    at = open_page("rounds", app_db.ann.id)
    assert not at.metric and any("admins only" in e.value for e in at.error)
    at = open_page("annotate", app_db.ann.id)
    assert "eval-r" not in at.selectbox(key="project").options and "news" in at.selectbox(key="project").options


def test_a_failed_rounds_name_can_be_used_again(store, setup):
    job = start_round(store, "news", {"name": "again", "model_a": str(setup["a"].id), "model_b": setup["b_path"]})
    rnd = store.create_round("again", source_project="news", model_a="x", model_b="y", documents=[1])
    store.update_round(rnd.id, status="failed", job_id=job.id)
    start_round(store, "news", {"name": "again", "model_a": str(setup["a"].id), "model_b": setup["b_path"]})
    again = store.create_round("again", source_project="news", model_a="x", model_b="y", documents=[1])
    assert again.status == "generating" and [r.name for r in store.list_rounds()] == ["again"]
    with pytest.raises(ValidationError, match="exists already"):  # an open or running one keeps its name
        start_round(store, "news", {"name": "again", "model_a": str(setup["a"].id), "model_b": setup["b_path"]})


def test_round_cli_start_show_close(db_path, store, setup, capsys):
    from training.cli import main

    assert main(["round", "start", "--db", db_path, "--project", "news", "--name", "c1", "--model-a",
                 str(setup["a"].id), "--model-b", setup["b_path"], "--max-new-tokens", "4"]) == 0
    assert "round queued as job" in capsys.readouterr().out
    assert run_worker(db_path, once=True) == 1
    assert main(["round", "list", "--db", db_path]) == 0 and "c1\topen" in capsys.readouterr().out
    rnd = store.get_round("c1")
    ann, _ = store.add_annotator("dee")
    d = store.documents(rnd.project_id)[0]
    side = {c.source[0]: c.id for c in d.candidates}
    store.save_ranking(ann, d.id, {side["B"]: 1, side["A"]: 2})
    assert main(["round", "show", "--db", db_path, "c1"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))  # strict: no NaN
    assert shown["wins"] == {"A": 0, "B": 1, "tie": 0} and shown["status"] == "open"
    assert shown["agreement"] is None  # one judgment: no pair to agree (NaN inside, null in JSON)
    assert main(["round", "close", "--db", db_path, "c1"]) == 0
    assert "preferred to" in capsys.readouterr().out
    assert main(["round", "close", "--db", db_path, "c1"]) == 2  # closed already: one clear line


def test_documents_longer_than_a_small_model_reads_are_cut_to_fit(store, db_path, setup):
    """The tiny models hold 512 positions: a long document's prompt is cut so that prompt and
    answer fit (it failed with an IndexError deep in generate())."""
    from transformers import AutoTokenizer

    from training.ilf.generate import build_prompt

    long = " ".join(f"The council met on day {i} and approved a new bridge over the river." for i in range(120))
    store.create_project("long", k=2)
    store.add_documents("long", [NewDocument(f"l{i}", long, [f"a{i}", f"b{i}"], title="A long title " * 5)
                                 for i in range(2)])
    job = start_round(store, "long", {"name": "big", "model_a": str(setup["a"].path), "model_b": setup["b_path"],
                                      "documents": 2, "max_new_tokens": 64}, created_by=setup["admin"].id)
    assert run_worker(db_path, once=True) == 1
    assert store.get_job(job.id).status == "done", store.get_job(job.id).error
    tok = AutoTokenizer.from_pretrained(setup["b_path"])
    doc, p = store.documents("long")[0], store.get_project("long")
    prompt = build_prompt(tok, False, "Summarize: {title}\n{text}\nTL;DR:", p, doc, 384, max_prompt_tokens=448)
    assert len(tok(prompt)["input_ids"]) <= 448 and prompt.endswith("TL;DR:")  # the text is cut, not the ending
    with pytest.raises(ValidationError, match="does not fit"):
        build_prompt(tok, False, "{title} " * 200 + "{text}", p, doc, 384, max_prompt_tokens=20)
