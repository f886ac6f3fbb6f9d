"""Training, Models and Overview pages through Streamlit's AppTest on a temporary database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from apptest import open_page as page
from streamlit.testing.v1 import AppTest

from training.annotation.overview import next_steps, project_summary, usable_pairs
from training.jobs.kinds import submit_job
from training.jobs.worker import run_worker
from training.store import NewDocument, Store

PAGES = Path(__file__).resolve().parents[1] / "annotate_app" / "app_pages"


@pytest.fixture
def jobs_db(db_path, monkeypatch):
    monkeypatch.setenv("TOKENWISE_DB", db_path)
    monkeypatch.setenv("TOKENWISE_MODELS", str(Path(db_path).parent / "models"))
    with Store(db_path) as s:
        root, _ = s.add_annotator("root", role="admin")
        ann, _ = s.add_annotator("ann")
        s.create_project("news", kind="summarize", k=3, overlap=1)
        s.add_documents("news", [
            NewDocument(f"d{i}", f"Document {i} about the river.", [f"good {i}", f"fair {i}", f"bad {i}"], title=f"T{i}")
            for i in range(4)])
    return db_path, root, ann


def texts(at: AppTest, kind: str) -> list[str]:
    """What the browser shows: stored text is Markdown-escaped on the page (backslashes dropped here)."""
    return [re.sub(r"\\(.)", r"\1", str(e.value)) for e in getattr(at, kind)]


def rank_all(s: Store, annotator, n: int) -> None:
    for d in s.documents("news")[:n]:
        c = d.candidates
        s.save_ranking(annotator, d.id, {c[0].id: 1, c[1].id: 2, c[2].id: 3}, seconds=5)


@pytest.mark.parametrize("name", ["jobs", "models", "overview"])
def test_pages_refuse_annotators(jobs_db, name):
    db_path, _, ann = jobs_db
    with Store(db_path) as s:
        submit_job(s, "selftest", {"steps": 1})
    at = page(name, ann.id)
    assert not at.exception
    assert any("admins only" in e for e in texts(at, "error"))
    assert len(at.dataframe) == 0 and len(at.metric) == 0 and len(at.selectbox) == 0 and len(at.button) == 0
    assert all("news" not in m and "selftest" not in m for m in texts(at, "markdown") + texts(at, "caption"))


def start(at: AppTest) -> AppTest:
    return at.button(key="job_start").click().run()


def test_training_page_refuses_a_bad_value_then_queues_and_shows_the_job(jobs_db):
    db_path, root, _ = jobs_db
    at = page("jobs", root.id)
    assert not at.exception
    assert any("No job yet" in i for i in texts(at, "info"))
    at = at.selectbox(key="job_kind").set_value("selftest").run()
    labels = [w.label for w in at.number_input] + [w.label for w in at.text_input]
    assert {"steps", "seconds_per_step", "fail_at_step"} <= set(labels)
    assert at.number_input(key="job.selftest.standard.steps").help == "number of steps"
    at.number_input(key="job.selftest.standard.steps").set_value(0)
    at = start(at)
    assert not at.exception
    assert any("selftest config: steps: must be at least 1, got 0" in e for e in texts(at, "error"))
    with Store(db_path) as s:
        assert s.list_jobs() == []  # refused before queueing
    at.number_input(key="job.selftest.standard.steps").set_value(3)
    at.text_input(key="job.selftest.standard.seconds_per_step").set_value("0")
    at = start(at)
    assert any("queued" in m for m in texts(at, "success"))
    with Store(db_path) as s:
        (job,) = s.list_jobs()
        assert (job.kind, job.config["steps"], job.created_by) == ("selftest", 3, root.id)
    assert not any("is a worker running" in i for i in texts(at, "info"))  # just queued: a worker takes a second
    with Store(db_path) as s:  # nobody took it for a while: ask whether a worker runs
        s.conn.execute("UPDATE jobs SET created = '2020-01-01T00:00:00.000+00:00' WHERE id = ?", (job.id,))
    at = page("jobs", root.id)
    assert any("is a worker running" in i for i in texts(at, "info"))
    assert run_worker(db_path, once=True) == 1
    at = page("jobs", root.id)
    assert not at.exception
    assert at.dataframe[0].value["status"].tolist() == ["done"]
    assert any(m.label == "Status" and m.value == "done" for m in at.metric)
    assert len(at.get("plotly_chart")) >= 1  # the elapsed_s curve


def test_training_page_follows_a_running_job_and_cancels_it(jobs_db):
    db_path, root, _ = jobs_db
    with Store(db_path) as s:
        job = submit_job(s, "selftest", {"steps": 10})
        s.claim_next("test-worker", 1)
        s.report(job.id, 4, 10, [{"step": i, "loss": 1.0 / i} for i in range(1, 5)], ["step four"])
    at = page("jobs", root.id)
    assert not at.exception
    assert any("step 4 of 10" in p.proto.text for p in at.get("progress"))
    assert any("step four" in c for c in texts(at, "code"))
    assert len(at.get("plotly_chart")) >= 1
    at = at.button(key=f"cancel-live-{job.id}").click().run()
    assert not at.exception
    with Store(db_path) as s:
        assert s.get_job(job.id).cancel_requested
        assert s.report(job.id, 5, 10) is True  # what the worker sees at its next step


def test_training_page_shows_a_failed_job_with_its_error_and_log(jobs_db):
    db_path, root, _ = jobs_db
    with Store(db_path) as s:
        submit_job(s, "selftest", {"steps": 3, "seconds_per_step": 0, "fail_at_step": 2})
    run_worker(db_path, once=True)
    at = page("jobs", root.id)
    assert not at.exception
    assert any("failed: RuntimeError: selftest: failing at step 2" in e for e in texts(at, "error"))
    assert any("Traceback" in c for c in texts(at, "code"))


def test_models_page_card_compare_and_make_active(jobs_db):
    db_path, root, _ = jobs_db
    with Store(db_path) as s:
        a = s.add_model("reward", "/m/a", base_model="tiny", project="news", name="news-reward-avg",
                        data_snapshot={"n_lists": 4, "annotators": ["ann"], "sha256": "ab" * 32},
                        metrics={"val_pairwise_accuracy": 0.75, "val_kendall_tau": 0.5},
                        card={"config": {"aggregation": "avg"}})
        b = s.add_model("reward", "/m/b", base_model="tiny", project="news", name="news-reward-sum",
                        metrics={"val_pairwise_accuracy": 0.625, "val_kendall_tau": 0.25},
                        card={"config": {"aggregation": "sum"}})
        pol = s.add_model("policy", "/m/p", base_model="tiny", project="news", name="news-policy")
    at = page("models", root.id)
    assert not at.exception
    assert sorted(at.dataframe[0].value["id"].tolist()) == [a.id, b.id, pol.id]
    cmp = at.dataframe[-1].value
    assert list(cmp.columns) == ["metric", f"#{b.id}", f"#{a.id}"]  # newest first in A
    assert cmp.set_index("metric").loc["val_pairwise_accuracy"].tolist() == [0.625, 0.75]
    assert any("aggregation: 'sum' vs 'avg'" in c for c in texts(at, "caption"))
    at = at.selectbox(key="model_detail").set_value(a.id).run()
    at = at.button(key="make-reward").click().run()
    assert not at.exception
    with Store(db_path) as s:
        assert s.get_project("news").active_reward_model == a.id
    assert any("active reward model" in m for m in texts(at, "success"))
    at = at.selectbox(key="model_detail").set_value(pol.id).run()
    at = at.button(key="make-policy").click().run()
    with Store(db_path) as s:
        p = s.get_project("news")
        assert (p.active_reward_model, p.active_policy_model) == (a.id, pol.id)


def test_models_page_without_models(jobs_db):
    _, root, _ = jobs_db
    at = page("models", root.id)
    assert not at.exception
    assert any("No model is registered for news" in i for i in texts(at, "info"))


def test_overview_counts_and_next_steps(jobs_db):
    db_path, root, ann = jobs_db
    at = page("overview", root.id)
    assert not at.exception
    assert any("0 usable ranking(s)" in m for m in texts(at, "markdown"))
    with Store(db_path) as s:
        rank_all(s, ann, 3)
    at = page("overview", root.id)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Rankings"], metrics["Usable rankings"], metrics["Ordered pairs"]) == ("3", "3", "9")
    assert any("no reward model yet: start one on the Training page" in m for m in texts(at, "markdown"))
    assert len(at.get("plotly_chart")) == 1
    with Store(db_path) as s:
        s.add_model("reward", "/m/a", project="news", metrics={"val_pairwise_accuracy": 0.8})
        rank_all(s, root, 2)  # two more rankings after the model
    at = page("overview", root.id)
    assert not at.exception
    md = texts(at, "markdown")
    assert any("2 new ranking(s) since the reward model was trained" in m for m in md)
    assert any("no active reward model: mark one active on the Models page" in m for m in md)


def test_usable_pairs_and_summary(store, project):
    assert usable_pairs([[1], [2], [3]]) == 3
    assert usable_pairs([[1, 2], [3]]) == 2  # the tie is dropped
    assert usable_pairs([[1, 2, 3]]) == 0
    s = project_summary(store, "p")
    assert (s.documents, s.rankings, s.pairs, s.critiques, s.reward_models) == (3, 0, 0, 0, [])
    assert next_steps(s)[0].startswith("0 usable ranking(s)")


def test_training_page_reward_form_from_the_config_dataclass(jobs_db):
    db_path, root, _ = jobs_db
    at = page("jobs", root.id)
    at = at.selectbox(key="job_kind").set_value("reward").run()
    assert not at.exception
    agg = at.selectbox(key="job.reward.standard.aggregation")
    assert agg.options == ["sum", "avg", "max", "min"] and agg.value == "avg"
    assert at.text_input(key="job.reward.standard.lr").value == "5e-05"
    assert "learning rate" in at.text_input(key="job.reward.standard.lr").help
    at.text_input(key="job.reward.standard.lr").set_value("-1")
    at = at.button(key="job_start").click().run()
    assert any(e.startswith("reward config: lr: must be positive") for e in texts(at, "error"))
    at.text_input(key="job.reward.standard.lr").set_value("1e-4")
    at = at.selectbox(key="job_backbone.reward").set_value("other: a folder or a model id…").run()
    at.text_input(key="job_backbone_other.reward").set_value("/models/tiny")  # outside the data folder
    at = at.button(key="job_start").click().run()
    assert any(e.startswith("base_model: from the dashboard, paths must be inside the data folder")
               for e in texts(at, "error"))
    at.text_input(key="job_backbone_other.reward").set_value("distilroberta-base")  # a hub id, not downloaded
    at = at.button(key="job_start").click().run()
    assert any("'distilroberta-base' is not a folder in the data folder" in e and "Hugging Face cache" in e
               for e in texts(at, "error"))  # said at Start, not by a failing job
    at.text_input(key="job_backbone_other.reward").set_value("models/tiny")  # taken inside the data folder
    at = at.button(key="job_start").click().run()
    assert any("'models/tiny' is not a folder in the data folder" in e for e in texts(at, "error"))
    (Path(db_path).resolve().parent / "models" / "tiny").mkdir(parents=True)
    at.selectbox(key="job.reward.standard.aggregation").set_value("max")
    at = at.button(key="job_start").click().run()
    assert not at.exception
    with Store(db_path) as s:
        (job,) = s.list_jobs()
        assert (job.kind, job.project_id) == ("reward", s.get_project("news").id)
        assert (job.config["lr"], job.config["aggregation"], job.config["base_model"]) == (
            1e-4, "max", str(Path(db_path).resolve().parent / "models" / "tiny"))


def test_training_short_form_preset_fills_advanced_and_starts(jobs_db):
    db_path, root, _ = jobs_db
    at = page("jobs", root.id)
    assert at.radio(key="job_preset.reward").value == "standard"
    assert at.selectbox(key="job_backbone.reward").value == "minilm"
    captions = texts(at, "caption")  # the presets are spelled out
    assert any("quick**: epochs=1, max_steps=40, max_length=256; **standard**: the defaults; **thorough**: "
               "epochs=8, patience=3, refit=True." in c for c in captions), captions
    at = at.radio(key="job_preset.reward").set_value("quick").run()
    assert at.number_input(key="job.reward.quick.epochs").value == 1  # Advanced, prefilled
    assert at.number_input(key="job.reward.quick.max_steps").value == 40
    at = at.button(key="job_start").click().run()
    assert not at.exception
    with Store(db_path) as s:
        (job,) = s.list_jobs()
        assert (job.config["epochs"], job.config["max_steps"], job.config["base_model"]) == (1, 40, "minilm")
        assert job.config["lr"] == 5e-5  # the rest: the defaults
    table = at.dataframe[0].value
    assert table["status"].tolist() == ["queued"] and table["progress"].tolist() == ["not started"]


def test_ilf_select_form_defaults_to_the_best_measured_selector(jobs_db):
    """bench/ilf_quality.py measured PMI best (0.85 of 300 QA-Feedback pairs); the form starts on it."""
    _, root, _ = jobs_db
    at = page("jobs", root.id)
    at = at.selectbox(key="job_kind").set_value("ilf_select").run()
    assert not at.exception
    sel = next(w for w in at.selectbox if w.key and w.key.endswith(".selector"))
    assert sel.value == "pmi" and sel.options[0] == "pmi" and "best measured" in sel.help


def test_the_progress_text_names_a_phase_after_training():
    """A reward job trains, then scores every candidate: the job view says which it is doing."""
    from types import SimpleNamespace

    from annotate_app.training_ui import metrics_frame, step_text

    def job(step, total, metrics, status="running"):
        return SimpleNamespace(step=step, total=total, metrics=metrics, status=status)

    training = [{"step": 3, "loss": 0.5}]
    assert step_text(job(3, 4, training)) == "step 3 of 4"
    scoring = training + [{"step": 228, "phase": "scoring candidates"}]
    assert step_text(job(228, 784, scoring)) == "scoring candidates: 228 of 784"
    assert step_text(job(0, 0, [], "queued")) == "not started"
    assert metrics_frame(scoring)["metric"].tolist() == ["loss"]  # a phase is no chart
