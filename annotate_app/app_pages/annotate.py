"""Annotate: the next document of this annotator's queue; rank its candidates, critique, save.

One click of Save runs this script twice: the run that saves (it reads only the document on
screen) and the rerun that shows the next document (it reads the view once: document, queue
counts, totals). Both use this session's one Store. A save that finally meets a locked database
leaves the draft on the page with the reason.
"""

import streamlit as st

from annotate_app import annotate_screen, session, ui, widgets
from training.annotation import drafts as A
from training.errors import TokenwiseError

user = ui.require_user()
annotate_screen.compact()
pick_col, progress_col = st.columns([1, 2], vertical_alignment="bottom")
with pick_col:
    project = ui.pick_project()
if project is None:
    st.stop()

pin = f"on_screen:{user.id}:{project.id}"  # the document stays put while others save theirs
saving = bool(st.session_state.get("annotate_save"))  # this run is a Save click: save first, then rerun
pinned = st.session_state.get(pin, ui.kept(user.id, pin))  # ui.kept: what survived a page reload
with session.store() as s:
    if saving:
        view = A.View(A.current_document(s, user, project, pinned), {}, {})
    else:
        view = A.annotate_view(s, user, project, pinned)
doc = view.doc
st.session_state[pin] = None if doc is None else doc.id
ui.keep(user.id, pin, st.session_state[pin])


def show_progress(view: A.View) -> None:
    done, assigned, totals = view.counts["done"], view.counts["assigned"], view.totals
    st.progress(done / assigned if assigned else 1.0, text=f"You: {done} of {assigned} documents done")
    needed = totals["documents"] * project.overlap  # each document is ranked by `overlap` people
    st.caption(f"Project {widgets.escape_markdown(project.name)}: {totals['rankings']} of {needed} rankings done "
               f"({totals['documents']} documents × {project.overlap} annotator{'s' if project.overlap > 1 else ''}); "
               f"{totals['complete']} document{'s' if totals['complete'] != 1 else ''} fully ranked; "
               f"{totals['critiques']} critiques.")


def show_guidelines(view: A.View) -> None:
    """Folded, so that the document starts high on the screen; the label shows their first line."""
    if project.instructions:
        first = A.short_title(project.instructions.strip().splitlines()[0], 90)
        label = f"Guidelines: {widgets.escape_markdown(first)}"
        with st.expander(label + (" (read them before your first ranking)" if view.counts.get("done", 1) == 0 else "")):
            widgets.plain(project.instructions)


# 1. progress, always visible (a Save run draws it below, once it knows the save's outcome)
progress_slot = progress_col.container()
if not saving:
    with progress_slot:
        show_progress(view)

flash = st.session_state.pop("annotate_flash", None)
if flash:  # a toast: the candidates stay where they were on the screen
    st.toast(flash, icon=":material/check_circle:", duration="long")

if doc is None:
    st.success("All done — thank you! There is nothing left in your queue for this project.")
    show_guidelines(view)
    st.stop()

# 2. the document (a scrolling panel) beside the candidates, so they are on screen at once
doc_col, rank_col = st.columns([0.85, 1.15], gap="medium")
with doc_col:
    show_guidelines(view)
    widgets.document_panel(doc)
key = f"draft:{user.id}:{doc.id}"
if key not in st.session_state:  # the clock starts when the document is first shown
    st.session_state[key] = ui.kept(user.id, key) or A.Draft.new(doc)
draft: A.Draft = st.session_state[key]

rule = "Ties are allowed." if project.allow_ties else "Each rank once."
order = A.display_order(user.id, doc.id, [c.id for c in doc.candidates])
with rank_col:
    actions = st.container()  # Save and Skip, above the candidates: drawn once the draft is known
    st.caption(f"Rank the {len(doc.candidates)} candidates, **1 is the best**. {rule} "
               "*Critique*: what is wrong, how to fix it."
               + (" The lowest-ranked candidate needs a critique." if project.require_critique_lowest else "")
               + " " + annotate_screen.HELP)
    names = widgets.draft_editor(project, doc, draft, order, prefix="annotate")
ui.keep(user.id, key, draft)

# 3. save (one transaction, retried while the database is locked) or skip
found = A.problems(project, doc, draft, names)
with actions:
    save_col, skip_col = st.columns([1, 1])
    with save_col:
        save = st.button("Save", type="primary", disabled=bool(found), icon=":material/save:",
                         width="stretch", key="annotate_save")
    with skip_col:
        skip = st.button("Skip for now", icon=":material/skip_next:", width="stretch",
                         help="Put this document at the end of your queue.")
with rank_col:
    widgets.show_problems(found)
annotate_screen.install_keys(save_key="annotate_save")

if save:
    try:
        with session.store() as s:
            ranking, crits = A.save(s, user, project, doc, draft, names)
    except TokenwiseError as e:  # the draft stays in the session and on the page
        st.error(str(e))
        with session.store() as s:
            view = A.annotate_view(s, user, project, doc.id)
        with progress_slot:
            show_progress(view)
    else:
        del st.session_state[key]
        ui.forget(user.id, key)
        st.session_state["annotate_flash"] = (
            f"Saved your ranking of “{widgets.escape_markdown(A.short_title(doc.title or doc.ext_id))}”"
            + (f" with {len(crits)} critique{'s' if len(crits) != 1 else ''}" if crits else "") + ".")
        st.rerun()
elif saving:  # the click did not save (e.g. the draft changed in the same click): show the counts
    with session.store() as s, progress_slot:
        show_progress(A.annotate_view(s, user, project, doc.id))
if skip:
    with session.store() as s:
        s.skip(user, doc.id)
    st.session_state.pop(key, None)
    st.session_state.pop(pin, None)
    ui.forget(user.id, key)
    ui.forget(user.id, pin)
    st.session_state["annotate_flash"] = "Skipped: that document comes back at the end of your queue."
    st.rerun()
