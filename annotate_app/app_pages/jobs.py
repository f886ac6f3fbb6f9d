"""Training (admin): the running job live at the top, a short form to start one, every job below.

The short form asks for the job kind, the project, the backbone and a preset (quick / standard /
thorough: real config values per kind, training.jobs.presets, listed in the caption); every other
setting is under "Advanced", prefilled with the preset's values. Jobs run in the worker process
(`tokenwise worker`, started by `tokenwise serve`); this page only queues them and reads their rows.
The live view is a fragment (ui.fragment re-checks the admin on every refresh) that refreshes in
place while a job is queued or running; when a job starts or ends the page redraws (the jobs table
and detail with it), and once none is left it stops refreshing. Paths in a job's settings must lie inside the data folder.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import streamlit as st

from annotate_app import training_ui as tui
from annotate_app import ui
from annotate_app.widgets import escape_markdown, when
from training.errors import TokenwiseError
from training.jobs.kinds import KINDS, kind_fields, submit_job
from training.jobs.presets import BACKBONE, describe_preset, preset_values, presets_of
from training.lm import ALIASES

user = ui.require_admin()
st.title("Training")

REFRESH_S = 2.0
LATEST = 0  # "Show job" option: the running job, else the newest
OTHER = "other: a folder or a model id…"
live_slot = st.container()  # the running job, at the top: drawn once the form below has run

# 1. start a job: the short form -------------------------------------------------------------
st.subheader("Start a job")
kind_col, project_col, backbone_col, preset_col = st.columns([1.2, 1, 1, 1.2], vertical_alignment="bottom")
kind = kind_col.selectbox("Job kind", list(KINDS), format_func=lambda n: KINDS[n].title, key="job_kind")
k = KINDS[kind]
specs = kind_fields(kind)
with project_col:
    project = ui.pick_project(key="job_project") if k.needs_project else None
backbone = None
if kind in BACKBONE:
    field_help = next(s.help for s in specs if s.name == BACKBONE[kind])
    default = next(s.default for s in specs if s.name == BACKBONE[kind]) or ""
    options = [default] + [a for a in ALIASES if a != default] + [OTHER]
    backbone = backbone_col.selectbox(
        "Backbone", options, format_func=lambda o: o or "default", key=f"job_backbone.{kind}",
        help=f"The model the job starts from ({BACKBONE[kind]}). 'default': {field_help}")
    if backbone == OTHER:
        backbone = st.text_input("Backbone: a folder inside the data folder, or a registry id",
                                 key=f"job_backbone_other.{kind}")
choices = presets_of(kind)
preset = preset_col.radio("Preset", choices, index=choices.index("standard"), horizontal=True,
                          key=f"job_preset.{kind}")
st.caption(escape_markdown(k.description) + " Presets: "
           + "; ".join(f"**{p}**: {escape_markdown(describe_preset(kind, p))}" for p in choices) + ".")
if k.paths:
    st.caption(f"Paths ({', '.join(name for name, _ in k.paths)}) are taken inside the data folder "
               f"{escape_markdown(str(ui.data_root()))}.")
preset_set = preset_values(kind, preset)
with st.expander("Advanced: every setting (prefilled with the preset)"):
    shown = [dataclasses.replace(s, default=preset_set.get(s.name, s.default))
             for s in specs if s.name != BACKBONE.get(kind)]
    values = tui.config_widgets(shown, prefix=f"job.{kind}.{preset}")
if backbone is not None:
    values[BACKBONE[kind]] = backbone
start = st.button("Start", type="primary", icon=":material/play_arrow:", key="job_start",
                  disabled=k.needs_project and project is None)
if start:
    try:
        with ui.store() as s:
            job = submit_job(s, kind, values, project=project.id if project else None,
                             created_by=user.id, data_root=ui.data_root())
    except TokenwiseError as e:
        ui.show_error(e)
    else:
        st.success(f"Job #{job.id} ({k.title}, {preset}) queued. A worker picks it up; it shows at the top.")

# 2. what runs now (live, at the top) ---------------------------------------------------------
with ui.store() as s:
    active = s.list_jobs(status="running") + s.list_jobs(status="queued")
refresh = REFRESH_S if active else None
drawn = sorted((j.id, j.status) for j in active)  # what the page below was drawn with


@ui.fragment("admin", run_every=refresh)
def live() -> None:
    with ui.store() as s:
        running = s.list_jobs(status="running")
        queued = s.list_jobs(status="queued")
        projects = {p.id: p.name for p in s.list_projects()}
    if active and sorted((j.id, j.status) for j in running + queued) != drawn:
        st.rerun()  # a job started or ended: redraw the page (its table, its detail); none left: stop refreshing
    if not running:
        st.caption("No job is running." + (f" {len(queued)} queued." if queued else ""))
        if queued and tui.waited_s(queued) > tui.WORKER_LATE_S:  # a worker polls every second or so
            st.info("Jobs are waiting: is a worker running? Start one with "
                    f"`tokenwise worker --db {ui.db_path()}` (tokenwise serve starts one).")
    for job in running:
        with st.container(border=True):
            st.markdown(f":material/progress_activity: **{escape_markdown(tui.job_label(job, projects))}**")
            st.progress(tui.fraction(job), text=tui.step_text(job))
            st.caption(f"worker {job.worker} · started {when(job.started)} · heartbeat {when(job.heartbeat)} UTC")
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
        st.caption("Queued: " + escape_markdown(", ".join(tui.job_label(j, projects) for j in reversed(queued))))


with live_slot:
    st.subheader("Running now")
    live()


# 3. every job, and one in detail -----------------------------------------------------------
# Not on a timer: one timer per page. A second fragment's timer run queued behind the app rerun
# that `live` asks for (a job started or ended, or the admin was revoked) ran after that rerun and
# left Streamlit's page blank (seen in the browser test). `live` redraws the page instead.
@ui.fragment("admin")
def all_jobs() -> None:
    with ui.store() as s:
        jobs = s.list_jobs(limit=200)
        projects = {p.id: p.name for p in s.list_projects()}
    if not jobs:
        st.info("No job yet: start one above.")
        return
    ui.table(pd.DataFrame([{
        "id": j.id, "kind": j.kind, "project": projects.get(j.project_id, ""), "status": j.status,
        "progress": tui.step_text(j), "created": when(j.created), "finished": when(j.finished),
        "error": j.error or "",
    } for j in jobs]))
    by_id = {j.id: j for j in jobs}
    latest = next((j for j in jobs if j.status == "running"), jobs[0])
    chosen = st.selectbox(
        "Show job", [LATEST, *by_id], key="job_detail",
        format_func=lambda i: f"the latest (now {tui.job_label(latest, projects, status=False)})" if i == LATEST
        else tui.job_label(by_id[i], projects, status=False))
    job = latest if chosen == LATEST or chosen not in by_id else by_id[chosen]
    c = st.columns(4)
    c[0].metric("Status", job.status)
    c[1].metric("Progress", tui.step_text(job))
    c[2].metric("Started", (job.started or "-")[11:19] or "-")
    c[3].metric("Finished", (job.finished or "-")[11:19] or "-")
    if job.error:
        st.error(escape_markdown(f"Job #{job.id} failed: {job.error}" if job.status == "failed" else job.error))
    cancellable = job.status in ("queued", "running") and not job.cancel_requested
    if cancellable and st.button("Cancel this job", key=f"cancel-{job.id}", icon=":material/stop:"):
        with ui.store() as s:
            s.request_cancel(job.id)
        st.rerun()
    if job.status == "running":
        st.caption("This job is running: the live view at the top follows it.")
    else:
        tui.metric_charts(job.metrics, key=f"detail-{job.id}")
    with st.expander("Settings and result", expanded=False):
        st.code(json.dumps({"config": job.config, "result": job.result}, indent=2, default=str), language="json")
    with st.expander("Log", expanded=job.status == "failed"):
        st.code(job.log or "(empty)", language=None, wrap_lines=True)


st.subheader("Jobs")
if active:
    st.caption("Redrawn when a job starts or ends; the live view at the top follows the running job step by "
               "step.")
all_jobs()
