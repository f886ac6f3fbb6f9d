"""training/heatmap.py: escaping, colours, hover values, whitespace, the plotly figure."""

import re

import pytest

from training.rewards.heatmap import colour, heatmap_figure, legend_html, token_spans_html


def test_tokens_are_escaped_and_keep_whitespace():
    tokens = ["<script>alert(1)</script>", " & ", "\"q\"", "  two spaces", "\n"]
    out = token_spans_html(tokens, [0.1, 0.5, 0.9, 0.7, 0.3])
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert " &amp; " in out and "&quot;q&quot;" in out
    assert "white-space:pre-wrap" in out
    assert ">  two spaces</span>" in out and ">\n</span>" in out
    assert out.count('<span class="tw-tok"') == 5


def test_hover_titles_hold_exact_values_and_colours_diverge():
    out = token_spans_html(["a", "b", "c"], [0.0, 0.5, 1.0])
    assert re.findall(r'title="([^"]+)"', out) == ["0.0000", "0.5000", "1.0000"]
    assert colour(0.5) == "rgb(255,255,255)"
    assert colour(0.0) == "rgb(215,48,39)" and colour(1.0) == "rgb(33,102,172)"
    # halfway between the centre and the top: halfway from white to blue
    assert colour(0.75) == f"rgb({round(255 - 222 / 2)},{round(255 - 153 / 2)},{round(255 - 83 / 2)})"
    assert colour(2.0) == colour(1.0)  # clipped
    assert colour(0.2, vmin=0.2, vmax=0.8) == colour(0.0)  # the range is the caller's
    for v in (0.0, 0.5, 1.0):
        assert f"background:{colour(v)}" in out


def test_mismatched_lengths_and_legend():
    with pytest.raises(ValueError, match="differ"):
        token_spans_html(["a"], [0.1, 0.2])
    leg = legend_html()
    assert "low" in leg and "high" in leg and colour(0.0) in leg and colour(1.0) in leg


def test_heatmap_figure_shape_and_hover():
    fig = heatmap_figure([["a", " b"], ["<x>"]], [[0.2, 0.8], [0.5]], labels=["rank 1", "rank 2"])
    hm = fig.data[0]
    assert [list(r) for r in hm.z] == [[0.2, 0.8], [0.5, None]]
    assert list(hm.y) == ["rank 1", "rank 2"] and hm.zmid == 0.5
    assert hm.text[0][1] == "\u2423b"  # a visible space in the hover
    assert "reward" in hm.hovertemplate
