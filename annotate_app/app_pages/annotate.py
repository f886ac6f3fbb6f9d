"""Annotate: the next document of this annotator's queue; rank its candidates, critique, save."""

import streamlit as st

from annotate_app import ui, widgets
from training.annotation import drafts as A
from training.errors import TokenwiseError

user = ui.require_user()
st.title("Annotate")
project = ui.pick_project()
if project is None:
    st.stop()

pin = f"on_screen:{user.id}:{project.id}"  # the document stays put while others save theirs
with ui.store() as s:
    counts = s.queue_counts(user, project.id)
    totals = s.progress(project.id)
    doc = A.current_document(s, user, project, st.session_state.get(pin, ui.kept(user.id, pin)))
st.session_state[pin] = None if doc is None else doc.id
ui.keep(user.id, pin, st.session_state[pin])  # ui.keep: what a page reload must not lose

# 1. progress, always visible
done, assigned = counts["done"], counts["assigned"]
st.progress(done / assigned if assigned else 1.0,
            text=f"You: {done} of {assigned} documents done")
st.caption(f"Project {widgets.escape_markdown(project.name)}: {totals.complete} of {totals.documents} documents have "
           f"{project.overlap} ranking{'s' if project.overlap > 1 else ''}; "
           f"{totals.rankings} rankings and {totals.critiques} critiques in all.")
if project.instructions:
    with st.expander("Instructions", expanded=done == 0):
        widgets.plain(project.instructions)

flash = st.session_state.pop("annotate_flash", None)
if flash:
    st.success(flash)

if doc is None:
    st.success("All done — thank you! There is nothing left in your queue for this project.")
    st.stop()

# 2. the document and a draft that survives reruns (keyed by annotator and document)
widgets.show_document(doc)
key = f"draft:{user.id}:{doc.id}"
if key not in st.session_state:  # the clock starts when the document is first shown
    st.session_state[key] = ui.kept(user.id, key) or A.Draft.new(doc)
draft: A.Draft = st.session_state[key]

rule = "Ties are allowed." if project.allow_ties else "Give each rank to one candidate."
st.markdown(f"Rank the {len(doc.candidates)} candidates: **1 is the best**. {rule} "
            "Open *Critique* under a candidate to say what is wrong and how to fix it."
            + (" The lowest-ranked candidate needs a critique." if project.require_critique_lowest else ""))
order = A.display_order(user.id, doc.id, [c.id for c in doc.candidates])
names = widgets.draft_editor(project, doc, draft, order, prefix="annotate")
ui.keep(user.id, key, draft)

# 3. save (one transaction) or skip
found = A.problems(project, doc, draft, names)
save_col, skip_col = st.columns([1, 1])
with save_col:
    save = st.button("Save", type="primary", disabled=bool(found), icon=":material/save:",
                     width="stretch", shortcut="Ctrl+Enter")
with skip_col:
    skip = st.button("Skip for now", icon=":material/skip_next:", width="stretch",
                     help="Put this document at the end of your queue.")
widgets.show_problems(found)

if save:
    try:
        with ui.store() as s:
            ranking, crits = A.save(s, user, project, doc, draft, names)
    except TokenwiseError as e:
        st.error(str(e))
    else:
        del st.session_state[key]
        ui.forget(user.id, key)
        st.session_state["annotate_flash"] = (
            f"Saved your ranking of “{widgets.escape_markdown((doc.title or doc.ext_id)[:80])}”"
            + (f" with {len(crits)} critique{'s' if len(crits) != 1 else ''}" if crits else "") + ".")
        st.rerun()
if skip:
    with ui.store() as s:
        s.skip(user, doc.id)
    st.session_state.pop(key, None)
    st.session_state.pop(pin, None)
    ui.forget(user.id, key)
    ui.forget(user.id, pin)
    st.session_state["annotate_flash"] = "Skipped: that document comes back at the end of your queue."
    st.rerun()
