"""training.data.oasst: OpenAssistant Conversations (OASST1/2) imported as published, messages or
trees, a prompt's ranked assistant replies one document of 2..K candidates."""

import copy
import json
import random

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.data import formats as F
from training.data import oasst
from training.data.imports import import_file, new_project_shape
from training.errors import ImportFileError


def msg(mid, parent, role, text, rank=None, **extra):
    return {"message_id": mid, "parent_id": parent, "user_id": "u-" + mid, "text": text, "role": role,
            "lang": "en", "review_count": 3, "review_result": True, "deleted": False, "rank": rank,
            "synthetic": False, "model_name": None, "message_tree_id": "p1", "tree_state": "ready_for_export",
            **extra}


MESSAGES = [
    msg("p1", None, "prompter", "What is the capital of Peru?"),
    msg("a1", "p1", "assistant", "Lima."),  # rank set below: the file may list replies before their ranks matter
    msg("a2", "p1", "assistant", "Cusco.", rank=2),
    msg("a3", "p1", "assistant", "Lima, since 1535.", rank=1, synthetic=True, model_name="oa-sft-7b"),
    msg("f1", "a1", "prompter", "And of Chile?", rank=0),
    msg("b1", "f1", "assistant", "Santiago.", rank=1),
    msg("b2", "f1", "assistant", "Santiago de Chile.", rank=0),
    msg("b3", "f1", "assistant", "Valparaiso.", rank=None, deleted=True),  # deleted: in no ranking
    msg("q1", None, "prompter", "Name a prime.", message_tree_id="q1"),
    msg("c1", "q1", "assistant", "7", message_tree_id="q1"),  # one reply, no ranking: no document
]
MESSAGES[1]["rank"] = 0


def trees(messages):
    def tree(mid):
        node = {k: v for k, v in next(m for m in messages if m["message_id"] == mid).items() if k != "parent_id"}
        node["replies"] = [tree(m["message_id"]) for m in messages if m["parent_id"] == mid]
        return node

    return [{"message_tree_id": m["message_id"], "tree_state": "ready_for_export", "prompt": tree(m["message_id"])}
            for m in messages if m["parent_id"] is None]


class Sink:
    def __init__(self):
        self.items = []

    def add(self, line, fld, msg):
        self.items.append((line, fld, msg))


def test_messages_trees_and_parquet_read_alike(tmp_path):
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(m) for m in reversed(MESSAGES)))  # any order
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(t) for t in trees(MESSAGES)))
    pq.write_table(pa.Table.from_pylist(MESSAGES), tmp_path / "m.parquet")
    seen = []
    for name in ("m.jsonl", "t.jsonl", "m.parquet"):
        fmt, items = F.read_items(tmp_path / name)
        got = sorted((it.ext_id, sorted(zip(it.judgments[0].ranks, it.candidates, it.sources)), len(it.judgments))
                     for it in items)  # (candidates in the file's order: reversed here)
        assert fmt == "oasst", name
        seen.append(got)
    assert seen[0] == seen[1] == seen[2] == [
        ("f1", [(1, "Santiago de Chile.", "human"), (2, "Santiago.", "human")], 1),
        ("p1", [(1, "Lima.", "human"), (2, "Lima, since 1535.", "oa-sft-7b"), (3, "Cusco.", "human")], 1)]
    fmt, items = F.read_items(tmp_path / "m.jsonl")
    follow = next(it for it in items if it.ext_id == "f1")  # a later turn: the conversation as chat turns
    assert follow.meta["turns"] == [{"role": "user", "content": "What is the capital of Peru?"},
                                    {"role": "assistant", "content": "Lima."},
                                    {"role": "user", "content": "And of Chile?"}]
    assert follow.meta["lang"] == "en" and follow.meta["message_tree_id"] == "p1"
    assert F.detect_one(MESSAGES[0]) == "oasst" and F.detect_one(trees(MESSAGES)[0]) == "oasst"


def test_a_project_made_for_the_file_takes_two_to_k_replies(store, tmp_path):
    path = tmp_path / "oasst.jsonl"
    path.write_text("\n".join(json.dumps(m) for m in MESSAGES))
    assert new_project_shape(path) == ("oasst", 3, "qa")  # K: the most ranked replies of a prompt
    report = import_file(store, path, "oa", create=True)
    assert (report.documents, report.candidates, report.rankings) == (2, 5, 2)
    assert store.get_project("oa").k == 3
    assert sorted(len(d.candidates) for d in store.documents("oa")) == [2, 3]
    store.create_project("pairs-only", kind="qa", k=2)  # more replies than K: refused by line, clearly
    with pytest.raises(ImportFileError) as e:
        import_file(store, path, "pairs-only")
    assert [(ln, f, m) for ln, f, m in e.value.problems] == [
        (1, "candidates", "has 3 candidates but the project has K=2")]


def test_broken_trees_are_named_by_line():
    rows = [(1, msg("p1", None, "prompter", "Q?")), (2, msg("a1", "p1", "assistant", "A.", rank=0)),
            (3, msg("a2", "p1", "assistant", "B.", rank="first")), (4, msg("a3", "p1", "robot", "C.", rank=1)),
            (5, msg("a1", "p1", "assistant", "again", rank=1)), (6, msg("x1", "gone", "prompter", "Orphan?")),
            (7, msg("x2", "x1", "assistant", "One.", rank=0)), (8, msg("x3", "x1", "assistant", "Two.", rank=1)),
            (9, [1, 2]), (10, {"message_tree_id": "t", "prompt": "not a message"})]
    sink = Sink()
    assert list(oasst.read(rows, sink)) == []  # p1 keeps one good ranked reply; x1's tree is cut
    assert sink.items == [
        (3, "rank", "must be a number (0 = the first choice) or null, got 'first'"),
        (4, "role", "must be prompter or assistant, got 'robot'"),
        (5, "message_id", "'a1' comes twice (first on line 2)"),
        (9, "line", "must be a JSON object, got a list"),
        (10, "prompt", ("must be the tree's first message with its replies (an OASST tree row), or the row a "
                        "message with message_id, parent_id, role, text")),
        (6, "parent_id", "message 'x1' answers 'gone', which is not in the file: import the whole tree")]


def test_no_damaged_row_makes_the_reader_raise():
    rng = random.Random(3)
    junk = [None, 0, -1, 1.5, True, "", "x", [], {}, [None], {"a": 1}, float("nan"), float("inf"), "p1"]
    base = MESSAGES + trees(MESSAGES)
    for _ in range(1500):
        rows = copy.deepcopy(rng.sample(base, rng.randint(1, len(base))))
        for _ in range(rng.randint(1, 4)):
            row = rng.choice(rows)
            node = row["prompt"] if "prompt" in row and isinstance(row["prompt"], dict) and rng.random() < 0.5 else row
            key = rng.choice(list(node))
            if rng.random() < 0.2:
                del node[key]
            else:
                node[key] = copy.deepcopy(rng.choice(junk))
        for it in oasst.read(list(enumerate(rows, 1)), Sink()):
            assert len(it.candidates) >= 2 and len(it.judgments[0].ranks) == len(it.candidates)


def test_the_schema_takes_both_layouts():
    from pathlib import Path

    schema = json.loads((Path(__file__).resolve().parents[1] / "data" / "schemas" / "oasst.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    check = jsonschema.Draft202012Validator(schema)
    assert all(check.is_valid(row) for row in MESSAGES + trees(MESSAGES))
    assert not check.is_valid({**MESSAGES[1], "role": "robot"})


def test_an_annotator_ranks_a_prompt_with_fewer_replies_than_k(db_path, monkeypatch, app_test, tmp_path):
    """In a K=3 project, a prompt with two ranked replies is ranked as a pair: two rank options."""
    from training.store import Store

    monkeypatch.setenv("TOKENWISE_DB", db_path)
    path = tmp_path / "oasst.jsonl"
    path.write_text("\n".join(json.dumps(m) for m in MESSAGES))
    with Store(db_path) as s:
        import_file(s, path, "oa", create=True)
        s.update_project("oa", overlap=2)  # the imported ranking counts: one more person per prompt
        ann, _ = s.add_annotator("ann")
    at = app_test("annotate.py", ann.id).run()
    assert not at.exception
    k = len(at.radio)
    assert k in (2, 3) and all(len(r.options) == k for r in at.radio)
    for i, r in enumerate(at.radio):
        r.set_value(i + 1)
    at.run()
    at.button(key="annotate_save").click().run()
    assert not at.exception and len(at.radio) == 5 - k  # the other prompt next: 3 replies or 2


def test_the_import_form_previews_and_imports_an_oasst_file(db_path, monkeypatch):
    from apptest import open_page

    from training.store import Store

    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        root, _ = s.add_annotator("root", role="admin")
    data = "\n".join(json.dumps(m) for m in MESSAGES).encode()
    at = open_page("projects", root.id)
    at.file_uploader[0].set_value(("2023-04-12_oasst_ready.messages.jsonl", data, "application/json"))
    at = at.selectbox(key="import_project").set_value("A new project, made for this file").run()
    at = at.text_input(key="import_new_name").input("oasst").run()
    assert any("detected format: **oasst**" in c.value for c in at.caption)
    assert any("K = 3 outputs per document at most" in c.value for c in at.caption)
    read = at.dataframe[-1].value  # the preview's rows as read: one per prompt found in them
    assert list(read["ranking"])[:1] == ["1 > 3 > 2"]
    at = at.button(key="import_go").click().run()
    assert not at.exception and any("imported 2 documents" in s.value for s in at.success)


def test_an_empty_prompt_with_ranked_replies_is_named():
    rows = [(1, msg("p1", None, "prompter", "  ")), (2, msg("a1", "p1", "assistant", "A.", rank=0)),
            (3, msg("a2", "p1", "assistant", "B.", rank=1))]
    sink = Sink()
    assert list(oasst.read(rows, sink)) == []
    assert sink.items == [(1, "text", "message 'p1' is empty: its 2 ranked replies answer nothing")]
