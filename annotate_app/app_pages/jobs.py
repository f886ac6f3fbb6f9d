"""Training (admin): start a job with its form, follow the running one live, read logs, cancel.

Jobs run in the worker process (`tokenwise worker`, started by `tokenwise serve`); this page only
queues them and reads their rows. The live part refreshes itself with st.fragment(run_every=...)
only while a job is queued or running.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from annotate_app import training_ui as tui
from annotate_app import ui
from training.errors import TokenwiseError
from training.jobs.kinds import KINDS, kind_fields, submit_job

user = ui.require_admin()
st.title("Training")

REFRESH_S = 2.0

# 1. start a job ------------------------------------------------------------------------------
st.subheader("Start a job")
names = list(KINDS)
kind = st.selectbox("Job kind", names, format_func=lambda n: KINDS[n].title, key="job_kind")
k = KINDS[kind]
st.caption(k.description)
if not k.available():
    st.warning(f"'{k.title}' is not available in this installation yet.")
else:
    project = ui.pick_project(key="job_project") if k.needs_project else None
    if not k.needs_project or project is not None:
        with st.form(f"job_form_{kind}"):
            values = tui.config_widgets(kind_fields(kind), prefix=f"job.{kind}")
            submitted = st.form_submit_button("Start", type="primary", icon=":material/play_arrow:")
        if submitted:
            try:
                with ui.store() as s:
                    job = submit_job(s, kind, values, project=project.id if project else None,
                                     created_by=user.id)
            except TokenwiseError as e:
                st.error(str(e))
            else:
                st.success(f"Job #{job.id} ({k.title}) queued. A worker picks it up; follow it below.")

# 2. what runs now (live) ---------------------------------------------------------------------
with ui.store() as s:
    active = s.list_jobs(status="running") + s.list_jobs(status="queued")


@st.fragment(run_every=REFRESH_S if active else None)
def live() -> None:
    with ui.store() as s:
        running = s.list_jobs(status="running")
        queued = s.list_jobs(status="queued")
        projects = {p.id: p.name for p in s.list_projects()}
    if active and not running and not queued:
        st.rerun()  # the last job ended: redraw the page (and stop refreshing)
    st.subheader("Running now")
    if not running:
        st.caption("No job is running." + (f" {len(queued)} queued." if queued else ""))
        if queued:
            st.info("Jobs are waiting: is a worker running? Start one with "
                    f"`tokenwise worker --db {ui.db_path()}` (tokenwise serve starts one).")
    for job in running:
        frac = job.step / job.total if job.total else 0.0
        with st.status(tui.job_label(job, projects), state="running", expanded=True):
            st.progress(min(max(frac, 0.0), 1.0), text=f"step {job.step} of {job.total or '?'}")
            st.caption(f"worker {job.worker} · started {job.started} · heartbeat {job.heartbeat}")
            tui.metric_charts(job.metrics, key=f"live-{job.id}")
            tail = "\n".join(job.log.rstrip("\n").splitlines()[-8:])
            if tail:
                st.code(tail, language=None, wrap_lines=True)
            if job.cancel_requested:
                st.caption("Cancel requested: it stops at its next step.")
            elif st.button("Cancel", key=f"cancel-live-{job.id}", icon=":material/stop:"):
                with ui.store() as s:
                    s.request_cancel(job.id)
                st.rerun()
    if queued:
        st.caption("Queued: " + ", ".join(tui.job_label(j, projects) for j in reversed(queued)))


live()

# 3. every job, and one in detail -------------------------------------------------------------
st.subheader("Jobs")
with ui.store() as s:
    jobs = s.list_jobs(limit=200)
    projects = {p.id: p.name for p in s.list_projects()}
if not jobs:
    st.info("No job yet: start one above.")
    st.stop()
table = pd.DataFrame([{
    "id": j.id, "kind": j.kind, "project": projects.get(j.project_id, ""), "status": j.status,
    "progress": f"{j.step}/{j.total}", "created": j.created, "finished": j.finished or "",
    "error": j.error or "",
} for j in jobs])
st.dataframe(table, hide_index=True, width="stretch")

ids = [j.id for j in jobs]
by_id = {j.id: j for j in jobs}
chosen = st.selectbox("Show job", ids, format_func=lambda i: tui.job_label(by_id[i], projects, status=False),
                      key="job_detail")
job = by_id[chosen]
c = st.columns(4)
c[0].metric("Status", job.status)
c[1].metric("Step", f"{job.step}/{job.total}")
c[2].metric("Started", (job.started or "-")[11:19] or "-")
c[3].metric("Finished", (job.finished or "-")[11:19] or "-")
if job.error:
    st.error(f"Job #{job.id} failed: {job.error}" if job.status == "failed" else job.error)
cancellable = job.status in ("queued", "running") and not job.cancel_requested
if cancellable and st.button("Cancel this job", key=f"cancel-{job.id}", icon=":material/stop:"):
    with ui.store() as s:
        s.request_cancel(job.id)
    st.rerun()
if job.status == "running":
    st.caption("This job is running: the live view above follows it.")
else:
    tui.metric_charts(job.metrics, key=f"detail-{job.id}")
with st.expander("Settings and result", expanded=False):
    st.code(json.dumps({"config": job.config, "result": job.result}, indent=2, default=str), language="json")
with st.expander("Log", expanded=job.status == "failed"):
    st.code(job.log or "(empty)", language=None, wrap_lines=True)
