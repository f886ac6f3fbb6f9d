"""A token-level reward model r_phi over any Hugging Face backbone (DESIGN.md, Algorithm 1).

    rm = TokenRewardModel.from_base("path/or/name", config)     # a fresh head on a backbone
    batch = rm.collate([rm.encode(document, candidate), ...])
    rewards, mask = rm(batch)            # [B, T] per candidate token, in (0, 1)
    scores = rm.scores(batch, lbar)      # [B] aggregated sequence scores e(y)
    rm.save_pretrained(dir, card={...}); TokenRewardModel.load(dir)

Three kinds of backbone, found from the backbone's config (or `arch=`):
  causal   document and candidate in one sequence; rewards read at the candidate's positions
           (r_t has seen the prefix up to and including token t);
  seq2seq  the encoder reads the document, the decoder reads [start] + candidate;
  encoder  document and candidate as a sentence pair ([CLS] doc [SEP] cand [SEP]), e.g. MiniLM.
The head is Linear -> ReLU -> Linear per position, its last layer initialised near zero, and
rewards are bounded with a sigmoid. The sequence-level baseline (`sequence_level=True`) uses the
same code path but scores a candidate by the head's raw output at its last token.

Long inputs: the candidate keeps up to `max_candidate_length` tokens (and never more than the
window minus a few positions, so a candidate longer than the window still fits); the document
gets what is left, keeping its start (or its end). `Encoded.doc_truncated/cand_truncated` record it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from training.errors import NotFound, ValidationError
from training.rewards.losses import aggregate, bound_rewards

log = logging.getLogger(__name__)

ARCHS = ("causal", "seq2seq", "encoder")
ENCODER_TYPES = {"bert", "roberta", "distilbert", "deberta", "deberta-v2", "electra", "xlm-roberta",
                 "mpnet", "albert", "camembert", "modernbert"}
CARD = "reward_card.json"
HEAD = "reward_head.pt"
BACKBONE = "backbone"


@dataclass
class Encoded:
    """One (document, candidate) input, ready to be padded into a batch."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    decoder_input_ids: list[int] | None
    positions: list[int]  # where the candidate's tokens sit (in input_ids, or decoder_input_ids)
    tokens: list[str]  # the candidate's text per token, whitespace kept (joined = the kept text)
    doc_truncated: bool
    cand_truncated: bool


def detect_arch(config) -> str:
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    names = " ".join(getattr(config, "architectures", None) or [])
    if "CausalLM" in names or "LMHead" in names:
        return "causal"
    if getattr(config, "model_type", "") in ENCODER_TYPES:
        return "encoder"
    return "causal"


def _load_backbone_config(name_or_path: str):
    from transformers import AutoConfig

    if not name_or_path:
        raise ValidationError("base_model: give a backbone (a local folder such as one made by "
                              "`tokenwise make-tiny-model`, or a model name your hub cache holds)")
    try:
        return AutoConfig.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as e:
        hint = "the folder does not exist" if not Path(str(name_or_path)).exists() and (
            "/" in str(name_or_path) or str(name_or_path).startswith(".")) else "not loadable offline"
        raise NotFound(
            f"base model {str(name_or_path)!r}: {hint}; pass a local folder with config.json "
            f"(e.g. from `tokenwise make-tiny-model --out DIR`) ({type(e).__name__})"
        ) from None


class RewardHead(nn.Module):
    """Linear -> ReLU -> Linear per position; the last layer starts near zero (r_t ~ 0.5)."""

    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.fc = nn.Linear(hidden, inner)
        self.out = nn.Linear(inner, 1)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(h))).squeeze(-1)


class TokenRewardModel(nn.Module):
    def __init__(self, backbone, tokenizer, *, arch: str, base_model: str, aggregation: str = "avg",
                 tau: float = 2.0, sequence_level: bool = False, head_hidden: int = 0,
                 max_length: int = 512, max_candidate_length: int = 128, document_truncation: str = "start"):
        super().__init__()
        if arch not in ARCHS:
            raise ValidationError(f"arch: {arch!r} is not one of {', '.join(ARCHS)}")
        self.backbone, self.tokenizer, self.arch = backbone, tokenizer, arch
        self.base_model = str(base_model)
        self.aggregation, self.tau, self.sequence_level = aggregation, float(tau), bool(sequence_level)
        self.max_candidate_length, self.document_truncation = int(max_candidate_length), document_truncation
        cfg = backbone.config
        hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model", None) or cfg.n_embd
        self.head_hidden = int(head_hidden) or int(hidden)
        self.head = RewardHead(int(hidden), self.head_hidden)
        window = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        self.max_length = int(min(max_length, window)) if window else int(max_length)
        if self.max_length < 8:
            raise ValidationError(f"max_length: {self.max_length} tokens is too short for document + candidate")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (
            tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0)
        if arch == "encoder":
            if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
                raise ValidationError(f"base model {base_model!r}: an encoder backbone needs [CLS] and [SEP] tokens")
            self.specials = 3
        else:
            self.sep_id = next((t for t in (tokenizer.eos_token_id, tokenizer.sep_token_id, self.pad_id)
                                if t is not None), 0)
            self.specials = 1
        self.decoder_start = getattr(cfg, "decoder_start_token_id", None)
        if self.decoder_start is None:
            self.decoder_start = self.pad_id

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def from_base(cls, base_model: str, config=None, *, arch: str = "auto", **overrides) -> TokenRewardModel:
        """A fresh reward model on a backbone (name or path). `config`: a RewardConfig (or None)."""
        from transformers import AutoModel, AutoTokenizer

        from training.lm import resolve

        if base_model:  # "minilm" / "smollm2" -> their offline folders; "" is refused below
            base_model = resolve(base_model)
        hf_config = _load_backbone_config(base_model)
        arch = detect_arch(hf_config) if arch == "auto" else arch
        tok = AutoTokenizer.from_pretrained(str(base_model))
        if not getattr(tok, "is_fast", False):
            raise ValidationError(f"base model {base_model!r}: needs a fast tokenizer (tokenizer.json) for offsets")
        backbone = AutoModel.from_pretrained(str(base_model))
        kw = {}
        if config is not None:
            kw = {"aggregation": config.aggregation, "tau": config.tau, "sequence_level": config.baseline,
                  "head_hidden": config.head_hidden, "max_length": config.max_length,
                  "max_candidate_length": config.max_candidate_length,
                  "document_truncation": config.document_truncation}
        kw.update(overrides)
        return cls(backbone, tok, arch=arch, base_model=str(base_model), **kw)

    def card(self) -> dict:
        return {"arch": self.arch, "base_model": self.base_model, "aggregation": self.aggregation,
                "tau": self.tau, "sequence_level": self.sequence_level, "head_hidden": self.head_hidden,
                "max_length": self.max_length, "max_candidate_length": self.max_candidate_length,
                "document_truncation": self.document_truncation}

    def save_pretrained(self, out: str | Path, card: dict | None = None) -> Path:
        """backbone/ (HF format, with the tokenizer), reward_head.pt, reward_card.json."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(out / BACKBONE)
        self.tokenizer.save_pretrained(out / BACKBONE)
        torch.save({k: v.detach().cpu() for k, v in self.head.state_dict().items()}, out / HEAD)
        (out / CARD).write_text(json.dumps({**(card or {}), **self.card()}, indent=2, default=str))
        return out

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> TokenRewardModel:
        path = Path(path)
        if not (path / CARD).is_file():
            raise NotFound(f"reward model {str(path)!r}: no {CARD} there; train one with `tokenwise train reward`")
        c = json.loads((path / CARD).read_text())
        rm = cls.from_base(str(path / BACKBONE), arch=c["arch"], aggregation=c["aggregation"], tau=c["tau"],
                           sequence_level=c["sequence_level"], head_hidden=c["head_hidden"],
                           max_length=c["max_length"], max_candidate_length=c["max_candidate_length"],
                           document_truncation=c.get("document_truncation", "start"))
        rm.base_model = c["base_model"]
        rm.head.load_state_dict(torch.load(path / HEAD, map_location="cpu", weights_only=True))
        return rm.to(device).eval()

    @staticmethod
    def read_card(path: str | Path) -> dict:
        return json.loads((Path(path) / CARD).read_text())

    # -- inputs -----------------------------------------------------------------------------
    def encode(self, document: str, candidate: str) -> Encoded:
        """Tokenise one pair within the window, never failing on a long candidate."""
        tok = self.tokenizer
        c = tok(candidate, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        cand, offsets = list(c["input_ids"]), list(c["offset_mapping"])
        if not cand:  # an empty candidate still gets one position to read a reward from
            cand, offsets = [self.sep_id if self.arch != "encoder" else tok.sep_token_id], [(0, 0)]
        cap = min(self.max_candidate_length, self.max_length - self.specials - 1)
        if self.arch == "seq2seq":
            cap = min(self.max_candidate_length, self.max_length - 1)
        cand_truncated = len(cand) > cap
        cand, offsets = cand[:cap], offsets[:cap]
        tokens, prev = [], 0
        for _, end in offsets:
            tokens.append(candidate[prev:end] if end > prev else "")
            prev = max(prev, end)

        doc = list(tok(document or "", add_special_tokens=False, verbose=False)["input_ids"])
        budget = self.max_length - self.specials - (0 if self.arch == "seq2seq" else len(cand))
        doc_truncated = len(doc) > budget
        if doc_truncated:
            doc = doc[:budget] if self.document_truncation == "start" else doc[len(doc) - budget:]

        if self.arch == "causal":
            ids = doc + [self.sep_id] + cand
            return Encoded(ids, None, None, list(range(len(doc) + 1, len(ids))), tokens, doc_truncated, cand_truncated)
        if self.arch == "encoder":
            ids = [tok.cls_token_id] + doc + [tok.sep_token_id] + cand + [tok.sep_token_id]
            types = [0] * (len(doc) + 2) + [1] * (len(cand) + 1)
            start = len(doc) + 2
            return Encoded(ids, types, None, list(range(start, start + len(cand))), tokens,
                           doc_truncated, cand_truncated)
        ids = doc + [self.sep_id]  # seq2seq: the encoder reads the document (+ eos)
        dec = [self.decoder_start] + cand
        return Encoded(ids, None, dec, list(range(1, len(dec))), tokens, doc_truncated, cand_truncated)

    def collate(self, items: list[Encoded]) -> dict[str, torch.Tensor]:
        """Right-pad a list of Encoded into tensors on the model's device."""
        device = self.head.out.weight.device

        def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
            n = max(len(s) for s in seqs)
            return torch.tensor([s + [value] * (n - len(s)) for s in seqs], dtype=torch.long, device=device)

        batch = {"input_ids": pad([e.input_ids for e in items], self.pad_id),
                 "attention_mask": pad([[1] * len(e.input_ids) for e in items], 0)}
        if self.arch == "encoder":
            batch["token_type_ids"] = pad([e.token_type_ids for e in items], 0)
        if self.arch == "seq2seq":
            batch["decoder_input_ids"] = pad([e.decoder_input_ids for e in items], self.pad_id)
            batch["decoder_attention_mask"] = pad([[1] * len(e.decoder_input_ids) for e in items], 0)
        batch["positions"] = pad([e.positions for e in items], 0)
        batch["cand_mask"] = pad([[1] * len(e.positions) for e in items], 0).bool()
        return batch

    # -- forward ----------------------------------------------------------------------------
    def raw(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The head's raw output [B, T] at the candidate's positions (0 at pads)."""
        inputs = {k: v for k, v in batch.items() if k not in ("positions", "cand_mask")}
        out = self.backbone(**inputs)
        hidden = out.last_hidden_state  # the decoder's for seq2seq
        h = hidden.gather(1, batch["positions"].unsqueeze(-1).expand(-1, -1, hidden.size(-1)))
        return self.head(h.float() if h.dtype != self.head.out.weight.dtype else h) * batch["cand_mask"]

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(rewards [B, T] in (0, 1), mask [B, T]) over each candidate's tokens."""
        return bound_rewards(self.raw(batch)), batch["cand_mask"]

    def scores(self, batch: dict[str, torch.Tensor], lengths_mean: torch.Tensor | float | None = None,
               raw: torch.Tensor | None = None) -> torch.Tensor:
        """Sequence scores e(y) [B]: the aggregation of the token rewards, or (baseline) the raw
        head output at the last candidate token."""
        raw = self.raw(batch) if raw is None else raw
        mask = batch["cand_mask"]
        if self.sequence_level:
            last = mask.sum(-1).clamp(min=1) - 1
            return raw.gather(1, last.unsqueeze(-1)).squeeze(-1)
        return aggregate(bound_rewards(raw), mask, self.aggregation, lengths_mean=lengths_mean, tau=self.tau)
