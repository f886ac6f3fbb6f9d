"""ILF templates: the prompt text of refine, InstructRM and the datasets (DESIGN.md, Algorithm 2).

Templates live in data/ilf_templates.json, or the project's `templates` column (same shape; its
top-level keys replace the file's). A template is a str.format string over the fields
instruction, title, text, output, feedback, refinement; each slot has fields it must use and may
use (`_RULES`), checked when the templates are loaded so a typo is refused before a model loads.

    load_templates(project) -> dict        the file's templates, the project's sections on top
    item_fields(item, templates, kind)     a critique item's field values (not `refinement`)
    fill(template, values)                 the filled text; a missing value is named
    postprocess(sample)                    a generated sample cut to its finished sentences
"""

from __future__ import annotations

import copy
import json
import re
import string
from pathlib import Path

from training.errors import ValidationError

TEMPLATES_FILE = Path(__file__).resolve().parents[2] / "data" / "ilf_templates.json"
FIELDS = ("instruction", "title", "text", "output", "feedback", "refinement")

# template slot -> (fields it must use, fields it may use)
_RULES = {
    "refinement.feedback": ({"output", "feedback"}, {"instruction", "title", "text", "output", "feedback"}),
    "refinement.no_feedback": ({"output"}, {"instruction", "title", "text", "output"}),
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
    for key in ("instructions", "refinement", "instructrm", "dataset"):
        if key not in t:
            raise ValidationError(f"templates: the section {key!r} is missing")
    for name in ("feedback", "no_feedback"):
        if name not in t["refinement"]:
            raise ValidationError(f"templates: refinement.{name} is missing")
        check_template(t["refinement"][name], f"refinement.{name}")
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
    try:
        return template.format_map(values)
    except KeyError as e:
        raise ValidationError(f"{where}: no value for the field {{{e.args[0]}}}") from None


def item_fields(item, templates: dict, kind: str, max_text_chars: int = 3000, *, baseline: bool = False) -> dict:
    """The values of a critique item's template fields (not `refinement`)."""
    text = item.document.text
    if len(text) > max_text_chars:
        text = text[:max_text_chars].rsplit(" ", 1)[0] + " ..."
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


def postprocess(text: str) -> str:
    """Cut a sample at its first blank line and drop an unfinished last sentence.

    A sample with no finished sentence at all is kept whole (better than nothing).
    """
    text = text.strip()
    text = re.split(r"\n\s*\n", text, maxsplit=1)[0]
    text = " ".join(text.split())
    ends = list(_SENTENCE_END.finditer(text))
    if ends and ends[-1].end() < len(text):
        text = text[: ends[-1].end()]
    return text.strip()

