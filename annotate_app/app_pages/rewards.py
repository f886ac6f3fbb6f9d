"""Rewards: per-token reward heatmaps of a document's candidates, beside the human ranks.

Admins see every project; annotators see projects whose `show_rewards` is on, and only their own
ranks. Token rewards come from the cache (`tokenwise score` or a Score job): no model runs here.
"""

import pandas as pd
import streamlit as st

from annotate_app import ui, widgets
from training.annotation.browse import candidate_names
from training.rewards.heatmap import (
    Scale,
    backbone_kind,
    heatmap_figure,
    legend_html,
    token_spans_html,
    unscored_chars,
    win_probabilities,
)
from training.rewards.report import is_small_data, small_data_warning

user = ui.require_user()
st.title("Rewards")
st.caption("How a learned token-level reward model scores each token of the candidates. Blue tokens have a "
           "higher reward than this document's average token, red ones a lower one; hover a token for its value.")

with ui.store() as s:
    projects = [p for p in s.list_projects() if user.is_admin or p.show_rewards]
if not projects:
    st.info("No project shows rewards yet." if not user.is_admin
            else "There is no project yet. Create one on the Projects page.")
    st.stop()

names = [p.name for p in projects]
current = st.session_state.get("current_project")
name = st.selectbox("Project", names, index=names.index(current) if current in names else 0, key="rw_project")
st.session_state["current_project"] = name
project = projects[names.index(name)]

with ui.store() as s:
    models = s.scored_models(project.id)
    docs = s.documents(project.id, with_candidates=False)
if not models:
    code = " ".join(project.name.split()).replace("`", "'")  # one line in a code span: nothing else is Markdown
    st.info("No reward model has scored this project yet: train one on the Training page "
            f"(or `tokenwise train reward --project {code} ...`), then score it there "
            f"or run `tokenwise score --model DIR --db DB --project {code}`.")
    st.stop()

ids = [m.id for m in models]
default = ids.index(project.active_reward_model) if project.active_reward_model in ids else 0
model_id = st.selectbox(
    "Reward model", ids, index=default, key="rw_model",
    format_func=lambda i: next(f"#{m.id} {m.name or ''} ({m.card.get('aggregation', '?')}"
                               + (", active" if m.id == project.active_reward_model else "") + ")"
                               for m in models if m.id == i))
model = models[ids.index(model_id)]
doc_ids = [d.id for d in docs]
titles = {d.id: widgets.doc_name(d, 90) for d in docs}
doc_id = st.selectbox("Document", doc_ids, key="rw_doc", format_func=lambda i: f"{titles[i]}  ·  {i}")

with ui.store() as s:
    doc = s.get_document(doc_id)
    cached = s.token_rewards(model.id, [c.id for c in doc.candidates])
    rankings = [r for r in s.rankings_of([doc.id]).get(doc.id, []) if user.is_admin or r.annotator_id == user.id]
    people = {a.id: a.name for a in s.list_annotators()} if user.is_admin else {user.id: "you"}

with st.expander("Document", expanded=False):
    st.text(doc.text)

scored = [c for c in doc.candidates if c.id in cached]
if not scored:
    st.info("This model has not scored this document's candidates yet (they may be newer than the "
            "last scoring run): score the project again.")
    st.stop()

# candidates named as on the Data page: 1..K for an admin, the annotator's own letters for them
names = candidate_names(user, doc.id, [c.id for c in doc.candidates])
scale = Scale.fit([cached[c.id].rewards for c in scored])
scored.sort(key=lambda c: cached[c.id].score if cached[c.id].score is not None else float("-inf"), reverse=True)
p_best = dict(zip([c.id for c in scored], win_probabilities([cached[c.id].score for c in scored])))

kind, meaning = backbone_kind(model.card.get("arch"))
what = "sequence-level baseline: only the last token's score counts; " if model.card.get("sequence_level") else ""
backbone = str(model.base_model or model.card.get("base_model", "?"))
if not user.is_admin:  # the name, not where it lies on the server
    backbone = backbone.rstrip("/").rsplit("/", 1)[-1]
st.caption(f"Backbone: {kind}, {widgets.escape_markdown(backbone)}. {what}{meaning.capitalize()}.")
if is_small_data(model.metrics):
    st.warning(small_data_warning(model.metrics))

rows = []
for i, c in enumerate(scored, 1):
    ranks = {people.get(r.annotator_id, str(r.annotator_id)): r.ranks.get(c.id) for r in rankings}
    rows.append({"candidate": names[c.id], "model rank": i,
                 "P(best) by the model": None if p_best[c.id] is None else round(100 * p_best[c.id], 1),
                 **{f"rank by {k}": v for k, v in ranks.items()}, "score": cached[c.id].score, "text": c.text[:80]})
ui.table(pd.DataFrame(rows), column_config={"P(best) by the model": st.column_config.NumberColumn(
    format="%.1f%%", help=("the model's probability that this candidate is the best of them (softmax of its scores, "
                           "as in the ranking loss it learned with)"))})

st.html(legend_html(scale))
for i, c in enumerate(scored, 1):
    tr = cached[c.id]
    human = ", ".join(f"{widgets.escape_markdown(people.get(r.annotator_id, '?'))}: {r.ranks.get(c.id)}"
                      for r in rankings)
    chance = "" if p_best[c.id] is None else f" · P(best) {100 * p_best[c.id]:.1f}%"
    st.markdown(f"**Candidate {names[c.id]}** · model rank {i}{chance}"
                + (f" · human rank {human}" if human else ""))
    st.html(token_spans_html(tr.tokens, tr.rewards, scale))
    if cut := unscored_chars(c.text, tr.tokens):  # the model's candidate length: say where it stopped reading
        st.caption(f"… and about {cut:,} more characters that the reward model does not read (it reads "
                   f"the first {len(tr.tokens)} tokens of a candidate; see max_candidate_length).")

st.plotly_chart(heatmap_figure([cached[c.id].tokens for c in scored], [cached[c.id].rewards for c in scored],
                               labels=[f"candidate {names[c.id]}" for c in scored], scale=scale),
                key="rw_heatmap")
