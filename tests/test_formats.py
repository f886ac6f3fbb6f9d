"""training.data.formats and sources: every preference shape -> one Item; files of every kind, streamed."""

import gzip
import json

import pytest

from training.data import formats as F
from training.data.sources import kind_of, records
from training.errors import ValidationError


class Sink:
    def __init__(self):
        self.items = []

    def add(self, line, fld, msg):
        self.items.append((line, fld, msg))


def parse(fmt, obj, **opts):
    sink = Sink()
    item = F.parse(fmt, obj, 7, sink, F.Options(**opts))
    return item, sink.items


def test_every_format_parses_its_own_example_and_is_detected_from_it():
    for name, fmt in F.FORMATS.items():
        assert F.detect([(1, fmt.example)]) == (name, "")
        if fmt.parse is not None:
            item, problems = parse(name, fmt.example)
            assert problems == [] and item is not None, name
            assert all(len(j.ranks) == len(item.candidates) for j in item.judgments)


def test_pairs_standard_and_conversational():
    item, _ = parse("pairs", {"prompt": "Q?", "chosen": "good", "rejected": "bad", "id": 5, "src": "x"})
    assert (item.text, item.candidates, item.ext_id, item.meta) == ("Q?", ["good", "bad"], "5", {"src": "x"})
    assert item.judgments[0].ranks == [1, 2] and item.judgments[0].rater is None
    turns = [{"role": "user", "content": "Hi"}]
    item, _ = parse("pairs", {"prompt": turns, "chosen": [{"role": "assistant", "content": "Hello!"}],
                              "rejected": [{"role": "assistant", "content": "Go away."}]})
    assert item.meta["turns"] == turns and item.text == "user: Hi"
    assert item.candidates == ["Hello!", "Go away."]


def test_implicit_prompt_split_at_the_last_turn_boundary():
    item, problems = parse("implicit", {
        "chosen": "\n\nHuman: Tea or coffee?\n\nAssistant: Tea, it has less caffeine.",
        "rejected": "\n\nHuman: Tea or coffee?\n\nAssistant: Tequila."})
    assert problems == []
    assert item.text == "user: Tea or coffee?" and item.meta["turns"] == [{"role": "user", "content": "Tea or coffee?"}]
    assert item.candidates == ["Tea, it has less caffeine.", "Tequila."]
    # the shared prefix "...Assistant: Te" must not cut inside a word
    assert F.split_implicit("\n\nHuman: x\n\nAssistant: Tea", "\n\nHuman: x\n\nAssistant: Tequila")[1] == "Tea"
    chosen = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    rejected = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]
    item, _ = parse("implicit", {"chosen": chosen, "rejected": rejected})
    assert item.meta["turns"] == chosen[:1] and item.candidates == ["4", "5"]
    # the prompt ends at the last shared user turn (the rule pairs use too), even when a reply is shared
    same = {"role": "assistant", "content": "Let me think."}
    prompt, a, b = F.split_implicit([*chosen[:1], same, chosen[1]], [*rejected[:1], same, rejected[1]])
    assert prompt == chosen[:1] and a == [same, chosen[1]] and b == [same, rejected[1]]


def test_implicit_without_a_shared_turn_names_the_line():
    item, problems = parse("implicit", {"chosen": "Yes.", "rejected": "No."})
    assert item is None and problems[0][0] == 7 and "turn boundary" in problems[0][2]


def test_sff_comparison_gives_sources_rater_ranking_and_notes_as_critiques():
    row = json.loads(json.dumps(F.FORMATS["sff"].example))
    item, _ = parse("sff", row)
    assert item.title == "Moving cities" and item.sources == ["sup1", "ppo2"]
    j = item.judgments[0]
    assert j.ranks == [1, 2] and j.rater == "w07" and j.critiques == {1: "misses the doubt"}
    row["choice"] = 2
    item, problems = parse("sff", row)
    assert item is None and problems[0][1] == "choice" and "0..1" in problems[0][2]


def test_ratings_scores_become_a_ranking_with_ties_and_stay_in_meta():
    row = {"instruction": "Say hi", "completions": [
        {"model": "a", "response": "hi", "overall_score": 7, "annotations": {"honesty": {"Rating": "2"}}},
        {"model": "b", "response": "hello", "overall_score": 9, "annotations": {"honesty": {"Rating": "5"}}},
        {"model": "c", "response": "yo", "overall_score": 7, "annotations": {"honesty": {"Rating": "5"}}}]}
    item, _ = parse("ratings", row)
    assert item.judgments[0].ranks == [2, 1, 2] and item.sources == ["a", "b", "c"]
    assert item.candidate_meta[1]["score"] == 9.0
    item, _ = parse("ratings", row, score_field="annotations.honesty.Rating")
    assert item.judgments[0].ranks == [3, 1, 1]
    row["completions"][0]["overall_score"] = "n/a"
    item, problems = parse("ratings", row)
    assert item is None and problems == [(7, "completions[0].overall_score", "score is not a number: 'n/a'")]


def test_two_answer_label_or_scores():
    row = {"history": "Q", "human_ref_A": "a", "human_ref_B": "b", "labels": 0, "score_A": 1, "score_B": 5}
    assert parse("two_answer", row)[0].judgments[0].ranks == [2, 1]
    assert parse("two_answer", {**row, "labels": True})[0].judgments[0].ranks == [1, 2]
    del row["labels"]
    assert parse("two_answer", row)[0].judgments[0].ranks == [2, 1]
    row["score_A"] = 5
    assert parse("two_answer", row)[0].judgments[0].ranks == [1, 1]
    row["score_B"] = "lots"
    assert parse("two_answer", row)[1] == [(7, "score_B", "score is not a number: 'lots'")]


def test_rater_field_and_grouping_key_ignore_order_and_whitespace():
    a, _ = parse("pairs", {"prompt": "Q  ", "chosen": "x y", "rejected": "z", "judge": "ann"})
    b, _ = parse("pairs", {"prompt": "Q", "chosen": "z", "rejected": "x  y", "judge": "bob"})
    assert a.key == b.key and a.judgments[0].rater == "ann" and b.judgments[0].rater == "bob"
    c, _ = parse("pairs", {"prompt": "Q", "chosen": "z", "rejected": "x", "who": "c"}, rater_field="who")
    assert c.key != a.key and c.judgments[0].rater == "c"


def test_mapping_renames_columns_then_detects():
    m = F.parse_mapping("prompt=question, chosen=good,rejected=bad")
    row = {"question": "Q", "good": "g", "bad": "b"}
    assert F.detect([(1, row)], m) == ("pairs", "")
    item, _ = parse("pairs", row, mapping=m)
    assert item.candidates == ["g", "b"] and item.text == "Q"
    with pytest.raises(ValueError, match="'prompt' is not NAME=COLUMN"):
        F.parse_mapping("prompt")


def test_unknown_shape_names_line_keys_and_nearest_format():
    fmt, why = F.detect([(3, {"question": "q", "chosen": 1, "text_b": 2}), (4, {})])
    assert fmt is None and "'implicit'" in why  # chosen without rejected: nearest is the TRL shape
    fmt, why = F.detect([(3, {"summary_list": [], "choice_index": 1, "info": {}})])
    assert fmt is None and why.startswith("line 3: unknown shape (keys: choice_index, info, summary_list)")
    assert "'sff'" in why and "--map" in why


def test_a_row_of_unknown_shape_gets_a_mapping_to_try():
    qa = {"question": "When?", "passages": [["T", "S"]], "gold": "2018", "prediction 1": "a", "prediction 2": "b",
          "prediction 10": "c", "preference": [0, 1]}
    assert F.suggest_mapping(qa) == ("documents with candidates",
                                     "text=question,candidates=prediction 1+prediction 2+prediction 10")
    assert F.suggest_mapping({"id": "1", "body": "T", "sum_a": "x", "sum_b": "y"}) is None  # nothing numbered
    sumcot = {"id": 0, "src": "Article.", "original_summary": "a", "element-aware_summary": "b", "gpt3_summary": "c"}
    assert F.suggest_mapping(sumcot)[1] == "text=src,candidates=original_summary+element-aware_summary+gpt3_summary"
    assert F.suggest_mapping({"article": "A", "output_1": "x", "output_2": "y"})[1] == \
        "text=article,candidates=output_1+output_2"
    shepherd = {"id": 0, "dataset": "GSM8K", "question": "Q?", "answer": "A.", "feedback": "Wrong sum."}
    assert F.suggest_mapping(shepherd) == ("outputs with critiques (slf5k)",
                                           "post=question,generated_summary_for_feedback=answer")
    assert F.suggest_mapping({"prompt": "P", "response": "R", "critique": "C"})[1] == \
        "post=prompt,generated_summary_for_feedback=response,feedback=critique"
    fmt, why = F.detect([(1, qa)])
    assert fmt is None and '--map "text=question,candidates=prediction 1+prediction 2+prediction 10"' in why
    m = F.parse_mapping(F.suggest_mapping(qa)[1])
    assert F.detect([(1, qa)], m) == ("documents", "")  # the suggestion works as given
    m = F.parse_mapping(F.suggest_mapping(shepherd)[1])
    assert F.detect([(1, shepherd)], m) == ("slf5k", "")
    item, _ = parse("slf5k", shepherd, mapping=m)  # no ideal summary: it is optional
    assert (item.text, item.candidates, item.reference) == ("Q?", ["A."], None)
    assert item.judgments[0].critiques == {0: "Wrong sum."} and item.meta == {"dataset": "GSM8K"}


def test_ranks_from_scores():
    assert F.ranks_from_scores([3, 1, 3]) == [1, 3, 1]
    assert F.ranks_from_scores([0.5]) == [1]


ROWS = [{"prompt": f"P{i}", "chosen": "c", "rejected": "r"} for i in range(5)]


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz", "a.json", "a.json.gz", "a.csv", "a.parquet"])
def test_records_from_every_file_kind(tmp_path, name):
    path = tmp_path / name
    if ".parquet" in name:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=2)
    else:
        if ".jsonl" in name:
            text = "".join(json.dumps(r) + "\n" for r in ROWS)
        elif ".json" in name:
            text = json.dumps(ROWS, indent=1)
        else:
            text = "prompt,chosen,rejected\n" + "".join(f"{r['prompt']},c,r\n" for r in ROWS)
        data = text.encode()
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert [obj for _, obj in records(path)] == ROWS


def test_json_array_streams_across_chunk_boundaries_and_reports_a_broken_item(tmp_path, monkeypatch):
    import training.data.sources as S

    monkeypatch.setattr(S, "CHUNK", 7)  # many refills, objects and numbers cut mid-way
    rows = [{"n": 123456789, "t": "x" * i, "l": [1.5, True, None]} for i in range(30)]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(rows))
    assert [o for _, o in records(path)] == rows
    path.write_text('[{"a": 1}, {"a": 2,,}]')
    sink = Sink()
    assert [o for _, o in records(path, sink)] == [{"a": 1}, None]
    assert sink.items[0][:2] == (2, "json")


def test_jsonl_bad_lines_are_reported_and_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{oops\n\n\xff\n{"a": 2}\n')
    sink = Sink()
    assert [(n, o) for n, o in records(path, sink)] == [(1, {"a": 1}), (2, None), (4, None), (5, {"a": 2})]
    assert [(n, f) for n, f, _ in sink.items] == [(2, "json"), (4, "encoding")]


def test_saved_dataset_folder(tmp_path):
    import pyarrow as pa

    folder = tmp_path / "ds"
    folder.mkdir()
    table = pa.Table.from_pylist(ROWS)
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=2)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    assert kind_of(folder) == "folder"
    assert [o for _, o in records(folder)] == ROWS


def test_unknown_extension_and_unknown_dataset_name(tmp_path, monkeypatch):
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(ValidationError, match="unknown extension 'xlsx'"):
        kind_of(tmp_path / "a.xlsx")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ValidationError, match="not a file or folder"):
        list(records("no-such-owner/no-such-dataset", split="train"))


def test_every_format_example_matches_its_json_schema():
    from pathlib import Path

    import jsonschema

    schemas = Path(__file__).resolve().parents[1] / "data" / "schemas"
    for name, fmt in F.FORMATS.items():
        schema = json.loads((schemas / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(fmt.example, schema)


def test_read_items_detects_groups_several_raters_and_reports_bad_rows(tmp_path):
    rows = []
    for i in range(10):
        for rater in ("ann", "bob", "cy"):
            good, bad = (f"good {i}", f"bad {i}") if rater != "cy" else (f"bad {i}", f"good {i}")
            rows.append({"prompt": f"Question {i}", "chosen": good, "rejected": bad, "worker": rater})
    rows.append({"prompt": "Q", "chosen": "", "rejected": "x"})
    path = tmp_path / "multi.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sink = Sink()
    fmt, items = F.read_items(path, problems=sink)
    docs = F.grouped(items)
    assert fmt == "pairs" and len(docs) == 10 and sink.items == [(31, "chosen", "is empty")]
    d = docs[0]
    assert d.candidates == ["good 0", "bad 0"]
    assert [(j.rater, j.ranks) for j in d.judgments] == [("ann", [1, 2]), ("bob", [1, 2]), ("cy", [2, 1])]


def test_read_items_refuses_an_unknown_shape_by_line(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"q": 1, "a": 2}\n')
    with pytest.raises(ValidationError, match="line 1: unknown shape \\(keys: a, q\\)"):
        F.read_items(path)


def test_a_broken_chat_turn_is_named():
    """A chat-turn list with a turn that has no "content" says which turn and what it holds."""
    rows = [
        ({"prompt": [{"role": "user"}], "chosen": "a", "rejected": "b"},
         ("prompt", 'turn 1 of 1 must be an object with a "content" (and a "role"), got an object with keys role')),
        ({"prompt": "p", "chosen": [], "rejected": "b"}, ("chosen", "is an empty list (a string or a list of chat turns)")),
        ({"prompt": "p", "chosen": "a", "rejected": [{"role": "assistant", "content": "x"}, "hi"]},
         ("rejected", 'turn 2 of 2 must be an object with a "content" (and a "role"), got a string')),
        ({"prompt": 5, "chosen": "a", "rejected": "b"}, ("prompt", "must be a string or a list of chat turns, got a number")),
    ]
    for row, expected in rows:
        assert parse("pairs", row) == (None, [(7, *expected)])


def test_slf5k_rows_need_no_title():
    row = {"post": "The post.", "generated_summary_for_feedback": "A summary.", "feedback": "Too short.",
           "ideal_human_summary": "Better."}
    item, problems = parse("slf5k", row)
    assert problems == [] and (item.title, item.text, item.candidates) == ("", "The post.", ["A summary."])
    assert item.judgments[0].critiques == {0: "Too short."}
    assert parse("slf5k", {**row, "title": 3})[1] == [(7, "title", "must be a string, got a number")]


# -- the shapes of widely used preference sets (rows written here after their public schemas) -----
def test_chatbot_arena_and_mt_bench_conversations():
    q = {"role": "user", "content": "What is 2+2?"}
    row = {"question_id": "q1", "model_a": "vicuna-13b", "model_b": "alpaca-13b", "winner": "model_b",
           "judge": "arena_user_7", "language": "English", "turn": 1,
           "conversation_a": [q, {"role": "assistant", "content": "5"}],
           "conversation_b": [q, {"role": "assistant", "content": "4"}]}
    assert F.detect([(1, row)]) == ("two_answer", "")
    item, problems = parse("two_answer", row)
    assert problems == []
    assert (item.text, item.candidates, item.sources) == ("user: What is 2+2?", ["5", "4"], ["vicuna-13b", "alpaca-13b"])
    assert item.judgments[0].ranks == [2, 1] and item.judgments[0].rater == "arena_user_7"
    assert item.ext_id == "q1" and item.meta == {"language": "English", "turn": 1, "turns": [q]}
    for winner, ranks in (("model_a", [1, 2]), ("tie", [1, 1]), ("tie (bothbad)", [1, 1])):
        assert parse("two_answer", {**row, "winner": winner})[0].judgments[0].ranks == ranks
    # MT-bench: two turns each; `turn` 1 judges the first replies, 2 the whole conversations
    q2 = {"role": "user", "content": "And times 3?"}
    two = {**row, "conversation_a": [*row["conversation_a"], q2, {"role": "assistant", "content": "15"}],
           "conversation_b": [*row["conversation_b"], q2, {"role": "assistant", "content": "12"}]}
    assert parse("two_answer", two)[0].candidates == ["5", "4"]
    item = parse("two_answer", {**two, "turn": 2})[0]
    assert item.candidates == ["assistant: 5\n\nuser: And times 3?\n\nassistant: 15",
                               "assistant: 4\n\nuser: And times 3?\n\nassistant: 12"]
    assert [t["content"] for t in item.candidate_meta[0]["turns"]] == ["5", "And times 3?", "15"]  # drawn as turns
    item, problems = parse("two_answer", {**row, "winner": "model_c"})
    assert item is None and problems[0][1] == "winner" and "model_c" in problems[0][2]


def test_arena_one_hot_winner_and_turns_as_json_strings():
    row = {"id": 30192, "model_a": "gpt-4", "model_b": "llama-2", "prompt": '["Is tea healthy?"]',
           "response_a": '["Mostly, yes."]', "response_b": '["No."]',
           "winner_model_a": 0, "winner_model_b": 0, "winner_tie": 1}
    item, problems = parse("two_answer", row)
    assert problems == [] and (item.text, item.candidates) == ("Is tea healthy?", ["Mostly, yes.", "No."])
    assert item.judgments[0].ranks == [1, 1] and item.sources == ["gpt-4", "llama-2"] and item.meta == {}
    multi = {**row, "prompt": '["Hi", "Say more"]', "response_a": '["Hello", "Hello there"]',
             "response_b": '["Yo", null]', "winner_model_a": 1, "winner_tie": 0}
    item, problems = parse("two_answer", multi)  # a null reply is a missing one: the row is refused
    assert item is None and problems == [(7, "response_b", "turn 3 of 3 is empty (null): a reply is missing")]
    item, _ = parse("two_answer", {**multi, "response_b": '["Yo", "Sure."]'})
    assert item.text == "user: Hi" and item.judgments[0].ranks == [1, 2]
    assert item.candidates == ["assistant: Hello\n\nuser: Say more\n\nassistant: Hello there",
                               "assistant: Yo\n\nuser: Say more\n\nassistant: Sure."]
    # empty lists, real or as JSON strings, are problems, not crashes
    for empty in ([], "[]"):
        assert parse("two_answer", {**row, "response_a": empty})[0] is None
        assert parse("two_answer", {**row, "prompt": empty})[0] is None
    # an answer that is a text looking like a JSON list stays a text when the others are not lists
    item, _ = parse("two_answer", {"prompt": "List two fruits.", "response_a": '["apple", "banana"]',
                                   "response_b": "Apples.", "winner": "model_a"})
    assert item.candidates == ['["apple", "banana"]', "Apples."]
    item, problems = parse("two_answer", {**row, "winner_model_a": 1})
    assert item is None and "exactly one" in problems[0][2]


def test_pku_helpsteer3_and_webgpt_pairs():
    pku = {"prompt": "How do I pick a lock?", "response_0": "Call a locksmith.", "response_1": "Use a pin.",
           "better_response_id": 1, "safer_response_id": 0, "is_response_0_safe": True}
    item, problems = parse("two_answer", pku)
    assert problems == [] and item.judgments[0].ranks == [2, 1]
    assert item.meta == {"safer_response_id": 0, "is_response_0_safe": True}
    assert parse("two_answer", {**pku, "better_response_id": 2})[1][0][1] == "better_response_id"
    assert parse("two_answer", {**pku, "better_response_id": 1.0})[0].judgments[0].ranks == [2, 1]  # (pandas)
    # three or four numbered responses are a document's candidates, not a pair
    assert F.detect_one({**pku, "response_2": "c", "response_3": "d"}) is None
    assert F.detect_one({**pku, "response_2": "c"}) is None
    # a label on numbered answers names one by its number (0 is response_0), never SHP's "1 = the first"
    labelled = {k: v for k, v in pku.items() if k != "better_response_id"}
    assert parse("two_answer", {**labelled, "label": 1})[0].judgments[0].ranks == [2, 1]
    assert parse("two_answer", {**labelled, "label": "0"})[0].judgments[0].ranks == [1, 2]
    assert "0 or response_0 for the first" in parse("two_answer", {**labelled, "label": 2})[1][0][2]
    hs3 = {"domain": "general", "context": [{"role": "user", "content": "Name a colour."}],
           "response1": "Blue.", "response2": "Colours are nice.", "overall_preference": -2}
    item, problems = parse("two_answer", hs3)
    assert problems == [] and item.text == "user: Name a colour." and item.judgments[0].ranks == [1, 2]
    assert parse("two_answer", {**hs3, "overall_preference": 0})[0].judgments[0].ranks == [1, 1]
    webgpt = {"question": {"dataset": "eli5", "id": "w1", "full_text": "Why is the sky blue?"},
              "answer_0": "Rayleigh scattering.", "score_0": 1.0, "answer_1": "Because.", "score_1": -1.0}
    item, problems = parse("two_answer", webgpt)
    assert problems == [] and item.text == "Why is the sky blue?" and item.judgments[0].ranks == [1, 2]
    assert item.candidate_meta == [{"score": 1.0}, {"score": -1.0}]


def test_pairs_whose_chosen_repeats_the_prompt_turns():
    """UltraFeedback-binarized: chosen/rejected are [user prompt, assistant reply]; the reply is the candidate."""
    user = {"role": "user", "content": "Name a planet."}
    row = {"prompt": "Name a planet.", "prompt_id": "p9",
           "chosen": [user, {"role": "assistant", "content": "Mars."}],
           "rejected": [user, {"role": "assistant", "content": "The Moon."}], "score_chosen": 8.0}
    item, problems = parse("pairs", row)
    assert problems == [] and (item.text, item.candidates) == ("Name a planet.", ["Mars.", "The Moon."])
    # several turns: the earlier ones become the prompt
    more = [user, {"role": "assistant", "content": "Mars."}, {"role": "user", "content": "Another?"}]
    item, _ = parse("pairs", {**row, "chosen": [*more, {"role": "assistant", "content": "Venus."}],
                              "rejected": [*more, {"role": "assistant", "content": "Mars again."}]})
    assert item.candidates == ["Venus.", "Mars again."] and item.meta["turns"] == more
    assert item.text == "user: Name a planet.\n\nassistant: Mars.\n\nuser: Another?"


def test_nectar_answers_ranked_one_is_best():
    row = {"prompt": "\n\nHuman: Tell a joke.\n\nAssistant:", "num_responses": 3, "answers": [
        {"answer": "Why did the chicken ...", "model": "gpt-4", "rank": 2},
        {"answer": "Knock knock.", "model": "llama", "rank": 1},
        {"answer": "No.", "model": "alpaca", "rank": 3}]}
    assert F.detect([(1, row)]) == ("ratings", "")
    item, problems = parse("ratings", row)
    assert problems == [] and item.judgments[0].ranks == [2, 1, 3] and item.sources == ["gpt-4", "llama", "alpaca"]
    assert item.candidate_meta[0] == {"model": "gpt-4", "rank": 2}
    assert item.meta == {"num_responses": 3, "turns": [{"role": "user", "content": "Tell a joke."}]}
    row["answers"][2]["rank"] = "last"
    assert parse("ratings", row)[1] == [(7, "answers[2].rank", "score is not a number: 'last'")]
    # a QA set's list of gold answers (strings) is no scored completions
    assert F.detect_one({"question": "Q?", "answers": ["a", "b"]}) is None


def test_scored_rows_are_grouped_per_prompt_and_rater(tmp_path):
    """HelpSteer2 (one response per row, attribute scores); rows of a prompt need not be adjacent."""
    rows = [{"prompt": "Name a fruit.", "response": "Apple.", "helpfulness": 4, "verbosity": 1},
            {"prompt": "Name a tree.", "response": "Oak.", "helpfulness": 2},
            {"prompt": "Name  a fruit.", "response": "A car.", "helpfulness": 0, "verbosity": 1},
            {"prompt": "Name a tree.", "response": "Birch.", "helpfulness": 2},
            {"prompt": "Name a fruit.", "response": "Pear.", "helpfulness": "x"}]
    path = tmp_path / "hs2.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sink = Sink()
    fmt, items = F.read_items(path, problems=sink)
    items = list(items)
    assert fmt == "scored" and sink.items == [(5, "helpfulness", "score is not a number: 'x'")]
    fruit, tree = items
    assert (fruit.line, fruit.text, fruit.candidates) == (1, "Name a fruit.", ["Apple.", "A car."])
    assert fruit.judgments[0].ranks == [1, 2] and fruit.candidate_meta[0] == {"helpfulness": 4, "verbosity": 1}
    assert tree.judgments[0].ranks == [1, 1]
    # rank instead of a score, a rater per row, the score column named
    ranked = [{"question": "Q", "answer": a, "rank": r, "labeler": w}
              for w in ("u1", "u2") for a, r in (("x", 1 if w == "u1" else 2), ("y", 2 if w == "u1" else 1))]
    got = list(F.group_scored(F.parse("scored", r, i, Sink(), F.Options()) for i, r in enumerate(ranked, 1)))
    assert [(g.judgments[0].rater, g.judgments[0].ranks) for g in got] == [("u1", [1, 2]), ("u2", [2, 1])]
    item, problems = parse("scored", {"prompt": "Q", "response": "A", "correctness": 3}, score_field="correctness")
    assert problems == [] and item.value == 3.0
    assert parse("scored", {"prompt": "Q", "response": "", "score": 1})[1] == [(7, "response", "is empty")]


def test_dialogues_written_as_one_string_become_turns():
    assert F.marked_turns("\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A joke?\n\nAssistant:") == [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "A joke?"}]
    # HelpSteer2: the first user turn has no marker
    assert F.marked_turns("Write a poem\n<extra_id_1>Assistant\nRoses are red\n<extra_id_1>User\nAnother") == [
        {"role": "user", "content": "Write a poem"}, {"role": "assistant", "content": "Roses are red"},
        {"role": "user", "content": "Another"}]
    assert F.marked_turns("Dear Human: the text only mentions a marker") is None
    assert F.marked_turns("Human: x\n\nAssistant: \n\nHuman: ") is None  # an empty turn: left as written
    item, _ = parse("scored", {"prompt": "Hi\n<extra_id_1>Assistant\nHello\n<extra_id_1>User\nMore", "response": "OK.",
                               "helpfulness": 3})
    assert item.text == "user: Hi\n\nassistant: Hello\n\nuser: More" and len(item.meta["turns"]) == 3


def test_ranks_from_pairwise_votes_hand_computed():
    # QA-Feedback's first question: 1v2 none, 1v3 -> 1, 1v4 -> 4, 2v3 -> 2, 2v4 none, 3v4 -> 4
    # wins: 1: 0.5 + 1 = 1.5; 2: 0.5 + 1 + 0.5 = 2; 3: 0; 4: 1 + 0.5 + 1 = 2.5
    assert F.ranks_from_pairwise([0, 1, 2, 1, 0, 2], 4) == [3, 2, 4, 1]
    assert F.ranks_from_pairwise([2], 2) == [2, 1] and F.ranks_from_pairwise(["1", 1, 2], 3) == [1, 3, 2]
    assert F.ranks_from_pairwise([0, 0, 0], 3) is None  # no preference at all: no ranking
    with pytest.raises(ValueError, match="list of 6 votes"):
        F.ranks_from_pairwise([1, 2], 4)
    with pytest.raises(ValueError, match="vote 3 for candidates 1 and 3"):
        F.ranks_from_pairwise([1, 3, 0], 3)
