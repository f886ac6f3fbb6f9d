"""Review refinements: accept the selected refinement of a critique, pick another, or edit one.

Annotators review the critiques they wrote; admins see everyone's, or may switch to their own. The
baselines sampled without the critique are shown, marked, but are not offered. The logic lives in
training.ilf.dataset (review_queue, hidden_from_queue, refinement_rows, review_choices) and the store
(accept_refinement, edit_refinement).
Every user-written text here (document, output, critique, refinements, names) is drawn with
widgets.plain (st.text: no Markdown, no HTML), or escaped inside a label.
"""

import streamlit as st

from annotate_app import ui
from annotate_app.widgets import doc_name, escape_markdown, plain, show_context
from training.annotation.context import context_of
from training.errors import TokenwiseError
from training.ilf.config import SELECTOR_NOTES
from training.ilf.dataset import (
    BASELINE_VARIANT,
    default_choice,
    hidden_from_queue,
    refinement_rows,
    review_choices,
    review_queue,
)

user = ui.require_user()
st.title("Review refinements")
project = ui.pick_project()
if project is None:
    st.stop()

c1, c2 = st.columns(2)
everyone = user.is_admin and c1.toggle("Every annotator's critiques", value=True, key="review_everyone")
unreviewed = c2.toggle("Only unreviewed", value=True, key="review_unreviewed")
with ui.store() as s:
    items = review_queue(s, project.id, user, everyone=everyone, unreviewed_only=unreviewed)
    hidden = {} if items else hidden_from_queue(s, project.id, user, everyone=everyone, unreviewed_only=unreviewed)


def critiques_are(n: int) -> str:
    return f"{n} critique is" if n == 1 else f"{n} critiques are"


flash = st.session_state.pop("review_flash", None)
if flash:
    st.success(flash)
if not items:
    because = []  # the toggles hide some, or the jobs have not run
    if hidden.get("unreviewed"):
        because.append(f"{critiques_are(hidden['unreviewed'])} hidden by \"Only unreviewed\": "
                       "they were reviewed already.")
    if hidden.get("everyone"):
        because.append(f"{critiques_are(hidden['everyone'])} hidden while \"Every annotator's critiques\" is off: "
                       "other annotators wrote them.")
    if not because and hidden.get("both"):
        because.append(f"{critiques_are(hidden['both'])} hidden: other annotators wrote them and they were reviewed "
                       "already (turn \"Every annotator's critiques\" on and \"Only unreviewed\" off).")
    if not because:
        because.append("Refinements appear when the \"ILF: refine\" and then \"ILF: select\" jobs (Training page, "
                       "or `tokenwise ilf refine` / `ilf select`) have run on this project's critiques."
                       if user.is_admin else
                       "Rewrites of your critiqued outputs appear here once an admin has run the refinement jobs.")
    st.info(" ".join(["Nothing to review here.", *because]))
    st.stop()

labels = {it.critique.id: f"#{it.critique.id} · {doc_name(it.document, 60)} · "
                          f"{it.critique.text[:50]}" + (" (reviewed)" if it.reviewed else "")
          for it in items}
cid = st.selectbox(f"Critique ({len(items)} to show)", list(labels), format_func=labels.get, key="review_pick")
item = next(it for it in items if it.critique.id == cid)

with st.expander(f"Document: {escape_markdown(doc_name(item.document))}", expanded=False):
    plain(item.document.text)
    show_context(context_of(item.document.meta, project.context_fields))
st.markdown("**Original output**")
with st.container(border=True):
    plain(item.candidate.text)
st.markdown(f"**Critique** by {escape_markdown(item.annotator)}")
with st.container(border=True):
    plain(item.critique.text)

selector = next((r.selector for r in item.refinements if r.selector), None)
st.markdown("**Refinements**" + (f" (picked by the {selector} selector)" if selector
                                 else " (not scored yet: the \"ILF: select\" job picks the best)"))
if selector in SELECTOR_NOTES:
    st.caption(SELECTOR_NOTES[selector])
rows = refinement_rows(item)
ui.table(rows)
number = {r.id: n for n, r in enumerate(item.refinements, 1)}  # as in the table
by_id = {r.id: r for r in item.refinements}


def marks(r) -> str:
    """' (accepted)', ' (selected)', both or '': what a reviewer and the selector chose."""
    return (" (accepted)" if r.accepted else "") + (" (selected)" if r.selected else "")


for r in item.refinements:
    with st.container(border=True):
        st.caption(f"Refinement #{number[r.id]}{marks(r)}" + (
            " · baseline, made without the critique: not a choice" if r.variant == BASELINE_VARIANT else ""))
        plain(r.text)
picks = review_choices(item)  # not the baselines
if picks:
    chosen = st.radio("Choose the best refinement", [r.id for r in picks], index=default_choice(picks),
                      key=f"review_choice:{cid}", horizontal=True,
                      format_func=lambda rid: f"#{number[rid]}{marks(by_id[rid])}")
    if st.button("Accept this refinement", type="primary", key="review_accept"):
        try:
            with ui.store() as s:
                s.accept_refinement(user, chosen)
        except TokenwiseError as e:
            ui.show_error(e)
        else:
            st.session_state["review_flash"] = f"Accepted refinement #{number[chosen]} of critique #{cid}."
            st.rerun()
else:
    chosen = None
    st.info("Every refinement here is a baseline made without the critique: there is none to accept. "
            "Write your own version below.")

with st.form(f"review_edit:{cid}"):
    text = st.text_area("Or edit it and save your own version",
                        value=item.candidate.text if chosen is None else by_id[chosen].text,
                        key=f"review_text:{cid}:{chosen}")
    if st.form_submit_button("Save my edit"):
        try:
            with ui.store() as s:
                s.edit_refinement(user, cid, text)
        except TokenwiseError as e:
            ui.show_error(e)
        else:
            st.session_state["review_flash"] = f"Saved your edit of critique #{cid}."
            st.rerun()
