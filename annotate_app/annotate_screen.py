"""The Annotate page's screen: keyboard ranking (a small same-origin script that loads nothing)
and a tighter top margin (and, for many candidates, Critique buttons as icons), so the candidates
fit on a 1440x900 screen.

    annotate_screen.compact()                           # once, anywhere on the page
    annotate_screen.install_keys(save_key="annotate_save")

The scheme, stated on the page: each document shown for the first time (after Save, Skip,
another project, or a page just opened; the Annotate page keys its candidates' container by
project and document, "twdoc-P-D") starts with the focus on its first unranked row, unless a text
box or an open menu has it; a number ranks the focused row (1 = best) and the focus moves to the
next row, so K candidates are K-1 digits (the last takes the rank left). For 2 s after a
document is shown, a redraw that drops the focus to the page gets it given back (a click or
Ctrl+Enter ends that). From K = 10 a rank may take two digits: a digit that can start one (1 of
12) waits 0.7 s for the second, and stands alone after that pause.
Ctrl+Enter (Cmd+Enter on a Mac) saves from anywhere on the page: it ends a pending move to the
next row, takes the focus off a text box (Streamlit sends a text box's value when it loses
focus), waits until the app is idle and Save is enabled (for at most a few seconds), then
presses Save; when Save stays disabled it scrolls the reason ("Save is disabled until: ...")
into view and puts the focus back on the first unranked row.
Escape in a critique box takes the focus off it too before its popover closes, so what was
typed is kept (without it the popover goes first and the text with it). Opening a critique puts
the cursor in its box.
Streamlit's own button shortcut is not used: it ignores keys pressed while a radio has focus.

The script is a constant (no user text goes into it) and runs in an st.iframe 1 px high
and out of the tab order; it reaches the app's page (same origin) and listens there. It is
removed when the iframe goes (another page) and does nothing where there is no Save button.
"""

from __future__ import annotations

import re

import streamlit as st

SCRIPT = """<script>
(() => {
  const P = window.parent, D = P.document;
  const SAVE = '.st-key-__SAVE_KEY__ button', WHY = '.st-key-save-problems';
  const GROUP = '[data-testid="stRadioGroup"][aria-label^="Rank of candidate"]';
  const busy = () => !!D.querySelector('[data-testid="stStatusWidget"]');
  const focusGroup = (g, options) => {
    const i = g.querySelector('input[type="radio"]:checked') || g.querySelector('input[type="radio"]');
    if (i) i.focus(options);
  };
  const firstUnranked = () => {
    const rows = [...D.querySelectorAll(GROUP)];
    return rows.find((r) => !r.querySelector('input:checked')) || rows[0];
  };
  // A document shown for the first time (after Save, Skip, another project, or a page just opened:
  // the container of its candidates is keyed by it) gets the focus on its first unranked row once
  // the app is idle (a one-output document: on its critique box), unless the person is typing in
  // a text box. For 2 s after, a redraw that drops the focus to the page gets it given back. The
  // document last focused is kept on the parent page, so a redrawn frame does not take the focus
  // again; a refused save shows the same document and leaves the focus alone.
  const DOC = '[class*="st-key-twdoc-"]';
  const docId = () => {
    const m = D.querySelector(DOC);
    return m ? (m.className.match(/st-key-(twdoc-[A-Za-z0-9_-]+)/) || [])[1] || null : null;
  };
  // the person is busy elsewhere: typing in a text box, or choosing from an open menu (a project)
  const typing = (a) => !!D.querySelector('[role="listbox"]') || (!!a && a.isConnected && (
    a.tagName === 'TEXTAREA' || a.getAttribute('aria-expanded') === 'true' ||
    (a.tagName === 'INPUT' && a.type === 'text' && !!a.closest('[data-testid="stPopoverBody"]'))));
  let guard = 0;  // until when a focus given to a new document is given again if a redraw drops it
  function watch() {
    const id = docId();
    if (!id || busy()) return;
    const a = D.activeElement;
    if (id !== P.__tokenwiseShown) {
      P.__tokenwiseShown = id;
      gen++;  // a move to the next row, left from the document before, stops
      guard = typing(a) ? 0 : Date.now() + 2000;
      if (!guard) return;
    } else if (!(Date.now() < guard && (!a || a === D.body || !a.isConnected))) {
      return;
    }
    const g = firstUnranked();
    if (g) { focusGroup(g); return; }
    const box = D.querySelector(DOC + ' textarea');
    if (box) box.focus();
  }
  // Opening a critique puts the cursor in its text box (as soon as the popover has drawn it),
  // unless the person has clicked somewhere else meanwhile.
  const focusCritique = (t0) => {
    const box = D.querySelector('[data-testid="stPopoverBody"] textarea');
    const a = D.activeElement;
    if (box) {
      if (a !== box && (!a || a === D.body || a.closest('[data-testid="stPopoverButton"]'))) box.focus();
      return;
    }
    if (Date.now() - t0 < 2000) setTimeout(() => focusCritique(t0), 50);
  };
  function onClick(e) {
    guard = 0;  // the person put the focus where they clicked
    const t = e.target;
    if (t && t.closest && t.closest('[data-testid="stPopoverButton"]')) focusCritique(Date.now());
  }
  function onKey(e) {
    if (!D.querySelector(SAVE)) return;
    if (e.key === 'Escape') {  // closes a critique's popover: send the box's text first (on blur)
      const a = D.activeElement;
      if (a && a.tagName === 'TEXTAREA' && a.blur) a.blur();
      return;
    }
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
      e.preventDefault(); e.stopImmediatePropagation();
      if (pending) { clearTimeout(pending.timer); const p = pending; pending = null; choose(p.g, Number(p.text)); }
      gen++;  // no move to the next row any more: the next document takes the focus (watch)
      guard = 0;  // (the blur below is ours: the focus is not to be given back to this document)
      const a = D.activeElement;
      if (a && a !== D.body && a.blur) a.blur();
      const t0 = Date.now();
      let idle = 0;  // since when the app has been idle with Save disabled
      const press = () => {
        const b = D.querySelector(SAVE);
        if (b && !b.disabled && !busy()) { b.click(); return; }
        idle = busy() || !b ? 0 : idle || Date.now();
        if ((idle && Date.now() - idle > 2500) || Date.now() - t0 >= 6000) {  // it stays disabled: show
          const why = D.querySelector(WHY);  // why, and go on ranking from the first unranked row
          if (why && why.scrollIntoView) why.scrollIntoView({block: 'nearest', behavior: 'smooth'});
          const g = firstUnranked();
          if (g && (!D.activeElement || D.activeElement === D.body)) focusGroup(g, {preventScroll: true});
          return;
        }
        setTimeout(press, 100);
      };
      setTimeout(press, 150);
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || !/^[0-9]$/.test(e.key)) return;
    const a = D.activeElement;
    const g = a && a.closest ? a.closest(GROUP) : null;
    if (!g) return;
    const k = g.querySelectorAll('[data-testid="stRadioOption"]').length;
    const typed = (pending && pending.g === g ? pending.text : '') + e.key;
    if (pending) { clearTimeout(pending.timer); pending = null; }
    const n = Number(typed);
    if (n < 1 || n > k) return;
    e.preventDefault(); e.stopImmediatePropagation();
    if (typed.length === 1 && n * 10 <= k) {  // 1 of 12: maybe the start of 10, 11 or 12; a pause means 1
      pending = {g, text: typed, timer: setTimeout(() => { pending = null; choose(g, n); }, 700)};
      return;
    }
    choose(g, n);
  }
  let pending = null;  // the first digit of a two-digit rank (K >= 10), and its row
  let gen = 0;  // counts saves and documents shown: a move to the next row stops when it changes
  function choose(g, n) {
    g.querySelectorAll('[data-testid="stRadioOption"]')[n - 1].click();
    const all = [...D.querySelectorAll(GROUP)];
    const label = (all[all.indexOf(g) + 1] || g).getAttribute('aria-label');
    moveTo(label, g.getAttribute('aria-label'), Date.now(), gen);
  }
  // The rank click reruns the app, whose redraw can put the focus back on the row just ranked:
  // keep moving it to the next row until the app is idle, unless the person has moved on already
  // or saved (Ctrl+Enter a moment after the last number must not pull the focus back to that row).
  function moveTo(label, from, t0, g0) {
    if (g0 !== gen) return;
    const a = D.activeElement;
    const at = a && a.closest ? a.closest(GROUP) : null;
    const here = at ? at.getAttribute('aria-label') : null;
    if (here === from || !a || a === D.body) {  // pulled back, or lost in the redraw
      const target = D.querySelector(GROUP + '[aria-label="' + label + '"]');
      if (target) focusGroup(target);
    } else if (here !== label) {
      return;  // the person is somewhere else now (another row, a critique box): leave the focus there
    }
    if (Date.now() - t0 < 4000 && (busy() || Date.now() - t0 < 600)) setTimeout(() => moveTo(label, from, t0, g0), 50);
  }
  if (P.__tokenwiseKeys) D.removeEventListener('keydown', P.__tokenwiseKeys, true);
  if (P.__tokenwiseClicks) D.removeEventListener('click', P.__tokenwiseClicks, true);
  P.__tokenwiseKeys = onKey;
  P.__tokenwiseClicks = onClick;
  D.addEventListener('keydown', onKey, true);
  D.addEventListener('click', onClick, true);
  const watcher = setInterval(watch, 100);
  window.addEventListener('pagehide', () => {
    clearInterval(watcher);
    if (!docId()) P.__tokenwiseShown = null;  // another page: coming back is a page just opened
    D.removeEventListener('keydown', onKey, true);
    D.removeEventListener('click', onClick, true);
    if (P.__tokenwiseKeys === onKey) P.__tokenwiseKeys = null;
    if (P.__tokenwiseClicks === onClick) P.__tokenwiseClicks = null;
  });
})();
</script>"""

HELP = ("**Keys:** press a number to rank the highlighted candidate (1 = best; the focus then moves to the "
        "next one, Tab moves it too); **Ctrl+Enter** saves from anywhere.")
HELP_TWO_DIGITS = "From 10 on, type both digits (1 then 2 for 12)."


def keys_help(k: int) -> str:
    """The keyboard scheme in words, for K candidates (two digits for the ranks from 10 on)."""
    return HELP if k < 10 else HELP + " " + HELP_TWO_DIGITS


def script(save_key: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", save_key):
        raise ValueError(f"save_key: {save_key!r} must be letters, digits, _ or -")
    return SCRIPT.replace("__SAVE_KEY__", save_key)


# less space above the page; no "Press Ctrl+Enter to apply" in critique boxes (Ctrl+Enter saves);
# the label of an icon-only Critique button (K >= widgets.ICON_ONLY_K, in a
# container keyed "critique-icon-...") out of sight, still its accessible name; on a screen
# narrower than 1400 px (a 1280 or 1366 laptop) less space at the sides and every Critique
# button as its icon, so a card's rank row stays on one line
_LABEL_OFF = ("[data-testid='stPopoverButton'] [data-testid='stMarkdownContainer'] { position: absolute; "
              "width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }")
COMPACT_CSS = ("<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }\n"
               # a critique box's "Press Ctrl+Enter to apply": here Ctrl+Enter saves the document (it applies too)
               "[data-testid='stPopoverBody'] [data-testid='InputInstructions'] { display: none; }\n"
               f"[class*='st-key-critique-icon-'] {_LABEL_OFF}\n"
               "@media (max-width: 1399px) {\n"
               "  [data-testid='stMainBlockContainer'] { padding-left: 1.5rem; padding-right: 1.5rem; }\n"
               f"  [class*='st-key-critique-btn-'] {_LABEL_OFF}\n"
               "}</style>")


def compact() -> None:
    """Less empty space above the page, and many candidates' Critique buttons as icons (a constant
    style: st.html puts a style-only body in the page's event container, where it takes no room)."""
    st.html(COMPACT_CSS)


def install_keys(save_key: str) -> None:
    """Put the listener on the page (an iframe 1 px high, out of the tab order)."""
    st.iframe(script(save_key), height=1, tab_index=-1, alt="Keyboard shortcuts for ranking")
