"""Evaluation rounds (admin): is the trained model better? Two models answer the same held-out
documents, annotators rank each pair blind, and the win rate comes in live beside the judge model.

Starting a round queues an `eval_round` job (training/evaluation/rounds.py); the worker writes
both answers into a blind K=2 project `eval-<name>` that annotators find on their Annotate page.
Closing the round writes the verdict to both models' cards.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from annotate_app import ui
from annotate_app.widgets import escape_markdown
from training.errors import TokenwiseError
from training.evaluation.rounds import card_note, close_round, round_results, start_round

user = ui.require_admin()
st.title("Evaluation rounds")
st.caption("Two models answer the same documents that neither was trained on; annotators rank each pair "
           "without knowing which model wrote what. The result is written to both models' cards.")

REFRESH_S = 5.0

# 1. start a round ------------------------------------------------------------------------------
with st.expander("Start a round", expanded=False):
    project = ui.pick_project("Documents from project", key="round_project")
    if project is not None:
        with ui.store() as s:
            models = [m for m in s.list_models(project=project.id) if m.kind in ("policy", "ilf")]
            judges = [m for m in s.list_models(project=project.id) if m.kind == "reward"]
        choices = {"": "(default)"} | {str(m.id): f"#{m.id} {m.name or m.kind} ({m.kind})" for m in models}
        with st.form("round_form"):
            name = st.text_input("Round name", max_chars=80,
                                 help="Annotators see the round as the project eval-<name>: keep the "
                                      "models' names out of it, or the round is not blind.")
            c1, c2 = st.columns(2)
            a = c1.selectbox("Model A", list(choices), format_func=choices.get,
                             help="empty = the project's active policy")
            a_free = c1.text_input("…or a model folder / name for A", key="round_a_free")
            b = c2.selectbox("Model B", list(choices), format_func=choices.get,
                             help="empty = the base model A was trained from")
            b_free = c2.text_input("…or a model folder / name for B (e.g. smollm2)", key="round_b_free")
            c3, c4, c5 = st.columns(3)
            n_docs = c3.number_input("Documents", min_value=1, max_value=100_000, value=20)
            overlap = c4.number_input("Annotators per pair", min_value=1, max_value=100, value=1)
            judge_opts = {"": "(the active reward model)"} | {str(m.id): f"#{m.id} {m.name or 'reward'}" for m in judges}
            judge = c5.selectbox("Judge", list(judge_opts), format_func=judge_opts.get)
            submitted = st.form_submit_button("Start the round", type="primary", icon=":material/play_arrow:")
        if submitted:
            values = {"name": name, "model_a": a_free.strip() or a, "model_b": b_free.strip() or b,
                      "documents": int(n_docs), "overlap": int(overlap)}
            if judge:
                values["judge_model"] = int(judge)
            try:
                with ui.store() as s:
                    job = start_round(s, project.id, values, created_by=user.id, data_root=ui.data_root())
            except TokenwiseError as e:
                ui.show_error(e)
            else:
                st.success(f"Round queued as job #{job.id}: the worker writes both models' answers, then the "
                           "blind project opens for annotators.")

# 2. the rounds, live -----------------------------------------------------------------------------
with ui.store() as s:
    rounds = s.list_rounds()
if not rounds:
    st.info("No evaluation round yet. Train a policy (Training page), then start a round above: by default it "
            "compares the project's active policy with the model it was trained from.")
    st.stop()

labels = {r.id: f"{r.name} ({r.status})" for r in rounds}
chosen = st.selectbox("Round", list(labels), format_func=labels.get, key="round_pick")
live_needed = any(r.status in ("generating", "open") for r in rounds)


def pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.0%}"


@ui.fragment("admin", run_every=REFRESH_S if live_needed else None)
def show_round() -> None:
    with ui.store() as s:
        rnd = s.get_round(chosen)
        res = round_results(s, rnd)
        job = s.get_job(rnd.job_id) if rnd.job_id else None
        blind = s.get_project(rnd.project_id).name if rnd.project_id else None
    la, lb = (rnd.config.get("labels") or [rnd.model_a, rnd.model_b])[:2]
    st.markdown(f"**A** = {escape_markdown(la)} · **B** = {escape_markdown(lb)}")
    if rnd.status == "generating":
        step = f" (step {job.step} of {job.total})" if job and job.total else ""
        st.info(f"The models are answering {len(rnd.documents)} documents{step}. The round opens when they are done.")
        return
    if rnd.status == "failed":
        st.error("The round's job failed: " + (escape_markdown(job.error) if job and job.error else "see the Training page"))
        return
    st.caption(f"Annotators rank the pairs in project {escape_markdown(blind or '?')}. "
               f"{len(rnd.documents)} documents, {res.documents} with at least one judgment.")
    c = st.columns(4)
    lo, hi = res.ci95
    c[0].metric("A's win rate", pct(res.win_rate_a),
                help="A's wins over the judgments that were not ties, with the 95% Wilson interval")
    c[0].caption(f"95% {pct(lo)}–{pct(hi)}")
    c[1].metric("Judgments", res.judgments, help="current rankings of the pairs")
    c[1].caption(f"A {res.wins['A']} · B {res.wins['B']} · tie {res.wins['tie']}")
    c[2].metric("Annotator agreement", pct(res.agreement),
                help="share of pairs of annotators who judged one document the same way")
    c[2].caption(f"{res.agreement_pairs} pairs of judgments")
    c[3].metric("Judge agrees with people", pct(res.judge_agrees),
                help="the judge reward model's verdict against the people's majority, where they had one")
    c[3].caption(f"judge: A {res.judge['A']} · B {res.judge['B']}" if sum(res.judge.values())
                 else "the judge waits for the people's judgments" if rnd.judge else "no judge model")
    st.markdown(f"Documents won (majority): **A {res.preferred_docs['A']}**, **B {res.preferred_docs['B']}**, "
                f"tied {res.preferred_docs['tie']}.")
    if res.disagreements:
        st.markdown("**Where the judge and the people disagree**")
        ui.table(pd.DataFrame(res.disagreements))
    if rnd.status == "closed":
        st.success("Closed: " + escape_markdown(rnd.result.get("summary", "")) + f"; {escape_markdown(card_note(rnd))}.")


show_round()

with ui.store() as s:
    rnd = s.get_round(chosen)
if rnd.status == "open" and st.button("Close the round", key="round_close", icon=":material/verified:",
                                      help=f"Annotators stop ranking its pairs; the result is {escape_markdown(card_note(rnd))}."):
    try:
        ui.check("admin")
        with ui.store() as s:
            closed = close_round(s, rnd.id)
    except TokenwiseError as e:
        ui.show_error(e)
    else:
        st.success("Closed: " + escape_markdown(closed.result.get("summary", "")))
        st.rerun()
