"""The Annotate page's keyboard script: a constant that loads nothing from anywhere."""

from __future__ import annotations

import pytest

from annotate_app import annotate_screen


def test_keyboard_script_loads_nothing_and_targets_the_save_button():
    js = annotate_screen.script("annotate_save")
    assert ".st-key-annotate_save button" in js and "__SAVE_KEY__" not in js
    for outside in ("http", "src=", "import(", "fetch(", "XMLHttpRequest", "WebSocket", "eval("):
        assert outside not in js, outside
    assert "'Enter'" in js and "/^[0-9]$/" in js  # Ctrl+Enter saves, number keys rank (two digits from K = 10)
    assert "From 10 on" not in annotate_screen.keys_help(9) and "1 then 2 for 12" in annotate_screen.keys_help(12)


@pytest.mark.parametrize("bad", ["", "a b", "x']", "save\"</script>"])
def test_keyboard_script_refuses_a_key_that_is_not_a_plain_name(bad):
    with pytest.raises(ValueError, match="save_key"):
        annotate_screen.script(bad)


def test_critique_boxes_do_not_promise_that_ctrl_enter_only_applies():
    """Streamlit's "Press Ctrl+Enter to apply" under a critique box would contradict the page (Ctrl+Enter
    saves the document, the critique with it): the compact style hides it there, and only there."""
    css = annotate_screen.COMPACT_CSS
    assert "[data-testid='stPopoverBody'] [data-testid='InputInstructions'] { display: none; }" in css
    assert "http" not in css and "url(" not in css and "@import" not in css  # loads nothing
