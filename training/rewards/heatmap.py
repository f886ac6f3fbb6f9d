"""Per-token reward heatmaps as HTML (for st.html) and as a plotly figure. No streamlit here.

    html = token_spans_html(tokens, rewards)   # every token escaped, coloured, value on hover
    st.html(legend_html() + html)
    fig = heatmap_figure([tokens_a, tokens_b], [rewards_a, rewards_b])

Colours: a diverging scale centred at 0.5 (the reward of an untrained head): red below, white
at the centre, blue above. Whitespace inside tokens is kept (white-space: pre-wrap).
"""

from __future__ import annotations

import html
import math

LOW = (215, 48, 39)  # red
MID = (255, 255, 255)
HIGH = (33, 102, 172)  # blue
CENTRE = 0.5


def colour(value: float, vmin: float = 0.0, vmax: float = 1.0, centre: float = CENTRE) -> str:
    """rgb() of a value on the diverging scale; vmin maps to LOW, centre to white, vmax to HIGH."""
    if math.isnan(value):
        return "rgb(230,230,230)"
    if value >= centre:
        span = max(vmax - centre, 1e-12)
        t, end = min((value - centre) / span, 1.0), HIGH
    else:
        span = max(centre - vmin, 1e-12)
        t, end = min((centre - value) / span, 1.0), LOW
    r, g, b = (round(m + (e - m) * t) for m, e in zip(MID, end))
    return f"rgb({r},{g},{b})"


def _text_colour(value: float, vmin: float, vmax: float) -> str:
    """Dark text on light cells, white on saturated ones."""
    span = max(vmax - CENTRE, CENTRE - vmin, 1e-12)
    return "#ffffff" if abs(value - CENTRE) / span > 0.6 else "#111111"


def token_spans_html(tokens: list[str], rewards: list[float], vmin: float = 0.0, vmax: float = 1.0) -> str:
    """One <span> per token, background coloured by its reward, `title` = the exact value."""
    if len(tokens) != len(rewards):
        raise ValueError(f"tokens and rewards differ in length: {len(tokens)} vs {len(rewards)}")
    parts = []
    for i, (tok, r) in enumerate(zip(tokens, rewards)):
        r = float(r)
        parts.append(
            f'<span class="tw-tok" data-i="{i}" title="{html.escape(f"{r:.4f}", quote=True)}"'
            f' style="background:{colour(r, vmin, vmax)};color:{_text_colour(r, vmin, vmax)};'
            f'border-radius:3px;padding:1px 0">{html.escape(tok, quote=True)}</span>'
        )
    return ('<div class="tw-heatmap" style="white-space:pre-wrap;line-height:1.9;font-family:'
            'ui-monospace,SFMono-Regular,Menlo,monospace;font-size:0.95em">' + "".join(parts) + "</div>")


def legend_html(vmin: float = 0.0, vmax: float = 1.0) -> str:
    """A small colour bar: low reward, neutral 0.5, high reward."""
    stops = [vmin, (vmin + CENTRE) / 2, CENTRE, (CENTRE + vmax) / 2, vmax]
    cells = "".join(
        f'<span style="display:inline-block;width:2.2em;height:1em;background:{colour(v, vmin, vmax)};'
        f'border:1px solid #ddd" title="{v:.2f}"></span>' for v in stops)
    return (f'<div class="tw-legend" style="font-size:0.85em;margin:0.3em 0">'
            f'low {vmin:.2f} {cells} {vmax:.2f} high &nbsp;(neutral {CENTRE}; hover a token for its reward)</div>')


def heatmap_figure(candidates_tokens: list[list[str]], rewards: list[list[float]], labels: list[str] | None = None,
                   vmin: float = 0.0, vmax: float = 1.0):
    """A plotly heatmap: one row per candidate, one column per token position; hover shows the token."""
    import plotly.graph_objects as go

    if len(candidates_tokens) != len(rewards):
        raise ValueError("candidates_tokens and rewards differ in length")
    width = max((len(r) for r in rewards), default=0)
    z = [list(map(float, r)) + [None] * (width - len(r)) for r in rewards]
    text = [[t.replace(" ", "\u2423") for t in toks] + [""] * (width - len(toks)) for toks in candidates_tokens]
    labels = labels or [f"candidate {i + 1}" for i in range(len(rewards))]
    fig = go.Figure(go.Heatmap(
        z=z, text=text, y=labels, x=list(range(width)), zmin=vmin, zmax=vmax, zmid=CENTRE,
        colorscale=[[0.0, colour(0.0)], [0.5, colour(CENTRE)], [1.0, colour(1.0)]],
        hovertemplate="%{y}, position %{x}<br>token %{text}<br>reward %{z:.4f}<extra></extra>",
        colorbar={"title": {"text": "reward"}},
    ))
    fig.update_layout(xaxis_title="token position", yaxis={"autorange": "reversed"},
                      height=120 + 40 * len(rewards), margin={"l": 10, "r": 10, "t": 30, "b": 40})
    return fig
