"""UI pieces the Annotate and My entries pages share: safe text, a document, the ranking editor.

User text (documents, candidates, critiques, refinements) is always shown with `plain` (st.text),
which parses neither Markdown nor HTML, so `<script>` or `![x](http://...)` in a critique is
shown as the characters it is. Where user text must sit inside Markdown (a label, a caption, a
name in a message), `escape_markdown` makes it inert. Every page uses these two.
The logic (order, checks, saving) lives in training/annotate.py; this only draws widgets.
"""

from __future__ import annotations

import html
import re

import streamlit as st

from training.annotation import drafts as A
from training.annotation.context import context_of
from training.store import Candidate, Document, Project

LONG_DOCUMENT = 1200  # characters; longer documents go in an expander
SHORT_DOCUMENT = 600  # characters; shorter ones need no scrolling panel
DOCUMENT_PANEL_PX = 480  # the scrolling document panel: fits beside the candidates at 1440x900
LONG_CANDIDATE = 900  # characters; a longer candidate scrolls in a panel, so the others stay in reach
CANDIDATE_PANEL_PX = 220


def when(stamp: str | None, *, seconds: bool = True) -> str:
    """A stored UTC timestamp as "2026-11-29 10:26:03" (or to the minute); "" for none."""
    return (stamp or "")[:19 if seconds else 16].replace("T", " ")


def chart_text(text) -> str:
    """User text (a name) as a plotly chart's label: plotly draws a few HTML tags in labels and
    hover text (a <span style> could fetch an image from another origin), so it is escaped."""
    return html.escape(str(text))


def doc_name(doc, limit: int = 80) -> str:
    """A document as lists and menus name it: its title, else its first words (an id says nothing
    to the person who read it), else its id."""
    return A.short_title(doc.title or doc.text, limit) or str(doc.ext_id or doc.id)


def plain(text: str) -> None:
    """Show user text exactly as written (no Markdown, no HTML)."""
    st.text(text or "", width="stretch")


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")
# GFM turns bare URLs and e-mail addresses into links after escapes are undone: an invisible word
# joiner after "http", "www" or "@" keeps them plain text
_AUTOLINK = re.compile(r"(?i)(?:https?|ftp|mailto|www)(?=[:.])|@")
WORD_JOINER = "\u2060"


def escape_markdown(text: str) -> str:
    """Text for a place that renders Markdown (a label, a caption, a message): backslash-escape
    Markdown (and Streamlit's :color[]/:emoji: and $math$), break autolinks, one line."""
    one_line = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, " ".join((text or "").split()))
    return _MARKDOWN.sub(r"\\\1", one_line)


def show_document(doc: Document, fields: list[str] = (), *, expanded: bool = True) -> None:
    """The document with the project's context `fields`; a long one in an expander."""
    if doc.title:
        st.subheader(escape_markdown(doc.title), anchor=False)
    extra = context_of(doc.meta, fields)
    size = len(doc.text) + sum(len(t) for _, t in extra)
    with (st.expander(f"Document ({size:,} characters)", expanded=expanded) if size > LONG_DOCUMENT
          else st.container(border=True)):
        plain(doc.text)
        show_context(extra)


def document_panel(doc: Document, fields: list[str] = (), *, height: int = DOCUMENT_PANEL_PX) -> None:
    """The document, then the project's context `fields` (passages, a source), in a panel of fixed
    height that scrolls by itself (the Annotate page puts it beside the candidates, so they stay
    on screen however long the document is)."""
    if doc.title:
        st.subheader(escape_markdown(doc.title), anchor=False)
    turns = conversation(doc)
    extra = context_of(doc.meta, fields)
    st.caption((f"{len(turns)} turn{'s' * (len(turns) != 1)}" if turns else f"{len(doc.text.split()):,} words")
               + "".join(f" · {escape_markdown(name)}" for name, _ in extra))
    size = len(doc.text) + sum(len(t) for _, t in extra)
    with st.container(height=height if size > SHORT_DOCUMENT else "content", border=True):
        if turns:
            for t in turns:  # a conversation as turns, not as one blob (imported chat prompts)
                with st.chat_message("user" if t["role"] in ("user", "human") else "assistant"):
                    st.caption(escape_markdown(t["role"]))
                    plain(t["content"])
        else:
            plain(doc.text)
        show_context(extra)


def show_context(extra: list[tuple[str, str]]) -> None:
    """Each context field under a divider, its name as a small heading, its text as written."""
    for name, text in extra:
        st.divider()
        st.caption(f"**{escape_markdown(name)}**")
        plain(text)


def conversation(doc: Document) -> list[dict]:
    """The document's chat turns [{"role", "content"}] when it holds a conversation: imported chat
    prompts keep them in meta["turns"]; else []."""
    return as_turns((doc.meta or {}).get("turns"))


def as_turns(turns) -> list[dict]:
    """[{"role", "content"}] from a stored list of chat turns; [] for anything else."""
    if isinstance(turns, list) and turns and all(isinstance(t, dict) and "content" in t for t in turns):
        return [{"role": str(t.get("role") or "user"), "content": str(t["content"])} for t in turns]
    return []


# A candidate card's first line at 1440x900 (measured in Chromium with Streamlit's own font): 516 px, each
# of its three columns 11 px less than its share (the gaps); a rank option takes 33 px with a one-digit label,
# 61 as "1 best", 69 as "K worst", options 16 px apart; the letter with its help icon 40 px; the Critique
# button 110, or 55 with its icon only.
NUMBERS_ONLY_K = 6  # from this K on the rank options are plain numbers (the letter's help says which is best)
# from this K on the Critique button shows its icon only: it sits in a container keyed "critique-icon-...",
# whose button label the Annotate page's style (annotate_screen.COMPACT_CSS) hides from sight but not
# from screen readers, so its name stays "Critique"; its tooltip names the candidate. Below it the
# container is keyed "critique-btn-...", and the label goes only on a screen narrower than 1400 px.
ICON_ONLY_K = 7


def rank_label(r: int, k: int) -> str:
    if k >= NUMBERS_ONLY_K:
        return str(r)
    return f"{r} best" if r == 1 else f"{r} worst" if r == k else str(r)


def card_columns(k: int) -> list[float]:
    """Widths of a candidate card's first line (letter, rank row, Critique button), so that the
    K rank options and a readable button share one line at 1440 px, for K up to 8."""
    if k <= 4:
        return [0.55, 2.5, 1.25]
    if k < NUMBERS_ONLY_K:
        return [0.45, 2.5 + 0.45 * (k - 4), 1.05]
    need = [40, 33 * k + 16 * (k - 1), 55 if k >= ICON_ONLY_K else 110]  # px; what is left is shared out
    return [w + 11 for w in need]


def draft_editor(project: Project, doc: Document, draft: A.Draft, order: list[int], prefix: str) -> dict[int, str]:
    """Draw one compact card per candidate (in `order`): its letter, the rank row and a Critique
    popover on one line, the text below; update `draft`. With many candidates the rank options are
    plain numbers and the button its icon (card_columns).

    Widget keys carry `prefix` and the ids, so a rerun keeps what was typed; the draft itself
    lives in the session too, so leaving the page and coming back keeps it as well.
    Returns candidate id -> label.
    """
    names = A.labels(order)
    by_id = {c.id: c for c in doc.candidates}
    k = len(order)
    icon_only = k >= ICON_ONLY_K

    def rank_key(cid: int) -> str:
        return f"{prefix}:rank:{doc.id}:{cid}"

    from annotate_app import ui  # (ui imports this module)

    def critique_fields(cid: int, name: str) -> None:
        draft.critiques[cid] = st.text_area(
            f"Critique of candidate {name}", value=draft.critiques.get(cid, ""),
            key=f"{prefix}:crit:{doc.id}:{cid}", height=110,
            placeholder="What is wrong, and how would you fix it?",
        )
        draft.quotes[cid] = st.text_input(
            f"Quote from candidate {name} (optional)", value=draft.quotes.get(cid, ""),
            key=f"{prefix}:quote:{doc.id}:{cid}",
            help="Copy the words your critique is about, exactly as they appear in the candidate.",
        )

    for cid in order:
        c, name = by_id[cid], names[cid]
        with st.container(border=True, gap="xxsmall"):
            if k == 1:  # one output (e.g. imported summary + feedback): nothing to rank, a critique to write
                draft.ranks[cid] = 1
                plain(c.text)
                critique_fields(cid, name)
                continue
            head, rank_col, crit_col = st.columns(card_columns(k), vertical_alignment="center", gap="small")
            head.markdown(f"**{name}**", help=f"Candidate {name}: 1 is the best, {k} the worst."
                          + (" Two candidates may share a rank." if project.allow_ties else " Use each rank once."))
            current = draft.ranks.get(cid)
            draft.ranks[cid] = rank_col.radio(
                f"Rank of candidate {name}", list(range(1, k + 1)), horizontal=True, label_visibility="collapsed",
                # (a value the session holds wins; giving it as the default too makes Streamlit warn)
                index=None if current is None or rank_key(cid) in st.session_state else int(current) - 1,
                format_func=lambda r: rank_label(r, k), key=rank_key(cid),
                # (a callback re-checks who is signed in: ui.guarded)
                on_change=ui.guarded(swap_ranks, "annotator", callback=True), args=(project, draft, cid, rank_key),
            )
            # what the boxes hold in this run (the session has it before they are drawn), so the icon
            # turns into a check on the rerun that sends the text, not one click later
            typed = st.session_state.get(f"{prefix}:crit:{doc.id}:{cid}", draft.critiques.get(cid))
            quoted = st.session_state.get(f"{prefix}:quote:{doc.id}:{cid}", draft.quotes.get(cid))
            has = bool((typed or "").strip() or quoted)
            # keyed by the document: the next document's popovers start closed (an unkeyed one in the
            # same place stays open across the Save that replaces the document)
            # (the key's "icon"/"btn" lets the page's style show the icon only: always, or on a narrow screen)
            button_col = crit_col.container(key=f"critique-{'icon' if icon_only else 'btn'}-{prefix}-{doc.id}-{cid}")
            with button_col.popover("Critique", icon=":material/check:" if has else ":material/edit:",
                                    width="stretch", help=f"Critique of candidate {name}"
                                    + (" (written)" if has else ""), key=f"{prefix}:pop:{doc.id}:{cid}"):
                critique_fields(cid, name)
            if len(c.text) > LONG_CANDIDATE:
                with st.container(height=CANDIDATE_PANEL_PX, border=False):
                    show_candidate(c)
            else:
                show_candidate(c)
    return names


def show_candidate(c: Candidate) -> None:
    """A candidate's text; one that goes on for several turns (a reply, the user's next message, the
    next reply: imported multi-turn pairs keep them in its meta) as its turns, each under its role."""
    turns = as_turns(((c.gen_params or {}).get("meta") or {}).get("turns"))
    if not turns:
        plain(c.text)
        return
    for t in turns:
        st.caption(escape_markdown(t["role"]))
        plain(t["content"])


def swap_ranks(project: Project, draft: A.Draft, cid: int, rank_key) -> None:
    """Without ties, a rank given to `cid` that another candidate holds moves that one to `cid`'s
    old rank (changing one rank is one click, not two), and the last candidate left without a rank
    takes the one left free (K-1 clicks rank K candidates). The rank radios' on_change, before the rerun."""
    if project.allow_ties:
        return
    new = st.session_state.get(rank_key(cid))
    moved = A.swap_rank(draft.ranks, cid, new)
    filled = A.last_rank({**draft.ranks, **moved, cid: new})
    for other, rank in {**moved, **filled}.items():
        st.session_state[rank_key(other)] = rank
    # a fast typist's clicks can reach one rerun together, each with its own callback (in the rows'
    # order, the order they are typed in) and no redraw in between: the next one must see this one
    draft.ranks.update({**moved, **filled, cid: new})


def show_problems(found: list[str]) -> None:
    """Say why Save is disabled (in a container keyed "save-problems": Ctrl+Enter with Save
    disabled scrolls it into view, annotate_screen)."""
    if found:
        with st.container(key="save-problems"):
            st.caption("Save is disabled until:")
            for msg in found:
                st.text(f"• {msg}", width="stretch")
