"""The text a model reads for a document: one definition for exports, reward training, scoring,
policy training and ILF, so that exported pairs and what the reward model learns never drift apart.

    document_context("summarize", "Title", "Body")  ->  "Title\n\nBody"
    document_context("prompt", "ignored", "Body")   ->  "Body"
"""

from __future__ import annotations


def document_context(project_kind: str, title: str | None, text: str) -> str:
    """Title and text for summaries (when there is a title), the text alone otherwise."""
    return f"{title}\n\n{text}" if project_kind == "summarize" and title else text
