"""Annotate: the next document of this annotator's queue; rank its candidates, critique, save.

One Save click is one run of this script: the button's callback saves (with this session's one
Store, retried while the database is locked) before the run, and the run reads the view once
(the document, this annotator's queue counts and the project's totals, both O(1)) and draws it.
A save that finally fails leaves the draft on the page with the reason: nothing typed is lost.
The document sits in a scrolling panel beside compact candidates, so that they are on screen at
once; number keys rank the focused candidate and Ctrl+Enter saves (annotate_screen.py).
A reload starts a new session: ui.kept/keep hold the document on screen and the draft on the
server for this annotator (never in the browser), so a half-written ranking survives it.
"""

import streamlit as st

from annotate_app import annotate_screen, session, ui, widgets
from training.annotation import drafts as A
from training.errors import AuthError, NotFound, TokenwiseError

PREFIX = "annotate"  # widget keys: f"{PREFIX}:rank|crit|quote:{doc.id}:{candidate id}" (widgets.draft_editor)

user = ui.require_user()
annotate_screen.compact()
pick_col, progress_col = st.columns([1, 2], vertical_alignment="bottom")
with pick_col:
    project = ui.pick_project(to_annotate=True)
if project is None:
    st.stop()

pin = f"on_screen:{user.id}:{project.id}"  # the document stays put while others save theirs


def draft_key(doc_id: int) -> str:
    return f"draft:{user.id}:{doc_id}"


def on_save(doc, names) -> None:
    """The Save button's callback: runs before the script, so the run after it shows the next document."""
    draft: A.Draft = st.session_state[draft_key(doc.id)]
    for c in doc.candidates:  # what the widgets hold now (a critique typed just before the click)
        for field, values in (("rank", draft.ranks), ("crit", draft.critiques), ("quote", draft.quotes)):
            key = f"{PREFIX}:{field}:{doc.id}:{c.id}"
            if key in st.session_state:
                values[c.id] = st.session_state[key]
    try:
        with session.store() as s:
            s.active_annotator(user.id)  # a revoked annotator saves nothing
            _, crits = A.save(s, user, project, doc, draft, names)
    except (AuthError, NotFound) as e:  # revoked meanwhile: the run after this callback signs them out
        ui.end_session(e)
        return
    except TokenwiseError as e:  # the draft stays in the session and on the page
        st.session_state["annotate_error"] = str(e)
        return
    del st.session_state[draft_key(doc.id)]
    st.session_state.pop(pin, None)
    ui.forget(user.id, draft_key(doc.id))
    ui.forget(user.id, pin)
    what = A.short_title(doc.title or doc.text)  # an untitled document by its first words, not its id
    st.session_state["annotate_flash"] = (
        f"Saved your critique of “{widgets.escape_markdown(what)}”." if len(doc.candidates) == 1 else
        f"Saved your ranking of “{widgets.escape_markdown(what)}”"
        + (f" with {len(crits)} critique{'s' if len(crits) != 1 else ''}" if crits else "") + ".")


def on_skip(doc) -> None:
    with session.store() as s:
        s.active_annotator(user.id)
        s.skip(user, doc.id)
    st.session_state.pop(draft_key(doc.id), None)
    st.session_state.pop(pin, None)
    ui.forget(user.id, draft_key(doc.id))
    ui.forget(user.id, pin)
    st.session_state["annotate_flash"] = "Skipped: that document comes back at the end of your queue."


with session.store() as s:
    view = A.annotate_view(s, user, project, st.session_state.get(pin, ui.kept(user.id, pin)))
doc = view.doc
if view.replaced is not None:  # saved in another tab or window: its draft can no longer be saved
    st.session_state.pop(draft_key(view.replaced), None)
    ui.forget(user.id, draft_key(view.replaced))
st.session_state[pin] = None if doc is None else doc.id
ui.keep(user.id, pin, st.session_state[pin])


def show_progress(view: A.View) -> None:
    done, assigned, totals = view.counts["done"], view.counts["assigned"], view.totals
    # "left", not "of N": the queue shrinks when other people complete documents first
    st.progress(done / assigned if assigned else 1.0, text=f"You: {done} done, {assigned - done} left in your queue")
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


# 1. progress, always visible
with progress_col:
    show_progress(view)

flash = st.session_state.pop("annotate_flash", None)
if flash:  # a toast: the candidates stay where they were on the screen (short: it covers Skip meanwhile)
    st.toast(flash, icon=":material/check_circle:", duration="short")
error = st.session_state.pop("annotate_error", None)
if view.replaced is not None:  # said, so the next click does not land on a document nobody looked at
    st.info("The document you had open is no longer in your queue (you saved it in another tab or window)"
            + (": here is the next one." if doc is not None else "."), icon=":material/sync:")

if doc is None:
    st.success("All done — thank you! There is nothing left in your queue for this project.")
    show_guidelines(view)
    st.stop()

# 2. the document (a scrolling panel) beside the candidates, so they are on screen at once
doc_col, rank_col = st.columns([0.85, 1.15], gap="medium")
with doc_col:
    show_guidelines(view)
    widgets.document_panel(doc, project.context_fields)
if draft_key(doc.id) not in st.session_state:  # the clock starts when the document is first shown
    st.session_state[draft_key(doc.id)] = ui.kept(user.id, draft_key(doc.id)) or A.Draft.new(doc)
draft: A.Draft = st.session_state[draft_key(doc.id)]

rule = "Ties are allowed." if project.allow_ties else "Each rank once; the last candidate takes the rank left."
order = A.display_order(user.id, doc.id, [c.id for c in doc.candidates])
with rank_col:
    actions = st.container()  # Save and Skip, above the candidates: drawn once the draft is known
    if error:
        ui.show_error(error)
    if len(doc.candidates) == 1:
        st.caption("One output: say what is wrong with it and how to fix it (there is nothing to rank). "
                   "**Ctrl+Enter** saves.")
    else:
        k = len(doc.candidates)
        st.caption(f"Rank the {k} candidates, **1 is the best**, {k} the worst. {rule} *Critique*"
                   + (" (the button at the right of each card)" if k >= widgets.ICON_ONLY_K else "")
                   + ": what is wrong, how to fix it."
                   + (" The lowest-ranked candidate needs a critique." if project.require_critique_lowest else "")
                   + " " + annotate_screen.keys_help(k))
    with st.container(key=f"twdoc-{project.id}-{doc.id}"):  # (the keys script sees a new document by it)
        names = widgets.draft_editor(project, doc, draft, order, prefix=PREFIX)
ui.keep(user.id, draft_key(doc.id), draft)

# 3. save (one transaction, in the callback) or skip
found = A.problems(project, doc, draft, names)
with actions:
    save_col, skip_col = st.columns([1, 1])
    with save_col:
        st.button("Save", type="primary", disabled=bool(found), icon=":material/save:", width="stretch",
                  key="annotate_save", on_click=ui.guarded(on_save, "annotator", callback=True), args=(doc, names))
    with skip_col:
        st.button("Skip for now", icon=":material/skip_next:", width="stretch",
                  help="Put this document at the end of your queue.", on_click=ui.guarded(on_skip, "annotator", callback=True),
                  args=(doc,))
with rank_col:
    widgets.show_problems(found)
annotate_screen.install_keys(save_key="annotate_save")
