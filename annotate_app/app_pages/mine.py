"""My entries: this annotator's own rankings and critiques; open one, revise it, see its history.

Every store call passes the signed-in annotator, and the store only returns that annotator's rows.
Reads go through this session's one Store (annotate_app/session.py); a save that meets a locked
database is retried, and if it still fails the revision stays on the page with the reason.
"""

import streamlit as st

from annotate_app import annotate_screen, session, ui, widgets
from training.annotation import drafts as A
from training.errors import TokenwiseError

user = ui.require_user()
st.title("My entries")
project = ui.pick_project()
if project is None:
    st.stop()

with session.store() as s:
    mine = s.my_rankings(user, project.id)
    docs = {r.document_id: s.get_document(r.document_id) for r in mine}
    n_crit = {r.document_id: len(s.my_critiques(user, r.document_id)) for r in mine}

flash = st.session_state.pop("mine_flash", None)
if not mine:
    st.info("You have not saved anything in this project yet. Rank a document on the Annotate page.")
    st.stop()


# 1. the list (newest first)
st.caption(f"{len(mine)} ranking{'s' if len(mine) != 1 else ''} saved by you in {widgets.escape_markdown(project.name)}.")
ui.table([{"document": widgets.doc_name(docs[r.document_id]), "version": r.version, "critiques": n_crit[r.document_id],
           "seconds": r.seconds, "saved": widgets.when(r.created)} for r in mine])
choices = {r.document_id: f"{widgets.doc_name(docs[r.document_id])} (v{r.version})" for r in mine}
doc_id = st.selectbox("Open an entry", list(choices), format_func=lambda d: choices.get(d, "?"), key="mine_open")
if doc_id not in docs:  # only this annotator's own entries can be opened
    st.stop()
doc = docs[doc_id]

with session.store() as s:
    ranking = s.my_ranking(user, doc.id)
    critiques = s.my_critiques(user, doc.id)
    history = s.ranking_history(user, doc.id)
    crit_history = {c.id: s.critique_history(user, c.id) for c in doc.candidates}

# 2. revise: the same order as when it was annotated; a draft that survives reruns
widgets.show_document(doc, project.context_fields, expanded=False)
order = A.display_order(user.id, doc.id, [c.id for c in doc.candidates])
key = f"revise:{user.id}:{doc.id}:{ranking.version}"
if key not in st.session_state:
    st.session_state[key] = A.Draft.from_saved(doc, ranking, critiques)
draft: A.Draft = st.session_state[key]
nonce = st.session_state.setdefault(f"revise_nonce:{doc.id}", 0)  # bumped by Discard: fresh widgets
names = widgets.draft_editor(project, doc, draft, order, prefix=f"revise{ranking.version}.{nonce}")
saved = A.Draft.from_saved(doc, ranking, critiques)
changed = A.is_changed(draft, saved)
found = A.problems(project, doc, draft, names) or ([] if changed else ["you change the ranking or a critique."])
col1, col2 = st.columns(2)
with col1:
    save = st.button("Save revision", type="primary", disabled=bool(found), icon=":material/save:", width="stretch",
                     key="mine_save")
with col2:
    if st.button("Discard changes", disabled=not changed, width="stretch"):
        del st.session_state[key]
        st.session_state[f"revise_nonce:{doc.id}"] = nonce + 1
        st.rerun()
if flash:  # under the button just pressed, where the person is (a toast sits at the page's top)
    st.success(flash, icon=":material/check_circle:")
widgets.show_problems(found)
if changed:  # a changed critique is a new version: its refinements stay with the old one
    with session.store() as s:
        lost = A.refinements_left_behind(s, draft, saved, critiques)
    for cid, refs in lost.items():
        reviewed = " (one of them accepted on Review)" if any(r.accepted for r in refs) else ""
        st.warning(f"Saving changes the critique of {names[cid]}: the new version starts without the "
                   f"{len(refs)} refinement{'s' if len(refs) != 1 else ''} of the old one{reviewed}, which "
                   "leave the ILF data. Discard changes to keep them.", icon=":material/warning:")
annotate_screen.install_keys(save_key="mine_save")  # number keys, Ctrl+Enter, Escape keeps a critique
if save:
    try:
        with session.store() as s:
            new, crits = A.save(s, user, project, doc, draft, names)
    except TokenwiseError as e:
        ui.show_error(e)
    else:
        st.session_state.pop(key, None)
        st.session_state["mine_flash"] = (f"Saved: ranking version {new.version}; "
                                          "earlier versions are kept in the history below.")
        st.rerun()

# 3. history: every version, oldest first
with st.expander(f"History ({len(history)} ranking version{'s' if len(history) != 1 else ''})"):
    for r in history:
        order_text = " > ".join(" = ".join(names.get(cid, "?") for cid in group) for group in r.order)
        st.text(f"Ranking v{r.version}{' (current)' if r.current else ''}, {r.created[:19].replace('T', ' ')}: "
                f"{order_text}" + (f"  ({r.seconds:.0f} s)" if r.seconds is not None else ""), width="stretch")
    for cid in order:
        for k in crit_history[cid]:
            quote = ""
            if k.span_start is not None:
                text = next(c.text for c in doc.candidates if c.id == cid)
                quote = f'  [quote: "{text[k.span_start:k.span_end]}"]'
            st.text(f"Critique of {names[cid]} v{k.version}{' (current)' if k.current else ''}, "
                    f"{k.created[:19].replace('T', ' ')}: {k.text}{quote}", width="stretch")
