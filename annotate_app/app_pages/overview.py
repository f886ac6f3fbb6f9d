"""Overview (admin): per project, annotations over time, usable data, models, and what to do next."""

from __future__ import annotations

import math

import pandas as pd
import plotly.express as px
import streamlit as st

from annotate_app import ui
from annotate_app.widgets import escape_markdown
from training.annotation.overview import next_steps, project_summary
from training.rewards.report import headline, is_small_data

user = ui.require_admin()
st.title("Overview")

project = ui.pick_project(key="overview_project")
if project is None:
    st.stop()

with ui.store() as s:
    summary = project_summary(s, project.id)

# 1. what to do next
st.subheader("Next steps")
for line in next_steps(summary):
    st.markdown(f"- {escape_markdown(line)}")

# 2. data at a glance
c = st.columns(5)
c[0].metric("Documents", summary.documents, help=f"{summary.complete} reached the overlap")
c[1].metric("Rankings", summary.rankings, help="current rankings (revisions count once)")
c[2].metric("Usable rankings", summary.usable_rankings,
            help="rankings with at least one untied pair: what the reward model learns from")
c[3].metric("Ordered pairs", summary.pairs, help="candidate pairs ranked one above the other (ties dropped)")
c[4].metric("Critiques", summary.critiques, help=f"{summary.refinements} refinements, {summary.accepted} accepted")

# 3. annotations over time
if summary.activity:
    act = pd.DataFrame(summary.activity)
    act["created"] = pd.to_datetime(act["created"], utc=True, format="ISO8601")
    act = act.sort_values("created")
    act["total"] = act.groupby("what").cumcount() + 1
    fig = px.line(act, x="created", y="total", color="what", markers=len(act) < 30, line_shape="hv",
                  title="Annotations over time (cumulative)", labels={"created": "", "total": "count"})
    st.plotly_chart(fig, width="stretch")
else:
    st.caption("No rankings or critiques yet.")

# 4. models and agreement
st.subheader("Models")
c = st.columns(3)
latest = summary.reward_models[0] if summary.reward_models else None
if latest is None:
    c[0].metric("Reward models", 0)
else:
    m = latest.metrics
    if is_small_data(m):
        c[0].metric(f"Latest reward model #{latest.id}", "small data", help="no test split: too few rankings")
        c[1].metric("Ranked lists it learned from", m.get("train_lists", 0) + m.get("val_lists", 0))
    else:
        c[0].metric(f"Latest reward model #{latest.id}", f"{m['test_pairwise_accuracy']:.3f}",
                    help="test-split pairwise accuracy (documents never used to train or choose the epoch)")
        c[1].metric("95% interval (test)", f"{m['test_ci_low']:.3f}-{m['test_ci_high']:.3f}",
                    delta=f"{100 * m['above_length_baseline']:+.1f} pts vs length",
                    help=f"n = {m['test_pairs']} test pairs; delta: above the better of longer/shorter wins")
c[2].metric("Active reward / policy",
            f"{'#' + str(summary.active_reward.id) if summary.active_reward else '-'} / "
            f"{'#' + str(summary.active_policy.id) if summary.active_policy else '-'}")
c = st.columns(2)
c[0].metric("Krippendorff's alpha", "n/a" if math.isnan(summary.alpha) else f"{summary.alpha:.3f}",
            help="agreement between annotators on shared documents (Progress page has the details)")
c[1].metric("Documents ranked by 2+ annotators", summary.shared_documents)
if latest is not None:
    (st.warning if is_small_data(latest.metrics) else st.caption)(headline(latest.metrics))
