"""Importing the preference data people already have: every format and source, several raters per
item, majority pairs, the pairs round trip, and refused files that leave nothing behind."""

import gzip
import json
import random

import pytest

from training.annotation.agreement import project_agreement
from training.cli import main
from training.data.exports import export_rows, write_export
from training.data.formats import Options
from training.data.imports import import_file
from training.errors import ImportFileError, ValidationError


def jsonl(path, rows, gz=False):
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def counts(store):
    return {t: store.scalar(f"SELECT COUNT(*) FROM {t}") for t in
            ("documents", "candidates", "rankings", "critiques", "annotators", "projects")}


def ranks_of(store, project):
    """{(document text, chosen text, rejected text) ...} per annotator name, from the rankings."""
    names = {a.id: a.name for a in store.list_annotators()}
    out = set()
    for d in store.documents(project):
        texts = {c.id: c.text for c in d.candidates}
        for r in store.rankings_of([d.id]).get(d.id, []):
            out.add((names[r.annotator_id], d.text, tuple(tuple(sorted(texts[c] for c in g)) for g in r.order)))
    return out


def test_multi_rater_pairs_become_one_document_with_a_ranking_per_judgment(store, tmp_path):
    store.create_project("news", kind="prompt", k=2)
    rows = []
    for i in range(10):
        for rater in ("ann", "bob", "cy"):  # cy disagrees with the other two everywhere
            good, bad = f"good summary {i}", f"bad summary {i}"
            chosen, rejected = (good, bad) if rater != "cy" else (bad, good)
            rows.append({"prompt": f"Article {i}:  the  river rose.", "chosen": chosen, "rejected": rejected,
                         "worker": rater})
    report = import_file(store, jsonl(tmp_path / "multi.jsonl", rows), "news")
    assert (report.documents, report.candidates, report.rankings) == (10, 20, 30)
    sources = [a for a in store.list_annotators() if a.role == "source"]
    assert sorted(a.name for a in sources) == ["import:ann", "import:bob", "import:cy"]
    ag = project_agreement(store, "news")
    assert ag.alpha < 1
    assert len(list(export_rows(store, "news", "pairs"))) == 30
    majority = list(export_rows(store, "news", "pairs", aggregate="majority"))
    assert len(majority) == 10 and all(r["chosen"].startswith("good") and r["votes"] == 2 for r in majority)
    assert store.check_counters() == []


def test_same_item_without_rater_counts_each_row_as_a_judgment_of_the_source(store, tmp_path):
    store.create_project("p", kind="prompt", k=2)
    row = {"prompt": "Q", "chosen": "a", "rejected": "b"}
    report = import_file(store, jsonl(tmp_path / "dup.jsonl", [row, row, {**row, "chosen": "b", "rejected": "a"}]),
                         "p", source_annotator="labels")
    assert (report.documents, report.rankings) == (1, 3)
    assert sorted(a.name for a in store.list_annotators() if a.role == "source") == ["labels", "labels#2",
                                                                                    "labels#3"]


def test_implicit_conversational_and_explicit_pairs(store, tmp_path):
    store.create_project("hh", kind="prompt", k=2)
    rows = [{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?",
             "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."},
            {"prompt": [{"role": "user", "content": "2+2?"}], "chosen": [{"role": "assistant", "content": "4"}],
             "rejected": [{"role": "assistant", "content": "5"}]}]
    import_file(store, jsonl(tmp_path / "hh.jsonl", rows[:1]), "hh")
    store.create_project("chat", kind="prompt", k=2)
    import_file(store, jsonl(tmp_path / "chat.jsonl", rows[1:]), "chat")
    [d] = store.documents("hh")
    assert d.text == "user: Hi" and [c.text for c in d.candidates] == ["Hello! How can I help?", "Go away."]
    assert d.meta["turns"] == [{"role": "user", "content": "Hi"}]  # drawn as a chat, like chat-turn prompts
    [d] = store.documents("chat")
    assert d.meta["turns"] == rows[1]["prompt"] and [c.text for c in d.candidates] == ["4", "5"]


def test_sff_comparisons_give_sources_rater_and_notes(store, tmp_path):
    store.create_project("tldr", kind="summarize", k=2)
    rows = [{"info": {"id": "p1", "title": "Moving", "post": "I got an offer in another city."},
             "summaries": [{"text": "Got an offer.", "policy": "sup2", "note": ""},
                           {"text": "Moving now.", "policy": "ppo", "note": "Invents a decision."}],
             "choice": 0, "worker": "w1"},
            {"info": {"id": "p1", "title": "Moving", "post": "I got an offer in another city."},
             "summaries": [{"text": "Moving now.", "policy": "ppo"}, {"text": "Got an offer.", "policy": "sup2"}],
             "choice": 0, "worker": "w2"}]
    report = import_file(store, jsonl(tmp_path / "sff.jsonl", rows), "tldr", source_annotator="openai")
    assert (report.documents, report.rankings, report.critiques) == (1, 2, 1)
    [d] = store.documents("tldr")
    assert d.title == "Moving" and [c.source for c in d.candidates] == ["sup2", "ppo"]
    assert {(n, o) for n, _, o in ranks_of(store, "tldr")} == {
        ("openai:w1", (("Got an offer.",), ("Moving now.",))), ("openai:w2", (("Moving now.",), ("Got an offer.",)))}
    [crit] = store.critiques("tldr")
    assert crit.text == "Invents a decision."


def test_ratings_with_ties_and_scores_kept(store, tmp_path):
    store.create_project("uf", kind="prompt", k=3)
    row = {"instruction": "Name a fruit.", "completions": [
        {"model": "m1", "response": "Apple.", "overall_score": 8},
        {"model": "m2", "response": "Rock.", "overall_score": 2},
        {"model": "m3", "response": "Pear.", "overall_score": 8}]}
    import_file(store, jsonl(tmp_path / "uf.jsonl", [row]), "uf")
    [d] = store.documents("uf")
    assert [c.source for c in d.candidates] == ["m1", "m2", "m3"]
    assert d.candidates[0].gen_params == {"meta": {"model": "m1", "overall_score": 8, "score": 8.0}}
    [(_, _, order)] = ranks_of(store, "uf")
    assert order == (("Apple.", "Pear."), ("Rock.",))


def test_two_answer_rows_and_a_mapped_csv(store, tmp_path):
    store.create_project("shp", kind="prompt", k=2)
    rows = [{"history": "Keep basil alive?", "human_ref_A": "Water it.", "human_ref_B": "It dies.", "labels": 0}]
    import_file(store, jsonl(tmp_path / "shp.jsonl", rows), "shp")
    [(_, _, order)] = ranks_of(store, "shp")
    assert order == (("It dies.",), ("Water it.",))
    store.create_project("mapped", kind="prompt", k=2)
    csv = tmp_path / "qa.csv"
    csv.write_text("question,good,bad,who\nWhy blue?,Scattering.,Paint.,ana\nWhy wet?,Water.,Magic.,ana\n")
    report = import_file(store, csv, "mapped", options=Options(mapping={"prompt": "question", "chosen": "good",
                                                                        "rejected": "bad"}, rater_field="who"))
    assert (report.format, report.documents, report.rankings) == ("pairs", 2, 2)
    assert {n for n, _, _ in ranks_of(store, "mapped")} == {"import:ana"}


def test_arena_judgments_of_one_pair_become_one_document_with_a_ranking_per_judge(store, tmp_path):
    store.create_project("arena", kind="prompt", k=2)
    q = {"role": "user", "content": "Capital of Peru?"}

    def battle(a, b, winner, judge, answers=("Lima.", "Cusco.")):
        return {"question_id": "q1", "model_a": a, "model_b": b, "winner": winner, "judge": judge,
                "conversation_a": [q, {"role": "assistant", "content": answers[0]}],
                "conversation_b": [q, {"role": "assistant", "content": answers[1]}]}

    rows = [battle("m1", "m2", "model_a", "u1"), battle("m1", "m2", "model_a", "u2"),
            battle("m1", "m2", "tie (bothbad)", "u3"), battle("m1", "m3", "model_b", "u1", ("Lima.", "Lima, Peru."))]
    report = import_file(store, jsonl(tmp_path / "arena.jsonl", rows), "arena", source_annotator="arena")
    assert (report.format, report.documents, report.rankings) == ("two_answer", 2, 4)
    first, second = store.documents("arena")
    assert first.text == "user: Capital of Peru?" and [c.source for c in first.candidates] == ["m1", "m2"]
    assert [c.source for c in second.candidates] == ["m1", "m3"]
    assert {(n, o) for n, t, o in ranks_of(store, "arena") if t == first.text and any("Cusco." in g for g in o)} == {
        ("arena:u1", (("Lima.",), ("Cusco.",))), ("arena:u2", (("Lima.",), ("Cusco.",))),
        ("arena:u3", (("Cusco.", "Lima."),))}
    assert len(list(export_rows(store, "arena", "pairs", aggregate="majority"))) == 2


def test_scored_rows_helpsteer_like_land_as_one_ranked_document_per_prompt(store, tmp_path, capsys, db_path):
    store.create_project("hs", kind="prompt", k=2)
    rows = [{"prompt": f"Question {i}?", "response": f"{kind} answer {i}", "helpfulness": h, "correctness": h,
             "coherence": 4} for i in range(3) for kind, h in (("good", 4), ("poor", 1))]
    rows.sort(key=lambda r: r["response"])  # a prompt's rows apart
    path = jsonl(tmp_path / "hs2.jsonl", rows)
    assert main(["import", str(path), "--db", db_path, "--project", "hs"]) == 0
    assert "(scored)" in capsys.readouterr().out
    docs = store.documents("hs")
    assert len(docs) == 3 and all(len(d.candidates) == 2 for d in docs)
    assert {o for _, _, o in ranks_of(store, "hs")} == {((f"good answer {i}",), (f"poor answer {i}",)) for i in range(3)}
    assert docs[0].candidates[0].gen_params == {"meta": {"helpfulness": 4, "correctness": 4, "coherence": 4}}
    # ranked by another attribute, a prompt with three responses in a K=2 project is refused by line
    store.create_project("hs-c", kind="prompt", k=2)
    extra = jsonl(tmp_path / "extra.jsonl", [*rows, {"prompt": "Question 0?", "response": "third", "helpfulness": 2,
                                                     "correctness": 0}])
    with pytest.raises(ImportFileError, match="has 3 candidates but the project has K=2"):
        import_file(store, extra, "hs-c", options=Options(score_field="correctness"))
    assert store.documents("hs-c") == []


def test_sources_gz_json_array_parquet_and_datasets_folder(store, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": f"P{i}", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(4)]
    paths = [jsonl(tmp_path / "a.jsonl.gz", rows, gz=True), tmp_path / "b.json", tmp_path / "c.parquet",
             tmp_path / "ds"]
    paths[1].write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), paths[2])
    paths[3].mkdir()
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(paths[3] / "data-00000-of-00001.arrow"), "wb") as sink, \
            pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    for i, path in enumerate(paths):
        store.create_project(f"s{i}", kind="prompt", k=2)
        report = import_file(store, path, f"s{i}")
        assert (report.format, report.documents, report.rankings) == ("pairs", 4, 4), path


def test_refused_files_name_the_line_and_leave_nothing(store, tmp_path):
    store.create_project("p", kind="prompt", k=2)
    store.create_project("r3", kind="prompt", k=3)
    before = counts(store)
    bad = [
        ("odd.jsonl", [{"question": "q", "answer": "a"}], "p", "line 1: unknown shape (keys: answer, question)"),
        ("imp.jsonl", [{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"},
                       {"chosen": "Yes.", "rejected": "No."}], "p", "turn boundary"),
        ("sc.jsonl", [{"instruction": "q", "completions": [{"response": "a", "overall_score": "high"},
                                                           {"response": "b", "overall_score": 1},
                                                           {"response": "c", "overall_score": 2}]}], "r3",
         "score is not a number"),
        ("ch.jsonl", [{"info": {"post": "x"}, "summaries": [{"text": "a"}, {"text": "b"}], "choice": 5}], "p",
         "choice"),
        ("k.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}], "r3", "has 2 candidates but the project has K=3"),
    ]
    for name, rows, project, message in bad:
        with pytest.raises((ImportFileError, ValidationError)) as e:
            import_file(store, jsonl(tmp_path / name, rows), project)
        assert message in (str(e.value) + " ".join(m for *_, m in getattr(e.value, "problems", []))), name
        if isinstance(e.value, ImportFileError) and name == "imp.jsonl":
            assert e.value.problems[0][0] == 2  # the second line
        assert counts(store) == before, name


def test_pairs_round_trip_property(store, tmp_path):
    """export pairs, then import the file into a new project: the same documents, candidates and
    rankings (random projects of pairs with several raters, seeded)."""
    rng = random.Random(7)
    for trial in range(5):
        src, dst = f"src{trial}", f"dst{trial}"
        store.create_project(src, kind="prompt", k=2)
        raters = [store.add_annotator(f"r{trial}-{i}")[0] for i in range(3)]
        rows = [{"prompt": f"T{trial} prompt {i} " + "w " * rng.randint(0, 3), "chosen": f"a{i}", "rejected": f"b{i}"}
                for i in range(rng.randint(3, 8))]
        import_file(store, jsonl(tmp_path / f"in{trial}.jsonl", rows), src, source_annotator=f"seed{trial}")
        for d in store.documents(src):  # people add their own judgments
            for a in rng.sample(raters, rng.randint(0, 3)):
                x, y = d.candidates if rng.random() < 0.5 else d.candidates[::-1]
                store.save_ranking(a, d.id, {x.id: 1, y.id: 2})
        out = tmp_path / f"out{trial}.jsonl"
        write_export(export_rows(store, src, "pairs"), out)
        store.create_project(dst, kind="prompt", k=2)
        import_file(store, out, dst, options=Options(rater_field="annotator"), source_annotator="rt")
        assert sorted((d.text, tuple(sorted(c.text for c in d.candidates))) for d in store.documents(src)) == \
            sorted((d.text, tuple(sorted(c.text for c in d.candidates))) for d in store.documents(dst))
        strip = {(n.removeprefix("rt:"), t, o) for n, t, o in ranks_of(store, dst)}
        assert strip == ranks_of(store, src)


def test_cli_lists_formats_and_imports_with_a_mapping(db_path, store, tmp_path, capsys):
    assert main(["import", "--formats"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("pairs", "implicit", "sff", "ratings", "two_answer", "slf5k"))
    store.create_project("m", kind="prompt", k=2)
    path = jsonl(tmp_path / "m.jsonl", [{"q": "Why?", "good": "Because.", "bad": "No."}])
    assert main(["import", str(path), "--db", db_path, "--project", "m", "--map", "prompt=q,chosen=good,rejected=bad"]) == 0
    assert "(pairs)" in capsys.readouterr().out
    assert main(["import", str(path), "--db", db_path, "--project", "m", "--map", "prompt"]) == 2
    assert main(["export", "pairs", "--db", db_path, "--project", "m", "--aggregate", "majority"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["votes"] == 1


def test_a_conversation_is_shown_as_turns_on_the_annotate_page(app_db, tmp_path):
    """AppTest: an imported chat prompt is drawn turn by turn, the markup in it as text."""
    from apptest import open_page

    from training.store import Store

    with Store(app_db.path) as s:
        s.create_project("chat", kind="prompt", k=2, overlap=2)  # the import ranked it once
        rows = [{"prompt": [{"role": "user", "content": "Plan a **trip**"},
                            {"role": "assistant", "content": "Where to?"},
                            {"role": "user", "content": "Lisbon <b>in May</b>"}],
                 "chosen": [{"role": "assistant", "content": "Day 1: Alfama."}],
                 "rejected": [{"role": "assistant", "content": "No idea."}]}]
        import_file(s, jsonl(tmp_path / "chat.jsonl", rows), "chat")
    at = open_page("annotate", app_db.ann.id)
    at.selectbox(key="project").select("chat").run()
    assert not at.exception
    assert len(at.chat_message) == 3
    texts = [t.value for t in at.text]
    assert "Plan a **trip**" in texts and "Lisbon <b>in May</b>" in texts


def test_candidates_that_go_on_for_several_turns_are_drawn_turn_by_turn(app_db, tmp_path):
    """MT-bench judges the second turn: each candidate is a reply, the user's next message, a reply."""
    from apptest import open_page

    from training.store import Store

    q1, q2 = {"role": "user", "content": "Is 97 prime?"}, {"role": "user", "content": "And one above 100?"}
    row = {"question_id": 81, "model_a": "m1", "model_b": "m2", "winner": "model_a", "judge": "expert_1", "turn": 2,
           "conversation_a": [q1, {"role": "assistant", "content": "Yes."}, q2, {"role": "assistant", "content": "101."}],
           "conversation_b": [q1, {"role": "assistant", "content": "No."}, q2, {"role": "assistant", "content": "100."}]}
    with Store(app_db.path) as s:
        s.create_project("mt", kind="prompt", k=2, overlap=2)
        import_file(s, jsonl(tmp_path / "mt.jsonl", [row]), "mt")
    at = open_page("annotate", app_db.ann.id)
    at.selectbox(key="project").select("mt").run()
    assert not at.exception
    texts = [t.value for t in at.text]
    assert {"Yes.", "And one above 100?", "101.", "No.", "100."} <= set(texts)
    assert not any(t.startswith("assistant: ") for t in texts)  # the roles are captions, not part of the text
    assert sum(c.value == "user" for c in at.caption) >= 2


def test_skip_bad_rows_imports_the_good_ones_and_names_the_rest(store, tmp_path, db_path, capsys):
    """LMSYS arena-55k has rows whose answer is [null]: by default the file is refused whole; with
    skip_bad the other rows land, and the left-out ones are named."""
    store.create_project("arena", kind="prompt", k=2)
    header = "id,model_a,model_b,prompt,response_a,response_b,winner_model_a,winner_model_b,winner_tie\n"
    rows = ['1,m1,m2,"[""Hi?""]","[""Hello.""]","[""Hey.""]",1,0,0',
            '2,m1,m2,"[""Tea?""]","[""Yes.""]",[null],0,0,1',
            '3,m2,m3,"[""Sky?""]","[""Blue.""]","[""Green.""]",0,1,0']
    path = tmp_path / "train.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    with pytest.raises(ImportFileError) as e:
        import_file(store, path, "arena")
    assert e.value.problems == [(3, "response_b", "is empty")] and store.documents("arena") == []
    report = import_file(store, path, "arena", skip_bad=True)
    assert (report.documents, report.rankings, report.skipped) == (2, 2, 1)
    # with overlap 1 the imported rankings complete both documents: the report says so, and how to change it
    assert report.complete == 2 and "in no annotator's queue" in str(report) and "--overlap 2" in str(report)
    assert report.problems == [(3, "response_b", "is empty")] and "skipped 1 row with problems" in str(report)
    assert [d.ext_id for d in store.documents("arena")] == ["1", "3"]
    # again: the two already there are skipped too, and with nothing new the file is refused
    with pytest.raises(ImportFileError, match="already in project"):
        import_file(store, path, "arena", skip_bad=True)
    assert len(store.documents("arena")) == 2 and store.check_counters() == []
    # the CLI: a refusal points at the flag; the flag prints every row it left out
    store.create_project("arena2", kind="prompt", k=2)
    assert main(["import", str(path), "--db", db_path, "--project", "arena2"]) == 2
    assert "--skip-bad-rows" in capsys.readouterr().err
    assert main(["import", str(path), "--db", db_path, "--project", "arena2", "--skip-bad-rows"]) == 0
    out = capsys.readouterr()
    assert "2 documents" in out.out and "skipped 1 row with problems:\n  line 3: response_b: is empty" in out.out
    assert out.out.count("response_b: is empty") == 1  # named once


def test_skip_bad_rows_on_the_documents_fast_path(store, tmp_path):
    store.create_project("docs", k=2)
    good = {"id": "a", "text": "T", "candidates": ["x", "y"]}
    path = jsonl(tmp_path / "d.jsonl", [good, {"id": "b", "text": "T2", "candidates": ["x"]}, {**good, "id": "c"},
                                        {**good, "id": "a"}])
    report = import_file(store, path, "docs", skip_bad=True)
    assert (report.documents, report.skipped) == (2, 2)
    assert [ln for ln, _, _ in report.problems] == [2, 4]
    assert sorted(d.ext_id for d in store.documents("docs")) == ["a", "c"] and store.check_counters() == []


def test_documents_with_a_vote_per_pair_get_one_ranking(store, tmp_path):
    """QA-Feedback as it is: four answers and six pairwise preferences per question."""
    store.create_project("qa", kind="qa", k=4)
    rows = [{"question": f"Q{i}?", "prediction 1": "a", "prediction 2": "b", "prediction 3": "c", "prediction 4": "d",
             "passages": [["T", "s1"]], "preference": prefs}
            for i, prefs in enumerate([[0, 1, 2, 1, 0, 2], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])]
    path = tmp_path / "dev_feedback.json"
    path.write_text(json.dumps(rows))
    mapping = {"text": "question", "candidates": "prediction 1+prediction 2+prediction 3+prediction 4",
               "pairwise": "preference"}
    report = import_file(store, path, "qa", options=Options(mapping=mapping))
    assert (report.documents, report.rankings) == (3, 2)  # the question without a preference has no ranking
    orders = {t: o for _, t, o in ranks_of(store, "qa")}
    assert orders == {"Q0?": (("d",), ("b",), ("a",), ("c",)), "Q2?": (("a",), ("b",), ("c",), ("d",))}
    assert all("preference" not in d.meta and "pairwise" not in d.meta for d in store.documents("qa"))
    store.create_project("qa2", kind="qa", k=4)
    rows[1]["preference"] = [1, 2]
    path.write_text(json.dumps(rows))
    with pytest.raises(ImportFileError) as e:
        import_file(store, path, "qa2", options=Options(mapping=mapping))
    why = "must be a list of 6 votes, one per pair of the 4 candidates (1v2, 1v3, ...), got 2 votes"
    assert e.value.problems == [(2, "preference", why)]


def test_the_fields_note_warns_of_fields_that_give_the_judgment_away(store, tmp_path):
    store.create_project("pku", kind="prompt", k=2)
    row = {"prompt": "P", "response_0": "a", "response_1": "b", "better_response_id": 0, "safer_response_id": 1,
           "is_response_0_safe": True, "prompt_source": "Alpaca", "category": "privacy"}
    report = import_file(store, jsonl(tmp_path / "pku.jsonl", [row]), "pku")
    note = report.fields_note()
    assert "category" in note and "is_response_0_safe, prompt_source, safer_response_id may give the judgment away" in note


def test_skip_bad_rows_never_writes_a_bad_line_and_accounts_for_every_judgment(store, tmp_path):
    store.create_project("docs", k=2)
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"id": "a", "text": "T", "candidates": ["x", "y"]}\n'
                     b'{"id": "b", "text": "caf\xe9", "candidates": ["x", "y"]}\n')  # not UTF-8
    report = import_file(store, path, "docs", skip_bad=True)
    assert (report.documents, report.skipped) == (1, 1) and [d.ext_id for d in store.documents("docs")] == ["a"]
    # a pair already in the project and a second judgment of it in the same file: both named, the new row lands
    store.create_project("pairs", k=2)
    row = {"prompt": "P1", "chosen": "a", "rejected": "b", "worker": "u1"}
    import_file(store, jsonl(tmp_path / "p1.jsonl", [row]), "pairs")
    again = jsonl(tmp_path / "p2.jsonl", [row, {**row, "worker": "u2"}, {**row, "prompt": "P2"}])
    report = import_file(store, again, "pairs", skip_bad=True)
    assert (report.documents, report.rankings, report.skipped) == (1, 1, 2)
    assert [ln for ln, _, _ in report.problems] == [1, 2] and "already in project" in report.problems[1][2]


def test_the_queue_note_counts_what_the_import_completed_and_suggests_enough_overlap(store, tmp_path):
    store.create_project("arena", kind="prompt", k=2, overlap=2)
    rows = [{"prompt": "Q", "chosen": "a", "rejected": "b", "judge": j} for j in ("u1", "u2", "u3")]
    report = import_file(store, jsonl(tmp_path / "a.jsonl", rows), "arena")
    assert (report.complete, report.most_rankings) == (1, 3)
    assert "1 document(s) reached the project's overlap (2)" in str(report) and "--overlap 4" in str(report)
    more = import_file(store, jsonl(tmp_path / "b.jsonl", [{"prompt": "R", "chosen": "a", "rejected": "b"}]), "arena")
    assert more.complete == 0 and "no annotator's queue" not in str(more)  # one ranking of two: still open
