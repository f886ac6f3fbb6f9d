"""Models (admin): every checkpoint with its card, two reward models side by side, the active ones.

The active reward model colours the heatmaps and can select refinements; the active policy is
what a 'Generate candidates' job runs when no model path is given.
"""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from annotate_app import ui
from annotate_app.widgets import escape_markdown
from training.errors import TokenwiseError
from training.rewards.report import headline, is_small_data

user = ui.require_admin()
st.title("Models")

project = ui.pick_project(key="models_project")
if project is None:
    st.stop()

with ui.store() as s:
    models = s.list_models(project=project.id)
if not models:
    st.info(f"No model is registered for {escape_markdown(project.name)} yet: train a reward model on the Training page.")
    st.stop()

KEY_METRICS = ("test_pairwise_accuracy", "test_ci_low", "test_ci_high", "test_pairs", "above_length_baseline",
               "val_pairwise_accuracy", "val_kendall_tau", "val_loss", "eval_loss", "train_loss")


def label(m) -> str:
    flags = []
    if m.id == project.active_reward_model:
        flags.append("active reward")
    if m.id == project.active_policy_model:
        flags.append("active policy")
    return f"#{m.id} {m.name or m.kind}" + (f" ({', '.join(flags)})" if flags else "")


def scalar_metrics(m) -> dict:
    return {k: v for k, v in m.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# 1. every checkpoint --------------------------------------------------------------------------
rows = []
for m in models:
    row = {"id": m.id, "kind": m.kind, "name": m.name or "", "base": m.base_model or "",
           "active": "reward" if m.id == project.active_reward_model
           else "policy" if m.id == project.active_policy_model else "",
           "job": m.job_id, "created": m.created}
    if m.kind == "reward":
        row["small data"] = is_small_data(m.metrics)
    row.update({k: m.metrics.get(k) for k in KEY_METRICS if k in m.metrics})
    rows.append(row)
ui.table(pd.DataFrame(rows))

# 2. one model's card, and making it active ---------------------------------------------------
by_id = {m.id: m for m in models}
chosen = st.selectbox("Model", list(by_id), format_func=lambda i: label(by_id[i]), key="model_detail")
m = by_id[chosen]
c = st.columns(3)
c[0].markdown(f"**Kind** {m.kind}  \n**Base** {escape_markdown(m.base_model or '-')}")
c[1].markdown(f"**Path** {escape_markdown(m.path)}  \n**Job** {m.job_id or '-'} · **created** {m.created}")
snap = m.data_snapshot
c[2].markdown(f"**Data** {snap.get('n_lists', len(snap.get('ranking_ids', [])))} lists · "
              f"annotators: {escape_markdown(', '.join(snap.get('annotators', [])) or '-')}  \n"
              f"sha256 `{str(snap.get('sha256', '-'))[:16]}`")
if m.kind == "reward":  # the test split's figure (n, 95% interval, vs length), or the small-data warning
    (st.warning if is_small_data(m.metrics) else st.info)(headline(m.metrics))
metrics = scalar_metrics(m)
if metrics:
    ui.table(pd.DataFrame([{"metric": k, "value": v} for k, v in metrics.items()]))
with st.expander("Card"):
    st.code(json.dumps(m.card, indent=2, default=str), language="json")

b = st.columns(2)
role, attr = (("reward model", "active_reward_model") if m.kind == "reward"
              else ("policy", "active_policy_model"))
if m.id == getattr(project, attr):
    b[0].success(f"This is the project's active {role}.")
elif b[0].button(f"Make it the active {role}", key=f"make-{m.kind if m.kind == 'reward' else 'policy'}",
                 type="primary"):
    try:
        with ui.store() as s:
            s.update_project(project.id, **{attr: m.id})
    except TokenwiseError as e:
        ui.show_error(e)
    else:
        st.rerun()

# 3. two reward models side by side ------------------------------------------------------------
rewards = [x for x in models if x.kind == "reward"]
st.subheader("Compare reward models")
if len(rewards) < 2:
    st.caption("Train a second reward model (e.g. another aggregation) to compare them here.")
    st.stop()
ids = [x.id for x in rewards]
rby = {x.id: x for x in rewards}
c = st.columns(2)
a_id = c[0].selectbox("A", ids, index=0, format_func=lambda i: label(rby[i]), key="cmp_a")
b_id = c[1].selectbox("B", ids, index=1, format_func=lambda i: label(rby[i]), key="cmp_b")
a, bm = scalar_metrics(rby[a_id]), scalar_metrics(rby[b_id])
names = sorted(set(a) | set(bm))
cmp = pd.DataFrame({"metric": names, f"#{a_id}": [a.get(n) for n in names], f"#{b_id}": [bm.get(n) for n in names]})
cfg_a, cfg_b = rby[a_id].card.get("config", {}), rby[b_id].card.get("config", {})
ui.table(cmp)
diff = {k: (cfg_a.get(k), cfg_b.get(k)) for k in sorted(set(cfg_a) | set(cfg_b)) if cfg_a.get(k) != cfg_b.get(k)}
if diff:
    st.caption("Settings that differ: " + escape_markdown("; ".join(f"{k}: {va!r} vs {vb!r}"
                                                                   for k, (va, vb) in diff.items())))
shown = [n for n in KEY_METRICS if (n in a or n in bm) and n != "test_pairs"]  # a count has another scale
if shown:
    long = pd.DataFrame([{"metric": n, "model": f"#{i}", "value": src.get(n)}
                         for n in shown for i, src in ((a_id, a), (b_id, bm))])
    st.plotly_chart(px.bar(long, x="metric", y="value", color="model", barmode="group",
                           title="Test and validation metrics"), width="stretch")
