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


# ---- tiny models (issue 4: training/tiny.py) -------------------------------------------------
# Session-scoped paths to a tiny GPT-2 and a tiny T5 with a BPE tokenizer trained on local text.
# Load them with AutoTokenizer / AutoModelForCausalLM / AutoModelForSeq2SeqLM. Do not write into them.


@pytest.fixture(scope="session")
def tiny_causal(tmp_path_factory):
    from training.data.tiny import make_tiny_model

    return make_tiny_model("causal", tmp_path_factory.mktemp("tiny") / "causal")


@pytest.fixture(scope="session")
def tiny_seq2seq(tmp_path_factory):
    from training.data.tiny import make_tiny_model

    return make_tiny_model("seq2seq", tmp_path_factory.mktemp("tiny") / "seq2seq")


# ---- app tests (issue 3: annotator side of the Streamlit app) -------------------------------
# `app_db`: TOKENWISE_DB points at a fresh database with project "p" (K=3, overlap 2, three
# documents, instructions), annotators "ann" and "other" and an admin "boss". `app_test(page)`
# opens an AppTest of annotate_app/app.py or of a page file under annotate_app/app_pages/.


@pytest.fixture
def app_db(db_path, monkeypatch):
    from types import SimpleNamespace

    from training.store import NewDocument, Store

    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        project = s.create_project("p", kind="summarize", k=3, overlap=2,
                                   instructions="Rank by faithfulness to the document.")
        s.add_documents("p", [
            NewDocument(f"d{i}", f"Document {i} says the river rose {i} metres.",
                        [f"The river rose {i} metres.", f"Rain fell on day {i}.", f"A cat named {i}."],
                        title=f"River report {i}")
            for i in range(3)
        ])
        ann, ann_token = s.add_annotator("ann")
        other, other_token = s.add_annotator("other")
        boss, boss_token = s.add_annotator("boss", role="admin")
    return SimpleNamespace(path=db_path, project=project, ann=ann, other=other, boss=boss,
                           tokens={"ann": ann_token, "other": other_token, "boss": boss_token})


@pytest.fixture
def app_test():
    from apptest import page_test

    return page_test


# ---- issue 13: the sign-in back-off and reload drafts are per server process; each test starts clean
@pytest.fixture(autouse=True)
def _fresh_sign_in_throttle():
    import sys

    ui = sys.modules.get("annotate_app.ui")
    if ui is not None:
        from training.access import SignInThrottle

        ui.THROTTLE = SignInThrottle()
        ui._KEPT.clear()  # drafts kept for a page reload
    yield
