"""Per-token reward heatmaps as HTML (for st.html) and as a plotly figure. No streamlit, no torch.

    scale = Scale.fit([c.rewards for c in candidates])    # centred on the document's mean reward
    st.html(legend_html(scale) + token_spans_html(tokens, rewards, scale))
    fig = heatmap_figure([tokens_a, tokens_b], [rewards_a, rewards_b], scale=scale)
    p_best = win_probabilities([score_a, score_b])        # the model's P(candidate ranks first)

Colours: a diverging scale centred on the mean token reward of the document's candidates (white),
red below and blue above, full colour at a robust spread (the 95th percentile of |r - mean|), so
a model whose rewards span 0.499-0.503 still shows its differences, and one outlier token does
not wash out the rest. Whitespace inside tokens is kept (white-space: pre-wrap); every token is
escaped (it is user data).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

LOW = (215, 48, 39)  # red
MID = (255, 255, 255)
HIGH = (33, 102, 172)  # blue
PERCENTILE = 95.0

BACKBONE_KINDS = {
    "causal": ("causal (prefix reward)",
               ("each token's reward has read the document and the candidate only up to and including that "
               "token, so a colour says how the answer so far is going (what guided training uses)")),
    "seq2seq": ("encoder-decoder (prefix reward)",
                ("the encoder reads the document, the decoder the candidate up to and including each token, "
                "so a colour says how the answer so far is going")),
    "encoder": ("encoder (reads both ways)",
                ("each token's reward has read the whole candidate on both sides of it, so a colour marks "
                "where the model locates what it likes or dislikes, not a running score")),
}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class Scale:
    """centre -> white; centre +/- spread -> full blue / red (values beyond are clipped)."""

    centre: float = 0.5
    spread: float = 0.5

    @classmethod
    def fit(cls, rewards: list[list[float]], q: float = PERCENTILE) -> Scale:
        """Centre = mean of every token reward given; spread = q-th percentile of |r - centre|."""
        flat = [float(r) for rs in rewards for r in rs if not math.isnan(float(r))]
        if not flat:
            return cls()
        centre = sum(flat) / len(flat)
        spread = percentile([abs(r - centre) for r in flat], q)
        return cls(centre, spread if spread > 0 else max(abs(centre) * 1e-6, 1e-12))

    @property
    def low(self) -> float:
        return self.centre - self.spread

    @property
    def high(self) -> float:
        return self.centre + self.spread

    @property
    def digits(self) -> int:
        """Decimals that show the spread with two significant figures (at least 2)."""
        return max(2, 1 - math.floor(math.log10(self.spread))) if self.spread > 0 else 2

    def fmt(self, value: float) -> str:
        return f"{value:.{self.digits}f}"


def colour(value: float, scale: Scale = Scale()) -> str:
    """rgb() of a value: scale.low -> LOW (red), scale.centre -> white, scale.high -> HIGH (blue)."""
    if math.isnan(value):
        return "rgb(230,230,230)"
    t = max(-1.0, min(1.0, (value - scale.centre) / scale.spread))
    end = HIGH if t >= 0 else LOW
    r, g, b = (round(m + (e - m) * abs(t)) for m, e in zip(MID, end))
    return f"rgb({r},{g},{b})"


def _text_colour(value: float, scale: Scale) -> str:
    """Dark text on light cells, white on saturated ones."""
    return "#ffffff" if abs(value - scale.centre) / scale.spread > 0.6 else "#111111"


def token_spans_html(tokens: list[str], rewards: list[float], scale: Scale = Scale()) -> str:
    """One <span> per token, background coloured by its reward, `title` = the exact value."""
    if len(tokens) != len(rewards):
        raise ValueError(f"tokens and rewards differ in length: {len(tokens)} vs {len(rewards)}")
    digits = max(4, scale.digits + 1)
    parts = []
    for i, (tok, r) in enumerate(zip(tokens, rewards)):
        r = float(r)
        parts.append(
            f'<span class="tw-tok" data-i="{i}" title="{html.escape(f"{r:.{digits}f}", quote=True)}"'
            f' style="background:{colour(r, scale)};color:{_text_colour(r, scale)};'
            f'border-radius:3px;padding:1px 0">{html.escape(tok, quote=True)}</span>'
        )
    return ('<div class="tw-heatmap" style="white-space:pre-wrap;line-height:1.9;font-family:'
            'ui-monospace,SFMono-Regular,Menlo,monospace;font-size:0.95em">' + "".join(parts) + "</div>")


def unscored_chars(text: str, tokens: list[str], slack: int = 5) -> int:
    """About how many characters at the end of `text` have no token (the reward model reads a
    candidate up to its max_candidate_length): 0 when the tokens cover it. Whitespace is not
    counted and `slack` characters are allowed, since tokenizers drop or fold a few characters."""
    have = sum(len("".join(t.split())) for t in tokens)
    want = len("".join(text.split()))
    return want - have if want - have > slack else 0


def legend_html(scale: Scale = Scale()) -> str:
    """A colour bar labelled with real reward values: low end, the centre (the mean), high end."""
    stops = [scale.low + scale.spread * k / 4 for k in range(9)]
    cells = "".join(
        f'<span style="display:inline-block;width:1.6em;height:1em;background:{colour(v, scale)};'
        f'border:1px solid #ddd" title="{scale.fmt(v)}"></span>' for v in stops)
    return (f'<div class="tw-legend" style="font-size:0.85em;margin:0.3em 0">'
            f'lower reward {html.escape(scale.fmt(scale.low))} {cells} {html.escape(scale.fmt(scale.high))} '
            f'higher reward &nbsp;(white = {html.escape(scale.fmt(scale.centre))}, the mean token reward of this '
            f"document's candidates; full colour at its {PERCENTILE:.0f}th-percentile spread; "
            f"hover a token for its value)</div>")


def win_probabilities(scores: list[float | None]) -> list[float | None]:
    """The model's probability that each candidate ranks first: softmax of the sequence scores
    (the Plackett-Luce model the reward model was trained with). None scores stay None."""
    known = [s for s in scores if s is not None]
    if not known:
        return [None] * len(scores)
    top = max(known)
    w = [None if s is None else math.exp(s - top) for s in scores]
    z = sum(x for x in w if x is not None)
    return [None if x is None else x / z for x in w]


def backbone_kind(arch: str | None) -> tuple[str, str]:
    """(name, what a token's colour means) for a model card's `arch`."""
    return BACKBONE_KINDS.get(arch or "", ("unknown backbone", "a token's colour is its reward"))


def heatmap_figure(candidates_tokens: list[list[str]], rewards: list[list[float]], labels: list[str] | None = None,
                   scale: Scale = Scale()):
    """A plotly heatmap: one row per candidate, one column per token position; hover shows the token."""
    import plotly.graph_objects as go

    if len(candidates_tokens) != len(rewards):
        raise ValueError("candidates_tokens and rewards differ in length")
    width = max((len(r) for r in rewards), default=0)
    z = [list(map(float, r)) + [None] * (width - len(r)) for r in rewards]
    # plotly renders a few HTML tags in hover text: escape tokens and labels (user data)
    text = [[html.escape(t.replace(" ", "\u2423")) for t in toks] + [""] * (width - len(toks))
            for toks in candidates_tokens]
    labels = [html.escape(x) for x in labels] if labels else [f"candidate {i + 1}" for i in range(len(rewards))]
    fig = go.Figure(go.Heatmap(
        z=z, text=text, y=labels, x=list(range(width)), zmin=scale.low, zmax=scale.high, zmid=scale.centre,
        colorscale=[[0.0, colour(scale.low, scale)], [0.5, colour(scale.centre, scale)],
                    [1.0, colour(scale.high, scale)]],
        hovertemplate=f"%{{y}}, position %{{x}}<br>token %{{text}}<br>reward %{{z:.{max(4, scale.digits + 1)}f}}"
                      "<extra></extra>",
        colorbar={"title": {"text": "reward"}, "tickformat": f".{scale.digits}f"},
    ))
    fig.update_layout(xaxis_title="token position", yaxis={"autorange": "reversed"},
                      height=120 + 40 * len(rewards), margin={"l": 10, "r": 10, "t": 30, "b": 40})
    return fig
