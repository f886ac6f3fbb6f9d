"""Projects (admin): the list with counts; create one; change its settings; import; export.

Each tab chooses its own project (the import's target is chosen inside the import form, with no
default). The chosen tab stays across reruns, and an import's outcome stays on screen while its
file and project stay chosen: what was added, or the problems grouped by kind with counts and
their first lines; another file or project clears it.
"""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from annotate_app import admin, ui, widgets
from annotate_app.widgets import escape_markdown
from training.data.problem_groups import group_problems
from training.errors import ImportFileError, TokenwiseError, ValidationError
from training.store import PROJECT_KINDS

KIND_HELP = "What the candidates are.\n\n" + "\n\n".join(f"**{k}**: {v}" for k, v in PROJECT_KINDS.items())

user = ui.require_admin()
st.title("Projects")
if msg := st.session_state.pop("projects_flash", None):
    st.success(escape_markdown(msg))

# 1. every project with its counts: drawn at the end of the run, so an import's counts show at once
table_slot = st.container()
with ui.store() as s:
    projects = s.list_projects()
by_name = {p.name: p for p in projects}


def choose(label: str, key: str):
    """A project picker inside a tab; None until there is a project."""
    if not projects:
        st.info("No project yet: create one in the first tab.")
        return None
    current = st.session_state.get("current_project")
    names = list(by_name)
    name = st.selectbox(label, names, index=names.index(current) if current in names else 0, key=key)
    return by_name[name]


# the chosen tab stays chosen across reruns (an import, a save)
create_tab, settings_tab, import_tab, export_tab = st.tabs(
    ["New project", "Settings", "Import", "Export"], key="projects_tab", on_change="rerun")

# 2. create a project (the store checks every value and says what is wrong)
# (a new form after each project made, so the next one starts from the defaults, not the last values)
with create_tab, st.form(f"create_project_{st.session_state.get('create_project_n', 0)}"):
    name = st.text_input("Name", help="Unique; used on the command line too (tokenwise ... --project NAME).")
    kind = st.selectbox("Task", list(PROJECT_KINDS), help=KIND_HELP)
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
            ui.show_error(e)
        else:
            st.session_state["projects_flash"] = f"Project {created.name!r} created."
            st.session_state["current_project"] = created.name
            st.session_state.pop("projects_project", None)  # so the picker moves to the new project
            st.session_state["create_project_n"] = st.session_state.get("create_project_n", 0) + 1
            st.rerun()

# 3. settings of the chosen project (name and K stay: the data depends on them; the task only
#    changes the prompts models get)
with settings_tab:
    project = choose("Project", key="projects_project")
if project is not None:
    with ui.store() as s:
        people = s.count_people()
        fields = s.meta_fields(project.id)
    if project.overlap > people:  # a target nobody can reach: say so where it is set
        settings_tab.warning(f"{project.overlap} annotators per document, but {people} "
                             f"{'person can' if people == 1 else 'people can'} annotate: no document can be "
                             "fully ranked until more are added (People page) or the overlap is lowered.")
    with settings_tab, st.form(f"settings_{project.id}"):
        st.caption(f"{escape_markdown(project.name)}: K = {project.k} (fixed once created)")
        new_kind = st.selectbox(
            "Task", list(PROJECT_KINDS), index=list(PROJECT_KINDS).index(project.kind),
            help=KIND_HELP + "\n\nChanging it changes only the prompts models get (generation, policy training, "
                 "ILF) and whether they read the title; the documents, rankings and critiques stay as they are.")
        new_instructions = st.text_area("Instructions for annotators", value=project.instructions)
        new_overlap = st.number_input("Annotators per document (overlap)", value=project.overlap, step=1)
        new_ties = st.checkbox("Allow ties", value=project.allow_ties)
        new_require = st.checkbox("Require a critique of the lowest-ranked candidate",
                                  value=project.require_critique_lowest)
        new_show = st.checkbox("Show per-token rewards to annotators", value=project.show_rewards)
        new_fields = st.multiselect(
            "Fields shown under each document", list(dict.fromkeys([*project.context_fields, *fields])),
            default=project.context_fields, placeholder="none" if fields else "the documents have no other fields",
            help="Other fields of the imported documents (columns the import kept beside text and candidates), "
                 "e.g. the passages an answer should come from. Annotators see them under the document's text, "
                 "in this order. Leave out fields that give the answer away (ratings, preferences, model names).")
        if st.form_submit_button("Save settings"):
            try:
                with ui.store() as s:
                    s.update_project(project.id, kind=new_kind, instructions=new_instructions,
                                     overlap=int(new_overlap), allow_ties=new_ties, require_critique_lowest=new_require,
                                     show_rewards=new_show, context_fields=new_fields)
            except ValidationError as e:
                ui.show_error(e)
            else:
                st.session_state["projects_flash"] = f"Settings of {project.name!r} saved."
                st.rerun()

# 4. import: the target project is chosen here; a file lands whole or not at all; the result stays
with import_tab:
    if (made := st.session_state.pop("import_made", None)) in by_name:  # a project made by the last import:
        st.session_state["import_project"] = made                       # chosen now, as any other
    choice = st.selectbox("Import into project", [*by_name, admin.NEW_PROJECT], index=None, key="import_project",
                          placeholder="Choose the project to import into, or a new one")
    target, new_name = choice, None
    if choice == admin.NEW_PROJECT:
        new_name = st.text_input("New project's name", key="import_new_name", placeholder="e.g. arena-preferences",
                                 help="Made when the file is imported, with K (the number of outputs per document) "
                                      "from the file's first row; nothing is made if the file is refused.").strip()
        target = new_name or None
        if new_name in by_name:
            ui.show_error(f"A project named {new_name!r} already exists: choose it above to import into it.")
            target = None
    upload = st.file_uploader("File", type=["jsonl", "json", "csv", "tsv", "parquet", "gz"], key="import_upload")
    fmt_col, map_col = st.columns([1, 2])
    fmt = fmt_col.selectbox("Format", admin.IMPORT_FORMATS, format_func=lambda f: admin.FORMAT_HELP[f],
                            key="import_format")
    mapping = map_col.text_input(
        "Column mapping (optional)", key="import_mapping", placeholder="prompt=question,chosen=good,rejected=bad",
        help="NAME=COLUMN pairs: the file's COLUMN is read as Tokenwise's NAME (as `tokenwise import --map`); "
             "COLUMN+COLUMN+... makes a list, e.g. text=question,candidates=answer_1+answer_2.")
    rater_col, score_col, source_col = st.columns(3)
    rater = rater_col.text_input("Rater column (optional)", key="import_rater",
                                 help="the column naming who judged a row (default: worker, annotator, rater, ...)")
    score = score_col.text_input("Score column (optional)", key="import_score",
                                 help="ratings and scored: a response's score, a dotted path (default: overall_score, "
                                      "score, rating; scored rows also helpfulness, reward, rank)")
    source = source_col.text_input("Annotator of imported judgments", value="import", key="import_source",
                                   help="rankings and critiques without a rater are saved as this annotator's "
                                        "(created, without a usable token, if missing); a row's rater as "
                                        "NAME:rater. Label Studio and Argilla exports: label-studio and argilla "
                                        "unless changed here.")
    skip_bad = st.checkbox("Skip rows with problems", key="import_skip_bad",
                           help="Leave out the rows that cannot be read (the first ones are named) and import the rest. "
                                "Off: one bad row refuses the whole file, and nothing is imported.")
    options = None
    try:
        options = admin.import_options(mapping, rater, score)
    except ValueError as e:
        ui.show_error(e)
        mapping = None
    unreadable = False  # what the preview cannot read, the import cannot either: Import waits for a fix
    if upload is not None and mapping is not None:
        try:
            pv = admin.preview_upload(upload.name, upload.getvalue(), options.mapping if options else None,
                                      options=options, fmt=fmt)
        except TokenwiseError as e:
            unreadable = True
            st.warning(f"Cannot read {escape_markdown(upload.name)}: {escape_markdown(str(e))}")
        else:
            unreadable = pv.detected is None and fmt == "auto"
            st.caption(f"First {len(pv.rows)} rows as they will be read"
                       + (f"; detected format: **{pv.detected}**" if pv.detected
                          else f"; {escape_markdown(pv.note)}") + ".")
            ui.table(pd.DataFrame(pv.rows))
            if (pv.detected is not None or fmt != "auto") and (choice == admin.NEW_PROJECT or target in by_name):
                shape_key = (upload.file_id, fmt, repr(options))  # (read once per file and reading of it)
                if st.session_state.get("import_shape", (None,))[0] != shape_key:
                    try:
                        shape = admin.upload_shape(upload.name, upload.getvalue(), fmt=fmt, options=options)
                    except TokenwiseError as e:
                        shape = (None, None, str(e))
                    st.session_state["import_shape"] = (shape_key, shape)
                note = admin.target_note(st.session_state["import_shape"][1], None if choice == admin.NEW_PROJECT
                                         else (target, by_name[target].k))
                if note is not None:
                    (st.caption if note[0] == "caption" else st.warning)(escape_markdown(note[1]))
            if pv.read:
                st.caption("The same rows as Tokenwise reads them: the prompt, the candidates numbered, the ranking "
                           "by those numbers (= a tie; one per rater), the raters, and what is wrong with a row it cannot read.")
                ui.table(pd.DataFrame(pv.read), key="import_read")
    ready = upload is not None and target is not None and mapping is not None and not unreadable
    # an outcome belongs to one upload (a file chosen again is a new one) into one project
    this_import = (upload.file_id, target) if upload is not None else None
    last = st.session_state.get("import_result")
    if last is not None and last[0] != this_import:  # another file or project: that outcome is not about it
        del st.session_state["import_result"]
    if st.button("Import", type="primary", disabled=not ready, key="import_go",
                 help="The preview cannot read this file as it is: choose its Format or a Column mapping"
                 if unreadable else None):
        try:
            with ui.store() as s:
                result = admin.import_upload(s, target, upload.name, upload.getvalue(), fmt=fmt,
                                             source_annotator=source, options=options, skip_bad=skip_bad,
                                             create=choice == admin.NEW_PROJECT)
        except ImportFileError as e:
            st.session_state["import_result"] = (this_import, "refused", upload.name, target, e)
        except TokenwiseError as e:
            st.session_state["import_result"] = (this_import, "error", upload.name, target, str(e))
        else:
            st.session_state["import_result"] = (this_import, "done", upload.name, target,
                                                 admin.import_summary(result))
            if choice == admin.NEW_PROJECT:
                st.session_state["import_made"] = target
                st.rerun()
    if last := st.session_state.get("import_result"):  # kept on screen while its file and project are chosen
        _, outcome, name, into, detail = last
        if outcome == "done":
            st.success(f"{escape_markdown(name)} → {escape_markdown(into)}: {escape_markdown(detail)}")
        elif outcome == "error":
            st.error(f"{escape_markdown(name)}: nothing was imported. "
                     f"{escape_markdown(detail.removeprefix(f'import {name}: '))}")
        else:
            groups = group_problems(detail.problems)
            st.error(f"{escape_markdown(name)} was refused: nothing was imported into {escape_markdown(into)}. "
                     f"{detail.count()} of {len(groups)} kind(s)"
                     + (f" {escape_markdown(detail.stopped())}" if detail.stopped_at is not None else "") + "; "
                     "fix them and upload again" + ("." if skip_bad else ", or tick \"Skip rows with problems\" to "
                                                    "import the rows that have none, if any."))
            for g in groups:
                widgets.plain(g.summary())
            with st.expander("Every problem, line by line"):
                ui.table(pd.DataFrame(detail.problems, columns=["line", "field", "message"]))

# 5. export: every kind in every format (hf: the `datasets` folder, zipped); the file is built when
#    its button is clicked, after the admin is checked again (ui.guarded): a revoked admin's click
#    builds nothing
with export_tab:
    source_project = choose("Export from project", key="export_project")
    if source_project is not None:
        st.caption("Current versions of rankings and critiques. hf: a Hugging Face `datasets` folder "
                   "(as `tokenwise export --format hf`), in a .zip.")
        with ui.store() as s:
            accepted = s.count_accepted_refinements(source_project.id)
        for what in admin.export_kinds():
            cols = st.columns([2, 1, 1, 1])
            empty = what.startswith("ilf-") and not accepted  # nothing to build: say so, not a dead button
            cols[0].markdown(f"**{what}**" + (" · no accepted refinement yet" if empty else ""),
                             help="No accepted refinement yet: refine and select (Training page), then accept "
                             "them on the Review page." if empty else None)
            for col, out_fmt in zip(cols[1:], admin.EXPORT_FORMATS):
                col.download_button(
                    out_fmt, data=ui.guarded(functools.partial(admin.export_bytes, ui.db_path(), source_project.id,
                                                               what, out_fmt), "admin"),
                    file_name=f"{source_project.name}-{what}.{admin.FILE_NAME[out_fmt]}", mime=admin.MIME[out_fmt],
                    key=f"export_{what}_{out_fmt}", on_click="ignore", icon=":material/download:", disabled=empty)

# 1. (drawn last, at the top) every project with its counts
with ui.store() as s:
    table = []
    for p in s.list_projects():
        pr = s.progress(p.id)
        table.append({
            "project": p.name, "task": p.kind, "K": p.k, "overlap": p.overlap, "documents": pr.documents,
            "complete": pr.complete, "rankings": pr.rankings, "critiques": pr.critiques,
            "annotators": len(pr.per_annotator), "created": widgets.when(p.created, seconds=False),
        })
with table_slot:
    if table:
        ui.table(pd.DataFrame(table))
    else:
        st.info("No project yet: create the first one below.")
