"""The whole loop through the job queue, with tiny models: import, rank and critique, train the
reward model, score, train a policy with it, ILF refine/select/build + SFT, generate new candidates with the finetuned
model, and find them in an annotator's queue."""

from __future__ import annotations

import json

from training.data.imports import import_file
from training.jobs.kinds import submit_job
from training.jobs.worker import run_worker
from training.store import Store


def run(db_path: str, kind: str, config: dict, project: str = "loop"):
    with Store(db_path) as s:
        job = submit_job(s, kind, config, project=project)
    assert run_worker(db_path, once=True) == 1
    with Store(db_path) as s:
        j = s.get_job(job.id)
    assert j.status == "done", f"{kind}: {j.error}\n{j.log}"
    return j


def test_full_loop(db_path, tiny_causal, tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENWISE_MODELS", str(tmp_path / "models"))
    tiny = str(tiny_causal)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps({
        "id": f"n{i}", "title": f"Bridge {i}",
        "text": f"On day {i} the council voted to repair the old bridge, which will reopen in spring.",
        "candidates": [f"The council will repair the bridge; it reopens in spring (day {i}).",
                       f"On day {i} the council voted. " * 3,
                       "A recipe for lemon cake."]}) for i in range(6)) + "\n")

    # 1. import, rank, critique (through the store, as the Annotate page does)
    with Store(db_path) as s:
        s.create_project("loop", kind="summarize", k=3, overlap=2)
        assert import_file(s, docs, "loop").documents == 6
        admin, _ = s.add_annotator("root", role="admin")
        people = [s.add_annotator(n)[0] for n in ("alice", "bob")]
        for d in s.documents("loop")[:4]:  # n4, n5 stay open (below the overlap)
            c = d.candidates
            for a in people:
                s.save_ranking(a, d.id, {c[0].id: 1, c[1].id: 2, c[2].id: 3}, seconds=3)
            s.save_critique(people[0], c[1].id, "Too long and repetitive: say what was decided and when it reopens.")

    # 2. reward model, then scores with it as the active model
    j = run(db_path, "reward", {"base_model": tiny, "epochs": 1, "batch_size": 2, "max_length": 64,
                                "max_candidate_length": 32})
    rm_id = j.result["model_id"]
    with Store(db_path) as s:
        s.update_project("loop", active_reward_model=rm_id)
    j = run(db_path, "score", {"batch_size": 9})
    assert j.result["scored"] == 18
    j = run(db_path, "policy", {"base_model": tiny, "method": "reinforce", "steps": 2, "batch_size": 2,
                                "max_new_tokens": 6, "max_prompt_length": 48})
    with Store(db_path) as s:
        assert s.get_model(j.result["model_id"]).kind == "policy"

    # 3. ILF: refine with the tiny LM, select with the reward model, a reviewer accepts
    j = run(db_path, "ilf_refine", {"model": tiny, "n": 2, "baseline_n": 0, "max_new_tokens": 8})
    assert j.result["samples"] == 8  # the tiny LM writes some stubs, which are dropped and counted
    assert j.result["refinements"] + sum(j.result["dropped"].values()) == 8 and j.result["refinements"] >= 4
    j = run(db_path, "ilf_select", {"selector": "reward"})
    assert j.result["critiques"] == 4
    with Store(db_path) as s:
        for it in s.critique_items("loop"):
            assert it.selected is not None
            s.accept_refinement(admin, it.selected.id)

    # 4. SFT on the accepted refinements (the job builds the dataset), then make it the policy
    j = run(db_path, "sft", {"base": tiny, "max_steps": 2, "batch_size": 2, "eval_fraction": 0.25})
    policy_id = j.result["model_id"]
    with Store(db_path) as s:
        m = s.get_model(policy_id)
        assert m.kind == "ilf" and m.job_id == j.id
        s.update_project("loop", active_policy_model=policy_id)

    # 5. generate with the active policy: new candidates reach the open documents' queue
    j = run(db_path, "generate", {"num_candidates": 2, "max_new_tokens": 6})
    assert j.result["documents"] == 2 and j.result["model_id"] == policy_id
    with Store(db_path) as s:
        carol, _ = s.add_annotator("carol")
        doc = s.next_document(carol, "loop")
        assert doc.ext_id == "n4"
        new = [c for c in doc.candidates if c.source != "import"]
        assert new and all(c.gen_params["model_id"] == policy_id for c in new)
        assert s.scalar("PRAGMA integrity_check") == "ok"
        assert [x.status for x in s.list_jobs()] == ["done"] * 7
