"""ILF templates: the prompt text of refine, InstructRM and the datasets (DESIGN.md, Algorithm 2).

Templates live in data/ilf_templates.json, or the project's `templates` column (same shape; its
top-level keys replace the file's). A template is a str.format string over the fields
instruction, title, text, output, feedback, refinement; each slot has fields it must use and may
use (`_RULES`), checked when the templates are loaded so a typo is refused before a model loads.

    load_templates(project) -> dict        the file's templates, the project's sections on top
    item_fields(item, templates, kind, context_fields=p.context_fields)
                                           a critique item's field values (not `refinement`)
    fill(template, values)                 the filled text; a missing value is named
    postprocess(sample, stop)              a generated sample without its preamble ("Here is ...:"),
                                           cut at a stop string or blank line and its last finished sentence
    drop_reason(refinement, output, feedback)  "empty" | "copy" | "meta" | "echo" when a sample is not a rewrite

A model with a chat template gets `refinement_chat` as its user turn and the instructrm prompts
as they are; a base model gets `refinement` (ending with a cue) and the instructrm prompts
followed by `instructrm_cue`.
"""

from __future__ import annotations

import copy
import json
import re
import string
from collections.abc import Sequence
from pathlib import Path

from training.annotation.context import context_of
from training.data.context import with_fields
from training.errors import ValidationError

TEMPLATES_FILE = Path(__file__).resolve().parents[2] / "data" / "ilf_templates.json"
FIELDS = ("instruction", "title", "text", "output", "feedback", "refinement")

# template slot -> (fields it must use, fields it may use)
_RULES = {
    "refinement.feedback": ({"output", "feedback"}, {"instruction", "title", "text", "output", "feedback"}),
    "refinement.no_feedback": ({"output"}, {"instruction", "title", "text", "output"}),
    "refinement_chat.feedback": ({"output", "feedback"}, {"instruction", "title", "text", "output", "feedback"}),
    "refinement_chat.no_feedback": ({"output"}, {"instruction", "title", "text", "output"}),
    "instructrm": ({"feedback", "refinement"}, set(FIELDS)),
    "dataset.sft_prompt": (set(), {"instruction", "title", "text"}),
    "dataset.sft_completion": ({"refinement"}, {"refinement"}),
    "dataset.feedback_prompt": ({"output"}, {"instruction", "title", "text", "output"}),
    "dataset.feedback_completion": ({"feedback", "refinement"}, {"feedback", "refinement"}),
}


def template_fields(template: str) -> set[str]:
    """The {fields} a template uses."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as e:
        raise ValidationError(f"template {template[:40]!r}...: {e} (write literal braces as {{{{ and }}}})") from None


def check_template(template: str, where: str, rule: str | None = None) -> None:
    """Raise ValidationError naming the field when a template lacks a needed one or uses an unknown one."""
    needed, allowed = _RULES[rule or where]
    used = template_fields(template)
    for f in sorted(needed - used):
        raise ValidationError(f"template {where}: the field {{{f}}} is missing; this template needs "
                              + ", ".join("{" + x + "}" for x in sorted(needed)))
    for f in sorted(used - allowed):
        raise ValidationError(f"template {where}: unknown field {{{f}}}; it may use "
                              + ", ".join("{" + x + "}" for x in sorted(allowed)))


def validate_templates(t: dict) -> dict:
    """`t` itself when every section is there and every template uses the right fields."""
    for key in ("instructions", "refinement", "instructrm", "dataset"):
        if key not in t:
            raise ValidationError(f"templates: the section {key!r} is missing")
    for section in ("refinement", "refinement_chat"):
        for name in ("feedback", "no_feedback"):
            if name not in t.get(section, {}):
                raise ValidationError(f"templates: {section}.{name} is missing")
            check_template(t[section][name], f"{section}.{name}")
    if not isinstance(t.get("instructrm_cue", ""), str):
        raise ValidationError("templates: instructrm_cue must be a string (the answer cue after a base model's question)")
    if not t["instructrm"]:
        raise ValidationError("templates: instructrm needs at least one template")
    for i, rm in enumerate(t["instructrm"]):
        name = rm.get("name") or f"#{i}"
        for key in ("prompt", "yes", "no"):
            if not str(rm.get(key) or "").strip():
                raise ValidationError(f"templates: instructrm {name}: {key!r} is missing")
        if rm["yes"].strip() == rm["no"].strip():
            raise ValidationError(f"templates: instructrm {name}: the yes and no words are the same")
        check_template(rm["prompt"], f"instructrm {name}", "instructrm")
    for key in ("sft_prompt", "sft_completion", "feedback_prompt", "feedback_completion"):
        if key not in t["dataset"]:
            raise ValidationError(f"templates: dataset.{key} is missing")
        check_template(t["dataset"][key], f"dataset.{key}")
    return t


def load_templates(project=None) -> dict:
    """The default templates, with the project's own (when set) replacing whole top-level sections."""
    t = json.loads(TEMPLATES_FILE.read_text())
    own = getattr(project, "templates", None)
    if own:
        t = {**t, **copy.deepcopy(own)}
    return validate_templates(t)


def fill(template: str, values: dict, where: str = "template") -> str:
    """`template` with its {fields} filled from `values`; a missing value is named."""
    try:
        return template.format_map(values)
    except KeyError as e:
        raise ValidationError(f"{where}: no value for the field {{{e.args[0]}}}") from None


def item_fields(item, templates: dict, kind: str, max_text_chars: int = 3000, *, baseline: bool = False,
                context_fields: Sequence[str] = ()) -> dict:
    """The values of a critique item's template fields (not `refinement`): `instruction` is the
    project kind's; `text` is the document's text with the `context_fields` its project shows
    annotators after it (training/data/context.py), cut at `max_text_chars`."""
    text = with_fields(item.document.text, context_of(item.document.meta, context_fields))
    if len(text) > max_text_chars:
        text = re.sub(r"\s+\S*$", "", text[:max_text_chars]) + " ..."  # at a space or a field's line break
    feedback = item.critique.text
    k = item.critique
    if k.span_start is not None and k.span_end is not None:
        feedback = f'About "{item.candidate.text[k.span_start:k.span_end]}": {feedback}'
    instr = templates["baseline_instructions" if baseline and "baseline_instructions" in templates
                      else "instructions"]
    return {
        "instruction": instr.get(kind) or next(iter(instr.values())),
        "title": item.document.title or "(none)",
        "text": text,
        "output": item.candidate.text,
        "feedback": feedback,
    }


# -- post-processing --------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_LABEL = r"(?:improved|rewritten|revised|new|updated|better|corrected|edited|final)\s+(?:\w+\s+)?" \
         r"(?:output|summary|answer|prompt|version|text|response)"
# "Sure! Here is the rewritten summary:", "Improved output:", "Revised answer -" at the start of a sample.
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|okay|ok|of course|absolutely)\b[,!.]?\s*)?"
    r"(?:(?:here(?:'s| is| are)\b[^:\n]{0,80}|(?:the |an? |my )?" + _LABEL + r"[^:\n]{0,40})\s*[:\-]"
    r"|here(?:'s| is| are)\b[^.\n]{0,80}[.!]?[ \t]*(?:\n|$))\s*", re.IGNORECASE)
# Text about the rewriting instead of a rewrite ("The following is a rewritten version of ...").
_META = re.compile(
    r"^\s*(?:the following\b|as an ai\b|i'?m sorry\b|i apologi[sz]e\b|i'?m here to help\b"
    r"|i (?:have |'ve )?(?:rewritten|revised|improved|made|changed|updated)\b)"
    r"|\b(?:rewritten|revised|improved) (?:version|output|summary|answer|text)\b"
    r"|\bthe (?:feedback|original (?:output|summary|answer|text))\b|\bhope this (?:message|email) finds you\b",
    re.IGNORECASE)
MIN_WORDS = 3  # fewer words than this is a stub ("Hi all,"), not a rewrite
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "`": "`"}
DROP_REASONS = ("empty", "copy", "meta", "echo")
# Text the critique quotes ("Say 'second novel'", 'Add: "..."') is meant to be copied; the rest is not.
_QUOTED = re.compile(r'"[^"]*"|\u201c[^\u201d]*\u201d|(?<!\w)\'[^\']+\'(?!\w)')
ECHO_SHARE = 0.6  # of a sample's word trigrams from the critique's own words (and < 0.2 from the output)


def strip_preamble(text: str) -> tuple[str, bool]:
    """(text without a leading "Here is ...:" / "Improved output:" label, whether one was removed)."""
    out = text
    for _ in range(2):  # "Sure! Here is the summary:\n\nRevised summary: ..."
        out = _PREAMBLE.sub("", out, count=1)
    return out, out != text


def postprocess(text: str, stop: tuple[str, ...] | list[str] = ()) -> str:
    """A sample cut to the rewrite itself: no preamble, nothing after a stop string or the first blank
    line, surrounding quotes removed, no unfinished last sentence.

    A sample with no finished sentence at all is kept whole (better than nothing).
    """
    text, _ = strip_preamble(text.strip())
    for s in stop:
        if s and s in text:
            text = text[:text.index(s)]
    text = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]
    text = " ".join(text.split())
    q = _QUOTES.get(text[:1])
    if q and len(text) > 1 and text.endswith(q) and text[1:-1].count(text[0]) == text[1:-1].count(q) == 0:
        text = text[1:-1].strip()
    ends = list(_SENTENCE_END.finditer(text))
    if ends and ends[-1].end() < len(text):
        text = text[: ends[-1].end()]
    return text.strip()


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _trigrams(text: str) -> list[tuple[str, ...]]:
    w = _norm(text).split()
    return [tuple(w[i:i + 3]) for i in range(len(w) - 2)]


def echoes_feedback(refinement: str, output: str, feedback: str) -> bool:
    """The sample repeats the critique instead of rewriting the output: most of its word trigrams
    come from the critique's own words (not from text it quotes for the rewrite to use) and
    almost none from the output."""
    own = set(_trigrams(_QUOTED.sub(" | ", feedback)))
    grams = _trigrams(refinement)
    if not own or len(grams) < 2:
        return False
    from_output = set(_trigrams(output))
    share = sum(g in own for g in grams) / len(grams)
    return share >= ECHO_SHARE and sum(g in from_output for g in grams) / len(grams) < 0.2


def drop_reason(refinement: str, output: str, feedback: str = "") -> str | None:
    """Why a post-processed sample is not a refinement of `output`: "empty" (or a stub of fewer than
    MIN_WORDS words when the output has more), "copy" (the output again, up to case, spaces and
    punctuation), "meta" (text about rewriting or chat filler instead of a rewrite, e.g. "The
    following is a rewritten version ...", "I'm sorry ..."), "echo" (the critique repeated,
    `echoes_feedback`); None when it is one."""
    if len(_norm(refinement).split()) < min(MIN_WORDS, len(_norm(output).split())):
        return "empty"
    if _norm(refinement) == _norm(output):
        return "copy"
    first = _SENTENCE_END.split(refinement, maxsplit=1)[0]
    if _META.search(first):
        return "meta"
    if feedback and echoes_feedback(refinement, output, feedback):
        return "echo"
    return None
