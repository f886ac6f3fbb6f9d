"""The demo projects: written-for-the-project documents, candidates and example annotations.

    from training.data.demo import load_demo
    with Store("demo.db") as s:
        tokens = load_demo(s)   # {"admin": "tw_...", "annotator (carol)": "tw_..."}

`tokenwise init --db demo.db --demo` does the same and saves the tokens beside the database.

The data lives in data/demo/ (no third-party text):
  documents.jsonl   project `demo` (summarize, K=4): 24 news, forum and review texts, each with a
                    reference summary and four candidates of known quality (meta.quality, in the
                    order of `candidates`): faithful, too_long, factual_error, off_topic.
  prompts.jsonl     project `demo-prompts` (prompt, K=5): 12 sentiment items, each with five
                    instruction prompts: clear_specific, clear_labels, vague, misleading, off_task.
  annotations.json  rankings and critiques by the demo annotators alice and bob, naming
                    candidates by document id + quality label (never by position).

meta.quality is the gold label of each candidate (for benchmarks and sanity checks); the app must
not show it to annotators. The loader checks everything before it writes anything, and writes
everything in one transaction: a demo load lands whole or not at all.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from training.errors import ValidationError
from training.store import NewDocument, Store

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "demo"

# Quality labels, best first: the order an attentive annotator is expected to give.
SUMMARY_QUALITIES = ("faithful", "too_long", "factual_error", "off_topic")
PROMPT_QUALITIES = ("clear_specific", "clear_labels", "vague", "misleading", "off_task")

DEMO_ANNOTATORS = (("admin", "admin"), ("alice", "annotator"), ("bob", "annotator"), ("carol", "annotator"))
QUEUE_ANNOTATOR = "carol"  # has done nothing: her queue holds every document

SUMMARY_INSTRUCTIONS = """\
Read the document, then rank the four summaries from best (1) to worst (4); no ties.
A good summary is faithful (it says nothing the document does not), concise (one or two
sentences) and gives the main point. Rank a summary with a wrong number, name or outcome below
an accurate one, and one about something else last.
Then critique the weaker summaries in plain words: say what is wrong and how to fix it, e.g.
"the cost is £1.4 million, not £4.1 million". To point at a passage, copy its words into the Quote box.
Skip a document you cannot judge; it comes back at the end of your queue."""

PROMPT_INSTRUCTIONS = """\
Each item is a sentiment classification task: a short review and its label words.
Rank the five instruction prompts from best (1) to worst (5) by how likely a language model
that follows the prompt is to answer with the correct label word. Best: clear, specific and
naming the labels. Worst: prompts that steer towards the wrong label or ask for something else.
Critique weak prompts: say what would mislead the model and how to reword the prompt."""


@dataclass(frozen=True)
class DemoProject:
    name: str
    kind: str
    file: str
    qualities: tuple[str, ...]
    instructions: str
    overlap: int = 3

    @property
    def k(self) -> int:
        return len(self.qualities)


PROJECTS = (
    DemoProject("demo", "summarize", "documents.jsonl", SUMMARY_QUALITIES, SUMMARY_INSTRUCTIONS),
    DemoProject("demo-prompts", "prompt", "prompts.jsonl", PROMPT_QUALITIES, PROMPT_INSTRUCTIONS),
)


@dataclass(frozen=True)
class DemoData:
    """The parsed and checked demo files."""

    items: dict[str, list[dict]]  # project name -> its JSONL rows, in file order
    annotations: dict  # {"rankings": [...], "critiques": [...]}

    def row(self, project: str, doc_id: str) -> dict:
        for r in self.items[project]:
            if r["id"] == doc_id:
                return r
        raise KeyError(doc_id)

    def candidate_text(self, project: str, doc_id: str, quality: str) -> str:
        r = self.row(project, doc_id)
        return r["candidates"][r["meta"]["quality"].index(quality)]


# -- reading and checking ---------------------------------------------------------------
def read_demo(data_dir: str | Path | None = None) -> DemoData:
    """Read data/demo (or `data_dir`) and check it; raise ValidationError naming file and line."""
    d = Path(data_dir) if data_dir is not None else DEMO_DIR
    if not d.is_dir():
        raise ValidationError(f"demo data folder {d} does not exist")
    items = {p.name: _read_items(d / p.file, p) for p in PROJECTS}
    path = d / "annotations.json"
    try:
        annotations = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValidationError(f"{path}: cannot read the demo annotations: {e}") from None
    except json.JSONDecodeError as e:
        raise ValidationError(f"{path}: not valid JSON: {e}") from None
    data = DemoData(items=items, annotations=annotations)
    _check_annotations(path, data)
    return data


def _read_items(path: Path, p: DemoProject) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ValidationError(f"{path}: cannot read the demo project {p.name!r}: {e}") from None
    rows, seen = [], set()
    for ln, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path.name} line {ln}"
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValidationError(f"{where}: not valid JSON: {e}") from None
        for key in ("id", "title", "text", "candidates", "meta"):
            if key not in r:
                raise ValidationError(f"{where}: field {key!r} is missing")
        if r["id"] in seen:
            raise ValidationError(f"{where}: id {r['id']!r} is used twice")
        seen.add(r["id"])
        if len(r["candidates"]) != p.k:
            raise ValidationError(f"{where}: {len(r['candidates'])} candidates, project {p.name!r} has K={p.k}")
        quality = r["meta"].get("quality")
        if not isinstance(quality, list) or sorted(quality) != sorted(p.qualities):
            raise ValidationError(
                f"{where}: meta.quality must name each of {', '.join(p.qualities)} once, got {quality!r}")
        rows.append(r)
    if not rows:
        raise ValidationError(f"{path}: no documents")
    return rows


def _check_annotations(path: Path, data: DemoData) -> None:
    names = {n for n, _ in DEMO_ANNOTATORS}
    qualities = {p.name: p.qualities for p in PROJECTS}
    ann = data.annotations
    if not isinstance(ann.get("rankings"), list) or not isinstance(ann.get("critiques"), list):
        raise ValidationError(f"{path}: needs the lists 'rankings' and 'critiques'")

    def where_doc(what: str, i: int, e: dict) -> None:
        where = f"{path.name} {what}[{i}]"
        if e.get("project") not in qualities:
            raise ValidationError(f"{where}: project {e.get('project')!r} is not one of {', '.join(qualities)}")
        if e.get("annotator") not in names:
            raise ValidationError(f"{where}: annotator {e.get('annotator')!r} is not a demo annotator")
        try:
            data.row(e["project"], e.get("document"))
        except KeyError:
            raise ValidationError(
                f"{where}: document {e.get('document')!r} is not in project {e['project']!r}") from None

    seen = set()
    for i, r in enumerate(ann["rankings"]):
        where_doc("rankings", i, r)
        q = qualities[r["project"]]
        if sorted(r.get("order", [])) != sorted(q):
            raise ValidationError(
                f"{path.name} rankings[{i}]: order must name each of {', '.join(q)} once, got {r.get('order')!r}")
        key = (r["project"], r["document"], r["annotator"])
        if key in seen:
            raise ValidationError(f"{path.name} rankings[{i}]: a second ranking of {key[1]!r} by {key[2]!r}")
        seen.add(key)
    for i, c in enumerate(ann["critiques"]):
        where_doc("critiques", i, c)
        where = f"{path.name} critiques[{i}]"
        if c.get("candidate") not in qualities[c["project"]]:
            raise ValidationError(f"{where}: candidate {c.get('candidate')!r} is not a quality label of "
                                  f"{c['project']!r} ({', '.join(qualities[c['project']])})")
        if not (c.get("text") or "").strip():
            raise ValidationError(f"{where}: critique text is empty")
        if c.get("quote") is not None:
            quote_span(data.candidate_text(c["project"], c["document"], c["candidate"]), c["quote"], where)


def quote_span(candidate: str, quote: str, where: str = "quote") -> tuple[int, int]:
    """(start, end) of the first occurrence of `quote` in `candidate`; ValidationError if absent."""
    start = candidate.find(quote) if quote else -1
    if start < 0:
        raise ValidationError(f"{where}: quote {quote!r} does not occur in the candidate {candidate!r}")
    return start, start + len(quote)


# -- loading ----------------------------------------------------------------------------
def load_demo(store: Store, data_dir: str | Path | None = None) -> dict[str, str]:
    """Create the demo projects, annotators and example annotations; return tokens to print.

    Refuses (ValidationError, nothing written) when a demo project or demo annotator exists.
    Returns {"admin": token, "annotator (carol)": token}: carol has done nothing, so with
    overlap 3 every document is in her queue.
    """
    data = read_demo(data_dir)
    existing = {p.name for p in store.list_projects()} & {p.name for p in PROJECTS}
    if existing:
        raise ValidationError(
            f"the demo is already loaded in {store.path} (project(s) {', '.join(sorted(existing))} exist); "
            "use a new database path for a fresh demo")
    people = {a.name for a in store.list_annotators()} & {n for n, _ in DEMO_ANNOTATORS}
    if people:
        raise ValidationError(
            f"cannot load the demo into {store.path}: annotator(s) {', '.join(sorted(people))} already exist; "
            "use a new database path")

    tokens: dict[str, str] = {}
    with store.tx():  # nested store calls join this one transaction: all or nothing
        for p in PROJECTS:
            store.create_project(p.name, kind=p.kind, k=p.k, overlap=p.overlap, instructions=p.instructions,
                                 allow_ties=False, require_critique_lowest=False)
            store.add_documents(p.name, [_new_document(r) for r in data.items[p.name]])
        people = {}
        for name, role in DEMO_ANNOTATORS:
            people[name], tokens[name] = store.add_annotator(name, role=role)
        ids = _candidate_ids(store, data)
        for r in data.annotations["rankings"]:
            doc_id, by_quality = ids[r["project"], r["document"]]
            ranks = {by_quality[q]: i + 1 for i, q in enumerate(r["order"])}
            store.save_ranking(people[r["annotator"]], doc_id, ranks, seconds=r.get("seconds"))
        for c in data.annotations["critiques"]:
            _, by_quality = ids[c["project"], c["document"]]
            span = None
            if c.get("quote") is not None:
                span = quote_span(data.candidate_text(c["project"], c["document"], c["candidate"]), c["quote"])
            store.save_critique(people[c["annotator"]], by_quality[c["candidate"]], c["text"], span=span)
    log.info("demo loaded: %s", ", ".join(f"{p.name} ({len(data.items[p.name])} documents)" for p in PROJECTS))
    return {"admin": tokens["admin"], f"annotator ({QUEUE_ANNOTATOR})": tokens[QUEUE_ANNOTATOR]}


DEMO_MODEL = "minilm"  # the backbone of the demo's first reward model (tokenwise init --demo-model)


def queue_demo_reward_job(store: Store, base_model: str = DEMO_MODEL, project: str = "demo"):
    """Queue a quick reward-model job on the demo (the Training page's "quick" preset, scoring
    after), so that the worker `tokenwise serve` starts trains it and the Rewards page has its
    heatmap within minutes, with no click. Returns the queued Job."""
    from training.jobs.kinds import submit_job  # not at import: the loader needs no job machinery
    from training.jobs.presets import preset_values

    admin = next(a for a in store.list_annotators() if a.name == "admin")
    values = {**preset_values("reward", "quick", backbone=base_model), "score_after": True}
    job = submit_job(store, "reward", values, project=project, created_by=admin.id)
    log.info("demo: queued reward job #%d (%s, quick)", job.id, base_model)
    return job


def _new_document(r: dict) -> NewDocument:
    return NewDocument(ext_id=str(r["id"]), text=r["text"], candidates=list(r["candidates"]),
                       title=r.get("title", ""), meta=r.get("meta"), reference=r.get("reference"))


def _candidate_ids(store: Store, data: DemoData) -> dict[tuple[str, str], tuple[int, dict[str, int]]]:
    """(project, ext_id) -> (document id, {quality label: candidate id})."""
    out = {}
    for p in PROJECTS:
        for doc in store.documents(p.name):
            labels = doc.meta["quality"]
            out[p.name, doc.ext_id] = (doc.id, {labels[c.position]: c.id for c in doc.candidates})
    return out
