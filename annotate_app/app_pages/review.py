"""Review refinements: accept the selected refinement of a critique, pick another, or edit one.

Annotators review the critiques they wrote; admins may switch to everyone's. The logic lives in
training.ilf.dataset (review_queue, refinement_rows) and the store (accept_refinement, edit_refinement).
Every user-written text here (document, output, critique, refinements, names) is drawn with
widgets.plain (st.text: no Markdown, no HTML), or escaped inside a label.
"""

import streamlit as st

from annotate_app import ui
from annotate_app.widgets import escape_markdown, plain, show_context
from training.annotation.context import context_of
from training.errors import TokenwiseError
from training.ilf.config import SELECTOR_NOTES
from training.ilf.dataset import refinement_rows, review_queue

user = ui.require_user()
st.title("Review refinements")
project = ui.pick_project()
if project is None:
    st.stop()

c1, c2 = st.columns(2)
everyone = user.is_admin and c1.toggle("Every annotator's critiques", value=False, key="review_everyone")
unreviewed = c2.toggle("Only unreviewed", value=True, key="review_unreviewed")
with ui.store() as s:
    items = review_queue(s, project.id, user, everyone=everyone, unreviewed_only=unreviewed)

flash = st.session_state.pop("review_flash", None)
if flash:
    st.success(flash)
if not items:
    st.info("Nothing to review here. " + (
        "Refinements appear when the \"ILF: refine\" and then \"ILF: select\" jobs (Training page, or "
        "`tokenwise ilf refine` / `ilf select`) have run on this project's critiques."
        if user.is_admin else
        "Rewrites of your critiqued outputs appear here once an admin has run the refinement jobs."))
    st.stop()

labels = {it.critique.id: f"#{it.critique.id} · {it.document.title or it.document.ext_id} · "
                          f"{it.critique.text[:50]}" + (" (reviewed)" if it.reviewed else "")
          for it in items}
cid = st.selectbox(f"Critique ({len(items)} to show)", list(labels), format_func=labels.get, key="review_pick")
item = next(it for it in items if it.critique.id == cid)

with st.expander(f"Document: {escape_markdown(item.document.title or item.document.ext_id)}", expanded=False):
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
st.dataframe(rows, hide_index=True, width="stretch")
ids = [r.id for r in item.refinements]


def marks(r) -> str:
    """' (accepted)', ' (selected)', both or '': what a reviewer and the selector chose."""
    return (" (accepted)" if r.accepted else "") + (" (selected)" if r.selected else "")


for n, r in enumerate(item.refinements, 1):
    with st.container(border=True):
        st.caption(f"Refinement #{n}{marks(r)}")
        plain(r.text)
# the reviewer's own choice first (a later reselection must not pass for it), else the selector's
default = next((i for i, r in enumerate(item.refinements) if r.accepted),
               next((i for i, r in enumerate(item.refinements) if r.selected), 0))
chosen = st.radio("Choose the best refinement", ids, index=default, key=f"review_choice:{cid}", horizontal=True,
                  format_func=lambda rid: f"#{ids.index(rid) + 1}{marks(item.refinements[ids.index(rid)])}")

if st.button("Accept this refinement", type="primary", key="review_accept"):
    try:
        with ui.store() as s:
            s.accept_refinement(user, chosen)
    except TokenwiseError as e:
        ui.show_error(e)
    else:
        st.session_state["review_flash"] = f"Accepted refinement #{ids.index(chosen) + 1} of critique #{cid}."
        st.rerun()

with st.form(f"review_edit:{cid}"):
    text = st.text_area("Or edit it and save your own version",
                        value=item.refinements[ids.index(chosen)].text, key=f"review_text:{cid}:{chosen}")
    if st.form_submit_button("Save my edit"):
        try:
            with ui.store() as s:
                s.edit_refinement(user, cid, text)
        except TokenwiseError as e:
            ui.show_error(e)
        else:
            st.session_state["review_flash"] = f"Saved your edit of critique #{cid}."
            st.rerun()
