"""Annotate: the next document of this annotator's queue; rank its candidates, critique, save.

One Save click is one run of this script: the button's callback saves (with this session's one
Store, retried while the database is locked) before the run, and the run reads the view once
(the document, this annotator's queue counts and the project's totals, both O(1)) and draws it.
A save that finally fails leaves the draft on the page with the reason: nothing typed is lost.
"""

import streamlit as st

from annotate_app import session, ui, widgets
from training.annotation import drafts as A
from training.errors import AuthError, NotFound, TokenwiseError

PREFIX = "annotate"  # widget keys: f"{PREFIX}:rank|crit|quote:{doc.id}:{candidate id}" (widgets.draft_editor)

user = ui.require_user()
st.title("Annotate")
project = ui.pick_project()
if project is None:
    st.stop()

pin = f"on_screen:{user.id}:{project.id}"  # the document stays put while others save theirs
# A reload starts a new session: ui.kept/keep hold the document on screen and the draft on the
# server for this annotator (never in the browser), so a half-written ranking survives it.


def draft_key(doc) -> str:
    return f"draft:{user.id}:{doc.id}"


def on_save(doc, names) -> None:
    """The Save button's callback: runs before the script, so the run after it shows the next document."""
    draft: A.Draft = st.session_state[draft_key(doc)]
    for c in doc.candidates:  # what the widgets hold now (a critique typed just before the click)
        for field, values in (("rank", draft.ranks), ("crit", draft.critiques), ("quote", draft.quotes)):
            key = f"{PREFIX}:{field}:{doc.id}:{c.id}"
            if key in st.session_state:
                values[c.id] = st.session_state[key]
    try:
        with session.store() as s:
            s.active_annotator(user.id)  # a revoked annotator saves nothing
            _, crits = A.save(s, user, project, doc, draft, names)
    except (AuthError, NotFound):  # revoked meanwhile: the run after this callback signs them out
        st.session_state.pop(ui.SESSION_KEY, None)
        return
    except TokenwiseError as e:  # the draft stays in the session and on the page
        st.session_state["annotate_error"] = str(e)
        return
    del st.session_state[draft_key(doc)]
    st.session_state.pop(pin, None)
    ui.forget(user.id, draft_key(doc))
    ui.forget(user.id, pin)
    st.session_state["annotate_flash"] = (
        f"Saved your ranking of “{widgets.escape_markdown((doc.title or doc.ext_id)[:80])}”"
        + (f" with {len(crits)} critique{'s' if len(crits) != 1 else ''}" if crits else "") + ".")


def on_skip(doc) -> None:
    with session.store() as s:
        s.active_annotator(user.id)
        s.skip(user, doc.id)
    st.session_state.pop(draft_key(doc), None)
    st.session_state.pop(pin, None)
    ui.forget(user.id, draft_key(doc))
    ui.forget(user.id, pin)
    st.session_state["annotate_flash"] = "Skipped: that document comes back at the end of your queue."


with session.store() as s:
    view = A.annotate_view(s, user, project, st.session_state.get(pin, ui.kept(user.id, pin)))
doc = view.doc
st.session_state[pin] = None if doc is None else doc.id
ui.keep(user.id, pin, st.session_state[pin])

# 1. progress, always visible
done, assigned, totals = view.counts["done"], view.counts["assigned"], view.totals
st.progress(done / assigned if assigned else 1.0, text=f"You: {done} of {assigned} documents done")
st.caption(f"Project {widgets.escape_markdown(project.name)}: {totals['complete']} of {totals['documents']} documents "
           f"have {project.overlap} ranking{'s' if project.overlap > 1 else ''}; "
           f"{totals['rankings']} rankings and {totals['critiques']} critiques in all.")
if project.instructions:
    with st.expander("Instructions", expanded=done == 0):
        widgets.plain(project.instructions)

flash = st.session_state.pop("annotate_flash", None)
if flash:
    st.success(flash)
error = st.session_state.pop("annotate_error", None)
if error:
    st.error(error)

if doc is None:
    st.success("All done — thank you! There is nothing left in your queue for this project.")
    st.stop()

# 2. the document and a draft that survives reruns (keyed by annotator and document)
widgets.show_document(doc)
if draft_key(doc) not in st.session_state:  # the clock starts when the document is first shown
    st.session_state[draft_key(doc)] = ui.kept(user.id, draft_key(doc)) or A.Draft.new(doc)
draft: A.Draft = st.session_state[draft_key(doc)]

rule = "Ties are allowed." if project.allow_ties else "Give each rank to one candidate."
st.markdown(f"Rank the {len(doc.candidates)} candidates: **1 is the best**. {rule} "
            "Open *Critique* under a candidate to say what is wrong and how to fix it."
            + (" The lowest-ranked candidate needs a critique." if project.require_critique_lowest else ""))
order = A.display_order(user.id, doc.id, [c.id for c in doc.candidates])
names = widgets.draft_editor(project, doc, draft, order, prefix=PREFIX)
ui.keep(user.id, draft_key(doc), draft)

# 3. save (one transaction, in the callback) or skip
found = A.problems(project, doc, draft, names)
save_col, skip_col = st.columns([1, 1])
with save_col:
    st.button("Save", type="primary", disabled=bool(found), icon=":material/save:", width="stretch",
              shortcut="Ctrl+Enter", on_click=ui.guarded(on_save, "annotator"), args=(doc, names))
with skip_col:
    st.button("Skip for now", icon=":material/skip_next:", width="stretch",
              help="Put this document at the end of your queue.", on_click=ui.guarded(on_skip, "annotator"), args=(doc,))
widgets.show_problems(found)
