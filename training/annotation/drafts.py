"""What the annotator pages need beyond the store: order, drafts, checks, one save.

The Annotate and My entries pages are thin: they keep a `Draft` per document in the session,
show the candidates in `display_order`, list `problems(...)` under a disabled Save button,
and call `save(...)`, which writes the ranking and its critiques in ONE transaction.

    order = display_order(annotator.id, doc.id, [c.id for c in doc.candidates])
    draft = Draft.new(doc)                    # or Draft.from_saved(doc, ranking, critiques)
    draft.ranks[cid] = 1; draft.critiques[cid] = "Misses the date; add it."
    problems(project, doc, draft)             # [] when Save may be pressed
    save(store, annotator, project, doc, draft)   # retried while the database is locked
    view = annotate_view(store, annotator, project, pinned=doc.id)   # one page run's reads

1. Position bias: every annotator sees a document's candidates in their own shuffled order,
   stable for (annotator, document) so a rerun or a revision shows the same order.
2. A draft holds ranks (candidate id -> 1..K or None), critique texts and quotes, and when the
   document was first shown (seconds spent = now - started).
3. `problems` explains in words why a draft cannot be saved yet (missing ranks, a tie the
   project does not allow, a blank critique, a quote that is not in the candidate, a missing
   critique of the lowest-ranked candidate when the project requires one).
4. `save` retries a write that meets a locked database (an import commits in short batches,
   so a retry lands); if every attempt fails it raises StoreBusy and the caller keeps the
   draft on the page: nothing typed is lost.
5. `annotate_view` is everything one run of the Annotate page reads, each once: the document
   on screen and the O(1) queue counts and project totals.
"""

from __future__ import annotations

import hashlib
import logging
import random
import sqlite3
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from training.errors import NotFound, StoreBusy, ValidationError
from training.store import Annotator, Critique, Document, Project, Ranking

log = logging.getLogger(__name__)
SAVE_ATTEMPTS = 3


# -- 1. a stable shuffled order --------------------------------------------------------
def display_order(annotator_id: int, document_id: int, candidate_ids: Sequence[int]) -> list[int]:
    """Candidate ids in an order that depends only on (annotator, document, the ids)."""
    seed = int.from_bytes(hashlib.sha256(f"tokenwise:{annotator_id}:{document_id}".encode()).digest()[:8], "big")
    ids = sorted(int(c) for c in candidate_ids)
    random.Random(seed).shuffle(ids)
    return ids


def letter(i: int) -> str:
    """Display label of the i-th shown candidate: A, B, ..., Z, AA, AB, ..."""
    letters = string.ascii_uppercase
    return letters[i] if i < 26 else letter(i // 26 - 1) + letters[i % 26]


def labels(order: Sequence[int]) -> dict[int, str]:
    """candidate id -> its label in this display order."""
    return {cid: letter(i) for i, cid in enumerate(order)}


# -- quotes ---------------------------------------------------------------------------
def find_span(candidate_text: str, quote: str | None, label: str = "") -> tuple[int, int] | None:
    """Offsets (start, end) of `quote` in the candidate; None for no quote.

    An exact match is tried first, then a case-insensitive one. A quote that is not in the
    candidate raises ValidationError naming the candidate.
    """
    quote = (quote or "").strip()
    if not quote:
        return None
    start = candidate_text.find(quote)
    if start < 0:
        low = candidate_text.lower()
        if len(low) == len(candidate_text):  # lower() kept offsets (not always true in Unicode)
            start = low.find(quote.lower())
    if start < 0:
        who = f"candidate {label}" if label else "the candidate"
        short = quote if len(quote) <= 60 else quote[:57] + "..."
        raise ValidationError(
            f"quote: {short!r} is not in {who}; copy the words exactly from {who}, or leave the quote empty"
        )
    return start, start + len(quote)


# -- the document on screen ------------------------------------------------------------
def current_document(store, annotator: Annotator, project: Project, pinned: int | None) -> Document | None:
    """The document to show: the one already on screen (`pinned`) until this annotator saves it.

    The queue order moves as other annotators save (documents closest to the overlap come
    first), so asking the queue on every rerun could swap the document under someone's cursor.
    """
    if pinned is not None:
        try:
            doc = store.get_document(int(pinned))
        except NotFound:
            doc = None
        if doc is not None and doc.project_id == project.id and store.my_ranking(annotator, doc.id) is None:
            return doc
    return store.next_document(annotator, project)


@dataclass(frozen=True)
class View:
    """What one run of the Annotate page shows: the document (None = queue done) and the counts."""

    doc: Document | None
    counts: dict[str, int]  # this annotator's queue: done, assigned, left
    totals: dict[str, int]  # the project's documents, complete, rankings, critiques
    replaced: int | None = None  # the pinned document, when it left the queue by another way (another tab saved it)


def annotate_view(store, annotator: Annotator, project: Project, pinned: int | None) -> View:
    """Each read of an Annotate page run once: the document on screen, queue counts, totals (O(1)).
    A pinned document that is no longer shown (this annotator saved it elsewhere) is `replaced`."""
    doc = current_document(store, annotator, project, pinned)
    replaced = pinned if pinned is not None and (doc is None or doc.id != int(pinned)) else None
    return View(doc, *store.counts(annotator, project), replaced=replaced)


# -- 2. drafts ------------------------------------------------------------------------
@dataclass
class Draft:
    """An unsaved ranking with its critiques, kept in the session until Save."""

    document_id: int
    ranks: dict[int, int | None] = field(default_factory=dict)
    critiques: dict[int, str] = field(default_factory=dict)
    quotes: dict[int, str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    saved_critiques: frozenset[int] = frozenset()  # candidates whose critique is in the DB already

    @classmethod
    def new(cls, doc: Document, started: float | None = None) -> Draft:
        return cls(doc.id, ranks={c.id: None for c in doc.candidates},
                   started=time.time() if started is None else started)

    @classmethod
    def from_saved(cls, doc: Document, ranking: Ranking | None, critiques: dict[int, Critique]) -> Draft:
        """A draft that starts from what this annotator saved (for a revision)."""
        d = cls.new(doc)
        if ranking is not None:
            d.ranks.update({cid: r for cid, r in ranking.ranks.items() if cid in d.ranks})
        texts = {c.id: c.text for c in doc.candidates}
        for cid, k in critiques.items():
            d.critiques[cid] = k.text
            if k.span_start is not None and k.span_end is not None and cid in texts:
                d.quotes[cid] = texts[cid][k.span_start:k.span_end]
        d.saved_critiques = frozenset(critiques)
        return d

    def seconds(self, now: float | None = None) -> float:
        return round(max(0.0, (time.time() if now is None else now) - self.started), 1)


def is_changed(draft: Draft, saved: Draft) -> bool:
    """Whether a draft differs from what was saved (ranks, critique texts, quotes)."""
    def norm(d: dict) -> dict:
        return {k: (v or "").strip() for k, v in d.items() if (v or "").strip()}
    return (draft.ranks != saved.ranks or norm(draft.critiques) != norm(saved.critiques)
            or norm(draft.quotes) != norm(saved.quotes))


def rewritten_critiques(draft: Draft, saved: Draft) -> list[int]:
    """Candidates whose saved critique the draft changes (text or quote): saving makes a new
    version of it, which starts without the old one's refinements."""
    def norm(v) -> str:
        return (v or "").strip()
    return [cid for cid in saved.critiques if norm(saved.critiques.get(cid))
            and (norm(draft.critiques.get(cid)) != norm(saved.critiques.get(cid))
                 or norm(draft.quotes.get(cid)) != norm(saved.quotes.get(cid)))]


def refinements_left_behind(store, draft: Draft, saved: Draft, critiques: dict) -> dict[int, list]:
    """Candidate id -> the refinements of its saved critique, for each critique the draft rewrites
    (`critiques`: candidate id -> the saved Critique): saving leaves them with the old version."""
    out = {}
    for cid in rewritten_critiques(draft, saved):
        refs = store.refinements(critiques[cid].id) if cid in critiques else []
        if refs:
            out[cid] = refs
    return out


# -- 3. what stops a save ---------------------------------------------------------------
def swap_rank(ranks: dict[int, int | None], cid: int, new: int | None) -> dict[int, int | None]:
    """The other candidates' changed ranks when `cid` goes from ranks[cid] to `new` (no ties): the
    one holding `new` takes `cid`'s old rank, which is no rank when `cid` had none yet (the rank
    moves, as a dragged item takes its place). Nothing moves when `new` is None."""
    old = ranks.get(cid)
    if new is None or new == old:
        return {}
    return {other: old for other, rank in ranks.items() if other != cid and rank == new}


def last_rank(ranks: dict[int, int | None]) -> dict[int, int]:
    """{candidate: rank} for the one candidate still without a rank when the others hold K-1
    different ranks of 1..K (no ties): the rank they leave, the only one it can take. {} otherwise.
    A pair is then one click: A is 1, so B is 2."""
    k = len(ranks)
    missing = [c for c, r in ranks.items() if r is None]
    given = {int(r) for r in ranks.values() if r is not None}
    if len(missing) != 1 or len(given) != k - 1 or not given <= set(range(1, k + 1)):
        return {}
    return {missing[0]: (set(range(1, k + 1)) - given).pop()}


def ranking_problems(ranks: dict[int, int | None], names: dict[int, str], *, allow_ties: bool) -> list[str]:
    """Why this ranking is not complete and valid yet ([] when it is). `names`: id -> label."""
    k = len(names)
    out = []
    missing = [names[c] for c in names if ranks.get(c) is None]
    if missing:
        out.append(f"Give a rank to candidate{'s' if len(missing) > 1 else ''} {_join(missing)}.")
    bad = [names[c] for c in names if ranks.get(c) is not None and not 1 <= int(ranks[c]) <= k]
    if bad:
        out.append(f"Ranks go from 1 to {k}: fix candidate{'s' if len(bad) > 1 else ''} {_join(bad)}.")
    if not allow_ties:
        by_rank: dict[int, list[str]] = {}
        for c, name in names.items():
            if ranks.get(c) is not None:
                by_rank.setdefault(int(ranks[c]), []).append(name)
        for r, who in sorted(by_rank.items()):
            if len(who) > 1:
                out.append(f"Candidates {_join(who)} share rank {r}: give each rank to one candidate "
                           "(this project does not allow ties).")
    return out


def critique_problems(doc: Document, draft: Draft, names: dict[int, str]) -> list[str]:
    """Blank critiques, quotes without a critique, quotes that are not in their candidate."""
    out = []
    for c in sorted(doc.candidates, key=lambda c: names.get(c.id, "")):
        text = draft.critiques.get(c.id) or ""
        quote = (draft.quotes.get(c.id) or "").strip()
        name = names.get(c.id, str(c.id))
        if text and not text.strip():
            out.append(f"The critique of candidate {name} is blank: say what is wrong and how to fix it, "
                       "or clear it.")
        elif not text.strip() and c.id in draft.saved_critiques:
            out.append(f"The saved critique of candidate {name} cannot be emptied: edit it instead.")
        elif quote and not text.strip():
            out.append(f"Candidate {name} has a quote but no critique: write the critique too.")
        if quote:
            try:
                find_span(c.text, quote, name)
            except ValidationError as e:
                out.append(str(e))
    return out


def lowest_problems(project: Project, doc: Document, draft: Draft, names: dict[int, str]) -> list[str]:
    """When the project requires it: the lowest-ranked candidate(s) need a critique."""
    if not project.require_critique_lowest:
        return []
    ranks = {c.id: draft.ranks.get(c.id) for c in doc.candidates}
    if any(r is None for r in ranks.values()):
        return []  # the ranking message comes first
    worst = max(ranks.values())
    need = [names[cid] for cid, r in ranks.items() if r == worst and not (draft.critiques.get(cid) or "").strip()]
    if not need:
        return []
    return [f"This project needs a critique of the lowest-ranked candidate: write one for {_join(need)}."]


def problems(project: Project, doc: Document, draft: Draft, names: dict[int, str]) -> list[str]:
    """Every reason Save is not allowed yet, as sentences; [] when the draft can be saved."""
    if len(doc.candidates) == 1:  # one output: nothing to rank, so its critique is what is saved
        only = doc.candidates[0].id
        lone = [] if (draft.critiques.get(only) or "").strip() else ["you write a critique of the one output."]
        return lone + critique_problems(doc, draft, names)
    return (ranking_problems(draft.ranks, names, allow_ties=project.allow_ties)
            + critique_problems(doc, draft, names)
            + lowest_problems(project, doc, draft, names))


# -- saving -------------------------------------------------------------------------------
def save(store, annotator: Annotator, project: Project, doc: Document, draft: Draft,
         names: dict[int, str] | None = None, now: float | None = None, *,
         attempts: int = SAVE_ATTEMPTS, backoff_s: float = 0.2) -> tuple[Ranking, list[Critique]]:
    """Check the draft and save the ranking and its critiques in one transaction.

    Raises ValidationError (all problems in one message) when the draft is not ready. A write
    that meets a locked database (after the store's busy timeout) is tried again, `attempts`
    times in all with a growing pause; then StoreBusy says so, and the draft is untouched.
    """
    if names is None:
        names = labels(display_order(annotator.id, doc.id, [c.id for c in doc.candidates]))
    found = problems(project, doc, draft, names)
    if found:
        raise ValidationError(" ".join(found))
    texts = {c.id: c.text for c in doc.candidates}
    critiques = {
        cid: (text.strip(), find_span(texts[cid], draft.quotes.get(cid), names.get(cid, "")))
        for cid, text in draft.critiques.items()
        if cid in texts and (text or "").strip()
    }
    ranks = {cid: int(r) for cid, r in draft.ranks.items() if r is not None}
    seconds = draft.seconds(now)
    for attempt in range(1, attempts + 1):
        try:
            return store.save_annotation(annotator, doc.id, ranks, critiques, seconds=seconds)
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            log.warning("save of document %d by %s: database locked (attempt %d of %d)",
                        doc.id, annotator.name, attempt, attempts)
            if attempt < attempts:
                time.sleep(backoff_s * attempt)
    raise StoreBusy(
        f"Not saved: the database stayed busy (another import or save held it) through {attempts} tries. "
        "Your ranking and critiques are still on this page: press Save again in a moment."
    )


def short_title(text: str, limit: int = 80) -> str:
    """`text` on one line, cut at the last word boundary within `limit` characters with an
    ellipsis ("…" counts as one); a single word longer than `limit` is cut inside it."""
    one = " ".join((text or "").split())
    if len(one) <= limit:
        return one
    head = one[:limit - 1]
    cut = head.rfind(" ")
    if cut > 0:
        head = head[:cut]
    return head.rstrip(" ,;:.-") + "…"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
