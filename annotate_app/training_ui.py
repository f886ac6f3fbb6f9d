"""Widgets shared by the Training, Models and Overview pages: config forms and metric charts.

`config_widgets` draws one widget per field of a job kind's config (from training.forms specs,
help text included) and returns the raw values; training.jobs.kinds.submit_job validates them, so a
bad value is refused with a message naming the field before anything is queued.
No SQL and no torch here.
"""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from training.forms import FieldSpec


def _text_default(spec: FieldSpec) -> str:
    if spec.default is None:
        return ""
    if spec.type in ("list", "dict"):
        return json.dumps(spec.default)
    return str(spec.default)


def field_widget(spec: FieldSpec, key: str):
    """One widget for one config field; returns its raw value (validated later by training.forms)."""
    label = spec.name
    help_ = spec.help or None
    if spec.optional:
        help_ = f"{spec.help} (leave empty for none)" if spec.help else "leave empty for none"
    if spec.type == "bool":
        return st.checkbox(label, value=bool(spec.default), help=help_, key=key)
    if spec.choices:
        choices = list(spec.choices)
        index = choices.index(spec.default) if spec.default in choices else 0
        return st.selectbox(label, choices, index=index, help=help_, key=key)
    if spec.type == "int" and not spec.optional and spec.default is not None:
        return st.number_input(label, value=int(spec.default), step=1, help=help_, key=key)
    # floats as text: 5e-5 stays readable; forms.coerce parses and checks it
    return st.text_input(label, value=_text_default(spec), help=help_, key=key)


def config_widgets(specs: list[FieldSpec], prefix: str) -> dict:
    values = {}
    cols = st.columns(2)
    shown = [s for s in specs if not s.hidden]
    for i, spec in enumerate(shown):
        with cols[i % 2]:
            values[spec.name] = field_widget(spec, key=f"{prefix}.{spec.name}")
    return values


NOT_METRICS = frozenset({"step", "epoch", "template", "phase"})  # counters a runner reports beside its metrics


def metrics_frame(metrics: list[dict]) -> pd.DataFrame:
    """A job's metrics rows in long form: step, metric, value (numeric values only; not the step,
    epoch or template counters, which are positions rather than measurements)."""
    rows = [{"step": m.get("step", i), "metric": k, "value": v}
            for i, m in enumerate(metrics) for k, v in m.items()
            if k not in NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return pd.DataFrame(rows, columns=["step", "metric", "value"])


def metric_charts(metrics: list[dict], key: str) -> None:
    """One plotly line chart per metric (losses and accuracies have different scales)."""
    df = metrics_frame(metrics)
    if df.empty:
        st.caption("No metrics reported yet.")
        return
    names = list(dict.fromkeys(df["metric"]))
    cols = st.columns(min(len(names), 3))
    for i, name in enumerate(names):
        part = df[df["metric"] == name]
        fig = px.line(part, x="step", y="value", title=name, markers=len(part) < 30)
        fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis_title=None)
        with cols[i % len(cols)]:
            st.plotly_chart(fig, width="stretch", key=f"{key}-{name}")


def step_text(job) -> str:
    """'step 4 of 10', or the phase the runner names ('scoring candidates: 228 of 784', after a
    reward model's training); 'not started' while queued, 'starting' before a running job reports
    its first step (a job has no total before then: never '0/0' or 'of ?')."""
    if not job.total:
        return {"queued": "not started", "running": "starting"}.get(job.status, "-")
    phase = job.metrics[-1].get("phase") if job.metrics and isinstance(job.metrics[-1], dict) else None
    return f"{phase}: {job.step} of {job.total}" if isinstance(phase, str) and phase else f"step {job.step} of {job.total}"


def fraction(job) -> float:
    return min(max(job.step / job.total, 0.0), 1.0) if job.total else 0.0


def job_label(job, projects: dict[int, str], status: bool = True) -> str:
    """'#3 reward · demo (running)'. Without the status for select boxes: Streamlit keeps an
    option's first label, so a status in it would go stale while the job runs."""
    where = f" · {projects.get(job.project_id, job.project_id)}" if job.project_id else ""
    return f"#{job.id} {job.kind}{where}" + (f" ({job.status})" if status else "")


WORKER_LATE_S = 15.0  # a queued job older than this, with none running: ask whether a worker runs


def waited_s(jobs, now: float | None = None) -> float:
    """How long the oldest of these jobs has been waiting, in seconds (0 for none)."""
    import time
    from datetime import datetime

    now = time.time() if now is None else now
    ages = [now - datetime.fromisoformat(j.created).timestamp() for j in jobs if j.created]
    return max(ages, default=0.0)
