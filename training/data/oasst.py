"""OpenAssistant Conversations (OASST1, OASST2) as they are published: message trees whose
assistant replies to one prompt were ranked by people.

Two layouts, both read by `read`:
    messages  one row per message {"message_id", "parent_id", "text", "role", "rank", ...}
              (the Hugging Face dataset, `*.messages.jsonl`); parent_id is null for a tree's prompt
    trees     one row per tree {"message_tree_id", "prompt": {message, "replies": [message, ...]}}
              (`*.trees.jsonl`), replies nested to any depth

Every prompter message with two or more ranked assistant replies becomes one item: the
conversation up to it (as chat turns when it is not the first message), the replies as the
candidates, ranked by their `rank` (0 = the people's first choice; OASST publishes the ranking its
volunteers agreed on, so it is one judgment, credited to the import's source). Replies that are
deleted, or have no rank (not in the ranking), are left out; the candidate's source is its
`model_name` when one wrote it, else "human". A tree's messages may come in any order and in any
row, so the messages are held until the file ends (about the file's size in memory).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from training.data.formats import Item, Judgment, Problems, _prompt_item, _type_name, ranks_from_scores

MESSAGE_KEYS = frozenset({"message_id", "parent_id", "role", "text"})
ROLES = {"prompter": "user", "assistant": "assistant"}


def is_oasst(obj: dict) -> bool:
    """A message row, or a tree row (its prompt a message with replies)."""
    return MESSAGE_KEYS <= set(obj) or (isinstance(obj.get("prompt"), dict) and "message_tree_id" in obj
                                        and "replies" in obj["prompt"])


@dataclass
class _Message:
    id: str
    parent: str | None
    role: str
    text: str
    rank: int | None
    line: int
    source: str
    tree: str | None
    lang: str | None


def _message(m: Any, parent: str | None, line: int, where: str, problems: Problems) -> _Message | None:
    """One message checked; None (the problem named) when it cannot take part."""
    if not isinstance(m, dict):
        problems.add(line, where, f"must be a message object, got {_type_name(m)}")
        return None
    mid, role, text = m.get("message_id"), m.get("role"), m.get("text")
    for key, ok, want in (("message_id", isinstance(mid, (str, int)) and str(mid).strip(), "an id"),
                          ("role", isinstance(role, str) and role in ROLES, "prompter or assistant"),
                          ("text", isinstance(text, str), "a string")):
        if not ok:
            problems.add(line, f"{where}.{key}" if where != "row" else key,
                         f"must be {want}, got {m.get(key)!r}" if key != "text" else
                         f"must be {want}, got {_type_name(m.get(key))}")
            return None
    rank = m.get("rank")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, float)) or not math.isfinite(rank)):
        problems.add(line, f"{where}.rank" if where != "row" else "rank",
                     f"must be a number (0 = the first choice) or null, got {rank!r}")
        return None
    if m.get("deleted") is True:
        rank = None  # a deleted reply is in no ranking
    model = m.get("model_name")
    return _Message(str(mid), None if parent is None else str(parent), role, text,
                    None if rank is None else int(rank), line,
                    str(model) if isinstance(model, str) and model.strip() else "human",
                    None if m.get("message_tree_id") is None else str(m.get("message_tree_id")),
                    m.get("lang") if isinstance(m.get("lang"), str) else None)


def _messages(rows: Iterable[tuple[int, Any]], problems: Problems) -> Iterator[_Message]:
    for line, obj in rows:
        if not isinstance(obj, dict):
            if obj is not None:
                problems.add(line, "line", f"must be a JSON object, got {_type_name(obj)}")
            continue
        if MESSAGE_KEYS <= set(obj):  # the messages layout
            parent = obj.get("parent_id")
            if (m := _message(obj, None if parent in (None, "") else parent, line, "row", problems)) is not None:
                yield m
            continue
        root = obj.get("prompt")
        if not (isinstance(root, dict) and "replies" in root):
            problems.add(line, "prompt", "must be the tree's first message with its replies (an OASST tree row), "
                         f"or the row a message with {', '.join(sorted(MESSAGE_KEYS))}")
            continue
        tree = obj.get("message_tree_id")
        stack = [(root, None, "prompt")]
        while stack:  # (iterative: a long conversation is a deep tree)
            m, parent, where = stack.pop()
            msg = _message(m, parent, line, where, problems)
            if msg is None:
                continue
            msg.tree = msg.tree or (None if tree is None else str(tree))
            yield msg
            replies = m.get("replies") or []
            if not isinstance(replies, list):
                problems.add(line, f"{where}.replies", f"must be a list, got {_type_name(replies)}")
                continue
            stack.extend((r, msg.id, f"{where}.replies[{i}]") for i, r in reversed(list(enumerate(replies))))


def read(rows: Iterable[tuple[int, Any]], problems: Problems) -> Iterator[Item]:
    """One item per prompter message with two or more ranked assistant replies (module docstring),
    in the order the prompts came."""
    by_id: dict[str, _Message] = {}
    replies: dict[str, list[_Message]] = {}
    for m in _messages(rows, problems):
        if m.id in by_id:
            problems.add(m.line, "message_id", f"{m.id!r} comes twice (first on line {by_id[m.id].line})")
            continue
        by_id[m.id] = m
        if m.parent is not None:
            replies.setdefault(m.parent, []).append(m)
    for m in by_id.values():
        ranked = [r for r in replies.get(m.id, ()) if r.role == "assistant" and r.rank is not None and r.text.strip()]
        if m.role != "prompter" or len(ranked) < 2:
            continue
        if not m.text.strip():
            problems.add(m.line, "text", f"message {m.id!r} is empty: its {len(ranked)} ranked replies answer nothing")
            continue
        turns, at, seen = [], m, set()
        while True:  # the conversation up to this prompt, back to the tree's first message
            seen.add(at.id)
            turns.append({"role": ROLES[at.role], "content": at.text})
            if at.parent is None:
                break
            up = by_id.get(at.parent)
            if up is None or up.id in seen:
                problems.add(m.line, "parent_id", f"message {at.id!r} answers {at.parent!r}, which is "
                             + ("not in the file: import the whole tree" if up is None else "its own reply"))
                break
            at = up
        if at.parent is not None:
            continue
        turns.reverse()
        meta = {k: v for k, v in (("message_tree_id", m.tree), ("lang", m.lang)) if v is not None}
        fields = _prompt_item(m.line, turns if len(turns) > 1 else m.text, meta, ())
        yield Item(**fields, candidates=[r.text for r in ranked], ext_id=m.id,
                   sources=[r.source for r in ranked], candidate_meta=[{"message_id": r.id} for r in ranked],
                   judgments=[Judgment(ranks_from_scores([-r.rank for r in ranked]))])


def parse_row(obj: dict, line: int, problems: Problems, opts) -> Item | None:
    """A tree row on its own (`formats.parse`): its first ranked prompt, or None. A message row is
    read with its file (`read`; the import preview reads its first rows so): alone it is None."""
    return next(iter(read([(line, obj)], problems)), None) if "prompt" in obj else None
