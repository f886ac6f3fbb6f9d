"""People (admin): who can sign in; add an annotator (its token is shown once); revoke one; a new
token for someone who lost theirs (or to let a revoked person in again)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from annotate_app import ui
from annotate_app.widgets import escape_markdown, when
from training.errors import TokenwiseError, ValidationError
from training.store import ROLES

user = ui.require_admin()
st.title("People")

# 1. everyone, revoked ones included (drawn here, filled after the add form so a new one shows)
table_slot = st.empty()

# 2. add one. The token exists only in this run's memory: it is drawn once and never stored,
#    so the next rerun (any click, or leaving the page) makes it disappear for good.
st.subheader("Add an annotator")
with st.form("add_annotator", clear_on_submit=True):
    name = st.text_input("Name")
    role = st.selectbox("Role", ROLES, help="admin: may see and change every project, person and job.")
    added = st.form_submit_button("Add", type="primary")
if added:
    try:
        with ui.store() as s:
            new, token = s.add_annotator(name, role)
    except ValidationError as e:
        if name.strip() and name.strip() == st.session_state.get("people_last_added"):  # a double click on Add
            st.info(f"{escape_markdown(name.strip())} was added a moment ago and their token was shown then. "
                    "If it was not copied, make them a new one under New token.")
        else:
            ui.show_error(e)
    else:
        st.session_state["people_last_added"] = new.name
        st.success(f"Added {escape_markdown(new.name)} ({new.role}). Their access token:")
        st.code(token, language=None)
        st.warning("Copy this token now and give it to them: it will not be shown again "
                   "(only a hash is stored). If it is lost, make them a new one below.")


def draw_people(people) -> None:
    table_slot.dataframe(
        pd.DataFrame([{"name": a.name, "role": a.role, "active": a.active,
                       "created": when(a.created, seconds=False)} for a in people]),
        hide_index=True, width="stretch",
    )


with ui.store() as s:
    people = s.list_annotators()
draw_people(people)

# 3. revoke one (not yourself: that would lock you out mid-session)
st.subheader("Revoke access")
if msg := st.session_state.pop("people_revoked", None):  # said where the click was, not at the top
    st.success(escape_markdown(msg))
revocable = [a.name for a in people if a.active and a.id != user.id and not a.is_source]  # sources cannot sign in
if not revocable:
    st.caption("Nobody else to revoke.")
else:
    who = st.selectbox("Annotator", revocable, key="revoke_who")
    # one confirmation per person (its key names them): ticking it for one never arms it for another
    sure = st.checkbox(f"Yes, revoke {escape_markdown(who)}: their token stops working at once. Their rankings and "
                       "critiques are kept.", key=f"revoke_sure:{who}")
    if st.button("Revoke", type="primary", disabled=not sure, key="revoke"):
        try:
            with ui.store() as s:
                s.revoke_annotator(who)
        except TokenwiseError as e:
            ui.show_error(e)
        else:
            st.session_state["people_revoked"] = f"{who} has been revoked."
            st.rerun()

# 4. a new token: the old one stops working (and its sessions end); a revoked person is let in again
st.subheader("New token")
renewable = {a.name: a for a in people if not a.is_source and a.id != user.id}
if not renewable:
    st.caption("Nobody else to give a new token to.")
else:
    with st.form("new_token", clear_on_submit=True):
        whom = st.selectbox("Annotator", list(renewable), key="token_who",
                            format_func=lambda n: n + ("" if renewable[n].active else " (revoked)"))
        sure = st.checkbox("Yes, make them a new token: the old one stops working at once, and a revoked "
                           "person can sign in again.", key="token_sure")
        asked = st.form_submit_button("Make a new token")
    if asked and not sure:
        st.warning("Tick the box to confirm: the old token stops working.")
    elif asked:
        try:
            with ui.store() as s:
                renewed, token = s.new_token(whom)
                people = s.list_annotators()
        except TokenwiseError as e:
            ui.show_error(e)
        else:
            draw_people(people)
            st.success(f"A new token for {escape_markdown(renewed.name)} ({renewed.role}):")
            st.code(token, language=None)
            st.warning("Copy this token now and give it to them: it will not be shown again.")
