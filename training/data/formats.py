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
  two_answer  two answers with scores or a label (SHP; Chatbot Arena, MT-bench, PKU-SafeRLHF,
              HelpSteer3, WebGPT's labels and scores)
  scored      one response per row with its score (HelpSteer-like); a prompt's rows are grouped
  slf5k       SLF5K rows: a summary, its feedback (a critique) and the ideal summary
  label_studio, argilla
              the exports of those annotation tools (training/data/tool_exports.py)
  oasst       OpenAssistant conversations, messages or trees: a prompt's ranked replies, read
              with the whole file (training/data/oasst.py); its documents have 2..K candidates
Any other shape goes through a column mapping (`Options.mapping`, `--map prompt=q,chosen=a`):
the row's columns are renamed first, then the format is detected from the renamed keys.
"""

from __future__ import annotations

import hashlib
import importlib
import json
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
    value: float | None = None  # `scored` rows: the one response's score (higher is better) until grouped

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


def rank_groups(ranks: Sequence[int]) -> list[list[int]]:
    """Candidate positions grouped by rank, best first (a group of several is a tie): [2, 1, 2] -> [[1], [0, 2]]."""
    return [[i for i, r in enumerate(ranks) if r == level] for level in sorted(set(ranks))]


def ranks_from_pairwise(votes: Any, k: int) -> list[int] | None:
    """One ranking of k candidates from a vote per pair, the pairs in the order (1,2), (1,3), ...,
    (1,k), (2,3), ..., (k-1,k) (QA-Feedback's `preference`): 1 = the first of the pair is better,
    2 = the second, 0 = neither. Candidates are ranked by their wins, a 0 counting half a win to
    each (Copeland), equal counts tie. None when every vote is 0. ValueError says what is wrong."""
    n = k * (k - 1) // 2
    if not isinstance(votes, list) or len(votes) != n:
        raise ValueError(f"must be a list of {n} votes, one per pair of the {k} candidates (1v2, 1v3, ...), "
                         f"got {_type_name(votes) if not isinstance(votes, list) else f'{len(votes)} votes'}")
    wins = [0.0] * k
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    for (i, j), v in zip(pairs, votes):
        if _number(v) not in (0.0, 1.0, 2.0):
            raise ValueError(f"vote {v!r} for candidates {i + 1} and {j + 1} must be 1 (the first is better), "
                             "2 (the second) or 0 (neither)")
        win = int(_number(v))
        if win == 0:
            wins[i] += 0.5
            wins[j] += 0.5
        else:
            wins[i if win == 1 else j] += 1
    if all(_number(v) == 0 for v in votes):
        return None
    return ranks_from_scores(wins)


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
    """A candidate given as turns (TRL conversational) -> its text: one message's content as it is,
    several messages (a reply, the user's next turn, the next reply) with their roles."""
    if _is_turns(v):
        return str(v[0]["content"]) if len(v) == 1 else render_turns(v)
    return v


_TURN_MARK = re.compile(r"\n\n?[A-Z][A-Za-z]{1,20}:")


def _prompt_turns(chosen: Any, rejected: Any) -> list:
    """The turns that chosen and rejected both start with, up to their last user (or system) turn:
    the prompt repeated in each (UltraFeedback-binarized's chosen = [user prompt, assistant reply]);
    [] when they are not turns or share none."""
    if not (_is_turns(chosen) and _is_turns(rejected)):
        return []
    n = 0
    for i, (a, b) in enumerate(zip(chosen[:-1], rejected[:-1])):
        if a != b:
            break
        if a.get("role") != "assistant":
            n = i + 1
    return chosen[:n]


def split_implicit(chosen: Any, rejected: Any) -> tuple[Any, Any, Any] | None:
    """(prompt, chosen reply, rejected reply) from two whole dialogues, or None without a shared turn.

    Turn lists: the prompt is their shared start up to its last user turn (`_prompt_turns`).
    Strings: the shared prefix is cut after its last turn marker ("\\n\\nAssistant:").
    """
    if _is_turns(chosen) and _is_turns(rejected):
        shared = _prompt_turns(chosen, rejected)
        return (shared, chosen[len(shared):], rejected[len(shared):]) if shared else None
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


_HH_MARK = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")  # Anthropic hh-rlhf, Nectar
_NEMO_MARK = re.compile(r"\n?<extra_id_1>(User|Assistant)\n")  # HelpSteer2's multi-turn prompts
_MARK_ROLES = {"Human": "user", "User": "user", "Assistant": "assistant"}


def marked_turns(text: str) -> list[dict] | None:
    """A dialogue written as one string with turn markers -> its chat turns, or None when `text` is
    not one. Markers: "\n\nHuman: ... \n\nAssistant: ..." (hh-rlhf, Nectar; it must start with
    a Human turn) and "<extra_id_1>User" / "<extra_id_1>Assistant" lines (HelpSteer2, whose first
    user turn has no marker). A last, empty assistant turn (the cue to answer) is dropped."""
    if text.lstrip().startswith("Human:"):
        parts = _HH_MARK.split(text.lstrip())
    elif "<extra_id_1>" in text and _NEMO_MARK.search(text):
        parts = _NEMO_MARK.split(text)
        parts = ["", "User", *parts] if parts[0].strip() else parts
    else:
        return None
    turns = [{"role": _MARK_ROLES[role], "content": body.strip()} for role, body in zip(parts[1::2], parts[2::2])]
    if turns and turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns.pop()
    return turns if turns and all(t["content"] for t in turns) else None


def _prompt_item(line: int, prompt: Any, obj: dict, known: Iterable[str]) -> dict:
    """Item fields for a prompt that is a string or a list of chat turns (a string with turn
    markers, as hh-rlhf writes dialogues, is read as its turns)."""
    meta = {k: v for k, v in obj.items() if k not in set(known)}
    if isinstance(prompt, str) and (turns := marked_turns(prompt)):
        prompt = turns
    if _is_turns(prompt):
        meta["turns"] = list(prompt)
        return {"line": line, "text": render_turns(prompt), "meta": meta}
    return {"line": line, "text": prompt, "meta": meta}


def _candidate(obj: dict, key: str, line: int, problems: Problems, skip: int = 0) -> str | None:
    """The text of a candidate given as a string or chat turns (without its first `skip` turns)."""
    v = obj.get(key)
    if key not in obj:
        problems.add(line, key, "missing (required field)")
        return None
    text = _turn_text(v[skip:] if skip else v)
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
    shared = _prompt_turns(obj.get("chosen"), obj.get("rejected"))
    chosen = _candidate(obj, "chosen", line, problems, skip=len(shared))
    rejected = _candidate(obj, "rejected", line, problems, skip=len(shared))
    if prompt is None or chosen is None or rejected is None:
        return None
    if len(shared) > 1:  # a multi-turn dialogue: its earlier turns are part of the prompt
        prompt = shared
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


def _completion(c: Any, i: int, line: int, problems: Problems, opts: Options, scores: list | None,
                list_key: str = "completions") -> tuple[str, float, dict] | None:
    where = f"{list_key}[{i}]"
    name = opts.score_field or "/".join(SCORE_FIELDS)
    if isinstance(c, str):
        text, meta, score = c, {}, scores[i] if scores is not None and i < len(scores) else None
    elif isinstance(c, dict):
        tkey = _first_key(c, TEXT_FIELDS)
        text = c.get(tkey) if tkey else None
        meta = {k: v for k, v in c.items() if k != tkey}
        if opts.score_field:
            score = _get(c, opts.score_field)
        elif skey := _first_key(c, SCORE_FIELDS):
            score, name = c.get(skey), skey
        elif "rank" in c:  # Nectar's answers: rank 1 is the best; the rank stays in the candidate's meta
            rank = _number(c["rank"])
            score, name = (c["rank"] if rank is None else -rank), "rank"
        else:
            score = scores[i] if scores is not None and i < len(scores) else None
    else:
        problems.add(line, where, f"must be a string or an object, got {_type_name(c)}")
        return None
    if not isinstance(text, str) or not text.strip():
        problems.add(line, where, f"has no text (one of {', '.join(TEXT_FIELDS)})")
        return None
    value = _number(score)
    if value is None:
        problems.add(line, f"{where}.{name}", f"score is not a number: {score!r}")
        return None
    return text, value, meta if name == "rank" else {**meta, "score": value}  # (a rank stays as it is)


def _completions_key(obj: dict) -> str | None:
    """Where a row keeps its scored completions: "completions" (UltraFeedback), or "answers" /
    "responses" holding objects (Nectar's {"answer", "model", "rank"})."""
    if "completions" in obj:
        return "completions"
    return next((k for k in ("answers", "responses") if isinstance(obj.get(k), list) and len(obj[k]) >= 2
                 and all(isinstance(c, dict) for c in obj[k])), None)


def _parse_ratings(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    pkey = _first_key(obj, PROMPT_FIELDS)
    prompt = obj.get(pkey) if pkey else None
    if not (isinstance(prompt, str) and prompt.strip()) and not _is_turns(prompt):
        problems.add(line, pkey or "prompt", f"missing or empty (one of {', '.join(PROMPT_FIELDS)})")
        return None
    lkey = _completions_key(obj) or "completions"
    comps = obj.get(lkey)
    if not isinstance(comps, list) or len(comps) < 2:
        problems.add(line, lkey, "must be a list of at least 2 completions")
        return None
    scores = obj.get("scores") if isinstance(obj.get("scores"), list) else None
    parsed = [_completion(c, i, line, problems, opts, scores, lkey) for i, c in enumerate(comps)]
    if any(p is None for p in parsed):
        return None
    fields = _prompt_item(line, prompt, obj, (pkey, lkey, "scores", "id",
                                               opts.rater_field or _first_key(obj, RATER_FIELDS)))
    cmeta = [m for _, _, m in parsed]
    sources = [str(m.get("model") or m.get("source") or "import") for _, _, m in parsed]
    ext = obj.get("id")
    return Item(**fields, candidates=[t for t, _, _ in parsed], ext_id=None if ext is None else str(ext),
                sources=sources, candidate_meta=cmeta,
                judgments=[Judgment(ranks_from_scores([s for _, s, _ in parsed]), rater=_rater(obj, opts))])


# Two answers, as a pair of keys names them. A numbered pair (response_0/response_1) is two answers
# only when no third one follows it (response_2): more are a document's candidates (--map).
TWO_ANSWER_KEYS = (("human_ref_A", "human_ref_B"), ("response_a", "response_b"), ("answer_a", "answer_b"),
                   ("response_A", "response_B"), ("conversation_a", "conversation_b"),
                   ("response_0", "response_1"), ("answer_0", "answer_1"), ("response_1", "response_2"),
                   ("response1", "response2"))
LABEL_FIELDS = ("labels", "label", "winner", "preferred")
TIE_LABELS = ("tie", "equal", "tie (bothbad)", "both_bad", "both bad", "both_good")


def _suffix(key: str) -> str:
    return key[-1]


def _answer_keys(obj: dict) -> tuple[str, str] | None:
    for a, b in TWO_ANSWER_KEYS:
        if a in obj and b in obj:
            if _suffix(b).isdigit() and (f"{b[:-1]}{int(_suffix(b)) + 1}" in obj
                                         or f"{a[:-1]}{int(_suffix(a)) - 1}" in obj):
                continue  # response_0 .. response_2: more than two answers, a document's candidates
            return a, b
    return None


def _json_list(v: Any) -> Any:
    """A list written as a JSON string ('["Hi", "More"]', as some exports store turns) -> the list."""
    if isinstance(v, str) and v.startswith("[") and v.rstrip().endswith("]"):
        try:
            out = json.loads(v)
        except ValueError:
            return v
        if isinstance(out, list) and all(x is None or isinstance(x, str) for x in out):
            return ["" if x is None else x for x in out]  # (a null reply: an empty one, refused as such)
    return v


def _prompt_value(v: Any) -> Any:
    """A prompt as a string or chat turns, or an object holding the text ({"full_text": ...},
    WebGPT's question)."""
    if isinstance(v, dict):
        key = _first_key(v, ("full_text", "text", "content", "question"))
        return v.get(key) if key else v
    return v


def _two_turns(prompt: Any, a: Any, b: Any, turn: Any) -> tuple[Any, Any, Any]:
    """Multi-turn pairs as (prompt, answer A, answer B) in Tokenwise's terms:
    - lists of user prompts and of replies (one per turn): the first prompt, and each side's replies
      with the later user turns between them, rendered as turns;
    - two whole conversations (Chatbot Arena, MT-bench): their shared start is the prompt; `turn`
      (MT-bench's judged turn, 1-based) cuts both after that many replies."""
    if isinstance(prompt, list) and isinstance(a, list) and isinstance(b, list) and prompt and a and b \
            and all(isinstance(x, str) for x in (*prompt, *a, *b)):
        if len(prompt) == len(a) == len(b) == 1:
            return prompt[0], a[0], b[0]

        def side(replies):
            turns = [{"role": "assistant", "content": replies[0]}]
            for p, r in zip(prompt[1:], replies[1:]):
                turns += [{"role": "user", "content": p}, {"role": "assistant", "content": r}]
            return turns

        return [{"role": "user", "content": prompt[0]}], side(a), side(b)
    if _is_turns(a) and _is_turns(b):
        if isinstance(turn, int) and not isinstance(turn, bool) and turn >= 1:
            a, b = _first_replies(a, turn), _first_replies(b, turn)
        if prompt is None:
            split = split_implicit(a, b)
            if split is not None:
                return split
    return prompt, a, b


def _first_replies(turns: list, n: int) -> list:
    """The turns up to and including the n-th assistant reply."""
    seen = 0
    for i, m in enumerate(turns):
        seen += m.get("role") == "assistant"
        if seen == n:
            return turns[:i + 1]
    return turns


def _two_answer_ranks(obj: dict, keys: tuple[str, str], line: int, problems: Problems
                      ) -> tuple[list[int], tuple[str, ...]] | None:
    """The pair's ranks and the keys they were read from, by the first convention the row uses."""
    first, second = keys
    sa, sb = _suffix(first), _suffix(second)
    onehot = ("winner_model_a", "winner_model_b", "winner_tie")  # LMSYS arena-human-preference
    if all(k in obj for k in onehot):
        hot = [k for k in onehot if _number(obj[k]) == 1]
        if len(hot) != 1:
            problems.add(line, "winner_model_a", "exactly one of winner_model_a, winner_model_b and winner_tie "
                         f"must be 1, got {[obj[k] for k in onehot]}")
            return None
        return {"winner_model_a": [1, 2], "winner_model_b": [2, 1], "winner_tie": [1, 1]}[hot[0]], onehot
    if "better_response_id" in obj:  # PKU-SafeRLHF: which of response_0 / response_1
        v = _number(obj["better_response_id"])
        if sa.isdigit() and v in (int(sa), int(sb)):
            return ([1, 2] if v == int(sa) else [2, 1]), ("better_response_id",)
        problems.add(line, "better_response_id", f"must be {sa} or {sb} (the better of {first} and {second}), "
                     f"got {v!r}")
        return None
    if "overall_preference" in obj:  # HelpSteer3: -3..3, below 0 the first is better, 0 a tie
        v = _number(obj["overall_preference"])
        if v is None:
            problems.add(line, "overall_preference", f"must be a number (below 0: {first} is better, above 0: "
                         f"{second}, 0: a tie), got {obj['overall_preference']!r}")
            return None
        return ([1, 2] if v < 0 else [2, 1] if v > 0 else [1, 1]), ("overall_preference",)
    lkey = _first_key(obj, LABEL_FIELDS)
    if lkey is not None:
        label = obj[lkey]
        name = label.strip().lower() if isinstance(label, str) else label
        if sa.isdigit():  # numbered answers: a number names one of them (response_0/1: 0 is the first)
            number, firsts, seconds = _number(label), (int(sa),), (int(sb),)
            usage = f"{sa} or {first} for the first, {sb} or {second} for the second, or tie"
        else:  # SHP: labels = 1 (or true) when A is preferred, 0 when B is
            number, firsts, seconds = float(label) if isinstance(label, bool) else _number(label), (1,), (0,)
            usage = "1, A or model_a for the first; 0, B or model_b for the second; tie"
        if number in firsts or name in ("a", first.lower(), "model_a", f"model_{sa.lower()}"):
            return [1, 2], (lkey,)
        if number in seconds or name in ("b", second.lower(), "model_b", f"model_{sb.lower()}"):
            return [2, 1], (lkey,)
        if name in TIE_LABELS:
            return [1, 1], (lkey,)
        problems.add(line, lkey, f"must say which answer is preferred ({usage}), got {label!r}")
        return None
    score_keys = (f"score_{sa}", f"score_{sb}")
    if all(k in obj for k in score_keys):
        scores = [_number(obj[k]) for k in score_keys]
        for k, s in zip(score_keys, scores):
            if s is None:
                problems.add(line, k, f"score is not a number: {obj[k]!r}")
                return None
        return ranks_from_scores(scores), score_keys
    problems.add(line, "labels", f"needs a label ({', '.join(LABEL_FIELDS)}), the scores {score_keys[0]} and "
                 f"{score_keys[1]}, or winner_model_a/winner_model_b/winner_tie, better_response_id or "
                 "overall_preference")
    return None


def _parse_two_answer(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    keys = _answer_keys(obj)
    if keys is None:
        problems.add(line, "answers", "needs two answers (human_ref_A/human_ref_B, response_a/response_b, "
                     "response_0/response_1, conversation_a/conversation_b, ...)")
        return None
    pkey = _first_key(obj, PROMPT_FIELDS)
    raw = (obj.get(pkey) if pkey else None, obj[keys[0]], obj[keys[1]])
    decoded = [_json_list(v) for v in raw]
    if not all(isinstance(v, list) for v in decoded):  # JSON-string lists only as a set (LMSYS arena's
        decoded = list(raw)                            # layout): an answer may be a text like '["a", "b"]'
    prompt, a, b = _two_turns(_prompt_value(decoded[0]), decoded[1], decoded[2], obj.get("turn"))
    if not (isinstance(prompt, str) and prompt.strip()) and not _is_turns(prompt):
        problems.add(line, pkey or "prompt", f"missing or empty (one of {', '.join(PROMPT_FIELDS)}; or two "
                     "conversations that start with the same turns)" if pkey is None or not prompt else
                     _not_text(prompt))
        return None
    texts = []
    for key, v in zip(keys, (a, b)):
        text = _turn_text(v)
        if not isinstance(text, str):
            problems.add(line, key, _not_text(v))
        elif not text.strip():
            problems.add(line, key, "is empty")
        elif _is_turns(v) and (gap := next((i for i, m in enumerate(v) if not str(m.get("content") or "").strip()),
                                           None)) is not None:
            problems.add(line, key, f"turn {gap + 1} of {len(v)} is empty (null): a reply is missing")
        else:
            texts.append(text)
    judged = _two_answer_ranks(obj, keys, line, problems)
    if judged is None or len(texts) != 2:
        return None
    ranks, label_keys = judged
    model_keys = [f"model_{_suffix(k)}" for k in keys]
    sources = [str(obj[k]) for k in model_keys] if all(obj.get(k) not in (None, "") for k in model_keys) else None
    score_keys = [f"score_{_suffix(k)}" for k in keys]
    known = (pkey, *keys, *label_keys, *score_keys, *(model_keys if sources else ()), "id", "question_id",
             opts.rater_field or _first_key(obj, RATER_FIELDS))
    fields = _prompt_item(line, prompt, obj, known)
    cmeta = [{"score": obj[k]} if k in obj else {} for k in score_keys]
    for m, v in zip(cmeta, (a, b)):
        if _is_turns(v) and len(v) > 1:  # a reply, the user's next turn, the next reply: drawn as turns
            m["turns"] = list(v)
    ext = next((obj[k] for k in ("id", "post_id", "question_id") if obj.get(k) is not None), None)
    return Item(**fields, candidates=texts, ext_id=None if ext is None else str(ext), sources=sources,
                candidate_meta=cmeta, judgments=[Judgment(ranks, rater=_rater(obj, opts))])


# where a scored row's score is: helpfulness is HelpSteer's first attribute; a rank's 1 is the best
SCORED_FIELDS = (*SCORE_FIELDS, "helpfulness", "reward", "quality", "rank")
RESPONSE_FIELDS = ("response", "completion", "output", "answer")
PROMPT_ID_FIELDS = ("prompt_id", "question_id", "conversation_id")


def _parse_scored(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    """One response and its score (a row of long-format data, HelpSteer-like): an Item with one
    candidate whose `value` `group_scored` turns into ranks among the prompt's responses."""
    pkey = _first_key(obj, PROMPT_FIELDS)
    prompt = _prompt_value(obj.get(pkey)) if pkey else None
    if not (isinstance(prompt, str) and prompt.strip()) and not _is_turns(prompt):
        problems.add(line, pkey or "prompt", f"missing or empty (one of {', '.join(PROMPT_FIELDS)})")
        return None
    rkey = _first_key(obj, RESPONSE_FIELDS) or "response"
    text = _candidate(obj, rkey, line, problems)
    if text is None:
        return None
    skey = opts.score_field or _first_key(obj, SCORED_FIELDS)
    if skey is None:
        problems.add(line, "score", f"missing: one of {', '.join(SCORED_FIELDS[:-1])} (higher is better), rank (1 is "
                     "the best), or the column named by --score-field")
        return None
    value = _number(_get(obj, skey))
    if value is None:
        problems.add(line, skey, f"score is not a number: {_get(obj, skey)!r}")
        return None
    rater_key = opts.rater_field or _first_key(obj, RATER_FIELDS)
    ext_key = _first_key(obj, PROMPT_ID_FIELDS)
    fields = _prompt_item(line, prompt, {}, ())
    cmeta = {k: v for k, v in obj.items() if k not in (pkey, rkey, rater_key, ext_key, "model", "title")}
    return Item(**fields, candidates=[text], title=str(obj.get("title") or ""),
                ext_id=None if ext_key is None or obj[ext_key] is None else str(obj[ext_key]),
                sources=[str(obj.get("model") or "import")], candidate_meta=[cmeta],
                judgments=[Judgment([1], rater=_rater(obj, opts))],
                value=-value if skey == "rank" else value)


def group_scored(items: Iterable[Item]) -> Iterator[Item]:
    """`scored` items (one response each) -> one item per prompt and rater: its responses as the
    candidates, ranked by their scores (equal scores tie). Rows of one prompt need not be next to
    each other, so the file's responses are held until it ends (memory: about the file's size)."""
    groups: dict[tuple, list[Item]] = {}
    for it in items:
        key = (fold_spaces(it.title), fold_spaces(it.text), it.judgments[0].rater)
        groups.setdefault(key, []).append(it)
    for rows in groups.values():
        first = rows[0]
        yield Item(first.line, first.text, [c for it in rows for c in it.candidates], title=first.title,
                   ext_id=first.ext_id, meta=first.meta, sources=[s for it in rows for s in it.sources or ["import"]],
                   candidate_meta=[m for it in rows for m in it.candidate_meta or [{}]],
                   judgments=[Judgment(ranks_from_scores([it.value for it in rows]), rater=first.judgments[0].rater)])


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


def _lazy_parser(module: str, name: str) -> Parser:
    """A parser of training/data/<module>.py (which builds on this module), looked up when used."""
    def parse(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
        return getattr(importlib.import_module(f"training.data.{module}"), name)(obj, line, problems, opts)

    return parse


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
    Format("two_answer", "two answers with a label or scores (SHP, Chatbot Arena, MT-bench, PKU-SafeRLHF, "
                         "HelpSteer3, WebGPT)",
           frozenset({"history", "human_ref_A", "human_ref_B"}),
           {"history": "How do I keep basil alive?", "human_ref_A": "Water it when the soil is dry.",
            "human_ref_B": "Basil dies.", "labels": 1, "score_A": 12, "score_B": 2}, _parse_two_answer),
    Format("scored", "one response per row with its score (HelpSteer-like): a prompt's rows are one document",
           frozenset({"prompt", "response", "helpfulness"}),
           {"prompt": "Name a fruit that is yellow.", "response": "A banana.", "helpfulness": 4, "correctness": 4},
           _parse_scored),
    Format("slf5k", "SLF5K rows: a post, a generated summary, its feedback and the ideal summary",
           frozenset(SLF5K_FIELDS),
           {"title": "Neighbour's dog", "post": "The dog next door barks all night ...",
            "generated_summary_for_feedback": "A dog barks.", "feedback": "Say it is every night.",
            "ideal_human_summary": "The neighbour's dog barks every night."}, _parse_slf5k),
    Format("label_studio", "Label Studio's JSON or JSON-MIN export: pairwise, ranker, choices, ratings per output, "
                           "critiques in text areas", frozenset({"id", "data", "annotations"}),
           {"id": 12, "data": {"prompt": "Name a prime number.", "answer1": "7", "answer2": "8"},
            "annotations": [{"id": 3, "completed_by": 1, "was_cancelled": False, "result": [
                {"from_name": "comparison", "to_name": "comparison", "type": "pairwise",
                 "value": {"selected": "left"}}]}]}, _lazy_parser("tool_exports", "parse_label_studio")),
    Format("argilla", "Argilla records (to_json, to_datasets, Hub): a ranking, label or per-output rating question; "
                      "text questions per output as critiques", frozenset({"id", "fields", "responses"}),
           {"id": "r1", "fields": {"prompt": "Name a prime number.", "response1": "7", "response2": "8"},
            "metadata": {}, "responses": {"ranking": [{"value": ["response1", "response2"], "user_id": "u1"}]}},
           _lazy_parser("tool_exports", "parse_argilla")),
    Format("oasst", "OpenAssistant conversations (OASST1/2): messages or trees; a prompt's ranked assistant "
                    "replies are one document", frozenset({"message_id", "parent_id", "role", "text", "rank"}),
           {"message_tree_id": "m1", "tree_state": "ready_for_export", "prompt": {
               "message_id": "m1", "role": "prompter", "text": "What is the capital of Peru?", "lang": "en",
               "replies": [{"message_id": "m2", "role": "assistant", "text": "Lima.", "rank": 0, "replies": []},
                           {"message_id": "m3", "role": "assistant", "text": "Cusco.", "rank": 1, "replies": []}]}},
           _lazy_parser("oasst", "parse_row")),
]}
VARIABLE_K = frozenset({"oasst"})  # formats whose documents have 2..K candidates (K: the project's most)
WHOLE_FILE = frozenset({"scored", "oasst"})  # formats whose document gathers several rows (read_rows)


def _columns(source: str, obj: dict) -> list[str]:
    """The columns a mapping's source names: itself, or "a+b+c" (when it is not one column's name)."""
    if source in obj or "+" not in source:
        return [source]
    return [part.strip() for part in source.split("+")]


def apply_mapping(obj: dict, mapping: dict[str, str]) -> dict:
    """Rename the file's columns to the names Tokenwise reads (target <- source); other keys stay.
    A source "a+b+c" makes a list of those columns' values; for candidates each is {"text",
    "source"}, the column's name its source (candidates=gpt4_answer+llama_answer: which model won)."""
    if not mapping:
        return obj
    used = {col for source in mapping.values() for col in _columns(source, obj)}
    out = {k: v for k, v in obj.items() if k not in used}
    for target, source in mapping.items():
        cols = _columns(source, obj)
        if len(cols) > 1:
            if all(c in obj for c in cols):
                out[target] = ([{"text": obj[c], "source": c} for c in cols] if target == "candidates"
                               else [obj[c] for c in cols])
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
    from training.data import tool_exports

    if tool_exports.is_label_studio(obj):
        return "label_studio"
    if tool_exports.is_argilla(obj):
        return "argilla"
    from training.data import oasst

    if oasst.is_oasst(obj):
        return "oasst"
    keys = set(obj)
    if "text" in keys and ("candidates" in keys or sum(bool(CANDIDATE_COLUMN.match(k)) for k in keys) >= 2):
        return "documents"  # (a CSV's candidate_1 .. candidate_K columns)
    if {"summaries", "choice"} <= keys:
        return "sff"
    if "generated_summary_for_feedback" in keys:
        return "slf5k"
    if {"chosen", "rejected"} <= keys:
        return "pairs" if "prompt" in keys else "implicit"
    if _completions_key(obj) and _first_key(obj, PROMPT_FIELDS):
        return "ratings"
    if _answer_keys(obj) is not None:
        return "two_answer"
    if _first_key(obj, PROMPT_FIELDS) and _first_key(obj, RESPONSE_FIELDS) and _first_key(obj, SCORED_FIELDS):
        return "scored"
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

    return fmt, read_rows(fmt, records(source, problems, split=split), problems if problems is not None
                          else _Quiet(), opts)


def read_rows(fmt: str, rows: Iterable[tuple[int, Any]], problems: Problems, opts: Options) -> Iterator[Item]:
    """The items of (line, row) pairs in a preference format: one per row, or, for WHOLE_FILE
    formats, one per group of rows (a prompt's scored responses; an OASST prompt and its ranked
    replies), once the rows are all read. Bad rows are reported to `problems` and skipped."""
    if fmt == "oasst":
        from training.data import oasst

        return oasst.read(rows, problems)

    def items() -> Iterator[Item]:
        for line, obj in rows:
            if isinstance(obj, dict):
                item = parse(fmt, obj, line, problems, opts)
                if item is not None:
                    yield item
            elif obj is not None:
                problems.add(line, "line", f"must be a JSON object, got {_type_name(obj)}")

    return group_scored(items()) if fmt == "scored" else items()


def grouped(items: Iterable[Item]) -> list[Item]:
    """Items with the same key merged into one with all their judgments (first-seen order)."""
    out: dict[str, Item] = {}
    for it in items:
        if it.key in out:
            merge(out[it.key], it)
        else:
            out[it.key] = it
    return list(out.values())
