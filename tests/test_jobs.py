"""The jobs queue in the store, job kinds/validation, and `tokenwise jobs ...`."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from training.cli import main
from training.errors import NotFound, ValidationError
from training.jobs.kinds import KINDS, submit_job
from training.store import Store


def test_submit_claim_report_finish(store):
    job = store.submit("selftest", {"steps": 3}, created_by=None)
    assert (job.status, job.step, job.total, job.metrics, job.config) == ("queued", 0, 0, [], {"steps": 3})
    claimed = store.claim_next("w1", 123)
    assert (claimed.id, claimed.status, claimed.worker, claimed.pid) == (job.id, "running", "w1", 123)
    assert claimed.started and claimed.heartbeat
    assert store.claim_next("w2", 456) is None  # nothing else queued
    assert store.report(job.id, 1, 3, [{"step": 1, "loss": 0.9}], ["first"]) is False
    assert store.report(job.id, 2, 3, [{"step": 2, "loss": 0.5}, {"step": 2, "acc": 0.75}], ["second"]) is False
    j = store.get_job(job.id)
    assert (j.step, j.total) == (2, 3)
    assert j.metrics == [{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.5}, {"step": 2, "acc": 0.75}]
    assert j.log == "first\nsecond\n"
    assert store.finish(job.id, "done", result={"model_id": 7})
    j = store.get_job(job.id)
    assert (j.status, j.result, j.error) == ("done", {"model_id": 7}, None) and j.finished
    assert not store.finish(job.id, "failed", error="late")  # only a running job can be finished
    assert store.get_job(job.id).status == "done"
    with pytest.raises(ValidationError, match="status: 'weird'"):
        store.finish(job.id, "weird")


def test_claim_order_list_and_not_found(store, project):
    ids = [store.submit("selftest", {}, project="p").id for _ in range(3)]
    assert store.claim_next("w", 1).id == ids[0]  # oldest first
    assert [j.id for j in store.list_jobs()] == ids[::-1]  # newest first
    assert [j.id for j in store.list_jobs(status="running")] == [ids[0]]
    assert len(store.list_jobs(project="p")) == 3 and store.list_jobs(kind="reward") == []
    with pytest.raises(NotFound, match="job 999 does not exist"):
        store.get_job(999)
    with pytest.raises(NotFound, match="project 'nope'"):
        store.submit("selftest", {}, project="nope")


def test_cancel_queued_running_and_finished(store):
    a = store.submit("selftest", {})
    b = store.submit("selftest", {})
    assert store.request_cancel(b.id).status == "cancelled"  # queued: cancelled at once, never claimed
    assert store.claim_next("w", 1).id == a.id
    assert store.claim_next("w", 1) is None
    j = store.request_cancel(a.id)  # running: flagged, the worker stops it
    assert j.status == "running" and j.cancel_requested
    assert store.report(a.id, 1, 2) is True
    store.finish(a.id, "cancelled")
    with pytest.raises(ValidationError, match="already cancelled"):
        store.request_cancel(a.id)


def test_fail_stale_marks_only_old_heartbeats(store):
    old = store.submit("selftest", {})
    fresh = store.submit("selftest", {})
    store.claim_next("dead", 11)
    store.claim_next("alive", 12)
    store.conn.execute("UPDATE jobs SET heartbeat = '2000-01-01T00:00:00.000+00:00' WHERE id = ?", (old.id,))
    assert store.fail_stale(60) == [old.id]
    j = store.get_job(old.id)
    assert j.status == "failed" and "worker dead (pid 11) stopped sending heartbeats" in j.error
    assert store.get_job(fresh.id).status == "running"
    assert store.report(old.id, 5, 10) is True  # a late report changes nothing and tells it to stop
    assert store.get_job(old.id).step == 0


CLAIMER = """
import sys, time
from training.store import Store
s = Store(sys.argv[1])
got = []
while True:
    j = s.claim_next(sys.argv[2], 0)
    if j is None:
        break
    got.append(j.id)
    s.finish(j.id, "done")
print(",".join(map(str, got)))
"""


def test_claim_race_two_processes_each_job_once(db_path):
    with Store(db_path) as s:
        ids = [s.submit("selftest", {"n": i}).id for i in range(60)]
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, db_path, f"w{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    got = [int(x) for out in outs for x in out.split(",") if x]
    assert sorted(got) == ids  # every job claimed, none twice
    with Store(db_path) as s:
        assert {j.status for j in s.list_jobs(limit=100)} == {"done"}
        by_worker = {j.id: j.worker for j in s.list_jobs(limit=100)}
    for i, out in enumerate(outs):
        assert all(by_worker[int(x)] == f"w{i}" for x in out.split(",") if x)


def test_submit_job_validates_before_queueing(store, project):
    with pytest.raises(ValidationError, match="selftest config: steps: must be at least 1, got 0"):
        submit_job(store, "selftest", {"steps": 0})
    with pytest.raises(ValidationError, match="job kind: 'nope' is not one of"):
        submit_job(store, "nope", {})
    with pytest.raises(ValidationError, match="project: a generate job needs a project"):
        submit_job(store, "generate", {"model": "x"})
    with pytest.raises(ValidationError, match="generate config: num_candidates: must be at most 16"):
        submit_job(store, "generate", {"num_candidates": 17}, project="p")
    with pytest.raises(ValidationError, match="do_sample: must be true when num_candidates > 1"):
        submit_job(store, "generate", {"num_candidates": 2, "do_sample": False}, project="p")
    # every kind that fills a document prompt template checks it before queueing, not in the worker
    for kind in ("generate", "policy", "eval_round"):
        for template, says in (("{title", "not a valid template"), ("{0}", "positional placeholder"),
                               ("Answer {question}", "{question} is not a placeholder"), ("}", "Single '}'")):
            with pytest.raises(ValidationError, match=re.escape(says)):
                submit_job(store, kind, {"prompt": template}, project="p")
    assert store.list_jobs() == []
    assert submit_job(store, "policy", {"prompt": "{title}: {text} {{literal}}"}, project="p").config["prompt"]
    store.request_cancel(store.list_jobs()[0].id)
    job = submit_job(store, "selftest", {"steps": "4"})
    assert job.config == {"steps": 4, "seconds_per_step": 0.2, "fail_at_step": 0}
    assert "selftest" in KINDS and "generate" in KINDS and "reward" in KINDS


def test_cli_submit_list_show_cancel(db_path, capsys, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"steps": 2, "seconds_per_step": 0.5}))
    assert main(["init", "--db", db_path]) == 0 and capsys.readouterr()
    assert main(["jobs", "submit", "selftest", "--db", db_path, "--config", str(cfg), "--set", "steps=3"]) == 0
    job_id = int(capsys.readouterr().out.strip())
    assert main(["jobs", "show", str(job_id), "--db", db_path, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["config"] == {"steps": 3, "seconds_per_step": 0.5, "fail_at_step": 0}
    assert shown["status"] == "queued"
    assert main(["jobs", "list", "--db", db_path]) == 0
    out = capsys.readouterr().out
    assert f"{job_id}\tselftest\t-\tqueued\t0/0" in out
    assert main(["jobs", "list", "--db", db_path, "--json", "--status", "queued"]) == 0
    assert [j["id"] for j in json.loads(capsys.readouterr().out)] == [job_id]
    assert main(["jobs", "cancel", str(job_id), "--db", db_path]) == 0
    assert capsys.readouterr().out.strip() == f"job {job_id} cancelled"
    assert main(["jobs", "show", str(job_id), "--db", db_path]) == 0
    assert f"job {job_id}: selftest (cancelled)" in capsys.readouterr().out
    # refused values exit 2 with one line naming the field; nothing is queued
    assert main(["jobs", "submit", "selftest", "--db", db_path, "--set", "seconds_per_step=-1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "tokenwise: error: selftest config: seconds_per_step: must be at least 0.0, got -1.0"
    assert main(["jobs", "cancel", "99", "--db", db_path]) == 2
    assert "job 99 does not exist" in capsys.readouterr().err
    with Store(db_path) as s:
        assert len(s.list_jobs()) == 1
    assert main(["jobs", "kinds", "selftest"]) == 0
    assert "seconds_per_step (float, default 0.2): how long each step sleeps" in capsys.readouterr().out


# -- real training kinds through the worker (tiny model) ---------------------------------------
def demo_like_project(s: Store, n_docs: int = 6):
    """A small summarize project ranked by one annotator: 'faithful' above 'long' above 'off'."""
    from training.store import NewDocument

    s.create_project("mini", kind="summarize", k=3, overlap=1)
    s.add_documents("mini", [
        NewDocument(f"d{i}", f"The council met on day {i} and agreed to repair the bridge.",
                    [f"The council agreed to repair the bridge on day {i}.",
                     f"The council met on day {i}. " * 3,
                     "Scientists measured the lake temperature."], title=f"Day {i}")
        for i in range(n_docs)])
    ann, _ = s.add_annotator("alice")
    for d in s.documents("mini"):
        c = d.candidates
        s.save_ranking(ann, d.id, {c[0].id: 1, c[1].id: 2, c[2].id: 3}, seconds=4)
    return ann


def test_reward_job_trains_registers_and_scores(db_path, tiny_causal, monkeypatch, tmp_path):
    monkeypatch.setenv("TOKENWISE_MODELS", str(tmp_path / "models"))
    from training.jobs.worker import run_worker

    with Store(db_path) as s:
        demo_like_project(s)
        job = submit_job(s, "reward", {"base_model": str(tiny_causal), "epochs": 1, "batch_size": 2,
                                       "max_length": 64, "max_candidate_length": 32}, project="mini")
    assert run_worker(db_path, once=True) == 1
    with Store(db_path) as s:
        j = s.get_job(job.id)
        assert j.status == "done", j.error or j.log
        assert j.step == j.total > 0 and any("loss" in " ".join(m) for m in j.metrics)
        assert j.metrics[-1].get("phase") == "scoring candidates"  # trained, then scored: the job view says so
        m = s.get_model(j.result["model_id"])
        assert (m.kind, m.job_id, m.project_id) == ("reward", job.id, s.get_project("mini").id)
        assert str(tmp_path / "models" / f"reward-job{job.id}") in m.path
        assert 0.0 <= m.metrics["val_pairwise_accuracy"] <= 1.0
        s.update_project("mini", active_reward_model=m.id)
        score = submit_job(s, "score", {"batch_size": 6}, project="mini")  # the active model
    assert run_worker(db_path, once=True) == 1
    with Store(db_path) as s:
        j = s.get_job(score.id)
        assert j.status == "done", j.error
        assert j.result == {"model_id": m.id, "scored": 18}
        assert s.count_token_rewards(m.id) == 18


def test_generate_job_adds_candidates_that_reach_the_queue(db_path, tiny_causal):
    from training.jobs.worker import run_worker
    from training.store import NewDocument

    with Store(db_path) as s:
        s.create_project("gen", kind="summarize", k=2, overlap=1)
        s.add_documents("gen", [NewDocument(f"d{i}", f"The river rose on day {i}.", ["a", "b"], title="T")
                                for i in range(3)])
        bob, _ = s.add_annotator("bob")
        first = s.documents("gen")[0]
        s.save_ranking(bob, first.id, {first.candidates[0].id: 1, first.candidates[1].id: 2})  # complete now
        with pytest.raises(ValidationError, match="model: project 'gen' has no active policy model"):
            from training.ilf.generate import GenerateConfig, generate_candidates
            generate_candidates(s, "gen", GenerateConfig())
        job = submit_job(s, "generate", {"model": str(tiny_causal), "num_candidates": 2, "max_new_tokens": 6,
                                         "seed": 1}, project="gen")
    assert run_worker(db_path, once=True) == 1
    with Store(db_path) as s:
        j = s.get_job(job.id)
        assert j.status == "done", j.error or j.log
        assert (j.result["documents"], j.result["candidates"] + j.result["empty"]) == (2, 4)
        docs = s.documents("gen")
        assert len(docs[0].candidates) == 2  # complete document left alone (only_open)
        new = [c for d in docs[1:] for c in d.candidates if c.source != "import"]
        assert len(new) == j.result["candidates"] > 0
        assert all(c.source == str(tiny_causal) and c.gen_params["temperature"] == 0.9
                   and c.gen_params["max_new_tokens"] == 6 for c in new)
        carol, _ = s.add_annotator("carol")
        queued = s.next_document(carol, "gen")
        assert queued.id == docs[1].id and any(c.source != "import" for c in queued.candidates)


def test_cli_kinds_json_lists_every_kind_with_its_settings(capsys):
    assert main(["jobs", "kinds", "--json"]) == 0
    kinds = {k["kind"]: k for k in json.loads(capsys.readouterr().out)}
    assert set(kinds) == set(KINDS)
    self_test = {f["name"]: f for f in kinds["selftest"]["settings"]}
    assert self_test["steps"] == {"name": "steps", "type": "int", "default": 5, "help": "number of steps",
                                  "choices": None, "min": 1, "max": 100_000, "optional": False,
                                  "required": False, "hidden": False}
    assert all(k["settings"] for k in kinds.values())


def test_a_reward_job_survives_an_import_that_renumbers_its_project(db_path, monkeypatch, tmp_path):
    """An import larger than the project gives it a new id while a reward job runs: the job still
    finds its project by the id it started with, and its model becomes the project's active one."""
    from training.data.imports import import_file
    from training.jobs.worker import run_worker
    from training.rewards import trainer

    monkeypatch.setenv("TOKENWISE_MODELS", str(tmp_path / "models"))
    docs = tmp_path / "more.jsonl"
    docs.write_text("".join(json.dumps({"id": f"n{i}", "text": f"new {i}", "candidates": ["a", "b", "c"]}) + "\n"
                            for i in range(30)))

    def train_during_an_import(store, project, config, out_dir, *, progress=None, job_id=None):
        import_file(store, str(docs), project)  # 30 documents against the project's 6: a take-over
        return store.add_model("reward", str(out_dir), project=project, job_id=job_id, metrics={"acc": 1.0})

    monkeypatch.setattr(trainer, "train_reward", train_during_an_import)
    with Store(db_path) as s:
        demo_like_project(s)
        old_id = s.get_project("mini").id
        job = submit_job(s, "reward", {"epochs": 1, "score_after": False}, project="mini")
    assert run_worker(db_path, once=True) == 1
    with Store(db_path) as s:
        j, p = s.get_job(job.id), s.get_project("mini")
        assert j.status == "done", j.error or j.log
        assert p.id != old_id and s.get_project(old_id) == p and j.project_id == p.id
        assert p.active_reward_model == j.result["model_id"] and s.get_model(p.active_reward_model).project_id == p.id
        assert s.count_documents("mini") == 36


def test_a_hub_model_from_the_dashboard_must_be_in_this_servers_cache(tmp_path, monkeypatch):
    """A Hugging Face id given on the dashboard is taken from the local cache when it is there, and
    refused at Start (naming the cache) when it is not; a folder must exist in the data folder."""
    import huggingface_hub.constants

    from training.jobs.kinds import confine_paths, get_kind

    cache = tmp_path / "hub"
    snap = cache / "models--acme--tiny-rm" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (cache / "models--acme--tiny-rm" / "refs").mkdir()
    (cache / "models--acme--tiny-rm" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    data, models = tmp_path / "data", tmp_path / "models"
    data.mkdir()
    kind = get_kind("reward")
    assert confine_paths(kind, {"base_model": "acme/tiny-rm"}, data, models)["base_model"] == "acme/tiny-rm"
    assert confine_paths(kind, {"base_model": "minilm"}, data, models)["base_model"] == "minilm"  # an alias
    with pytest.raises(ValidationError, match="nor a model in this server's Hugging Face cache"):
        confine_paths(kind, {"base_model": "acme/other"}, data, models)
    with pytest.raises(ValidationError, match="'rm/here' is not a folder in the data folder"):
        confine_paths(kind, {"base_model": "rm/here"}, data, models)
    (data / "rm" / "here").mkdir(parents=True)  # a folder of that name wins over the hub id
    assert confine_paths(kind, {"base_model": "rm/here"}, data, models)["base_model"] == str((data / "rm/here").resolve())
