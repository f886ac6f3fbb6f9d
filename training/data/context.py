"""The text a model reads for a document: one definition for exports, reward training, scoring,
policy training and ILF, so that exported pairs and what the reward model learns never drift apart.

    document_context("summarize", "Title", "Body")  ->  "Title\n\nBody"
    document_context("prompt", "ignored", "Body")   ->  "Body"
    document_context("qa", "", "Q?", [("passages", "P1\nP2")])  ->  "Q?\n\npassages:\nP1\nP2"
    project_context(project, doc)                   the same, with the fields the project shows annotators

Models read what annotators read: the fields a project shows under each document's text
(`Project.context_fields`, as training/annotation/context.py turns them into text) follow the text.
"""

from __future__ import annotations

from collections.abc import Sequence

from training.annotation.context import context_of


def with_fields(text: str, fields: Sequence[tuple[str, str]] = ()) -> str:
    """`text`, then a block "<field>:\\n<text>" per (field, text), a blank line between."""
    return "\n\n".join(part for part in (text, *(f"{name}:\n{value}" for name, value in fields)) if part)


def document_context(project_kind: str, title: str | None, text: str,
                     fields: Sequence[tuple[str, str]] = ()) -> str:
    """Title (summaries, when there is one), text, then the shown `fields` (see `with_fields`).
    A prompt's or a question's (qa) title is left out: the text is what is asked."""
    body = with_fields(text, fields)
    return f"{title}\n\n{body}" if project_kind == "summarize" and title else body


def shown_fields(project, doc) -> list[tuple[str, str]]:
    """(field, text) of each field of `doc`'s meta that `project` shows annotators, in its order."""
    return context_of(doc.meta, project.context_fields)


def project_context(project, doc) -> str:
    """`document_context` of a project's document, with the fields the project shows."""
    return document_context(project.kind, doc.title, doc.text, shown_fields(project, doc))
