"""Rewards: per-token reward heatmaps of a document's candidates, beside the human ranks.

Admins see every project; annotators see projects whose `show_rewards` is on, and only their own
ranks. Token rewards come from the cache (`tokenwise score` or a Score job): no model runs here.
"""

import pandas as pd
import streamlit as st

from annotate_app import ui, widgets
from training.rewards.heatmap import heatmap_figure, legend_html, token_spans_html

user = ui.require_user()
st.title("Rewards")
st.caption("How a learned token-level reward model scores each token of the candidates. "
           "Blue tokens raise the reward, red ones lower it; hover a token for its value.")

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
    code = project.name.replace("`", "'")  # inside a code span nothing else is Markdown
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
titles = {d.id: (d.title or d.ext_id or f"document {d.id}")[:90] for d in docs}
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

lo = min(min(cached[c.id].rewards, default=0.5) for c in scored)
hi = max(max(cached[c.id].rewards, default=0.5) for c in scored)
vmin, vmax = min(lo, 0.5), max(hi, 0.5)
scored.sort(key=lambda c: cached[c.id].score if cached[c.id].score is not None else float("-inf"), reverse=True)

rows = []
for i, c in enumerate(scored, 1):
    ranks = {people.get(r.annotator_id, str(r.annotator_id)): r.ranks.get(c.id) for r in rankings}
    rows.append({"model order": i, "candidate": c.position + 1, "score": cached[c.id].score,
                 **{f"rank by {k}": v for k, v in ranks.items()}, "text": c.text[:80]})
st.dataframe(pd.DataFrame(rows), hide_index=True)

st.html(legend_html(vmin, vmax))
for i, c in enumerate(scored, 1):
    tr = cached[c.id]
    human = ", ".join(f"{widgets.escape_markdown(people.get(r.annotator_id, '?'))}: {r.ranks.get(c.id)}"
                      for r in rankings)
    st.markdown(f"**{i}. candidate {c.position + 1}** · score `{tr.score:.3f}`"
                + (f" · human rank {human}" if human else ""))
    st.html(token_spans_html(tr.tokens, tr.rewards, vmin, vmax))

st.plotly_chart(heatmap_figure([cached[c.id].tokens for c in scored], [cached[c.id].rewards for c in scored],
                               labels=[f"candidate {c.position + 1}" for c in scored], vmin=vmin, vmax=vmax),
                key="rw_heatmap")
