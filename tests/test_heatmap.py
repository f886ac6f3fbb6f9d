"""training/rewards/heatmap.py: escaping, the scale fitted to the model's spread, legend values,
win probabilities, the plotly figure."""

import math
import re

import pytest

from training.rewards.heatmap import (
    Scale,
    backbone_kind,
    colour,
    heatmap_figure,
    legend_html,
    percentile,
    token_spans_html,
    win_probabilities,
)


def test_tokens_are_escaped_and_keep_whitespace():
    tokens = ["<script>alert(1)</script>", " & ", "\"q\"", "  two spaces", "\n"]
    out = token_spans_html(tokens, [0.1, 0.5, 0.9, 0.7, 0.3])
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert " &amp; " in out and "&quot;q&quot;" in out
    assert "white-space:pre-wrap" in out
    assert ">  two spaces</span>" in out and ">\n</span>" in out
    assert out.count('<span class="tw-tok"') == 5


def test_scale_centres_on_the_mean_with_a_robust_spread():
    # rewards spanning 0.499-0.503 (a weakly trained model): the scale follows them, not 0..1
    rewards = [[0.499, 0.500, 0.501], [0.502, 0.503]]
    s = Scale.fit(rewards)
    assert s.centre == pytest.approx(0.501)
    # |r - 0.501| = 0.002, 0.001, 0, 0.001, 0.002 -> 95th percentile: 0.002
    assert s.spread == pytest.approx(0.002)
    assert colour(0.503, s) == "rgb(33,102,172)" and colour(0.499, s) == "rgb(215,48,39)"
    assert colour(0.501, s) == "rgb(255,255,255)"
    # halfway between the centre and the top: halfway from white to blue
    assert colour(0.502, s) == f"rgb({round(255 - 222 / 2)},{round(255 - 153 / 2)},{round(255 - 83 / 2)})"
    assert colour(0.9, s) == colour(0.503, s)  # clipped
    # one outlier does not wash out the others: the 95th percentile ignores it
    spiky = Scale.fit([[0.5] * 20 + [0.51] * 19 + [0.99]])
    assert spiky.spread < 0.05 and percentile([1, 2, 3, 4], 50) == 2.5
    assert Scale.fit([]) == Scale() and Scale.fit([[0.3, 0.3]]).spread > 0


def test_legend_prints_real_values_with_enough_digits_and_hover_is_exact():
    s = Scale(0.501, 0.002)
    assert s.digits == 4
    leg = legend_html(s)
    assert "lower reward 0.4990" in leg and "0.5030 higher reward" in leg and "white = 0.5010" in leg
    assert colour(s.low, s) in leg and colour(s.high, s) in leg
    assert Scale(0.5, 0.3).digits == 2 and "lower reward 0.20" in legend_html(Scale(0.5, 0.3))
    out = token_spans_html(["a", "b"], [0.49912, 0.5031], s)
    assert re.findall(r'title="([^"]+)"', out) == ["0.49912", "0.50310"]
    assert f"background:{colour(0.49912, s)}" in out


def test_win_probabilities_are_a_softmax_of_scores():
    p = win_probabilities([2.0, 1.0, None, 0.0])
    z = math.exp(0) + math.exp(-1) + math.exp(-2)
    assert p[0] == pytest.approx(1 / z) and p[1] == pytest.approx(math.exp(-1) / z) and p[2] is None
    assert sum(x for x in p if x is not None) == pytest.approx(1.0)
    assert win_probabilities([1000.0, 0.0]) == pytest.approx([1.0, 0.0])  # no overflow
    assert win_probabilities([None]) == [None]


def test_backbone_kinds_say_what_a_colour_means():
    assert "prefix" in backbone_kind("causal")[0] and "up to and including" in backbone_kind("causal")[1]
    assert "both ways" in backbone_kind("encoder")[0]
    assert backbone_kind(None)[0] == "unknown backbone"


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="differ"):
        token_spans_html(["a"], [0.1, 0.2])


def test_heatmap_figure_shape_scale_and_escaped_hover():
    s = Scale(0.5, 0.3)
    fig = heatmap_figure([["a", " <b>"], ["<x>"]], [[0.2, 0.8], [0.5]], labels=["A", "<i>B</i>"], scale=s)
    hm = fig.data[0]
    assert [list(r) for r in hm.z] == [[0.2, 0.8], [0.5, None]]
    assert list(hm.y) == ["A", "&lt;i&gt;B&lt;/i&gt;"] and hm.zmid == 0.5
    assert (hm.zmin, hm.zmax) == pytest.approx((0.2, 0.8))
    assert hm.text[0][1] == "\u2423&lt;b&gt;"  # a visible space, the tag escaped
    assert "reward %{z:.4f}" in hm.hovertemplate


def test_unscored_chars_says_how_much_of_a_long_candidate_has_no_token():
    from training.rewards.heatmap import unscored_chars

    text = "The council approved the bridge on Monday after a long debate."
    assert unscored_chars(text, ["The", " council", " approved", " the", " bridge", " on", " Monday", " after",
                                 " a", " long", " debate", "."]) == 0
    assert unscored_chars(text, ["the", " council", " approved"]) == len("thebridgeonMondayafteralongdebate.")
    assert unscored_chars(text, ["The", " council", " approved", " the", " bridge", " on", " Monday", " after",
                                 " a", " long", " debate"]) == 0  # a dropped "." is within the slack
