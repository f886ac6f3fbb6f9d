"""SFT on ILF datasets: completion-only loss, held-out loss, checkpoint + card, registration,
and the whole ILF loop end to end with a tiny model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from training.cli import main
from training.errors import NotFound, ValidationError
from training.ilf.config import RefineConfig, SelectConfig
from training.ilf.dataset import build_dataset
from training.ilf.finetune import CARD, encode_row, finetune, read_rows, weighted_token_loss
from training.ilf.finetune_config import FinetuneConfig
from training.ilf.refine import refine
from training.ilf.select import select
from training.lm import load_lm, load_tokenizer
from training.store import NewDocument


def test_weighted_token_loss_hand_computed():
    logits = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0]]])  # p(0)=3/4 at t0; 1/2 at t1
    targets = torch.tensor([[0, 1]])
    s, w = weighted_token_loss(logits, targets, torch.tensor([[1.0, 0.0]]))
    assert (s.item(), w.item()) == (pytest.approx(-math.log(0.75)), 1.0)
    s, w = weighted_token_loss(logits, targets, torch.tensor([[1.0, 2.0]]))
    assert s.item() == pytest.approx(-math.log(0.75) + 2 * math.log(2)) and w.item() == 3.0


def test_encode_row_weights_only_the_completion(tiny_causal):
    tok = load_tokenizer(tiny_causal)
    e = encode_row(tok, "Title: a\nText: b\nOutput:", " The river rose.", 64, seq2seq=False)
    n_prompt = len(tok("Title: a\nText: b\nOutput:", add_special_tokens=False)["input_ids"])
    n_comp = len(tok(" The river rose.", add_special_tokens=False)["input_ids"]) + 1  # + eos
    assert len(e["input_ids"]) == len(e["weights"]) == n_prompt + n_comp
    assert e["weights"] == [0.0] * n_prompt + [1.0] * n_comp
    e = encode_row(tok, "Title: a\nText: b\nOutput:", " The river rose.", 64, seq2seq=False, prompt_loss_weight=0.1)
    assert e["weights"][1:n_prompt] == [0.1] * (n_prompt - 1) and e["weights"][0] == 0.0
    long = encode_row(tok, "word " * 200, " The river rose.", 32, seq2seq=False)
    assert len(long["input_ids"]) == 32 and long["truncated"] and sum(long["weights"]) == n_comp


def _rows(n=24):
    colours = ["red", "blue", "green", "gold"]
    return [{"prompt": f"Title: item {i}\n\nText: The {colours[i % 4]} river rose.\n\nOutput:",
             "completion": f" The {colours[i % 4]} river rose after the rain.", "critique_id": i}
            for i in range(n)]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


class Steps:
    def __init__(self):
        self.seen = []

    def step(self, step, total, **m):
        self.seen.append((step, total, m))

    def log(self, msg):
        pass


def test_finetune_lowers_held_out_loss_and_registers(store, tiny_causal, tmp_path):
    store.create_project("p", k=2)
    data = _write(tmp_path / "d.jsonl", _rows())
    cfg = FinetuneConfig(file=str(data), base=str(tiny_causal), out=str(tmp_path / "ckpt"), epochs=4,
                         lr=3e-3, batch_size=4, eval_fraction=0.2, max_length=64)
    steps = Steps()
    out = finetune(cfg, progress=steps, store=store, project="p")
    m = out["metrics"]
    assert m["eval_loss"] < m["eval_loss_start"] - 0.5
    assert m["rows_eval"] == 5 and m["rows_train"] == 19 and m["steps"] == 20
    assert [s[0] for s in steps.seen] == list(range(1, 21)) and all("loss" in s[2] and "ppl" in s[2]
                                                                    for s in steps.seen)
    assert "eval_loss" in steps.seen[-1][2]
    card = json.loads((tmp_path / "ckpt" / CARD).read_text())
    assert card["base_model"] == str(tiny_causal) and len(card["data_sha256"]) == 64
    assert card["critique_ids"] == list(range(24)) and card["config"]["lr"] == 3e-3
    rec = store.get_model(out["model_id"])
    assert rec.kind == "ilf" and rec.path == str(tmp_path / "ckpt") and rec.data_snapshot["sha256"] == card["data_sha256"]
    assert load_lm(tmp_path / "ckpt").model.config.vocab_size == load_lm(tiny_causal).model.config.vocab_size


def test_finetune_seq2seq_parquet(tiny_seq2seq, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(_rows(12)), tmp_path / "d.parquet")
    cfg = FinetuneConfig(file=str(tmp_path / "d.parquet"), base=str(tiny_seq2seq), out=str(tmp_path / "s2s"),
                         epochs=3, lr=3e-3, batch_size=4, eval_fraction=0.25)
    m = finetune(cfg)["metrics"]
    assert m["eval_loss"] < m["eval_loss_start"]
    assert (tmp_path / "s2s" / "config.json").exists()


def test_finetune_bad_input(tmp_path, tiny_causal):
    with pytest.raises(NotFound, match="does not exist"):
        finetune(FinetuneConfig(file=str(tmp_path / "nope.jsonl"), base=str(tiny_causal), out=str(tmp_path / "o")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    with pytest.raises(ValidationError, match="row 1: field 'completion'"):
        read_rows(bad)
    data = _write(tmp_path / "d.jsonl", _rows(4))
    with pytest.raises(NotFound, match="model path"):
        finetune(FinetuneConfig(file=str(data), base=str(tmp_path / "no-model"), out=str(tmp_path / "o")))


def test_ilf_end_to_end_with_tiny_model(store, tiny_causal, tmp_path, capsys):
    """critiques -> refine -> select -> review -> dataset -> finetuned checkpoint (store + CLI)."""
    store.create_project("demo", kind="summarize", k=2)
    store.add_documents("demo", [
        NewDocument(f"d{i}", f"The {c} river rose {i} metres after three days of rain.",
                    [f"The {c} river rose.", "It rained."], title=f"Report {i}")
        for i, c in enumerate(["red", "blue", "green", "gold", "grey", "brown"])
    ])
    ann, _ = store.add_annotator("ann")
    for d in store.documents("demo"):
        store.save_critique(ann, d.candidates[0].id, "Say how many metres and why.")
    lm = load_lm(tiny_causal)
    assert refine(store, "demo", RefineConfig(n=3, max_new_tokens=12, batch_size=6), lm=lm)["critiques"] == 6
    sel = select(store, "demo", SelectConfig(selector="instructrm", batch_size=8), lm=lm)
    assert len(sel["selected"]) == 6
    items = store.critique_items("demo", annotator=ann)
    store.accept_refinement(ann, items[0].selected.id)
    store.accept_refinement(ann, next(r for r in items[1].refinements if not r.selected).id)
    store.edit_refinement(ann, items[2].critique.id, "The red river rose 2 metres after rain.")
    assert len(build_dataset(store, "demo", include="accepted")) == 3
    # the rest of the way through the CLI, on the same database file
    out = tmp_path / "ilf.jsonl"
    assert main(["ilf", "build", "--db", store.path, "--project", "demo", "--include", "selected",
                 "--out", str(out)]) == 0
    rows = read_rows(out)
    assert len(rows) == 6 and rows[2]["completion"] == " The red river rose 2 metres after rain."
    assert main(["train", "sft", "--file", str(out), "--base", str(tiny_causal), "--out", str(tmp_path / "ilf-ckpt"),
                 "--lr", "1e-3", "--batch-size", "2", "--eval-fraction", "0.2", "--db", store.path,
                 "--project", "demo"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["metrics"]["steps"] == 3 and res["model_id"] is not None
    card = json.loads((tmp_path / "ilf-ckpt" / CARD).read_text())
    assert card["critique_ids"] == sorted(i.critique.id for i in store.critique_items("demo"))


def test_finetune_through_accelerate_single_process(tiny_causal, tmp_path):
    data = _write(tmp_path / "d.jsonl", _rows(12))
    cfg = FinetuneConfig(file=str(data), base=str(tiny_causal), out=str(tmp_path / "acc"), epochs=2, lr=3e-3,
                         batch_size=4, eval_fraction=0.25, max_length=64, accelerate=True, device="cpu")
    out = finetune(cfg)
    assert out["metrics"]["processes"] == 1 and out["metrics"]["eval_loss"] < out["metrics"]["eval_loss_start"]
    assert (tmp_path / "acc" / "config.json").exists() and (tmp_path / "acc" / CARD).exists()
