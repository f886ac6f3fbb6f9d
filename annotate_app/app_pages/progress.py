"""Progress (admin): counts per project and per annotator, time per ranking, agreement."""

from __future__ import annotations

import math

import pandas as pd
import plotly.express as px
import streamlit as st

from annotate_app import ui
from annotate_app.widgets import chart_text
from training.annotation.agreement import project_agreement

user = ui.require_admin()
st.title("Progress")

# 1. every project at a glance
with ui.store() as s:
    overview = []
    for p in s.list_projects():
        pr = s.progress(p.id)
        overview.append({"project": p.name, "documents": pr.documents, "complete": pr.complete,
                         "overlap": p.overlap, "rankings": pr.rankings, "critiques": pr.critiques})
if overview:
    ui.table(pd.DataFrame(overview))

project = ui.pick_project(key="progress_project")
if project is None:
    st.stop()

# 2. the chosen project: documents complete vs overlap, and who did what
with ui.store() as s:
    pr = s.progress(project.id)
    agreement = project_agreement(s, project.id)
c = st.columns(4)
c[0].metric("Documents", pr.documents)
c[1].metric(f"Complete (ranked by {project.overlap})", pr.complete,
            help="Documents that reached the project's overlap.")
c[2].metric("Rankings", pr.rankings)
c[3].metric("Critiques", pr.critiques)
if pr.documents:  # by rankings: a project whose documents each have some rankings is not at 0
    needed = pr.documents * project.overlap
    st.progress(min(pr.rankings / needed, 1.0),
                text=f"{pr.rankings} of {needed} rankings done ({pr.documents} documents × {project.overlap}); "
                     f"{pr.complete} of {pr.documents} documents complete")

per = pd.DataFrame(pr.per_annotator, columns=["annotator", "rankings", "critiques", "median_seconds"]).round(1)
if per.empty:
    st.info("Nobody has ranked or critiqued anything in this project yet.")
    st.stop()
st.subheader("Per annotator")
ui.table(per, column_config={
    "median_seconds": st.column_config.NumberColumn(
        "median seconds per ranking", format="%.1f",
        help="From opening a document to saving its ranking; empty for imported rankings, which have no time.")})
st.plotly_chart(px.bar(per.assign(annotator=per["annotator"].map(chart_text)), x="annotator", y="rankings",
                       title="Rankings per annotator"), width="stretch")

# 3. agreement on the documents that two or more annotators ranked
st.subheader("Agreement")
alpha = "n/a" if math.isnan(agreement.alpha) else f"{agreement.alpha:.3f}"
c = st.columns(2)
c[0].metric("Krippendorff's alpha (ordinal)", alpha,
            help="Over all rankings: a unit is a (document, candidate) pair, its values the ranks given. "
                 "1 = perfect agreement, 0 = chance, below 0 = systematic disagreement.")
c[1].metric("Documents ranked by 2+ annotators", agreement.n_shared_documents)
if not agreement.pairs:
    st.caption("No two annotators have ranked the same document yet.")
    st.stop()
pairs = pd.DataFrame(agreement.pairs).round(3).rename(columns={
    "annotator_a": "annotator A", "annotator_b": "annotator B", "mean_tau": "mean Kendall tau", "n_docs": "documents"})
ui.table(pairs)
names = agreement.annotators
tau = pd.DataFrame(float("nan"), index=names, columns=names)
for row in agreement.pairs:
    tau.loc[row["annotator_a"], row["annotator_b"]] = tau.loc[row["annotator_b"], row["annotator_a"]] = row["mean_tau"]
for n in names:
    tau.loc[n, n] = 1.0
tau.index = tau.columns = [chart_text(n) for n in names]  # (names are data: plotly draws some HTML)
st.plotly_chart(
    px.imshow(tau, zmin=-1, zmax=1, color_continuous_scale="RdBu", text_auto=".2f",
              title="Mean Kendall tau between annotators (shared documents)"),
    width="stretch",
)
