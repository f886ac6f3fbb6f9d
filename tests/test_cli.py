"""The `tokenwise` command line, through training.cli.main (and once as a real process)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from training.cli import build_parser, main
from training.errors import AuthError, ValidationError
from training.store import SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("tokenwise: error: ")
    return lines[0]


@pytest.fixture
def db(tmp_path, capsys):
    path = str(tmp_path / "cli.db")
    assert run(capsys, "init", "--db", path)[0] == 0
    return path


def test_a_new_database_says_how_to_get_in_or_makes_its_admin(tmp_path, capsys):
    """`init` alone: nobody can sign in yet, so it prints the next commands; `init --admin NAME`
    adds that admin and prints their token (then no next steps are needed)."""
    path = str(tmp_path / "new.db")
    code, out, _ = run(capsys, "init", "--db", path)
    assert code == 0 and "nobody can sign in yet" in out
    assert Path(path).stat().st_mode & 0o777 == 0o600  # private data: only its owner reads the file
    assert f"tokenwise annotator add YOUR_NAME --role admin --db {path}" in out
    assert f"tokenwise import FILE --project NAME --create --db {path}" in out
    code, out, _ = run(capsys, "init", "--db", path, "--admin", "erin")
    token = out.strip().splitlines()[-1].strip()
    assert code == 0 and "admin 'erin' added" in out and "nobody can sign in" not in out
    with Store(path) as s:
        assert s.authenticate(token).is_admin
    assert "nobody can sign in" not in run(capsys, "init", "--db", path)[1]

def test_init_project_and_annotators(db, capsys):
    code, out, _ = run(capsys, "init", "--db", db)
    assert code == 0 and f"schema version {SCHEMA_VERSION} (existing)" in out
    code, out, _ = run(capsys, "project", "create", "news", "--k", "3", "--overlap", "2", "--db", db)
    assert code == 0 and "'news' created" in out and "K=3" in out
    run(capsys, "project", "create", "prompts", "--kind", "prompt", "--k", "2", "--db", db)
    code, out, _ = run(capsys, "project", "list", "--db", db)
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["news", "summarize", "K=3"], ["prompts", "prompt", "K=2"]]

    code, out, _ = run(capsys, "annotator", "add", "alice", "--db", db)
    token = out.strip().splitlines()[-1]
    assert code == 0 and token.startswith("tw_")
    run(capsys, "annotator", "add", "root", "--role", "admin", "--db", db)
    code, out, _ = run(capsys, "annotator", "list", "--db", db)
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["alice", "annotator", "active"], ["root", "admin", "active"]]
    with Store(db) as s:
        assert s.authenticate(token).name == "alice"
    code, out, _ = run(capsys, "annotator", "revoke", "alice", "--db", db)
    assert code == 0 and "revoked" in out
    assert run(capsys, "annotator", "list", "--db", db)[1].splitlines()[0].split("\t")[2] == "revoked"
    with Store(db) as s, pytest.raises(AuthError, match="revoked"):
        s.authenticate(token)
    assert run(capsys, "--db", db, "project", "list")[1] == run(capsys, "project", "list", "--db", db)[1]  # either place
    code, out, _ = run(capsys, "annotator", "token", "alice", "--db", db)  # lost, or let back in
    new = out.strip().splitlines()[-1]
    assert code == 0 and new.startswith("tw_") and "old token no longer works" in out
    with Store(db) as s:
        assert s.authenticate(new).name == "alice"
        with pytest.raises(AuthError, match="unknown or wrong"):
            s.authenticate(token)


@pytest.mark.parametrize("argv,needle", [
    (["project", "create", "dup", "--k", "1"], "k: a project needs at least 2"),
    (["annotator", "revoke", "nobody"], "annotator 'nobody' does not exist"),
    (["export", "pairs", "--project", "ghost"], "project 'ghost' does not exist"),
    (["export", "everything", "--project", "news"], "is not one of documents, rankings, pairs, critiques"),
    (["export", "pairs", "--project", "news", "--format", "parquet"], "needs --out"),
    (["export", "pairs", "--project", "news", "--format", "hf"], "needs --out"),
])
def test_errors_exit_2_with_one_line(db, capsys, argv, needle):
    run(capsys, "project", "create", "news", "--k", "3", "--db", db)
    code, out, err = run(capsys, *argv, "--db", db)
    assert code == 2 and out == ""
    assert needle in one_error_line(err)


def test_project_kind_qa_on_create_and_set(db, capsys):
    code, out, _ = run(capsys, "project", "create", "asqa", "--kind", "qa", "--k", "2", "--db", db)
    assert code == 0 and "created (kind qa, K=2, overlap 1)" in out
    assert run(capsys, "project", "list", "--db", db)[1].split("\t")[:2] == ["asqa", "qa"]
    code, out, _ = run(capsys, "project", "set", "asqa", "--kind", "summarize", "--db", db)
    assert code == 0 and out.startswith("project 'asqa': kind summarize, overlap 1,")
    assert run(capsys, "project", "set", "asqa", "--kind", "qa", "--overlap", "2", "--db", db)[0] == 0
    with Store(db) as s:
        p = s.get_project("asqa")
        assert (p.kind, p.k, p.overlap) == ("qa", 2, 2)
        with pytest.raises(ValidationError, match="kind: 'chat' is not one of summarize, prompt, qa"):
            s.update_project("asqa", kind="chat")
        with pytest.raises(ValidationError, match="kind: 'chat' is not one of summarize, prompt, qa"):
            s.create_project("other", kind="chat")
        assert s.get_project("asqa").kind == "qa"
    with pytest.raises(SystemExit) as stop:
        main(["project", "set", "asqa", "--kind", "chat", "--db", db])
    assert stop.value.code == 2 and "invalid choice: 'chat'" in capsys.readouterr().err
    assert "--kind" in run(capsys, "project", "set", "asqa", "--db", db)[2]  # nothing to change names it


def test_import_into_missing_project(db, capsys, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "t", "candidates": ["x", "y"]}) + "\n")
    code, _, err = run(capsys, "import", str(path), "--project", "ghost", "--db", db)
    assert code == 2 and "tokenwise project create ghost" in one_error_line(err)


def test_import_export_round_trip(db, capsys, tmp_path):
    run(capsys, "project", "create", "news", "--k", "2", "--db", db)
    docs = [{"id": f"d{i}", "title": f"T{i}", "text": f"Text {i}.", "candidates": [f"a{i}", f"b{i}"]}
            for i in range(4)]
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    code, out, _ = run(capsys, "import", str(src), "--project", "news", "--db", db)
    assert code == 0 and "4 documents, 8 candidates" in out
    code, out, _ = run(capsys, "export", "documents", "--project", "news", "--db", db)
    assert code == 0 and [json.loads(x) for x in out.splitlines()] == docs

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"p{i}", "chosen": f"c{i}", "rejected": f"r{i}"}) + "\n"
                             for i in range(3)))
    code, out, _ = run(capsys, "import", str(pairs), "--project", "news", "--source-annotator", "labels",
                       "--db", db)
    assert code == 0 and "3 rankings" in out and "'labels'" in out
    out_file = tmp_path / "pairs.parquet"
    code, out, _ = run(capsys, "export", "pairs", "--project", "news", "--out", str(out_file), "--db", db)
    assert code == 0 and "exported 3 pairs rows" in out and "(parquet)" in out
    table = pq.read_table(out_file).to_pylist()
    assert [(r["prompt"], r["chosen"], r["rejected"], r["annotator"]) for r in table] == [
        (f"p{i}", f"c{i}", f"r{i}", "labels") for i in range(3)]
    code, out, _ = run(capsys, "export", "rankings", "--project", "news", "--out", str(tmp_path / "r.jsonl"),
                       "--db", db)
    assert code == 0 and len((tmp_path / "r.jsonl").read_text().splitlines()) == 3


def test_refused_import_prints_every_problem(db, capsys, tmp_path):
    run(capsys, "project", "create", "news", "--k", "2", "--db", db)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "a", "text": "t", "candidates": ["x", "y"]}\n'
                    b'{"id": "a", "text": "t", "candidates": ["x", "y"]}\n'
                    b'{"id": "b", "text": " ", "candidates": ["x"]}\n'
                    b'{broken\n')
    code, out, err = run(capsys, "import", str(bad), "--project", "news", "--db", db)
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert "nothing imported, 4 problem(s)" in lines[0]
    assert [x.split(":")[:2] for x in lines[1:-1]] == [
        ["line 2", " id"], ["line 3", " text"], ["line 3", " candidates"], ["line 4", " json"]]
    assert lines[-1] == "to import the rows without problems, if any, and leave these out: --skip-bad-rows"
    with Store(db) as s:
        assert s.count_documents("news") == 0


def test_error_from_a_real_process(db, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "training.cli", "export", "pairs", "--project", "ghost", "--db", db],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "project 'ghost' does not exist" in one_error_line(proc.stderr)


def _subcommands(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _subcommands(sub, prefix + (name,))


def test_help_of_every_subcommand(capsys):
    commands = list(_subcommands(build_parser()))
    assert {("init",), ("project", "create"), ("annotator", "revoke"), ("import",), ("export",)} <= set(commands)
    for cmd in [()] + commands:
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
        assert e.value.code == 0, cmd
        out = capsys.readouterr().out
        assert out.startswith("usage: tokenwise") and "--help" in out, cmd
        assert "option_strings" not in out, cmd  # a bare % in a help text made argparse print its own dict
        if cmd == ("train", "policy"):
            assert "at most 2% a step" in " ".join(out.split())


def test_export_refuses_a_suffix_it_does_not_write(db, capsys, tmp_path):
    """Issue 13: `export --out x.csv` used to write JSONL into x.csv without a word."""
    run(capsys, "project", "create", "news", "--k", "2", "--db", db)
    csv = tmp_path / "x.csv"
    code, _, err = run(capsys, "export", "documents", "--project", "news", "--out", str(csv), "--db", db)
    assert code == 2 and ".csv is not a format Tokenwise writes" in one_error_line(err) and not csv.exists()
    code, out, _ = run(capsys, "export", "documents", "--project", "news", "--out", str(tmp_path / "x.json"),
                       "--db", db)
    assert code == 0 and "(jsonl)" in out
    code, out, _ = run(capsys, "export", "documents", "--project", "news", "--out", str(csv), "--format", "jsonl",
                       "--db", db)
    assert code == 0 and "(jsonl)" in out  # an explicit --format is what the user asked for
    code, _, err = run(capsys, "ilf", "build", "--project", "news", "--out", str(tmp_path / "d.txt"), "--db", db)
    assert code == 2 and ".txt is not a format" in one_error_line(err)


def test_db_before_or_after_the_command_and_sft_registers_nowhere_without_one():
    from training.cli import build_parser, resolve_db

    def db(*argv):
        return resolve_db(build_parser().parse_args(list(argv))).db

    assert db("project", "list") == "tokenwise.db"
    assert db("--db", "a.db", "project", "list") == db("project", "list", "--db", "a.db") == "a.db"
    assert db("project", "list", "--db", "b.db") == "b.db"
    assert db("train", "sft", "--file", "f.jsonl", "--out", "o") is None  # no database touched
    assert db("--db", "a.db", "train", "sft", "--file", "f.jsonl", "--out", "o") == "a.db"



def test_only_init_creates_a_database(db, capsys, tmp_path):
    typo = tmp_path / "typo.db"
    for argv in (["project", "list"], ["annotator", "add", "x"], ["jobs", "list"], ["serve", "--no-worker"]):
        code, _, err = run(capsys, *argv, "--db", str(typo))
        assert code == 2 and f"no database at {typo}" in one_error_line(err) and "tokenwise init" in err
        assert not typo.exists()  # nothing created under the mistyped name
    assert run(capsys, "--db", str(typo), "project", "list")[0] == 2 and not typo.exists()
    assert run(capsys, "import", "--formats", "--db", str(typo))[0] == 0  # lists formats, opens nothing
    assert run(capsys, "project", "list", "--db", db)[0] == 0  # an existing one is opened as before


def test_a_reader_that_stops_early_is_no_error(tmp_path):
    """`tokenwise ... | head -1`: no BrokenPipe traceback when the reader goes away."""
    proc = subprocess.run(f"{sys.executable} -m training.cli import --formats | head -1", shell=True, check=False,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.count("\n") == 1 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
