"""People (admin): who can sign in; add an annotator (its token is shown once); revoke one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from annotate_app import ui
from annotate_app.widgets import escape_markdown
from training.errors import TokenwiseError, ValidationError
from training.store import ROLES

user = ui.require_admin()
st.title("People")
if msg := st.session_state.pop("people_flash", None):
    st.success(escape_markdown(msg))

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
        ui.show_error(e)
    else:
        st.success(f"Added {escape_markdown(new.name)} ({new.role}). Their access token:")
        st.code(token, language=None)
        st.warning("Copy this token now and give it to them: it will not be shown again "
                   "(only a hash is stored). If it is lost, revoke them and add them again.")

with ui.store() as s:
    people = s.list_annotators()
table_slot.dataframe(
    pd.DataFrame([{"name": a.name, "role": a.role, "active": a.active,
                   "created": a.created[:16].replace("T", " ")} for a in people]),
    hide_index=True, width="stretch",
)

# 3. revoke one (not yourself: that would lock you out mid-session)
st.subheader("Revoke access")
revocable = [a.name for a in people if a.active and a.id != user.id]
if not revocable:
    st.caption("Nobody else to revoke.")
else:
    who = st.selectbox("Annotator", revocable, key="revoke_who")
    sure = st.checkbox(f"Yes, revoke {escape_markdown(who)}: their token stops working at once. Their rankings and "
                       "critiques are kept.", key="revoke_sure")
    if st.button("Revoke", type="primary", disabled=not sure):
        try:
            with ui.store() as s:
                s.revoke_annotator(who)
        except TokenwiseError as e:
            ui.show_error(e)
        else:
            st.session_state.pop("revoke_sure", None)
            st.session_state["people_flash"] = f"{who} has been revoked."
            st.rerun()
