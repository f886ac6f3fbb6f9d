"""Projects (admin): the list with counts; create one; change its settings; import; export."""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from annotate_app import admin, ui
from annotate_app.widgets import escape_markdown
from training.errors import ImportFileError, TokenwiseError, ValidationError

user = ui.require_admin()
st.title("Projects")
if msg := st.session_state.pop("projects_flash", None):
    st.success(escape_markdown(msg))

# 1. every project with its counts
with ui.store() as s:
    projects = s.list_projects()
    table = []
    for p in projects:
        pr = s.progress(p.id)
        table.append({
            "project": p.name, "task": p.kind, "K": p.k, "overlap": p.overlap, "documents": pr.documents,
            "complete": pr.complete, "rankings": pr.rankings, "critiques": pr.critiques,
            "annotators": len(pr.per_annotator), "created": p.created[:16].replace("T", " "),
        })
if table:
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
else:
    st.info("No project yet: create the first one below.")

project = ui.pick_project("Project (for settings, import and export)", key="projects_project") if projects else None
create_tab, settings_tab, import_tab, export_tab = st.tabs(["New project", "Settings", "Import", "Export"])

# 2. create a project (the store checks every value and says what is wrong)
with create_tab, st.form("create_project"):
    name = st.text_input("Name", help="Unique; used on the command line too (tokenwise ... --project NAME).")
    kind = st.selectbox("Task", ["summarize", "prompt"],
                        help="summarize: rank summaries of a document; prompt: rank prompts for a task.")
    c1, c2 = st.columns(2)
    k = c1.number_input("Candidates per document (K)", value=4, step=1,
                        help="How many outputs an annotator ranks at once (at least 2).")
    overlap = c2.number_input("Annotators per document (overlap)", value=2, step=1,
                              help="How many annotators rank each document; 2 or more gives agreement statistics.")
    instructions = st.text_area("Instructions for annotators")
    allow_ties = st.checkbox("Allow ties")
    require_critique = st.checkbox("Require a critique of the lowest-ranked candidate")
    show_rewards = st.checkbox("Show per-token rewards to annotators")
    if st.form_submit_button("Create project", type="primary"):
        try:
            with ui.store() as s:
                created = s.create_project(
                    name, kind=kind, k=int(k), overlap=int(overlap), instructions=instructions,
                    allow_ties=allow_ties, require_critique_lowest=require_critique, show_rewards=show_rewards)
        except ValidationError as e:
            st.error(str(e))
        else:
            st.session_state["projects_flash"] = f"Project {created.name!r} created."
            st.session_state["current_project"] = created.name
            st.session_state.pop("projects_project", None)  # so the picker moves to the new project
            st.rerun()

if project is None:
    st.stop()

# 3. settings of the chosen project (name, task and K stay: the data depends on them)
with settings_tab, st.form(f"settings_{project.id}"):
    st.caption(f"{escape_markdown(project.name)}: task {project.kind}, K = {project.k} (fixed once created)")
    new_instructions = st.text_area("Instructions for annotators", value=project.instructions)
    new_overlap = st.number_input("Annotators per document (overlap)", value=project.overlap, step=1)
    new_ties = st.checkbox("Allow ties", value=project.allow_ties)
    new_require = st.checkbox("Require a critique of the lowest-ranked candidate",
                              value=project.require_critique_lowest)
    new_show = st.checkbox("Show per-token rewards to annotators", value=project.show_rewards)
    if st.form_submit_button("Save settings"):
        try:
            with ui.store() as s:
                s.update_project(project.id, instructions=new_instructions, overlap=int(new_overlap),
                                 allow_ties=new_ties, require_critique_lowest=new_require,
                                 show_rewards=new_show)
        except ValidationError as e:
            st.error(str(e))
        else:
            st.session_state["projects_flash"] = f"Settings of {project.name!r} saved."
            st.rerun()

# 4. import: a file lands whole or not at all
with import_tab:
    st.caption(f"Into project **{escape_markdown(project.name)}**. JSONL/CSV documents with candidates, TRL pairwise "
               "preferences, or SLF5K rows (schemas in data/).")
    upload = st.file_uploader("File", type=["jsonl", "json", "csv"], key=f"upload_{project.id}")
    fmt = st.selectbox("Format", admin.IMPORT_FORMATS, help="auto: tell the format from the file.")
    source = st.text_input("Annotator of imported preferences and critiques", value="import",
                           help="pairs and slf5k files carry a ranking or a critique: it is saved as this "
                                "annotator's (created, without a usable token, if missing).")
    if st.button("Import", type="primary", disabled=upload is None):
        try:
            with ui.store() as s:
                result = admin.import_upload(s, project.id, upload.name, upload.getvalue(), fmt=fmt,
                                             source_annotator=source)
        except ImportFileError as e:
            st.error(f"{escape_markdown(upload.name)} was refused: nothing was imported. "
                     f"{len(e.problems)} problem(s); fix them and upload again.")
            st.dataframe(pd.DataFrame(e.problems, columns=["line", "field", "message"]),
                         hide_index=True, width="stretch")
        except TokenwiseError as e:
            st.error(f"Nothing was imported: {e}")
        else:
            st.session_state["projects_flash"] = f"{upload.name}: {admin.import_summary(result)}"
            st.rerun()  # redraw the counts above

# 5. export: every kind in every format; the file is built when its button is clicked, after the
#    admin is checked again (ui.guarded): a revoked admin's click builds nothing
with export_tab:
    st.caption(f"From project **{escape_markdown(project.name)}**: current versions of rankings and critiques.")
    for what in admin.export_kinds():
        cols = st.columns([2, 1, 1])
        cols[0].markdown(f"**{what}**")
        for col, out_fmt in zip(cols[1:], admin.EXPORT_FORMATS):
            col.download_button(
                out_fmt, data=ui.guarded(functools.partial(admin.export_bytes, ui.db_path(), project.id, what,
                                                           out_fmt), "admin"),
                file_name=f"{project.name}-{what}.{out_fmt}", mime=admin.MIME[out_fmt],
                key=f"export_{what}_{out_fmt}", on_click="ignore", icon=":material/download:")
