"""The Rewards page through Streamlit's AppTest, over cached token rewards in a temp database."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from apptest import open_page
from streamlit.testing.v1 import AppTest

from training.annotation.drafts import display_order, labels
from training.store import NewDocument, Store

PAGE = Path(__file__).resolve().parents[1] / "annotate_app" / "app_pages" / "rewards.py"


@pytest.fixture
def rewards_db(db_path, monkeypatch):
    monkeypatch.setenv("TOKENWISE_DB", db_path)
    with Store(db_path) as s:
        admin, _ = s.add_annotator("root", role="admin")
        ann, _ = s.add_annotator("ann")
        s.create_project("news", kind="summarize", k=2)
        s.add_documents("news", [NewDocument("d1", "The river rose.", ["a <script>x</script> b", "plain & simple"],
                                             title="River")])
        doc = s.documents("news")[0]
        s.save_ranking(ann, doc.id, {doc.candidates[0].id: 2, doc.candidates[1].id: 1})
    return db_path, admin, ann


def run(annotator_id: int) -> AppTest:
    return open_page("rewards", annotator_id)


def htmls(at: AppTest) -> list[str]:
    return [e.proto.body for e in at.get("html")]


def score(db_path) -> int:
    with Store(db_path) as s:
        m = s.add_model("reward", "/models/rm", base_model="tiny", project="news",
                        card={"aggregation": "avg", "arch": "causal", "base_model": "tiny"}, metrics=TESTED)
        c0, c1 = s.documents("news")[0].candidates
        s.put_token_rewards(m.id, [
            (c0.id, ["a", " <script>x</script>", " b"], [0.2, 0.9, 0.4], 1.5),
            (c1.id, ["plain", " &", " simple"], [0.6, 0.55, 0.7], 1.85),
        ])
        s.update_project("news", active_reward_model=m.id)
    return m.id


def test_empty_state_before_scoring(rewards_db):
    _, admin, _ = rewards_db
    at = run(admin.id)
    assert not at.exception
    assert any("No reward model has scored this project yet" in i.value and "tokenwise score" in i.value
               for i in at.info)


def test_admin_sees_escaped_heatmaps_scores_and_ranks(rewards_db):
    db_path, admin, _ = rewards_db
    score(db_path)
    at = run(admin.id)
    assert not at.exception
    bodies = htmls(at)
    spans = [b for b in bodies if "tw-heatmap" in b]
    assert len(spans) == 2
    # highest score first; tokens escaped, hover values exact
    assert "plain" in spans[0] and "&lt;script&gt;x&lt;/script&gt;" in spans[1]
    assert "<script>" not in "".join(bodies)
    assert 'title="0.9000"' in spans[1]
    # the scale is centred on the mean token reward (0.225 + ... ) / 6 = 0.5583, its legend prints it
    legend = next(b for b in bodies if "tw-legend" in b)
    assert "white = 0.56" in legend
    df = at.dataframe[0].value
    with Store(db_path) as s:
        doc = s.documents("news")[0]
    names = {c.id: str(i + 1) for i, c in enumerate(doc.candidates)}  # an admin's: as on the Data page
    assert list(df["candidate"]) == ["2", "1"]
    assert list(df["score"]) == [1.85, 1.5] and list(df["rank by ann"]) == [1, 2]
    assert list(df["model rank"]) == [1, 2]
    assert list(df["P(best) by the model"]) == [round(100 / (1 + math.exp(-0.35)), 1),
                                                 round(100 / (1 + math.exp(0.35)), 1)]
    assert any("Backbone: causal (prefix reward)" in c.value for c in at.caption)
    assert any(f"Candidate {names[doc.candidates[1].id]}** · model rank 1 · P(best) 58.7%" in m.value
               for m in at.markdown)
    assert len(at.get("plotly_chart")) == 1


def test_annotators_see_it_only_when_the_project_shows_rewards(rewards_db):
    db_path, _, ann = rewards_db
    score(db_path)
    at = run(ann.id)
    assert not at.exception
    assert any("No project shows rewards" in i.value for i in at.info)
    assert not [b for b in htmls(at) if "tw-heatmap" in b]
    with Store(db_path) as s:
        s.update_project("news", show_rewards=True)
    at = run(ann.id)
    assert not at.exception
    assert len([b for b in htmls(at) if "tw-heatmap" in b]) == 2
    assert list(at.dataframe[0].value["rank by you"]) == [1, 2]
    with Store(db_path) as s:
        doc = s.documents("news")[0]
    mine = labels(display_order(ann.id, doc.id, [c.id for c in doc.candidates]))  # their Annotate page's letters
    assert list(at.dataframe[0].value["candidate"]) == [mine[doc.candidates[1].id], mine[doc.candidates[0].id]]


def test_the_backbone_caption_is_text_and_annotators_see_no_server_path(rewards_db):
    """A model's base is data (a path or a name someone typed): shown escaped, and to annotators
    by its last part only."""
    db_path, admin, ann = rewards_db
    img = "![x](http://127.0.0.1:9/leak.png)"
    with Store(db_path) as s:
        m = s.get_model(score(db_path))
        s.db["models"].update(m.id, {"base_model": f"/srv/private/{img}"})
        s.update_project("news", show_rewards=True)
    for who, shows_path in ((admin.id, True), (ann.id, False)):
        at = run(who)
        [caption] = [c.value for c in at.caption if c.value.startswith("Backbone")]
        assert "![" not in caption and "](http" not in caption, caption
        assert ("/srv/private" in caption) is shows_path, caption


def test_page_needs_sign_in(rewards_db):
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert any("sign in" in w.value for w in at.warning)
    assert not at.get("html")


def test_page_does_not_import_torch(rewards_db):
    import subprocess
    import sys

    db_path, admin, _ = rewards_db
    score(db_path)
    with Store(db_path) as s:
        prefix = s.get_annotator(admin.id).token_prefix  # what signing in leaves in the session
    code = (
        "import sys\nfrom streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(PAGE)!r}, default_timeout=60)\n"
        f"at.session_state['annotator_id'] = {admin.id}\nat.session_state['token_prefix'] = {prefix!r}\n"
        "at.run()\n"
        "assert not at.exception, at.exception\n"
        "assert len(at.get('html')) >= 2\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                         env={**__import__("os").environ, "TOKENWISE_DB": db_path})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


TESTED = {"test_pairwise_accuracy": 0.642, "test_ci_low": 0.601, "test_ci_high": 0.681, "test_pairs": 540,
          "test_lists": 540, "test_longer_wins": 0.55, "test_shorter_wins": 0.45, "above_length_baseline": 0.092,
          "train_lists": 1500, "val_lists": 500, "small_data": False, "val_pairwise_accuracy": 0.7}
SMALL = {"train_lists": 16, "val_lists": 4, "test_lists": 0, "small_data": True, "val_pairwise_accuracy": 1.0}


def test_models_and_overview_headline_the_test_figure_or_warn(rewards_db):
    db_path, admin, _ = rewards_db
    with Store(db_path) as s:
        big = s.add_model("reward", "/m/big", project="news", name="big", metrics=TESTED)
    at = open_page("overview", admin.id)
    assert not at.exception
    metrics = {m.label: m for m in at.metric}
    assert metrics[f"Latest reward model #{big.id}"].value == "0.642"
    assert metrics["95% interval (test)"].value == "0.601-0.681"
    with Store(db_path) as s:
        small = s.add_model("reward", "/m/small", project="news", name="small", metrics=SMALL)
    at = open_page("overview", admin.id)  # the latest is now the small-data one
    assert {m.label: m.value for m in at.metric}[f"Latest reward model #{small.id}"] == "small data"
    assert any("SMALL DATA" in w.value for w in at.warning)

    at = open_page("models", admin.id)  # newest (small) first
    assert not at.exception
    assert any("SMALL DATA: learned from only 20 ranked lists" in w.value for w in at.warning)
    table = at.dataframe[0].value.set_index("id")
    assert bool(table.loc[small.id, "small data"]) and not bool(table.loc[big.id, "small data"])
    assert table.loc[big.id, "test_pairwise_accuracy"] == 0.642
    at = at.selectbox(key="model_detail").set_value(big.id).run()
    assert any("test pairwise accuracy 0.642 (95% CI 0.601-0.681, n=540 pairs" in i.value
               and "+9.2 points vs the better length baseline" in i.value for i in at.info)
