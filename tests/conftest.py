"""Shared fixtures: a fresh temporary database per test; one torch thread (DESIGN.md, Models).

Append fixtures here; do not rewrite other sections.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "t.db")


@pytest.fixture
def store(db_path):
    from training.store import Store

    s = Store(db_path)
    yield s
    s.close()


@pytest.fixture
def project(store):
    """A summarize project with K=3, overlap 2, and three documents."""
    from training.store import NewDocument

    p = store.create_project("p", kind="summarize", k=3, overlap=2)
    store.add_documents("p", [
        NewDocument(f"d{i}", f"Document {i} text.", [f"good {i}", f"long {i} " * 3, f"off {i}"], title=f"T{i}")
        for i in range(3)
    ])
    return p
