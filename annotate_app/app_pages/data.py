"""Data: find a document (full-text search, filters) and open it with everything attached to it.

Admins see every document and entry; the filters include "high disagreement" between annotators
and "the reward model disagrees with the people", and the list can be sorted so that the model's
strongest contradictions come first (suspect labels, or the model's own mistakes). Annotators see
the documents they ranked or critiqued, with their own entries only. Logic:
training/annotation/browse.py; user text is drawn as text (widgets.plain).
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from annotate_app import ui
from annotate_app.widgets import escape_markdown, plain, show_context
from training.annotation.browse import STATUSES, BrowseFilter, browse, document_view, labelled_candidates
from training.errors import TokenwiseError

user = ui.require_user()
st.title("Data")
st.caption("Every document with its rankings, critiques, refinements and model scores."
           if user.is_admin else "The documents you ranked or critiqued, with your entries.")

project = ui.pick_project(key="data_project")
if project is None:
    st.stop()

STATUS_LABELS = {"all": "All", "unranked": "Not ranked yet", "ranked": "Ranked",
                 "high_disagreement": "Annotators disagree", "model_disagrees": "Reward model disagrees"}
SORT_LABELS = {"document": "Document order", "model_contradiction": "Model contradicts people most",
               "disagreement": "Annotators disagree most", "search": "Best search match"}

c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
query = c1.text_input("Search title and text", key="data_query", placeholder="words in the document")
statuses = STATUSES if user.is_admin else ("all",)
status = c2.selectbox("Show", statuses, format_func=STATUS_LABELS.get, key="data_status")
sorts = list(SORT_LABELS) if user.is_admin else ["document", "search"]
sort = c3.selectbox("Sort", sorts, format_func=SORT_LABELS.get, key="data_sort",
                    index=sorts.index("search") if query.strip() else 0)
annotator_id = None
if user.is_admin:
    with ui.store() as s:
        names = {None: "Anyone"} | {a.id: a.name for a in s.list_annotators()}
    annotator_id = c4.selectbox("Ranked or critiqued by", list(names), format_func=names.get, key="data_who")

with ui.store() as s:
    project = s.get_project(project.id)  # fresh: the active reward model may have changed
    rows = browse(s, project, user, BrowseFilter(query=query, annotator_id=annotator_id, status=status, sort=sort))

if status == "model_disagrees" and project.active_reward_model is None:
    st.info("This project has no active reward model: train one on the Training page, then its scores "
            "point at the documents where it and the annotators disagree.")
if not rows:
    st.info("No document matches." if (query.strip() or status != "all") else "No document to show yet.")
    st.stop()


def fmt(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 2)


table = pd.DataFrame([{"id": r.ext_id, "title": r.title, "start of the text": r.snippet, "rankings": r.rankings,
                       "annotator agreement (tau)": fmt(r.disagreement), "model vs people (tau)": fmt(r.model_tau)}
                      for r in rows])
if not user.is_admin:
    table = table.drop(columns=["annotator agreement (tau)"])
if table["model vs people (tau)"].isna().all():  # no active reward model has scored these: no empty column
    table = table.drop(columns=["model vs people (tau)"])
st.caption(f"{len(rows)} document(s). Select a row to open it. Tau runs from -1 (opposite orders) to 1 (same order).")
picked = ui.table(table, on_select="rerun", selection_mode="single-row", key="data_table")
selected = picked.selection.rows if picked is not None and picked.selection else []
if not selected:
    st.stop()

try:
    with ui.store() as s:
        view = document_view(s, rows[selected[0]].document_id, user)
except TokenwiseError as e:
    ui.show_error(e)
    st.stop()

st.divider()
st.subheader(escape_markdown(view.title or view.ext_id), anchor=False)
with st.container(height=260, border=True):
    plain(view.text)
    show_context(view.context)
if view.reference:
    st.markdown("**Reference**")
    plain(view.reference)
m1, m2 = st.columns(2)
if user.is_admin:
    m1.metric("Annotator agreement (tau)", "–" if math.isnan(view.disagreement) else f"{view.disagreement:.2f}")
if not math.isnan(view.model_tau):  # (no active reward model has scored this document: nothing to say)
    m2.metric("Reward model vs people (tau)", f"{view.model_tau:.2f}",
              help="the active reward model's order of the candidates against the people's mean ranks")
for head, c in labelled_candidates(view, user):
    with st.container(border=True):
        if c.ranks:
            head += " · ranks: " + ", ".join(f"{escape_markdown(n)} {r}" for n, r in sorted(c.ranks.items()))
        if c.model_score is not None:
            head += f" · model score {c.model_score:.3f}"
        if user.is_admin and c.source:
            head += f" · source {escape_markdown(c.source)}"
        st.markdown(head)
        plain(c.text)
        for who, text in c.critiques:
            st.caption(f"Critique by {escape_markdown(who)}")
            plain(text)
        for r in c.refinements:
            mark = " (accepted)" if r["accepted"] else " (selected)" if r["selected"] else ""
            st.caption("Refinement" + mark)
            plain(r["text"])
