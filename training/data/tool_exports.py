"""The exports of other annotation tools, read as they are: Label Studio and Argilla.

Label Studio (`label_studio`): the JSON export, a list of tasks
    {"id", "data": {"prompt", "answer1", "answer2"}, "annotations": [{"completed_by", "result": [...]}]},
or the JSON-MIN export (one row per annotation: the data's fields, each control's value under its
name, "annotator", "annotation_id"). An annotation's results say how the annotator judged the
task's outputs:
    pairwise          {"selected": "left" | "right"}  (the "Human preference collection" template)
    ranker            {"ranker": [item ids, best first]} over a List of {"id", "title", "body"}
                      items (the "LLM Ranker" template; buckets group items, they are not a ranking)
    choices           a choice naming an output: its field ("answer2", "Answer 2"), left/right, A/B,
                      1/2; or a tie ("tie", "both", "neither")
    rating / number   one per output (to_name = its field): higher is better
    textarea          to_name = an output's field: a critique of that output
Cancelled annotations are left out; a task without annotations is a document still to rank.
JSON-MIN loses a result's to_name and writes a single choice or a text area as a bare string: there
a rating or text area counts for the output its control is named after (r2, critique_answer2), and
a text that aims at no output stays in the document's meta. The CSV and TSV exports are JSON-MIN
as a table (columns sorted by name, a result list as JSON text, a missing value ""): there any text
column may be the task's data, so a bare text is a choice only when it names an output exactly
("Answer 2") or a tie. The JSON export says more: prefer it.

Argilla (`argilla`): records as Argilla 2 writes them with `records.to_json` / `to_list()`
    {"id", "fields": {...}, "metadata", "responses": {question: [{"value", "user_id"}]}, ...},
flattened by `to_list(flatten=True)` / `to_datasets()` (and so a dataset pushed to the Hub)
    {field: ..., "<question>.responses": [values], "<question>.responses.users": [...],
     "<question>.responses.status": [...], ...},
as Argilla 1's FeedbackDataset on the Hub: {field: ..., "<question>": [{"user_id", "value", "status"}]},
or Argilla 1's records ({"fields", "responses": [{"user_id", "values": {question: {"value"}}, "status"}]}).
A user's responses are one judgment: a ranking question (its option values name the outputs'
fields, best first; Argilla 1: [{"value", "rank"}], ties allowed), a label question naming an
output or a tie, or a rating question per output (its name holds the output's field: "rating_response1").
A text question per output ("critique_response1") is a critique of it; the answers to other
questions (a note on the whole pair, a topic) are kept in the document's meta, one per user, by
question. Responses whose status is
given and not "submitted" (drafts, discarded) are left out; `to_json` writes no status, so there
every response counts.

The outputs to rank are the fields the judgments name, else the task's numbered text fields
(answer1, answer2, ... / response_a, response_b); the prompt is the first of PROMPT_KEYS, else the
one text field left; the other fields go to the document's meta.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from training.data.formats import (
    PROMPT_FIELDS,
    TIE_LABELS,
    Item,
    Judgment,
    Options,
    Problems,
    _is_turns,
    _number,
    _prompt_item,
    _type_name,
    ranks_from_scores,
)

PROMPT_KEYS = (*PROMPT_FIELDS, "text", "query", "document", "article")
TIE_WORDS = frozenset({"tie", "both", "neither", "same", "equal", "none", "bothbad", "bothgood", "draw"})
_SUFFIX = re.compile(r"^(.*?)(?:[ _-]?(\d+)|[ _-]([A-Za-z]))$")


def _norm(s: Any) -> str:
    """Lower case, letters and digits only: "Answer 1" and "answer_1" read alike."""
    return _norm_text(s if isinstance(s, str) else str(s))


@functools.lru_cache(maxsize=4096)  # (the same few field, option and question names on every row)
def _norm_text(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


@functools.lru_cache(maxsize=4096)
def _suffix(key: str) -> tuple[str, str] | None:
    """("answer", "1") for answer1 / answer_1, ("response", "a") for response_a; None otherwise."""
    m = _SUFFIX.match(key.strip())
    if not m or not m.group(1):
        return None
    return _norm(m.group(1)), (m.group(2) or m.group(3)).lower()


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def numbered(fields: dict) -> list[str]:
    """The largest group of text fields named alike but for a number or a letter (answer1, answer2,
    ...; response_a, response_b), in their order; [] when there is none of two or more."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for key, value in fields.items():
        if _is_text(value) and (s := _suffix(str(key))):
            groups.setdefault(s[0], []).append((s[1], str(key)))
    best = max(groups.values(), key=len, default=[])
    if len(best) < 2:
        return []
    return [k for _, k in sorted(best, key=lambda t: (not t[0].isdigit(), int(t[0]) if t[0].isdigit() else 0, t[0]))]


def named(label: Any, names: Sequence[str]) -> int | str | None:
    """Which output a label names (its index), "tie", or None when it names none: the output's field
    ("answer2", "Answer 2"), the same number or letter ("reply-2" for response_2, "2"), or, of
    two, left/right, first/second, A/B."""
    if isinstance(label, bool) or label is None:
        return None
    if isinstance(label, (int, float)):
        label = str(int(label)) if float(label).is_integer() else str(label)
    if not isinstance(label, str) or not label.strip():
        return None
    n = _norm(label)
    if label.strip().lower() in TIE_LABELS or n in TIE_WORDS:
        return "tie"
    exact = [i for i, k in enumerate(names) if _norm(k) == n]
    if len(exact) == 1:
        return exact[0]
    mark = n if n.isdigit() else (s[1] if (s := _suffix(label)) else None)
    if mark is not None:
        same = [i for i, k in enumerate(names) if (t := _suffix(k)) and t[1] == mark]
        if len(same) == 1:
            return same[0]
    if len(names) == 2:
        for i, words in enumerate((("left", "first", "a", "1"), ("right", "second", "b", "2"))):
            if n in words:
                return i
    if n.isdigit() and 1 <= int(n) <= len(names):
        return int(n) - 1
    return None


def about(question: str, names: Sequence[str]) -> int | None:
    """The output a question is about: the one whose field its name holds ("rating_response1");
    the longest such name, when it is the only one that long."""
    q = _norm(question)
    hits = sorted(((len(_norm(k)), i) for i, k in enumerate(names) if _norm(k) and _norm(k) in q), reverse=True)
    if not hits or (len(hits) > 1 and hits[0][0] == hits[1][0]):
        return None
    return hits[0][1]


def ranks_from_order(labels: list, names: Sequence[str], resolve: Callable[[Any, Sequence[str]], Any],
                     levels: list | None = None) -> list[int] | str:
    """Ranks of the outputs from labels best first (or with their `levels`, 1 = best, equal levels
    tie), each label resolved to an output; a string saying what is wrong otherwise."""
    where = [resolve(x, names) for x in labels]
    unknown = [repr(x) for x, w in zip(labels, where) if not isinstance(w, int)]
    if unknown:
        return f"names no output: {', '.join(unknown)} (the outputs: {', '.join(names)})"
    if len(set(where)) != len(where):
        return "places an output twice"
    missing = [names[i] for i in range(len(names)) if i not in where]
    if missing:
        return f"misses {', '.join(missing)}: a ranking places every output"
    if levels is None:
        levels = list(range(1, len(labels) + 1))
    nums = [_number(v) for v in levels]
    if len(nums) != len(where) or any(v is None for v in nums):
        return f"ranks must be numbers, one per output, got {levels!r}"
    by_output = [0.0] * len(names)
    for i, v in zip(where, nums):
        by_output[i] = v
    return ranks_from_scores([-v for v in by_output])


def _names_exactly(label: Any, names: Sequence[str], which: int | str | None) -> bool:
    """Whether `label` (which `named` read as `which`) is a tie word, left/right of two, or an
    output's own field name ("Answer 2" for answer2), not only its number or letter."""
    n = _norm(label)
    return which == "tie" or (isinstance(which, int) and (
        _norm(names[which]) == n or (len(names) == 2 and n == ("left", "right")[which])))


def _choice_ranks(which: int | str, k: int) -> list[int]:
    return [1] * k if which == "tie" else [1 if i == which else 2 for i in range(k)]


def _prompt_key(fields: dict, taken: set[str]) -> str | None:
    """The prompt's field: the first of PROMPT_KEYS with a text, else the only text field left."""
    rest = {k: v for k, v in fields.items() if k not in taken and (_is_text(v) or _is_turns(v))}
    key = next((k for name in PROMPT_KEYS for k in rest if k.lower() == name), None)
    if key is None and len([k for k, v in rest.items() if _is_text(v)]) == 1:
        key = next(k for k, v in rest.items() if _is_text(v))
    return key


def _item(line: int, fields: dict, texts: list[str], where: str, problems: Problems, ext: Any,
          judgments: list[Judgment], *, taken: Sequence[str] = (), sources: list[str] | None = None,
          candidate_meta: list[dict] | None = None, meta: dict | None = None) -> Item | None:
    """The Item of a task or record: the prompt from `fields` (the outputs' fields left out), the
    outputs' texts, the other fields (but `taken`) and `meta` as the document's meta."""
    pkey = _prompt_key(fields, set(taken))
    if pkey is None:
        problems.add(line, where, "has no prompt: none of " + ", ".join(PROMPT_KEYS[:6]) + ", ... and not one "
                     f"text field besides the outputs (fields: {', '.join(map(str, fields)) or 'none'})")
        return None
    item = _prompt_item(line, fields[pkey], fields, (pkey, *taken))
    item["meta"].update(meta or {})
    return Item(**item, candidates=texts, ext_id=None if ext is None else str(ext), sources=sources,
                candidate_meta=candidate_meta, judgments=judgments)


def _output_texts(fields: dict, outputs: list[str], where: str, line: int, problems: Problems,
                  how: str) -> list[str] | None:
    """The outputs' texts; None, with a problem added, when there are not two outputs (`how`: what
    would make them known, for the message) or one of them has no text."""
    if len(outputs) < 2:
        problems.add(line, where, f"cannot tell which fields are the outputs to rank: {how}; fields: "
                     f"{', '.join(map(str, fields)) or 'none'}")
        return None
    bad = [k for k in outputs if not _is_text(fields.get(k))]
    for k in bad:
        problems.add(line, f"{where}.{k}", "is empty" if isinstance(fields.get(k), str) else
                     f"must be the output's text, got {_type_name(fields.get(k))}")
    return None if bad else [fields[k] for k in outputs]


def _who(v: Any) -> str | None:
    """An annotator as an export names them: an id, or {"email", "username", "id", ...}."""
    if isinstance(v, dict):
        v = next((v[k] for k in ("email", "username", "name", "id") if v.get(k) not in (None, "")), None)
    return None if v in (None, "") else str(v)


# -- Label Studio ----------------------------------------------------------------------------------
LS_MIN_KEYS = ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement", "history")
LS_TEXT_KEYS = ("body", "text", "content", "html", "title")


def is_label_studio(obj: dict) -> bool:
    return (isinstance(obj.get("data"), dict) and isinstance(obj.get("annotations", obj.get("completions")), list)) \
        or {"annotation_id", "annotator"} <= set(obj)


def _ls_min(obj: dict) -> dict:
    """A JSON-MIN row (one annotation: the data's fields, then "id", then each control's value under
    its name, then "annotator", ...) in the JSON export's shape. Pairwise, ranker and rating values
    are lists of value objects there; a single choice or a text area is a bare string, kept in the
    data too (a choice that names an output, or a text whose control names one, is used as such)."""
    def kind(v: Any) -> str | None:
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            return next((k for k in ("selected", "ranker", "rating", "number") if k in v[0]), None)
        return "text" if isinstance(v, str) else None

    table = all(isinstance(v, str) for v in obj.values())
    if table:  # a CSV/TSV export: JSON-MIN with lists as JSON text, a missing value as "", columns sorted
        obj = {k: _json_value(v) for k, v in obj.items() if v.strip()}
        inputs = {*numbered(obj), *(k for k in obj if k in PROMPT_KEYS)}
        controls = [k for k in obj if k not in inputs]
    else:
        keys = list(obj)
        controls = keys[keys.index("id") + 1:] if "id" in keys else []  # (the converter writes them after "id")
    results, data = [], {}
    for k, v in obj.items():
        if k in LS_MIN_KEYS:
            continue
        t = kind(v) if k in controls else None
        if t is None or t == "text":
            data[k] = v
        if t is not None:
            for value in ([{"text": v}] if t == "text" else v):
                results.append({"from_name": k, "to_name": None, "type": {"selected": "pairwise"}.get(t, t),
                                "value": value, "min": "table" if table else True})
    annotation = {"id": obj.get("annotation_id"), "completed_by": obj.get("annotator"), "result": results}
    return {"id": obj.get("id"), "data": data, "annotations": [annotation] if results else []}


def _json_value(v: str) -> Any:
    """A CSV cell that holds a JSON list or object, decoded; any other cell as it is."""
    if v[:1] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            pass
    return v


def _ls_list(data: dict, ranker: dict) -> str | None:
    """The data field holding the List a ranker ranks: its to_name, else the one list of {"id", ...}."""
    def items(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, dict) and "id" in x for x in v)

    if isinstance(ranker.get("to_name"), str) and items(data.get(ranker["to_name"])):
        return ranker["to_name"]
    lists = [k for k, v in data.items() if items(v)]
    return lists[0] if len(lists) == 1 else None


def _listed(v: Any) -> list:
    """A value that should be a list, as one: a lone string is a list of one, anything else none."""
    return v if isinstance(v, list) else [v] if isinstance(v, str) else []


def _results(annotation: dict) -> list[dict]:
    found = annotation.get("result")
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def _as_index(which: int | str | None) -> int | None:
    return which if isinstance(which, int) else None


def _ls_judgment(a: dict, n: int, outputs: list[str], line: int, problems: Problems, used: set[str]
                 ) -> Judgment | None | bool:
    """One annotation's judgment; None when it has no results; False (a problem added) when its
    results give no ranking of the outputs. JSON-MIN strings read as a choice or a critique are
    added to `used` (they leave the document's meta)."""
    results = _results(a)
    if not results:
        return None
    where = f"annotations[{n}]"
    ranks: list[int] | None = None
    scores: dict[int, float] = {}
    critiques: dict[int, str] = {}
    for r in results:
        kind, value = str(r.get("type", "")).lower(), r.get("value") if isinstance(r.get("value"), dict) else {}
        target = outputs.index(r["to_name"]) if r.get("to_name") in outputs else None
        if r.get("min") and target is None:  # JSON-MIN lost the to_name: a control named after an output (r2)
            found = about(str(r.get("from_name")), outputs)
            target = found if found is not None else _as_index(named(r.get("from_name"), outputs))
        if kind == "ranker" and ranks is None:
            order = value.get("ranker")
            if isinstance(order, dict):
                if len(order) != 1:
                    problems.add(line, f"{where}.ranker", f"holds buckets ({', '.join(map(str, order))}), which "
                                 "group the items without ranking them; rank them in one list")
                    return False
                order = next(iter(order.values()))
            if not isinstance(order, list):
                problems.add(line, f"{where}.ranker", f"must be the items' ids best first, got {_type_name(order)}")
                return False
            got = ranks_from_order([str(x) for x in order], outputs, lambda x, names: names.index(x)
                                   if x in names else None)
            if isinstance(got, str):
                problems.add(line, f"{where}.ranker", got)
                return False
            ranks = got
        elif kind == "pairwise" and ranks is None:
            side = value.get("selected")
            if len(outputs) != 2 or side not in ("left", "right"):
                problems.add(line, f"{where}.pairwise", f"selected must be left or right between two outputs, got "
                             f"{side!r} with {len(outputs)} outputs")
                return False
            ranks = [1, 2] if side == "left" else [2, 1]
        elif kind == "choices" and ranks is None:
            picks = [w for c in _listed(value.get("choices")) if (w := named(c, outputs)) is not None]
            if len(picks) == 1:
                ranks = _choice_ranks(picks[0], len(outputs))
        elif kind in ("rating", "number") and target is not None and _number(value.get(kind)) is not None:
            scores[target] = _number(value.get(kind))
        elif kind == "textarea" and target is not None:
            text = "\n".join(t for t in _listed(value.get("text")) if isinstance(t, str)).strip()
            if text:
                critiques[target] = text
        elif kind == "text":  # JSON-MIN's bare string: a choice naming an output, or a text area on one
            which = named(value.get("text"), outputs)
            if r.get("min") == "table" and not _names_exactly(value.get("text"), outputs, which):
                which = None  # (in a table any text column may be data: only an output's name, or a tie)
            if which is not None and ranks is None:
                ranks = _choice_ranks(which, len(outputs))
                used.add(str(r.get("from_name")))
            elif which is None and target is not None and str(value.get("text")).strip():
                critiques[target] = str(value["text"]).strip()
                used.add(str(r.get("from_name")))
    if ranks is None and len(scores) == len(outputs):
        ranks = ranks_from_scores([scores[i] for i in range(len(outputs))])
    if ranks is None and all(r.get("type") == "text" for r in results):
        return None  # JSON-MIN strings that say nothing of the outputs: data, not a judgment
    if ranks is None:
        kinds = ", ".join(sorted({str(r.get("type")) for r in results}))
        problems.add(line, where, f"gives no ranking of the outputs ({', '.join(outputs)}): its results are "
                     f"{kinds}; Tokenwise reads pairwise, ranker, a choice naming an output, or a rating of each")
        return False
    return Judgment(ranks, rater=_who(a.get("completed_by")), critiques=critiques)


def parse_label_studio(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    if "data" not in obj and "annotation_id" in obj:
        obj = _ls_min(obj)
    data = obj.get("data")
    if not isinstance(data, dict):
        problems.add(line, "data", f"must be an object holding the task's fields, got {_type_name(data)}")
        return None
    annotations = obj.get("annotations", obj.get("completions")) or []
    if not isinstance(annotations, list):
        problems.add(line, "annotations", f"must be a list, got {_type_name(annotations)}")
        return None
    kept = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled") and not a.get("skipped")]
    results = [r for a in kept for r in _results(a)]
    ranker = next((r for r in results if r.get("type") == "ranker"), None)
    key = _ls_list(data, ranker or {})
    sources = cmeta = None
    taken: tuple[str, ...] = ()
    if ranker is not None and key is None:
        problems.add(line, "data", "a ranker ranks a List, but no field holds one list of items "
                     "{\"id\", \"title\", \"body\"}")
        return None
    if key is not None and (ranker is not None or not numbered(data)):  # the outputs: a List's items, by id
        items = data[key]
        texts = [next((x[k] for k in LS_TEXT_KEYS if _is_text(x.get(k))), None) for x in items]
        for i, t in enumerate(texts):
            if t is None:
                problems.add(line, f"data.{key}[{i}]", f"has no text (one of {', '.join(LS_TEXT_KEYS)})")
                return None
        outputs, taken = [str(x["id"]) for x in items], (key,)
        sources = [str(x["title"]) if _is_text(x.get("title")) and t != x["title"] else "import"
                   for x, t in zip(items, texts)]
        cmeta = [{"id": x["id"], **({"title": x["title"]} if "title" in x else {})} for x in items]
    else:
        aimed = (r.get("to_name") for r in results)
        outputs = numbered(data) or [k for k in dict.fromkeys(k for k in aimed if isinstance(k, str))
                                     if _is_text(data.get(k))]
        texts = _output_texts(data, outputs, "data", line, problems, "name them alike but for a number (answer1, "
                              "answer2, ...) or rate each one (a rating whose toName is its field)")
        if texts is None:
            return None
    judgments, used = [], set()
    for n, a in enumerate(annotations):
        if isinstance(a, dict) and not a.get("was_cancelled") and not a.get("skipped"):
            j = _ls_judgment(a, n, outputs, line, problems, used)
            if j is False:
                return None
            if j is not None:
                judgments.append(j)
    ext = obj.get("id")
    fields = {k: v for k, v in data.items() if k not in outputs and k not in used}
    return _item(line, fields, texts, "data", problems, ext, judgments, taken=taken, sources=sources,
                 candidate_meta=cmeta)


# -- Argilla ---------------------------------------------------------------------------------------
ARGILLA_KEYS = ("id", "_server_id", "external_id", "status", "inserted_at", "updated_at", "metadata", "vectors")


def _v1_answers(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(r, dict) and "user_id" in r and "value" in r for r in v)


def is_argilla(obj: dict) -> bool:
    return (isinstance(obj.get("fields"), dict) and isinstance(obj.get("responses"), (dict, list))) \
        or any(str(k).endswith(".responses") for k in obj) or any(_v1_answers(v) for v in obj.values())


def _metadata(v: Any) -> dict:
    """A record's metadata: an object, or one written as a JSON string (Argilla 1 on the Hub)."""
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            return {"metadata": v}
    return v if isinstance(v, dict) else {}


def _argilla_parts(obj: dict) -> tuple[dict, dict[str, list[tuple[Any, Any, Any]]], dict]:
    """(fields, {question: [(user, value, status)]}, metadata) of a record in any of its shapes."""
    if isinstance(obj.get("fields"), dict) and isinstance(obj.get("responses"), dict):  # Argilla 2 to_json
        answers = {str(q): [(r.get("user_id"), r.get("value"), r.get("status")) for r in rs if isinstance(r, dict)]
                   for q, rs in obj["responses"].items() if isinstance(rs, list)}
        return obj["fields"], answers, _metadata(obj.get("metadata"))
    if isinstance(obj.get("fields"), dict) and isinstance(obj.get("responses"), list):  # Argilla 1 records
        answers = {}
        for r in obj["responses"]:
            if isinstance(r, dict) and isinstance(r.get("values"), dict):
                for q, v in r["values"].items():
                    answers.setdefault(str(q), []).append(
                        (r.get("user_id"), v.get("value") if isinstance(v, dict) else v, r.get("status")))
        return obj["fields"], answers, _metadata(obj.get("metadata"))
    answers, skip = {}, set(ARGILLA_KEYS)
    for key, v in obj.items():
        key = str(key)
        if key.endswith(".responses"):  # flattened: values, users and statuses side by side
            users, status, values = (x if isinstance(x, list) else [] for x in
                                     (obj.get(f"{key}.users"), obj.get(f"{key}.status"), v))
            answers[key.removesuffix(".responses")] = [
                (users[i] if i < len(users) else None, x, status[i] if i < len(status) else None)
                for i, x in enumerate(values)]
            skip.add(key)
        elif _v1_answers(v) or (v == [] and f"{key}-suggestion" in obj):  # Argilla 1 on the Hub
            answers[key] = [(r.get("user_id"), r.get("value"), r.get("status")) for r in v]
            skip.add(key)
    fields = {k: v for k, v in obj.items() if k not in skip and ".responses" not in str(k)
              and ".suggestion" not in str(k) and "-suggestion" not in str(k)}
    return fields, answers, _metadata(obj.get("metadata"))


def _argilla_outputs(fields: dict, answers: dict) -> list[str]:
    """The fields a record's users rank: those its ranking options name, else its numbered text
    fields, else the fields its per-output questions are about."""
    texts = [k for k, v in fields.items() if _is_text(v)]
    for rs in answers.values():
        for _, value, _ in rs:
            labels = (_ranking_labels(value) or ([], None))[0]
            hit = [k for k in texts if any(_norm(x) == _norm(k) for x in labels)]
            if len(hit) >= 2:
                return hit
    if found := numbered(fields):
        return found
    hit = [k for k in texts if any(about(q, texts) == texts.index(k) for q in answers)]
    return hit if len(hit) >= 2 else []


def _ranking_labels(value: Any) -> tuple[list, list | None] | None:
    """(labels, levels) of a ranking answer: a list best first (Argilla 2), a list of
    {"value", "rank"} (Argilla 1) or its columns {"value": [...], "rank": [...]}; None otherwise."""
    if isinstance(value, dict) and isinstance(value.get("value"), list):
        rank = value.get("rank")
        return value["value"], rank if isinstance(rank, list) else None
    if isinstance(value, list) and value:
        if all(isinstance(x, dict) and "value" in x for x in value):
            levels = [x.get("rank") for x in value]
            return [x["value"] for x in value], None if all(v is None for v in levels) else levels
        if all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in value):
            return list(value), None
    return None


def parse_argilla(obj: dict, line: int, problems: Problems, opts: Options) -> Item | None:
    fields, answers, meta = _argilla_parts(obj)
    if not isinstance(fields, dict):
        problems.add(line, "fields", f"must be an object, got {_type_name(fields)}")
        return None
    outputs = _argilla_outputs(fields, answers)
    texts = _output_texts(fields, outputs, "fields", line, problems, "a ranking question whose options are their "
                          "names, fields named alike but for a number (response1, response2), or a rating question "
                          "per output (rating_response1, ...)")
    if texts is None:
        return None
    by_user: dict[str, dict[str, Any]] = {}
    for q, rs in answers.items():
        for user, value, status in rs:
            if status in (None, "submitted") and value is not None:
                by_user.setdefault(str(user), {})[q] = value
    judgments, other = [], {}  # other: answers that are about no one output (a note on the pair, a topic)
    for user, given in by_user.items():
        ranks, scores, critiques = None, {}, {}
        for q, value in given.items():
            target = about(q, outputs)  # a question about one output: its rating or its critique
            labels = _ranking_labels(value)
            used = True
            if target is not None and isinstance(value, str) and value.strip():
                critiques[target] = value.strip()
            elif target is not None and _number(value) is not None:
                scores[target] = _number(value)
            elif target is None and labels is not None:
                got = ranks_from_order(labels[0], outputs, named, labels[1])
                if isinstance(got, str) and any(isinstance(named(x, outputs), int) for x in labels[0]):
                    problems.add(line, f"{q}.responses", f"user {user}: the ranking {got}")
                    return None
                used = isinstance(got, list) and ranks is None  # (else a multi-label answer, or a second ranking)
                ranks = got if used else ranks
            elif target is None and isinstance(value, str) and (which := named(value, outputs)) is not None \
                    and ranks is None:
                ranks = _choice_ranks(which, len(outputs))
            else:
                used = False
            if not used and value not in ("", [], {}):
                other.setdefault(q, []).append(value)
        if ranks is None and len(scores) == len(outputs):
            ranks = ranks_from_scores([scores[i] for i in range(len(outputs))])
        if ranks is not None:
            judgments.append(Judgment(ranks, rater=user if user != "None" else None, critiques=critiques))
    ext = next((obj[k] for k in ("id", "external_id") if obj.get(k) not in (None, "")), None)
    rest = {k: v for k, v in fields.items() if k not in outputs}
    return _item(line, rest, texts, "fields", problems, ext, judgments, meta={**meta, **other})
