"""training.data.tool_exports: Label Studio's and Argilla's exports imported as they are.

The rows are written here after the tools' published shapes: Label Studio's task format and its
LLM templates (Pairwise in "Human preference collection for RLHF", Ranker over a List in "LLM
Ranker"), its JSON-MIN converter; Argilla 2's Record.to_dict / to_list(flatten=True) and Argilla
1's FeedbackDataset on the Hub."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.cli import main
from training.data import formats as F
from training.data import tool_exports as T
from training.data.imports import import_file
from training.errors import ImportFileError


class Sink:
    def __init__(self):
        self.items = []

    def add(self, line, fld, msg):
        self.items.append((line, fld, msg))


def parse(fmt, obj):
    sink = Sink()
    item = F.parse(fmt, obj, 3, sink, F.Options())
    return item, sink.items


def pairwise(selected, user=1, **extra):
    return {"id": 40 + user, "completed_by": user, "was_cancelled": False, "lead_time": 4.2, **extra,
            "result": [{"id": "x1", "from_name": "comparison", "to_name": "comparison", "type": "pairwise",
                        "origin": "manual", "value": {"selected": selected}}]}


def task(i, annotations, **data):
    return {"id": i, "data": {"prompt": f"Question {i}?", "answer1": f"First answer {i}.",
                              "answer2": f"Second answer {i}.", **data},
            "annotations": annotations, "predictions": [], "project": 3, "inner_id": i}


# -- Label Studio ------------------------------------------------------------------------------------
def test_label_studio_pairwise_export_lands_with_a_ranking_per_annotator_and_tasks_still_to_rank(store, tmp_path):
    critique = {"from_name": "why", "to_name": "answer2", "type": "textarea", "value": {"text": ["Too vague."]}}
    tasks = [task(1, [pairwise("left", 1), pairwise("right", 2), pairwise("left", 3, was_cancelled=True)]),
             task(2, []),
             task(3, [{**pairwise("left", 1), "result": [*pairwise("left", 1)["result"], critique]}], source="web")]
    path = tmp_path / "project-3-at-2026.json"
    path.write_text(json.dumps(tasks, indent=1))  # the export: one JSON array
    store.create_project("ls", kind="qa", k=2)
    report = import_file(store, path, "ls", source_annotator="label-studio")
    assert (report.format, report.documents, report.rankings, report.critiques) == ("label_studio", 3, 3, 1)
    names = {a.id: a.name for a in store.list_annotators()}
    docs = {d.text: d for d in store.documents("ls")}
    assert set(docs) == {"Question 1?", "Question 2?", "Question 3?"}
    assert docs["Question 3?"].meta == {"source": "web"}
    got = {}
    for d in docs.values():
        texts = {c.id: c.text for c in d.candidates}
        for r in store.rankings_of([d.id]).get(d.id, []):
            got[(d.text, names[r.annotator_id])] = [texts[g[0]] for g in r.order]
    assert got == {("Question 1?", "label-studio:1"): ["First answer 1.", "Second answer 1."],
                   ("Question 1?", "label-studio:2"): ["Second answer 1.", "First answer 1."],
                   ("Question 3?", "label-studio:1"): ["First answer 3.", "Second answer 3."]}
    assert store.scalar("SELECT COUNT(*) FROM critiques") == 1 and store.check_counters() == []


def test_label_studio_llm_ranker_list_ranks_items_and_refuses_buckets_and_gaps():
    items = [{"id": "llama", "title": "LlamaModel", "body": "Jobs will change."},
             {"id": "cobra", "title": "CobraAI", "body": "All jobs vanish."},
             {"id": "puma", "title": "PumaIntelligence", "body": "More jobs appear."}]

    def row(value):
        return {"id": 9, "data": {"task": "Rank the answers.", "prompt": "AI and jobs?", "items": items},
                "annotations": [{"completed_by": {"id": 4, "email": "ann@example.org"},
                                 "result": [{"from_name": "rank", "to_name": "answers", "type": "ranker",
                                             "value": value}]}]}

    item, problems = parse("label_studio", row({"ranker": ["puma", "llama", "cobra"]}))
    assert problems == [] and item.text == "AI and jobs?" and item.ext_id == "9"
    assert item.candidates == ["Jobs will change.", "All jobs vanish.", "More jobs appear."]
    assert item.sources == ["LlamaModel", "CobraAI", "PumaIntelligence"]
    assert item.meta == {"task": "Rank the answers."}
    assert item.judgments[0].ranks == [2, 3, 1] and item.judgments[0].rater == "ann@example.org"
    # the older layout: the list's name -> ids; one bucket holding them all is the same ranking
    assert parse("label_studio", row({"ranker": {"answers": ["puma", "llama", "cobra"]}}))[0].judgments[0].ranks \
        == [2, 3, 1]
    assert parse("label_studio", row({"ranker": {"best": ["puma"], "biased": ["cobra"]}})) == (None, [
        (3, "annotations[0].ranker", ("holds buckets (best, biased), which group the items without ranking them; "
                                     "rank them in one list"))])
    assert parse("label_studio", row({"ranker": ["puma", "llama"]}))[1] == [
        (3, "annotations[0].ranker", "misses cobra: a ranking places every output")]
    assert "names no output: 'wolf'" in parse("label_studio", row({"ranker": ["puma", "llama", "cobra", "wolf"]}))[1][0][2]
    todo, problems = parse("label_studio", {**row([]), "annotations": []})  # a task nobody ranked yet
    assert problems == [] and todo.candidates == item.candidates and todo.judgments == []


def test_label_studio_choices_ratings_and_a_result_that_ranks_nothing():
    def row(*results, **data):
        return {"id": 5, "data": {"question": "Best pet?", "response_a": "A cat.", "response_b": "A rock.",
                                  "response_c": "A dog.", **data},
                "annotations": [{"completed_by": 2, "result": list(results)}]}

    def rating(to, n):
        return {"from_name": f"r_{to}", "to_name": to, "type": "rating", "value": {"rating": n}}

    item, problems = parse("label_studio", row(rating("response_a", 4), rating("response_b", 1),
                                               rating("response_c", 4)))
    assert problems == [] and item.candidates == ["A cat.", "A rock.", "A dog."]
    assert item.judgments[0].ranks == [1, 3, 1]  # equal ratings tie
    two = {"id": 6, "data": {"prompt": "Best pet?", "answer1": "A cat.", "answer2": "A rock."}, "annotations": []}
    for choice, ranks in (("Answer 2", [2, 1]), ("answer1", [1, 2]), ("Right", [2, 1]), ("Tie", [1, 1]), ("B", [2, 1])):
        got, problems = parse("label_studio", {**two, "annotations": [{"completed_by": 1, "result": [
            {"from_name": "pref", "to_name": "prompt", "type": "choices", "value": {"choices": [choice]}}]}]})
        assert problems == [] and got.judgments[0].ranks == ranks, choice
    harmful = {"from_name": "safety", "to_name": "prompt", "type": "choices", "value": {"choices": ["Harmful"]}}
    assert parse("label_studio", {**two, "annotations": [{"completed_by": 1, "result": [harmful]}]}) == (None, [
        (3, "annotations[0]", ("gives no ranking of the outputs (answer1, answer2): its results are choices; "
                              "Tokenwise reads pairwise, ranker, a choice naming an output, or a rating of each"))])
    odd = {"id": 7, "data": {"prompt": "Q", "left": "x", "right": "y"}, "annotations": []}
    assert "cannot tell which fields are the outputs" in parse("label_studio", odd)[1][0][2]


def test_label_studio_json_min_rows_of_one_task_become_one_item_with_both_annotators(tmp_path):
    base = {"id": 11, "prompt": "Capital of Peru?", "answer1": "Lima.", "answer2": "Cusco.",
            "created_at": "2026-11-02T10:00:00Z", "updated_at": "2026-11-02T10:00:00Z", "lead_time": 3.1}
    rows = [{**base, "comparison": [{"selected": "left"}], "annotator": "ann@example.org", "annotation_id": 1},
            {**base, "comparison": [{"selected": "right"}], "annotator": "bob@example.org", "annotation_id": 2},
            {**base, "id": 12, "prompt": "Capital of Chile?", "annotator": None, "annotation_id": None}]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(rows))
    fmt, items = F.read_items(path)
    docs = F.grouped(items)
    assert fmt == "label_studio" and len(docs) == 2
    assert [(j.rater, j.ranks) for j in docs[0].judgments] == [("ann@example.org", [1, 2]), ("bob@example.org", [2, 1])]
    assert docs[1].judgments == [] and docs[1].candidates == ["Lima.", "Cusco."]
    # JSON-MIN writes a single choice and a text area as bare strings, and a rating without the output
    # it rates: a choice naming an output is the ranking, ratings go by their control's name (r1, r2)
    cr = {"prompt": "Best fruit?", "answer1": "Apple.", "answer2": "Rock.", "id": 7}
    tail = {"annotator": 1, "annotation_id": 7, "created_at": None, "updated_at": None, "lead_time": None}
    chose, problems = parse("label_studio", {**cr, "better": "Answer 2", "notes": "Hard one.", **tail})
    assert problems == [] and chose.judgments[0].ranks == [2, 1] and chose.meta == {"notes": "Hard one."}
    rated, problems = parse("label_studio", {**cr, "r1": [{"rating": 4}], "r2": [{"rating": 2}], **tail})
    assert problems == [] and rated.judgments[0].ranks == [1, 2]
    critique, _ = parse("label_studio", {**cr, "comparison": [{"selected": "left"}], "critique_answer2": "Not food.",
                                         **tail})
    assert critique.judgments[0].critiques == {1: "Not food."} and critique.meta == {}



def test_label_studio_csv_and_tsv_exports_read_like_json_min(tmp_path):
    """The CSV/TSV export is JSON-MIN as a table (as Label Studio's converter writes it): columns
    sorted by name, a result list as JSON text, a missing value as "", every cell a string; its TSV
    keeps the name result.csv. A bare text column is a choice only when it names an output exactly."""
    items = json.dumps([{"id": "m1", "title": "ModelOne", "body": "From one."},
                        {"id": "m2", "title": "ModelTwo", "body": "From two."}])
    header = ["annotation_id", "annotator", "answer1", "answer2", "better", "created_at", "critique_answer2",
              "id", "lead_time", "prompt", "r1", "r2", "updated_at", "year"]
    rows = [["7", "ann@example.org", "Apple.", "Rock.", "Answer 2", "2026-11-02T10:00:00Z", "Not food.", "4", "",
             "Best fruit?", "", "", "2026-11-02T10:00:00Z", "2"],
            ["8", "bob@example.org", "Apple.", "Rock.", "", "2026-11-02T10:00:00Z", "", "4", "",
             "Best fruit?", '[{"rating":4}]', '[{"rating":2}]', "2026-11-02T10:00:00Z", "2"],
            ["9", "cy@example.org", "Pear.", "Stone.", "", "2026-11-02T10:00:00Z", "", "5", "",
             "Sweetest fruit?", "", "", "2026-11-02T10:00:00Z", "1"],  # "1" in a data column is not a choice
            ["", "", "Plum.", "Brick.", "", "", "", "6", "", "Softest fruit?", "", "", "", "1"]]

    def table(sep):
        return "\n".join(sep.join(f'"{c}"' if not c.isdigit() else c for c in (x.replace('"', '""') for x in r))
                         for r in [header, *rows]) + "\n"

    for name, sep in [("result.csv", ","), ("tabs.tsv", "\t"), ("tabs_named.csv", "\t")]:
        path = tmp_path / name
        path.write_text(table(sep))
        fmt, found = F.read_items(path)
        docs = F.grouped(list(found))
        assert fmt == "label_studio" and [d.candidates for d in docs] == [["Apple.", "Rock."], ["Pear.", "Stone."],
                                                                          ["Plum.", "Brick."]], name
        assert [(j.rater, j.ranks, j.critiques) for j in docs[0].judgments] == [
            ("ann@example.org", [2, 1], {1: "Not food."}), ("bob@example.org", [1, 2], {})], name
        assert docs[0].meta == {"year": "2"} and docs[0].ext_id == "4"
        assert docs[1].judgments == [] and docs[2].judgments == []  # a data column's "1" chose nothing
    ranker = tmp_path / "ranker.csv"
    ranker.write_text('"annotation_id","annotator","created_at","id","items","lead_time","prompt","rank"\n'
                      '5,"1","2026-11-02T10:00:00Z",4,"' + items.replace('"', '""') + '","","Which?",'
                      '"[{""ranker"":[""m2"",""m1""]}]"\n')
    (doc,) = F.grouped(list(F.read_items(ranker)[1]))
    assert doc.candidates == ["From one.", "From two."] and doc.sources == ["ModelOne", "ModelTwo"]
    assert [(j.rater, j.ranks) for j in doc.judgments] == [("1", [2, 1])]


# -- Argilla -----------------------------------------------------------------------------------------
def test_argilla_records_to_json_ranking_label_and_critiques():
    rec = {"id": "rec-1", "_server_id": "5d1c", "vectors": {},
           "fields": {"prompt": "Summarise: the bridge closes on Monday.", "response1": "Bridge shut Monday.",
                      "response2": "A bridge exists."},
           "metadata": {"source": "news"}, "suggestions": {"ranking": {"value": ["response2", "response1"],
                                                                       "score": None, "agent": "gpt"}},
           "responses": {"ranking": [{"value": ["response1", "response2"], "user_id": "u-ann"},
                                     {"value": ["response2", "response1"], "user_id": "u-bob"}],
                         "critique_response2": [{"value": "Says nothing about Monday.", "user_id": "u-ann"}]}}
    item, problems = parse("argilla", rec)
    assert problems == [] and item.ext_id == "rec-1" and item.meta == {"source": "news"}
    assert item.text == "Summarise: the bridge closes on Monday."
    assert item.candidates == ["Bridge shut Monday.", "A bridge exists."]
    assert [(j.rater, j.ranks, j.critiques) for j in item.judgments] == [
        ("u-ann", [1, 2], {1: "Says nothing about Monday."}), ("u-bob", [2, 1], {})]
    label = {**rec, "responses": {"better": [{"value": "response2", "user_id": "u1"}],
                                  "topic": [{"value": "news", "user_id": "u1"}]}}
    item = parse("argilla", label)[0]
    assert item.judgments[0].ranks == [2, 1]
    assert item.meta == {"source": "news", "topic": ["news"]}  # an answer about no one output: kept, by question
    gap = {**rec, "responses": {"ranking": [*rec["responses"]["ranking"], {"value": ["response2"], "user_id": "u-cy"}]}}
    assert parse("argilla", gap) == (None, [(3, "ranking.responses", ("user u-cy: the ranking misses response1: "
                                                                     "a ranking places every output"))])
    extra = {**rec, "fields": {**rec["fields"], "response3": "Monday."}}  # a field the ranking does not name
    assert parse("argilla", extra)[0].meta == {"response3": "Monday.", "source": "news"}


def test_argilla_flattened_datasets_on_parquet_keep_submitted_responses_only(tmp_path, store):
    rows = [{"id": f"r{i}", "status": "completed", "_server_id": f"s{i}", "inserted_at": "2026-11-01",
             "question": f"Why is the sky blue, part {i}?", "answer_1": f"Scattering {i}.", "answer_2": f"Paint {i}.",
             "rating_answer_1.responses": [5, 4], "rating_answer_1.responses.users": ["u1", "u2"],
             "rating_answer_1.responses.status": ["submitted", "draft"],
             "rating_answer_2.responses": [2, 4], "rating_answer_2.responses.users": ["u1", "u2"],
             "rating_answer_2.responses.status": ["submitted", "draft"],
             "rating_answer_1.suggestion": 3, "rating_answer_1.suggestion.agent": "judge-model"} for i in range(3)]
    path = tmp_path / "train-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert F.detect_source(path) == ("argilla", "")
    store.create_project("ar", kind="qa", k=2)
    report = import_file(store, path, "ar", source_annotator="argilla")
    assert (report.documents, report.rankings) == (3, 3)
    assert {a.name for a in store.list_annotators() if a.role == "source"} == {"argilla:u1"}
    doc = store.documents("ar")[0]
    assert [c.text for c in doc.candidates] == ["Scattering 0.", "Paint 0."] and doc.meta == {}


def test_argilla_1_feedback_dataset_rows_with_ranks_and_ties():
    row = {"prompt": "Pick a colour.", "response-1": "Blue.", "response-2": "Blue!", "external_id": "e7",
           "metadata": '{"batch": 2}',
           "ranking": [{"user_id": "a1", "value": [{"value": "reply-1", "rank": 1}, {"value": "reply-2", "rank": 1}],
                        "status": "submitted"},
                       {"user_id": "a2", "value": {"value": ["reply-2", "reply-1"], "rank": [1, 2]},
                        "status": "submitted"},
                       {"user_id": "a3", "value": [{"value": "reply-1", "rank": 1}, {"value": "reply-2", "rank": 2}],
                        "status": "discarded"}],
           "ranking-suggestion": None, "ranking-suggestion-metadata": {"type": None, "score": None, "agent": None}}
    assert F.detect([(1, row)]) == ("argilla", "")
    item, problems = parse("argilla", row)
    assert problems == [] and item.ext_id == "e7" and item.meta == {"batch": 2}  # (the Hub's metadata: a JSON string)
    assert [(j.rater, j.ranks) for j in item.judgments] == [("a1", [1, 1]), ("a2", [2, 1])]
    # the same records as the SDK holds them (FeedbackRecord.dict(), the server payload)
    record = {"fields": {k: row[k] for k in ("prompt", "response-1", "response-2")}, "metadata": {"batch": 2},
              "external_id": "e7", "responses": [
                  {"user_id": "a2", "status": "submitted", "values": {"ranking": {"value": [
                      {"value": "reply-2", "rank": 1}, {"value": "reply-1", "rank": 2}]}, "critique": {"value": "ok"}}},
                  {"user_id": "a3", "status": "discarded", "values": {}}]}
    assert F.detect([(1, record)]) == ("argilla", "")
    item, problems = parse("argilla", record)
    assert problems == [] and [(j.rater, j.ranks) for j in item.judgments] == [("a2", [2, 1])]
    odd = {"prompt": "Q", "x": "a", "y": "b", "ranking": [{"user_id": "a1", "value": ["x", "y"], "status": None}]}
    assert parse("argilla", odd)[0].candidates == ["a", "b"]  # options that name fields say which they are
    none = {"prompt": "Q", "x": "a", "y": "b", "topic": [{"user_id": "a1", "value": "news", "status": None}]}
    assert "cannot tell which fields are the outputs to rank" in parse("argilla", none)[1][0][2]


def test_named_reads_the_ways_an_output_is_named():
    two = ["answer1", "answer2"]
    assert [T.named(x, two) for x in ("Answer 2", "answer_1", "2", 1, "left", "B", "second", "Both", "maybe")] == \
        [1, 0, 1, 0, 0, 1, 1, "tie", None]
    assert T.named("1", ["response_0", "response_1"]) == 1  # a number names the output with that number
    assert T.named("reply-2", ["response-1", "response-2", "response-3"]) == 1
    assert T.numbered({"q": "x", "answer_b": "b", "answer_a": "a", "meta_1": "m"}) == ["answer_a", "answer_b"]
    assert T.about("rating_response_10", ["response_1", "response_10"]) == 1


def test_the_cli_imports_a_label_studio_export_and_refuses_a_broken_task_by_line(store, tmp_path, db_path, capsys):
    store.create_project("cli", kind="qa", k=2)
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task(1, [pairwise("left")]), task(2, [pairwise("up")])]))
    with pytest.raises(ImportFileError, match="line 2: annotations\\[0\\].pairwise: selected must be left or right"):
        import_file(store, path, "cli")
    assert store.documents("cli") == []
    assert main(["import", str(path), "--db", db_path, "--project", "cli", "--skip-bad-rows"]) == 0
    out = capsys.readouterr()
    assert "(label_studio)" in out.out and len(store.documents("cli")) == 1
    # raters are named after the tool unless the import names a source; the overlap advice counts
    # every ranking a document has, from this import and earlier ones
    assert [a.name for a in store.list_annotators() if a.role == "source"] == ["label-studio:1"]
    more = tmp_path / "more.json"
    more.write_text(json.dumps([task(1, [pairwise("left", 2), pairwise("right", 3)]), task(5, [pairwise("left", 4)])]))
    with pytest.raises(ImportFileError, match="already in project"):
        import_file(store, more, "cli")  # task 1 is there: a task is imported once
    more.write_text(json.dumps([task(6, [pairwise("left", 2), pairwise("right", 3)])]))
    import_file(store, more, "cli")
    more.write_text(json.dumps([task(5, [pairwise("left", 4)])]))
    report = import_file(store, more, "cli")
    assert report.most_rankings == 2 and "--overlap 3" in report.queue_note()  # (task 6 has two)
    assert "1 document, 2 candidates, 1 ranking, 0 critiques" in str(report)


def test_the_import_preview_reads_a_label_studio_export_with_all_its_annotators():
    from annotate_app import admin

    tasks = [task(1, [pairwise("right", 1), pairwise("left", 2)]), task(2, [])]
    pv = admin.preview_upload("project-3.json", json.dumps(tasks).encode())
    assert pv.detected == "label_studio"
    assert [(r["prompt"], r["ranking"], r["rater"], r["problem"]) for r in pv.read] == [
        ("Question 1?", "2 > 1 · 1 > 2", "1 · 2", ""), ("Question 2?", "", "", "")]


# -- a new project made for the file -----------------------------------------------------------------
def test_an_import_can_make_its_project_from_the_file_and_leaves_none_when_refused(store, tmp_path):
    from training.data.imports import new_project_shape
    from training.errors import NotFound

    path = tmp_path / "ranker.json"
    items = [{"id": f"m{i}", "title": f"M{i}", "body": f"Body {i}."} for i in range(3)]
    path.write_text(json.dumps([{"id": 1, "data": {"prompt": "Q?", "items": items}, "annotations": []}]))
    assert new_project_shape(path) == ("label_studio", 3, "qa")
    with pytest.raises(NotFound, match="the file's rows have 3 outputs: create it with `tokenwise project create "
                                       "fresh --kind qa --k 3`, or import with --create"):
        import_file(store, path, "fresh")
    assert not store.has_project("fresh")
    report = import_file(store, path, "fresh", create=True)
    p = store.get_project("fresh")
    assert (report.documents, p.k, p.kind) == (1, 3, "qa")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([task(1, [pairwise("left")]), task(2, [pairwise("up")])]))
    with pytest.raises(ImportFileError, match="line 2"):
        import_file(store, bad, "never", create=True)
    assert not store.has_project("never") and [q.name for q in store.list_projects()] == ["fresh"]
    summaries = tmp_path / "sff.jsonl"
    summaries.write_text(json.dumps(F.FORMATS["sff"].example) + "\n")
    assert new_project_shape(summaries) == ("sff", 2, "summarize")
    csv = tmp_path / "docs.csv"
    csv.write_text("id,text,candidate_1,candidate_2,candidate_3,candidate_4\nd1,T,a,b,c,d\n")
    assert new_project_shape(csv) == ("documents", 4, "summarize")


def test_the_import_form_says_what_project_the_file_needs():
    from annotate_app.admin import target_note

    assert target_note(("pairs", 3, "qa"), None) == ("caption", ("The new project will have K = 3 outputs per document (as "
                                            "the file's first row) and the task qa (Settings changes the task; K stays)."))
    assert target_note((None, None, "no row can be read"), None)[0] == "warning"
    assert target_note(("ratings", 3, "qa"), ("pairs", 2)) == ("warning", ("pairs has K = 2, but the file's first row has 3 "
                                                    "outputs: its rows will be refused. Import into a new project instead."))
    assert target_note(("pairs", 2, "qa"), ("pairs", 2)) is None and target_note((None, None, "why"), ("pairs", 2)) is None
    # OASST: documents of 2..K outputs fit a project of that K or more
    assert "K = 5 outputs per document at most" in target_note(("oasst", 5, "qa"), None)[1]
    assert target_note(("oasst", 3, "qa"), ("chat", 4)) is None
    assert target_note(("oasst", 5, "qa"), ("chat", 4)) == ("warning", (
        "chat has K = 4, but some of the file's prompts have 5 outputs: those rows will be refused. Import into "
        "a new project instead."))


def test_the_import_form_makes_a_new_project_for_the_file(db_path, monkeypatch):
    from apptest import open_page

    from training.store import Store

    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        root, _ = s.add_annotator("root", role="admin")
    data = json.dumps([task(1, [pairwise("left")]), task(2, [])]).encode()
    at = open_page("projects", root.id)
    at.file_uploader[0].set_value(("project-3.json", data, "application/json"))
    at = at.selectbox(key="import_project").set_value("A new project, made for this file").run()
    at = at.text_input(key="import_new_name").input("from-label-studio").run()
    assert any("K = 2" in c.value and "qa" in c.value for c in at.caption)
    at = at.button(key="import_go").click().run()
    assert not at.exception
    assert any("imported 2 documents" in s.value for s in at.success)
    assert at.selectbox(key="import_project").value == "from-label-studio"
    with Store(db_path) as s:
        p = s.get_project("from-label-studio")
        assert (p.k, s.count_documents(p.name)) == (2, 2)


def test_no_damaged_export_row_makes_a_reader_raise():
    """Seeded mutations of every shape above (values swapped for junk, keys and items dropped): a
    reader returns an Item or names a problem; it never raises."""
    import copy
    import random

    rank = {"from_name": "rank", "to_name": "answers", "type": "ranker", "value": {"ranker": ["b", "a"]}}
    rows = [("label_studio", task(1, [pairwise("left"), {"completed_by": {"email": "e"}, "result": [
                {"to_name": "answer2", "type": "textarea", "value": {"text": ["t"]}},
                {"to_name": "answer1", "type": "rating", "value": {"rating": 3}},
                {"to_name": "prompt", "type": "choices", "value": {"choices": ["Answer 1"]}}]}])),
            ("label_studio", {"id": 2, "data": {"prompt": "p", "items": [{"id": "a", "body": "x"}, {"id": "b", "title": "y"}]},
                              "annotations": [{"completed_by": 1, "result": [rank]}]}),
            ("label_studio", {"prompt": "p", "answer1": "a", "answer2": "b", "id": 3, "c": [{"selected": "right"}],
                              "r1": [{"rating": 2}], "better": "Tie", "annotator": 1, "annotation_id": 9}),
            ("label_studio", {"annotation_id": "9", "annotator": "1", "answer1": "a", "answer2": "b", "better": "",
                              "c": '[{"selected":"left"}]', "id": "3", "items": '[{"id":"a","body":"x"}]',
                              "prompt": "p", "r1": '[{"rating":2}]', "r2": "[{"}),  # a CSV row
            ("argilla", {"id": "r", "fields": {"prompt": "p", "response1": "a", "response2": "b"}, "metadata": {},
                         "responses": {"ranking": [{"value": ["response2", "response1"], "user_id": "u"}],
                                       "critique_response1": [{"value": "c", "user_id": "u"}]}}),
            ("argilla", {"prompt": "p", "answer_1": "a", "answer_2": "b", "q.responses": [["answer_1", "answer_2"]],
                         "q.responses.users": ["u"], "q.responses.status": ["submitted"]}),
            ("argilla", {"prompt": "p", "response-1": "a", "response-2": "b", "metadata": "{}", "ranking-suggestion": None,
                         "ranking": [{"user_id": "u", "value": {"rank": [1, 2], "value": ["reply-1", "reply-2"]},
                                      "status": "submitted"}]}),
            ("argilla", {"fields": {"prompt": "p", "x1": "a", "x2": "b"}, "external_id": "e", "responses": [
                {"user_id": "u", "status": "submitted", "values": {"pick": {"value": "x2"}}}]})]
    junk = [None, 0, 1.5, True, "", "x", "left", [], {}, [None], [{}], {"a": 1}, ["a"], [[1]], {"value": None}, "2",
            "[", "{}", "[{}]", '[{"ranker":{}}]', '[{"rating":"x"}]', " Answer 2 "]
    rng = random.Random(7)

    def mutate(o):
        if isinstance(o, (dict, list)) and o:
            k = rng.choice(list(o)) if isinstance(o, dict) else rng.randrange(len(o))
            r = rng.random()
            if r < 0.3:
                o[k] = copy.deepcopy(rng.choice(junk))
            elif r < 0.4:
                del o[k]
            else:
                o[k] = mutate(o[k])
            return o
        return copy.deepcopy(rng.choice(junk)) if rng.random() < 0.5 else o

    for fmt, row in rows:
        assert parse(fmt, row)[1] == [], fmt  # (each shape reads as it is)
    for _ in range(3000):
        fmt, row = rng.choice(rows)
        obj = copy.deepcopy(row)
        for _ in range(rng.randint(1, 3)):
            obj = mutate(obj)
        if isinstance(obj, dict):
            F.detect_one(obj)
            item, problems = parse(fmt, obj)
            assert item is not None or problems, obj


def test_the_rankings_export_says_which_model_won_and_of_what(store, tmp_path):
    """LLM Ranker items carry their model as the title: the rankings export gives the groups as
    sources too (which model won), with the document's text; a blind round's export does not."""
    from training.data.exports import export_rows

    items = [{"id": "m1", "title": "ModelOne", "body": "One."}, {"id": "m2", "title": "ModelTwo", "body": "Two."}]
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps([{"id": 4, "data": {"prompt": "Q?", "items": items}, "annotations": [
        {"completed_by": 1, "result": [{"type": "ranker", "to_name": "answers", "value": {"ranker": ["m2", "m1"]}}]}]}]))
    import_file(store, path, "ranked", create=True)
    [row] = export_rows(store, "ranked", "rankings")
    assert (row["text"], row["annotator"], row["ranking_texts"], row["ranking_sources"]) == (
        "Q?", "label-studio:1", [["Two."], ["One."]], [["ModelTwo"], ["ModelOne"]])


def test_a_missing_project_is_named_before_an_unreadable_or_remote_source(store, tmp_path, monkeypatch):
    from training.errors import NotFound

    broken = tmp_path / "broken.json"
    broken.write_text("[{]")
    with pytest.raises(NotFound, match="project 'gone' does not exist; create it with `tokenwise project create gone "
                                       "--k K`"):
        import_file(store, broken, "gone")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFound, match="or import with --create"):  # a hub name is not loaded to say so
        import_file(store, "someone/some-preferences", "gone")
    assert not store.has_project("gone")
