"""The preference-data shapes people already have, each turned into one normalised `Item`.

    fmt = detect(first_rows)                          # "pairs", "implicit", "sff", ...
    item = parse(fmt, obj, line, problems, Options())  # an Item, or None with problems added

An `Item` is one document (its prompt as title/text, or as chat turns), its candidates (text,
source, meta such as scores) and the judgments made on it: a ranking of the candidates (ties
allowed), the rater who made it (None = the import's source), and the critiques they wrote.
The importer groups items whose prompt and candidate texts are the same (after whitespace
normalisation, `Item.key`) into ONE document with one ranking per judgment, so several raters of
one pair become several rankings of one document.

Formats (`FORMATS` has each one's description and an example row written for Tokenwise):
  documents   Tokenwise's own rows {"id", "title", "text", "candidates", ...} (no judgments)
  pairs       TRL preference rows with an explicit prompt; strings or chat turns
              [{"role", "content"}] ("conversational")
  implicit    TRL rows {"chosen", "rejected"} holding whole dialogues: the prompt is their
              shared prefix, cut at the last turn boundary (hh-rlhf's "\\n\\nAssistant:")
  sff         summarize-from-feedback comparisons {"info", "summaries", "choice", "worker"}
  ratings     one prompt with several completions and numeric scores (UltraFeedback-like)
  two_answer  two answers with scores or a label (SHP-like)
  slf5k       SLF5K rows: a summary, its feedback (a critique) and the ideal summary
Any other shape goes through a column mapping (`Options.mapping`, `--map prompt=q,chosen=a`):
the row's columns are renamed first, then the format is detected from the renamed keys.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

RATER_FIELDS = ("worker", "annotator", "rater", "labeler", "judge")
PROMPT_FIELDS = ("prompt", "instruction", "question", "history", "post", "input", "context")
TEXT_FIELDS = ("response", "text", "completion", "output", "content", "answer")
SCORE_FIELDS = ("overall_score", "score", "rating")


class Problems(Protocol):
    def add(self, line: int, fld: str, msg: str) -> None: ...


@dataclass(frozen=True)
class Options:
    """How rows are read; the import CLI and the dashboard's import form fill these."""

    rater_field: str | None = None  # column naming the rater (default: the first of RATER_FIELDS present)
    score_field: str | None = None  # ratings: a completion's score (dotted path; default: SCORE_FIELDS)
    mapping: dict[str, str] = field(default_factory=dict)  # target name -> column name in the file


@dataclass
class Judgment:
    ranks: list[int]  # rank of each candidate of the item, 1 = best, equal ranks are ties
    rater: str | None = None  # None: the import's source annotator
    critiques: dict[int, str] = field(default_factory=dict)  # candidate index -> critique text


@dataclass
class Item:
    line: int
    text: str  # the prompt or document as text (chat turns rendered "role: content")
    candidates: list[str]
    title: str = ""
    ext_id: str | None = None
    reference: str | None = None
    meta: dict = field(default_factory=dict)  # document meta; chat prompts keep "turns" here
    sources: list[str] | None = None  # per candidate: the model/policy that wrote it
    candidate_meta: list[dict] | None = None  # per candidate: scores and other fields
    judgments: list[Judgment] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Same prompt and same candidate texts (in any order, whitespace normalised) -> same key."""
        parts = [fold_spaces(self.title), fold_spaces(self.text), *sorted(fold_spaces(c) for c in self.candidates)]
        return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def fold_spaces(s: str) -> str:
    """The text with every run of whitespace one space, and none at the ends (how texts are compared)."""
    return " ".join(s.split())


def same_texts(candidates: list[str]) -> str | None:
    """Why a document's candidates cannot be ranked as they are: two with the same text (whitespace
    folded), named by position; None when they all differ."""
    first: dict[str, int] = {}
    for i, c in enumerate(candidates):
        j = first.setdefault(fold_spaces(c), i)
        if j != i:
            return (f"candidates {j + 1} and {i + 1} have the same text, which no one can rank apart; "
                    "fix or drop the row")
    return None


# -- small field readers ---------------------------------------------------------------------
def _type_name(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__)


def _get(obj: dict, path: str) -> Any:
    """obj["a"]["b"] for "a.b"; None when any step is missing."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _first_key(obj: dict, names: Sequence[str]) -> str | None:
    return next((n for n in names if n in obj), None)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _rater(obj: dict, opts: Options) -> str | None:
    name = opts.rater_field or _first_key(obj, RATER_FIELDS)
    value = obj.get(name) if name else None
    return str(value).strip() or None if value is not None else None


def ranks_from_scores(scores: Sequence[float]) -> list[int]:
    """Competition ranks, higher score = better, equal scores tie: [3, 1, 3] -> [1, 3, 1]."""
    return [1 + sum(1 for t in scores if t > s) for s in scores]


# -- chat turns ------------------------------------------------------------------------------
def _is_turns(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(m, dict) and "content" in m for m in v)


def _not_text(v: Any) -> str:
    """Why `v` is neither a string nor a list of chat turns, for a problem message."""
    if isinstance(v, list):
        if not v:
            return "is an empty list (a string or a list of chat turns)"
        i, m = next((i, m) for i, m in enumerate(v) if not (isinstance(m, dict) and "content" in m))
        got = f"an object with keys {', '.join(sorted(map(str, m))) or 'none'}" if isinstance(m, dict) else _type_name(m)
        return f'turn {i + 1} of {len(v)} must be an object with a "content" (and a "role"), got {got}'
    return f"must be a string or a list of chat turns, got {_type_name(v)}"


def render_turns(turns: Sequence[dict]) -> str:
    return "\n\n".join(f"{m.get('role', 'user')}: {m['content']}" for m in turns)


def _turn_text(v: Any) -> str:
    """A candidate given as turns (TRL conversational) -> the text of its messages."""
    if _is_turns(v):
        return "\n\n".join(str(m["content"]) for m in v)
    return v


_TURN_MARK = re.compile(r"\n\n?[A-Z][A-Za-z]{1,20}:")


def split_implicit(chosen: Any, rejected: Any) -> tuple[Any, Any, Any] | None:
    """(prompt, chosen reply, rejected reply) from two whole dialogues, or None without a shared turn.

    Turn lists: the prompt is the longest shared run of messages that leaves each side at least
    one message. Strings: the shared prefix is cut after its last turn marker ("\\n\\nAssistant:").
    """
    if _is_turns(chosen) and _is_turns(rejected):
        n = 0
        while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
            n += 1
        if n == 0:
            return None
        return chosen[:n], chosen[n:], rejected[n:]
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        for a, b in zip(chosen, rejected):
            if a != b:
                break
            n += 1
        marks = list(_TURN_MARK.finditer(chosen[:n]))
        if not marks:
            return None
        cut = marks[-1].end()
        return chosen[:cut], chosen[cut:].strip(), rejected[cut:].strip()
    return None


# -- the formats -----------------------------------------------------------------------------
Parser = Callable[[dict, int, Problems, Options], "Item | None"]


def _text(obj: dict, key: str, line: int, problems: Problems, *, allow_empty: bool = False,
          where: str | None = None) -> str | None:
    v = obj.get(key)
    name = where or key
    if key not in obj:
        problems.add(line, name, "missing (required field)")
    elif not isinstance(v, str):
        problems.add(line, name, f"must be a string, got {_type_name(v)}")
    elif not allow_empty and not v.strip():
        problems.add(line, name, "is empty")
    else:
        return v
    return None


def _prompt_item(line: int, prompt: Any, obj: dict, known: Iterable[str]) -> dict:
    """Item fields for a prompt that is a string or a list of chat turns."""
    meta = {k: v for k, v in obj.items() if k not in set(known)}
    if _is_turns(prompt):
        meta["turns"] = list(prompt)
        return {"line": line, "text": render_turns(prompt), "meta": meta}
    return {"line": line, "text": prompt, "meta": meta}


def _candidate(obj: dict, key: str, line: int, problems: Problems) -> str | None:
    v = obj.get(key)
    if key not in obj:
        problems.add(line, key, "missing (required field)")
        return None
    text = _turn_text(v)
    if not isinstance(text, str):
        problems.add(line, key, _not_text(v))
        return None
    if not text.strip():
        problems.add(line, key, "is empty")
        return None
    return text


def _parse_pairs(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    prompt = obj.get("prompt")
    if not (isinstance(prompt, str) and prompt.strip()) and not _is_turns(prompt):
        problems.add(line, "prompt", "missing or empty (a string or a list of chat turns)"
                     if prompt is None or prompt == "" else _not_text(prompt))
        prompt = None
    chosen = _candidate(obj, "chosen", line, problems)
    rejected = _candidate(obj, "rejected", line, problems)
    if prompt is None or chosen is None or rejected is None:
        return None
    return _pair_item(line, prompt, chosen, rejected, obj, ("prompt", "chosen", "rejected", "id"), opts)


def _pair_item(line, prompt, chosen, rejected, obj, known, opts) -> Item:
    rater_key = opts.rater_field or _first_key(obj, RATER_FIELDS)
    fields = _prompt_item(line, prompt, obj, (*known, rater_key))
    ext = obj.get("id")
    return Item(**fields, candidates=[chosen, rejected], ext_id=None if ext is None else str(ext),
                judgments=[Judgment([1, 2], rater=_rater(obj, opts))])


def _parse_implicit(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    missing = [k for k in ("chosen", "rejected") if k not in obj]
    for key in missing:
        problems.add(line, key, "missing (required field)")
    if missing:
        return None
    split = split_implicit(obj["chosen"], obj["rejected"])
    if split is None:
        problems.add(line, "chosen", "implicit prompt: chosen and rejected share no prompt that ends at a turn "
                     "boundary (e.g. \"\\n\\nAssistant:\"); give an explicit \"prompt\" field")
        return None
    prompt, chosen, rejected = split
    chosen, rejected = _turn_text(chosen), _turn_text(rejected)
    for key, text in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(text, str) or not text.strip():
            problems.add(line, key, "is empty after the shared prompt")
            return None
    return _pair_item(line, prompt, chosen, rejected, obj, ("chosen", "rejected", "id"), opts)


def _parse_sff(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    info, summaries, choice = obj.get("info"), obj.get("summaries"), obj.get("choice")
    ok = True
    if not isinstance(info, dict):
        problems.add(line, "info", f"must be an object with the post, got {_type_name(info)}")
        ok = False
    if not isinstance(summaries, list) or len(summaries) < 2 or not all(isinstance(s, dict) for s in summaries):
        problems.add(line, "summaries", "must be a list of at least 2 objects {\"text\", \"policy\", \"note\"?}")
        ok = False
    if not ok:
        return None
    text = info.get("post") or info.get("article")
    if not isinstance(text, str) or not text.strip():
        problems.add(line, "info.post", "missing or empty (the post or article that was summarised)")
        return None
    texts = [s.get("text") for s in summaries]
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            problems.add(line, f"summaries[{i}].text", "missing or empty")
            return None
    if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < len(summaries):
        problems.add(line, "choice", f"must be the index of the preferred summary (0..{len(summaries) - 1}), "
                     f"got {choice!r}")
        return None
    rater = _rater(obj, opts)
    critiques = {i: s["note"].strip() for i, s in enumerate(summaries)
                 if isinstance(s.get("note"), str) and s["note"].strip()}
    ranks = [1 if i == choice else 2 for i in range(len(summaries))]
    meta = {k: v for k, v in info.items() if k not in ("post", "article", "title", "id")}
    meta.update({k: v for k, v in obj.items() if k not in ("info", "summaries", "choice", "worker")})
    ext = info.get("id")
    return Item(line, text, texts, title=str(info.get("title") or ""), ext_id=None if ext is None else str(ext),
                meta=meta, sources=[str(s.get("policy") or "import") for s in summaries],
                candidate_meta=[{k: v for k, v in s.items() if k not in ("text", "policy", "note")} for s in summaries],
                judgments=[Judgment(ranks, rater=rater, critiques=critiques)])


def _completion(c: Any, i: int, line: int, problems: Problems, opts: Options, scores: list | None
                ) -> tuple[str, float, dict] | None:
    where = f"completions[{i}]"
    if isinstance(c, str):
        text, meta, score = c, {}, scores[i] if scores is not None and i < len(scores) else None
    elif isinstance(c, dict):
        tkey = _first_key(c, TEXT_FIELDS)
        text = c.get(tkey) if tkey else None
        meta = {k: v for k, v in c.items() if k != tkey}
        if opts.score_field:
            score = _get(c, opts.score_field)
        else:
            skey = _first_key(c, SCORE_FIELDS)
            score = c.get(skey) if skey else (scores[i] if scores is not None and i < len(scores) else None)
    else:
        problems.add(line, where, f"must be a string or an object, got {_type_name(c)}")
        return None
    if not isinstance(text, str) or not text.strip():
        problems.add(line, where, f"has no text (one of {', '.join(TEXT_FIELDS)})")
        return None
    value = _number(score)
    if value is None:
        name = opts.score_field or "/".join(SCORE_FIELDS)
        problems.add(line, f"{where}.{name}", f"score is not a number: {score!r}")
        return None
    return text, value, meta


def _parse_ratings(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    pkey = _first_key(obj, PROMPT_FIELDS)
    prompt = obj.get(pkey) if pkey else None
    if not (isinstance(prompt, str) and prompt.strip()) and not _is_turns(prompt):
        problems.add(line, pkey or "prompt", f"missing or empty (one of {', '.join(PROMPT_FIELDS)})")
        return None
    comps = obj.get("completions")
    if not isinstance(comps, list) or len(comps) < 2:
        problems.add(line, "completions", "must be a list of at least 2 completions")
        return None
    scores = obj.get("scores") if isinstance(obj.get("scores"), list) else None
    parsed = [_completion(c, i, line, problems, opts, scores) for i, c in enumerate(comps)]
    if any(p is None for p in parsed):
        return None
    fields = _prompt_item(line, prompt, obj, (pkey, "completions", "scores", "id",
                                               opts.rater_field or _first_key(obj, RATER_FIELDS)))
    cmeta = [{**m, "score": s} for _, s, m in parsed]
    sources = [str(m.get("model") or m.get("source") or "import") for _, _, m in parsed]
    ext = obj.get("id")
    return Item(**fields, candidates=[t for t, _, _ in parsed], ext_id=None if ext is None else str(ext),
                sources=sources, candidate_meta=cmeta,
                judgments=[Judgment(ranks_from_scores([s for _, s, _ in parsed]), rater=_rater(obj, opts))])


TWO_ANSWER_KEYS = (("human_ref_A", "human_ref_B"), ("response_a", "response_b"), ("answer_a", "answer_b"),
                   ("response_A", "response_B"))
LABEL_FIELDS = ("labels", "label", "winner", "preferred")


def _parse_two_answer(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    keys = next((ks for ks in TWO_ANSWER_KEYS if ks[0] in obj and ks[1] in obj), None)
    if keys is None:
        problems.add(line, "answers", "needs two answers (human_ref_A/human_ref_B or response_a/response_b)")
        return None
    pkey = _first_key(obj, PROMPT_FIELDS)
    prompt = obj.get(pkey) if pkey else None
    if not isinstance(prompt, str) or not prompt.strip():
        problems.add(line, pkey or "prompt", f"missing or empty (one of {', '.join(PROMPT_FIELDS)})")
        return None
    a = _text(obj, keys[0], line, problems)
    b = _text(obj, keys[1], line, problems)
    if a is None or b is None:
        return None
    suffix = keys[0][-1]
    score_keys = (f"score_{suffix}", f"score_{keys[1][-1]}")
    lkey = _first_key(obj, LABEL_FIELDS)
    if lkey is not None:
        label = obj[lkey]
        # SHP: labels = 1 when A is preferred; also accept "A"/"B" and 0/1 as "which one" names
        if label in (1, "1", "A", "a", keys[0]):
            ranks = [1, 2]
        elif label in (0, "0", "B", "b", keys[1]):
            ranks = [2, 1]
        elif label in ("tie", "equal"):
            ranks = [1, 1]
        else:
            problems.add(line, lkey, f"must say which answer is preferred (1/A for the first, 0/B for the second), "
                         f"got {label!r}")
            return None
    elif all(k in obj for k in score_keys):
        sa, sb = _number(obj[score_keys[0]]), _number(obj[score_keys[1]])
        if sa is None or sb is None:
            bad = score_keys[0] if sa is None else score_keys[1]
            problems.add(line, bad, f"score is not a number: {obj[bad]!r}")
            return None
        ranks = ranks_from_scores([sa, sb])
    else:
        problems.add(line, "labels", f"needs a label ({', '.join(LABEL_FIELDS)}) or the scores "
                     f"{score_keys[0]} and {score_keys[1]}")
        return None
    known = (pkey, *keys, lkey, *score_keys, "id", opts.rater_field or _first_key(obj, RATER_FIELDS))
    fields = _prompt_item(line, prompt, obj, known)
    cmeta = [{"score": obj[k]} if k in obj else {} for k in score_keys]
    ext = obj.get("id") or obj.get("post_id")
    return Item(**fields, candidates=[a, b], ext_id=None if ext is None else str(ext), candidate_meta=cmeta,
                judgments=[Judgment(ranks, rater=_rater(obj, opts))])


SLF5K_FIELDS = ("title", "post", "generated_summary_for_feedback", "feedback", "ideal_human_summary")


def _parse_slf5k(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    title = _text(obj, "title", line, problems, allow_empty=True) if "title" in obj else ""  # optional
    post = _text(obj, "post", line, problems)
    summary = _text(obj, "generated_summary_for_feedback", line, problems)
    feedback = _text(obj, "feedback", line, problems)
    ideal = _text(obj, "ideal_human_summary", line, problems, allow_empty=True) \
        if "ideal_human_summary" in obj else ""  # optional: critique data often has no corrected output
    if None in (title, post, summary, feedback, ideal):
        return None
    meta = {k: v for k, v in obj.items() if k not in (*SLF5K_FIELDS, "id")}
    ext = obj.get("id")
    return Item(line, post, [summary], title=title, ext_id=None if ext is None else str(ext),
                reference=ideal.strip() or None, meta=meta,
                judgments=[Judgment([1], rater=_rater(obj, opts), critiques={0: feedback})])


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    signature: frozenset[str]  # keys that identify it (for detection and "nearest format")
    example: dict
    parse: Parser | None  # None: the importer's own (documents)


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("documents", "Tokenwise documents: a text and its candidates (no judgments)",
           frozenset({"id", "text", "candidates"}),
           {"id": "d1", "title": "Harbour closes", "text": "The harbour closed after the storm.",
            "candidates": ["The harbour closed.", "A storm hit the town."]}, None),
    Format("pairs", "TRL preference pairs with an explicit prompt (strings or chat turns)",
           frozenset({"prompt", "chosen", "rejected"}),
           {"prompt": "Summarise: the library opens at nine on weekdays.",
            "chosen": "The library opens at 9 on weekdays.", "rejected": "The library is open."}, _parse_pairs),
    Format("implicit", "TRL pairs whose chosen/rejected hold the whole dialogue (the prompt is their shared start)",
           frozenset({"chosen", "rejected"}),
           {"chosen": "\n\nHuman: Name a primary colour.\n\nAssistant: Red.",
            "rejected": "\n\nHuman: Name a primary colour.\n\nAssistant: Green is nice."}, _parse_implicit),
    Format("sff", "summarize-from-feedback comparisons: a post, two summaries, the rater's choice and notes",
           frozenset({"info", "summaries", "choice"}),
           {"info": {"id": "p1", "title": "Moving cities", "post": "I got a job offer in another city ..."},
            "summaries": [{"text": "Got an offer, unsure about moving.", "policy": "sup1", "note": ""},
                          {"text": "Wants to move.", "policy": "ppo2", "note": "misses the doubt"}],
            "choice": 0, "worker": "w07"}, _parse_sff),
    Format("ratings", "one prompt with several scored completions (UltraFeedback-like); equal scores tie",
           frozenset({"instruction", "completions"}),
           {"instruction": "Explain what a leap year is.",
            "completions": [{"model": "m1", "response": "A year with 366 days.", "overall_score": 8},
                            {"model": "m2", "response": "A year.", "overall_score": 3}]}, _parse_ratings),
    Format("two_answer", "two answers with scores or a label (SHP-like)",
           frozenset({"history", "human_ref_A", "human_ref_B"}),
           {"history": "How do I keep basil alive?", "human_ref_A": "Water it when the soil is dry.",
            "human_ref_B": "Basil dies.", "labels": 1, "score_A": 12, "score_B": 2}, _parse_two_answer),
    Format("slf5k", "SLF5K rows: a post, a generated summary, its feedback and the ideal summary",
           frozenset(SLF5K_FIELDS),
           {"title": "Neighbour's dog", "post": "The dog next door barks all night ...",
            "generated_summary_for_feedback": "A dog barks.", "feedback": "Say it is every night.",
            "ideal_human_summary": "The neighbour's dog barks every night."}, _parse_slf5k),
]}


def _columns(source: str, obj: dict) -> list[str]:
    """The columns a mapping's source names: itself, or "a+b+c" (when it is not one column's name)."""
    if source in obj or "+" not in source:
        return [source]
    return [part.strip() for part in source.split("+")]


def apply_mapping(obj: dict, mapping: dict[str, str]) -> dict:
    """Rename the file's columns to the names Tokenwise reads (target <- source); other keys stay.
    A source "a+b+c" makes a list of those columns' values (candidates=answer_1+answer_2)."""
    if not mapping:
        return obj
    used = {col for source in mapping.values() for col in _columns(source, obj)}
    out = {k: v for k, v in obj.items() if k not in used}
    for target, source in mapping.items():
        cols = _columns(source, obj)
        if len(cols) > 1:
            if all(c in obj for c in cols):
                out[target] = [obj[c] for c in cols]
        elif source in obj:
            out[target] = obj[source]
    return out


def check_mapping(source, mapping: dict[str, str] | None, *, split: str | None = None, rows: int = 200) -> None:
    """ValidationError when none of the first `rows` rows of `source` has a column the mapping names
    (each part of "a+b+c" too), naming the columns they have: a typo in --map otherwise shows up as
    a missing field on every row. (A column that only some rows have, an optional one, is fine.)"""
    if not mapping:
        return
    from itertools import islice

    from training.data.sources import records
    from training.errors import ValidationError

    seen: dict[str, None] = {}
    for _, obj in islice(records(source, FirstProblem(), split=split), rows):
        if isinstance(obj, dict):
            seen.update(dict.fromkeys(map(str, obj)))
    if not seen:
        return  # unreadable or no rows: the reader says why
    missing = [f"{target}={src!r}: no column {col!r}" for target, src in mapping.items()
               for col in _columns(src, seen) if col not in seen]
    if missing:
        raise ValidationError(f"import {source}: column mapping: {'; '.join(missing)} "
                              f"(the file's columns: {', '.join(seen)})")


def parse_mapping(spec: str) -> dict[str, str]:
    """"prompt=question,chosen=good" -> {"prompt": "question", "chosen": "good"} (ValueError names the bad part);
    "candidates=a+b" keeps "a+b" (apply_mapping makes the list)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        target, eq, source = part.partition("=")
        if not eq or not target.strip() or not source.strip():
            raise ValueError(f"--map: {part!r} is not NAME=COLUMN")
        out[target.strip()] = source.strip()
    return out


CANDIDATE_COLUMN = re.compile(r"candidate_(\d+)$")  # the documents layout of a CSV


def detect_one(obj: dict) -> str | None:
    """The format a row's keys identify, or None."""
    keys = set(obj)
    if "text" in keys and ("candidates" in keys or sum(bool(CANDIDATE_COLUMN.match(k)) for k in keys) >= 2):
        return "documents"  # (a CSV's candidate_1 .. candidate_K columns)
    if {"summaries", "choice"} <= keys:
        return "sff"
    if "generated_summary_for_feedback" in keys:
        return "slf5k"
    if {"chosen", "rejected"} <= keys:
        return "pairs" if "prompt" in keys else "implicit"
    if "completions" in keys:
        return "ratings"
    if any(a in keys and b in keys for a, b in TWO_ANSWER_KEYS):
        return "two_answer"
    return None


_NUMBERED = re.compile(r"^(.*?)[ _-]?(\d+)$")
_SUFFIXED = re.compile(r"^.+[ _-](summary|answer|response|output|completion|prediction|generation)$",
                       re.IGNORECASE)
_TEXT_NAMES = ("text", "question", "prompt", "instruction", "query", "input", "document", "article", "post",
               "source", "src", "context", "history")


_OUTPUT_NAMES = ("answer", "response", "output", "summary", "completion", "prediction", "generation")
_CRITIQUE_NAMES = ("feedback", "critique", "critic", "comment", "comments")


def suggest_mapping(obj: dict) -> tuple[str, str] | None:
    """(what, mapping): a --map that reads a row of unknown shape, or None.
    Numbered text columns (answer_1, answer_2, ... or "prediction 1", ...), or outputs named by
    their source (gpt3_summary, expert_summary, ...), are candidates of a
    document: ("documents with candidates", "text=question,candidates=answer_1+answer_2"); an
    output and a critique of it are an slf5k row: ("outputs with critiques (slf5k)",
    "post=question,generated_summary_for_feedback=answer,feedback=critique")."""
    texts = [k for k, v in obj.items() if isinstance(v, str) and v.strip()]

    def named(names, among) -> str | None:
        return next((k for name in names for k in among if str(k).lower() == name), None)

    groups: dict[str, list[tuple[int, str]]] = {}
    for i, key in enumerate(texts):
        if m := _NUMBERED.match(str(key)):
            groups.setdefault(m.group(1).lower(), []).append((int(m.group(2)), str(key)))
        elif m := _SUFFIXED.match(str(key)):  # gpt3_summary, expert_summary, ...: one kind, several sources
            groups.setdefault("*" + m.group(1).lower(), []).append((i, str(key)))
    best = max(groups.values(), key=len, default=[])
    rest = [k for k in texts if k not in {k for _, k in best}]
    text = named(_TEXT_NAMES, rest) or (rest[0] if rest else None)
    if len(best) >= 2 and text is not None:
        return "documents with candidates", f"text={text},candidates={'+'.join(k for _, k in sorted(best))}"
    output, critique = named(_OUTPUT_NAMES, texts), named(_CRITIQUE_NAMES, texts)
    text = named(_TEXT_NAMES, [k for k in texts if k not in (output, critique)])
    if output and critique and text:
        return "outputs with critiques (slf5k)", (f"post={text},generated_summary_for_feedback={output}"
                                                  + ("" if critique == "feedback" else f",feedback={critique}"))
    return None


def nearest(keys: Iterable[str]) -> str:
    """The known format whose identifying keys overlap most with `keys` (for error messages)."""
    keys = set(keys)
    return max(FORMATS.values(), key=lambda f: len(keys & f.signature) / len(keys | f.signature)).name


class FirstProblem:
    """A Problems that keeps the first problem reported: what `detect` says of an unreadable row."""

    def __init__(self) -> None:
        self.first: str | None = None

    def add(self, line: int, fld: str, msg: str) -> None:
        if self.first is None:
            self.first = f"{fld}: {msg}"


def detect(rows: Iterable[tuple[int, Any]], mapping: dict[str, str] | None = None,
           problems: FirstProblem | None = None) -> tuple[str | None, str]:
    """(format, "") from the first row (after the column mapping), or (None, why) naming the line
    and the keys found, or why the row cannot be read (from `problems`, given to the reader)."""
    for line, obj in rows:
        if obj is None:
            why = problems.first if problems is not None and problems.first else "cannot be read"
            return None, f"line {line}: {why}"
        if not isinstance(obj, dict):
            return None, f"line {line}: must be a JSON object, got {_type_name(obj)}"
        obj = apply_mapping(obj, mapping or {})
        fmt = detect_one(obj)
        if fmt is not None:
            return fmt, ""
        keys = ", ".join(sorted(obj)) or "none"
        if not mapping and (guess := suggest_mapping(obj)):
            what, spec = guess
            return None, (f"line {line}: unknown shape (keys: {keys}). To read it as {what}, name the "
                          f"columns: --map \"{spec}\" (or the import form's Column mapping); or choose a "
                          "format (--format NAME)")
        return None, (f"line {line}: unknown shape (keys: {keys}); the nearest known format is "
                      f"{nearest(obj)!r}. Choose the format (--format NAME, or the import form's Format), "
                      "or name the columns (--map, or its Column mapping: e.g. "
                      "prompt=question,chosen=good,rejected=bad)")
    return None, "no rows found"


def detect_source(source, mapping: dict[str, str] | None = None, *, split: str | None = None
                  ) -> tuple[str | None, str]:
    """`detect` on the first rows of a file, folder or dataset name (training/data/sources.py)."""
    from training.data.sources import records

    seen = FirstProblem()
    return detect(records(source, seen, split=split), mapping, seen)


def parse(fmt: str, obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    f = FORMATS[fmt]
    if f.parse is None:
        raise ValueError(f"{fmt} rows are read by the importer itself")
    return f.parse(apply_mapping(obj, opts.mapping), line, problems, opts)


def merge(into: Item, other: Item) -> None:
    """Add `other`'s judgments to `into` (same key): ranks follow `into`'s candidate order."""
    where = {fold_spaces(c): i for i, c in enumerate(into.candidates)}
    order = [where[fold_spaces(c)] for c in other.candidates]
    for j in other.judgments:
        ranks = [0] * len(into.candidates)
        for k, r in zip(order, j.ranks):
            ranks[k] = r
        into.judgments.append(Judgment(ranks, j.rater, {order[k]: t for k, t in j.critiques.items()}))


def read_items(source, fmt: str = "auto", opts: Options | None = None, *, split: str | None = None,
               problems: Problems | None = None) -> tuple[str, Iterator[Item]]:
    """(format, items) of a preference source; items stream in file order, one per row.

    `fmt="auto"` detects the format from the first row (ValidationError naming the line and its
    keys when no known shape fits). Bad rows are reported to `problems` (when given) and skipped.
    """
    from training.data.sources import records
    from training.errors import ValidationError

    opts = opts or Options()  # (import_file has checked the mapping against the file: check_mapping)
    if fmt == "auto":
        fmt, why = detect_source(source, opts.mapping, split=split)
        if fmt is None:
            raise ValidationError(f"import {source}: {why}")
    if fmt not in FORMATS or FORMATS[fmt].parse is None:
        names = ", ".join(n for n, f in FORMATS.items() if f.parse is not None)
        raise ValidationError(f"format: {fmt!r} is not a preference format ({names})")

    class _Quiet:
        def add(self, line: int, fld: str, msg: str) -> None:
            pass

    sink = problems if problems is not None else _Quiet()

    def items() -> Iterator[Item]:
        for line, obj in records(source, problems, split=split):
            if isinstance(obj, dict):
                item = parse(fmt, obj, line, sink, opts)
                if item is not None:
                    yield item
            elif obj is not None:
                sink.add(line, "line", f"must be a JSON object, got {_type_name(obj)}")

    return fmt, items()


def grouped(items: Iterable[Item]) -> list[Item]:
    """Items with the same key merged into one with all their judgments (first-seen order)."""
    out: dict[str, Item] = {}
    for it in items:
        if it.key in out:
            merge(out[it.key], it)
        else:
            out[it.key] = it
    return list(out.values())
