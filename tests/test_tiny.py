"""training/tiny.py: tiny offline models load with the Auto classes and generate."""

import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from training.cli import main


def test_tiny_causal_loads_and_generates(tiny_causal):
    tok = AutoTokenizer.from_pretrained(tiny_causal)
    model = AutoModelForCausalLM.from_pretrained(tiny_causal)
    assert tok.pad_token_id is not None and tok.eos_token_id is not None and tok.bos_token_id is not None
    assert len(tok) == model.config.vocab_size
    text = "The committee met on Tuesday."
    ids = tok(text, return_tensors="pt").input_ids
    assert tok.decode(ids[0]) == text  # byte-level BPE round-trips exactly
    out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape == (1, ids.shape[1] + 4)


def test_tiny_seq2seq_loads_and_trains_a_step(tiny_seq2seq):
    tok = AutoTokenizer.from_pretrained(tiny_seq2seq)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_seq2seq)
    assert model.config.decoder_start_token_id == tok.pad_token_id
    enc = tok(["a long document about rain"], return_tensors="pt")
    labels = tok(["rain"], return_tensors="pt").input_ids
    loss = model(**enc, labels=labels).loss
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    out = model.generate(**enc, max_new_tokens=3)
    assert out.shape[0] == 1


def test_cli_make_tiny_model(tmp_path, capsys):
    assert main(["make-tiny-model", "--kind", "causal", "--out", str(tmp_path / "m"), "--vocab-size", "300"]) == 0
    assert "saved to" in capsys.readouterr().out
    assert len(AutoTokenizer.from_pretrained(tmp_path / "m")) == 300
