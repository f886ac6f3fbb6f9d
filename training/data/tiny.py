"""Tiny offline models for tests and the demo: a byte-level BPE tokenizer trained on local text
plus a small randomly initialised GPT-2 (causal) or T5 (seq2seq).

    from training.data.tiny import make_tiny_model
    path = make_tiny_model("causal", "/tmp/tiny-gpt2")
    AutoModelForCausalLM.from_pretrained(path); AutoTokenizer.from_pretrained(path)

Nothing is downloaded: the tokenizer is trained by the `tokenizers` library on the demo data in
data/demo/*.jsonl (when present) and a built-in paragraph, so it works on a bare checkout too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

KINDS = ("causal", "seq2seq")
DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "demo"

# Written for this project: enough varied English to give a small BPE vocabulary real merges.
FALLBACK_TEXT = """\
The committee met on Tuesday to review the budget for the coming year. Members agreed that the
library needs longer opening hours, better lighting and more study rooms, but they could not
agree on how to pay for it. A short summary should say who met, what they decided and why.
Good summaries are faithful, concise and clear; bad ones repeat the text, add facts that are not
there, or miss the main point. The river rose after three days of rain, and the town closed the
bridge until engineers could inspect it. This movie was great, the acting was superb and the
story kept me guessing. The food was cold and the service was slow, so I will not come back.
Scientists measured the temperature of the lake every hour for a month and found a clear daily
cycle. Please rank the candidates from best to worst and write what would make them better.
"""


def _corpus() -> list[str]:
    """Texts to train the tokenizer on: every string field of data/demo/*.jsonl + the fallback."""
    texts = [FALLBACK_TEXT]
    for path in sorted(DEMO_DIR.glob("*.jsonl")) if DEMO_DIR.is_dir() else []:
        try:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    texts.extend(_strings(json.loads(line)))
        except (OSError, ValueError) as e:  # a half-written demo file must not break tests
            log.warning("skipping %s for the tiny tokenizer: %s", path, e)
    return texts


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def make_tokenizer(vocab_size: int = 512, texts: list[str] | None = None):
    """A byte-level BPE `PreTrainedTokenizerFast` with <pad>, <s>, </s>, <unk> special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts if texts is not None else _corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
    )


def make_tiny_model(kind: str, out: str | Path, vocab_size: int = 512, seed: int = 0) -> Path:
    """Train a tokenizer, build a tiny randomly initialised model of `kind`, save both to `out`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    if kind not in KINDS:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = make_tokenizer(vocab_size)
    vocab = len(tok)
    if kind == "causal":
        config = GPT2Config(
            vocab_size=vocab, n_positions=512, n_embd=64, n_layer=2, n_head=2,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )
        model = GPT2LMHeadModel(config)
    else:
        config = T5Config(
            vocab_size=vocab, d_model=64, d_ff=128, d_kv=16, num_layers=2, num_decoder_layers=2,
            num_heads=2, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
            decoder_start_token_id=tok.pad_token_id,
        )
        model = T5ForConditionalGeneration(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    log.info("tiny %s model (%d parameters, vocab %d) saved to %s",
             kind, sum(p.numel() for p in model.parameters()), vocab, out)
    return out
