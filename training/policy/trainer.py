"""Guide a language model with the token-level reward (DESIGN.md, "Using the guidance on the LM").

    rec = train_policy(store, "demo", PolicyConfig(base_model=LM, reward_model=RM_DIR), "models/policy")
    rec.metrics["summary"]      # "rwmle: loss 2.310 -> 1.874 over 50 steps"

Two ways to use the dense reward r_t of the reward model r_phi:
  * rwmle (summaries with references): reward-weighted MLE on the reference,
        w_t = r_t / sum_t r_t per sequence,  loss = mean over the batch of sum_t w_t * CE(y_t);
    with `awr_beta` > 0 the weights are advantage-weighted instead, w_t = softmax_t(z_t / beta)
    with z the rewards whitened over the batch (AWR, Peng et al. 2019): r_t in (0, 1) from a
    reward model near its start sits within a few hundredths of 0.5, and r_t / sum r_t is then
    plain MLE to within a few percent;
  * reinforce (no supervised data, e.g. prompt generation): sample y ~ pi, then
        loss = mean_t r_t * (-log pi(y_t | s_t)) - alpha * mean_t H(pi(. | s_t)),
    rewards detached; `reward_to_go` uses sum_{t' >= t} r_t' instead of r_t.
    With `reward_baseline` the batch's mean weight is subtracted (below-average tokens are pushed
    down) and with `whiten` the result is divided by its standard deviation, so the reward model's
    spread (often a few hundredths in (0, 1)) does not leave the entropy bonus in charge.
    With `samples_per_prompt` k >= 2 the baseline is per document instead: each answer's weights
    minus the mean sequence reward of the document's k - 1 other answers (leave-one-out, as RLOO,
    Ahmadian et al. 2024). A reward model trained on rankings compares answers to one document; its
    level across documents (which question is easy) is not a signal, and a batch baseline lets it
    set which answers are pushed up.
Alternating: every M steps during the first part of training, fresh policy samples are ranked
(by unigram F1 to the reference when there is one) and r_phi is retrained on them plus the human
lists, as in Yang et al. (2023).

The reward model and the policy may use different tokenizers: rewards are carried across by
character offsets (`align_rewards`).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from training.device import autocast, pick_device, set_threads
from training.errors import NotFound, ValidationError
from training.policy.config import PolicyConfig
from training.progress import Progress, ensure
from training.store import ModelRecord, Store

log = logging.getLogger(__name__)

CARD = "policy_card.json"


# -- 1. pure loss functions ---------------------------------------------------------------
def rwmle_weights(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """w_t = r_t / sum_t r_t over each sequence's real tokens [B, T] (0 at pads)."""
    r = rewards * mask
    return r / r.sum(-1, keepdim=True).clamp(min=1e-8)


def token_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-log p(label) per position [B, T] from logits [B, T, V]."""
    return F.cross_entropy(logits.float().transpose(1, 2), labels, reduction="none")


def weighted_mle_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
                      mask: torch.Tensor) -> torch.Tensor:
    """mean over the batch of sum_t w_t * CE(y_t) (weights detached)."""
    w = weights.detach().float() * mask.float()
    return (w * token_ce(logits, labels.masked_fill(~mask.bool(), 0))).sum(-1).mean()


def reward_weighted_mle_loss(logits: torch.Tensor, labels: torch.Tensor, rewards: torch.Tensor,
                             mask: torch.Tensor) -> torch.Tensor:
    """Token-level guidance: `weighted_mle_loss` with w_t = r_t / sum_t r_t (`rwmle_weights`)."""
    return weighted_mle_loss(logits, labels, rwmle_weights(rewards.detach().float(), mask.float()), mask)


def sequence_mle_weights(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The sequence-level counterpart: w_t = (e_b / mean_b e) / T_b, so each sequence weighs by its
    score relative to the batch and its tokens equally (plain MLE when all scores are equal).
    Scores must be positive (the policy trainer passes sequence rewards in (0, 1))."""
    m = mask.float()
    rel = scores.float() / scores.float().mean().clamp(min=1e-8)
    return rel.unsqueeze(-1) * m / m.sum(-1, keepdim=True).clamp(min=1)


def advantage_weights(rewards: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Token guidance, advantage-weighted (AWR, Peng et al. 2019): z = the rewards whitened over
    the batch's real tokens, w_t = exp(z_t / beta) / sum_t' exp(z_t' / beta) within each sequence
    [B, T] (0 at pads). Unlike r_t / sum r_t, the spread of the weights is set by beta, not by how
    far the reward model's r_t strayed from 0.5."""
    z = whitened(rewards.float(), mask) / beta
    w = torch.softmax(z.masked_fill(~mask.bool(), float("-inf")), dim=-1)
    return torch.nan_to_num(w) * mask.float()  # a sequence with no real tokens: all 0


def sequence_advantage_weights(scores: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """The sequence-level counterpart: z_b = the scores standardised over the batch, each sequence
    weighs exp(z_b / beta) relative to the batch's mean of those, its tokens equally [B, T] (plain
    MLE when all scores are equal): `sequence_mle_weights` of exp(z / beta)."""
    s = scores.float().unsqueeze(-1)
    z = whitened(s, torch.ones_like(s)).squeeze(-1)
    return sequence_mle_weights(torch.exp(z / beta), mask)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(pi(.|s_t)) per position [B, T]."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def rewards_to_go(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """G_t = sum_{t' >= t} gamma^(t'-t) r_t' over real tokens [B, T]."""
    r = (rewards * mask).float()
    out = torch.zeros_like(r)
    acc = torch.zeros_like(r[:, 0])
    for t in range(r.size(1) - 1, -1, -1):
        acc = r[:, t] + gamma * acc
        out[:, t] = acc
    return out * mask


def reinforce_loss(logits: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor,
                   alpha: float = 0.125, reward_to_go: bool = False) -> torch.Tensor:
    """mean_t r_t * (-log pi(a_t|s_t)) - alpha * mean_t H(pi(.|s_t)) over the real tokens."""
    m = mask.float()
    r = rewards.detach().float()
    if reward_to_go:
        r = rewards_to_go(r, m)
    nll = token_ce(logits, actions.masked_fill(~mask.bool(), 0))
    n = m.sum().clamp(min=1)
    return (r * nll * m).sum() / n - alpha * (token_entropy(logits) * m).sum() / n


def leave_one_out_baseline(scores: torch.Tensor, k: int) -> torch.Tensor:
    """[B] -> [B]: for sample i of a group of k consecutive samples (the answers to one document),
    the mean score of the group's other k - 1 samples. B must be a multiple of k >= 2."""
    g = scores.double().view(-1, k)  # in double: the others' sum minus one, exact enough for a spread of 1e-4
    return ((g.sum(-1, keepdim=True) - g) / (k - 1)).view(-1).to(scores.dtype)


def scaled(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """weights divided by their root mean square over the batch's real tokens (0 at pads): for
    weights a baseline has centred, their standard deviation."""
    m = mask.float()
    rms = ((weights ** 2 * m).sum() / m.sum().clamp(min=1)).sqrt()
    return weights * m / rms.clamp(min=1e-6)


def sequence_weights(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The one sequence score of each sample on every one of its real tokens [B, T] (the return of
    a reward given once, at the end, undiscounted)."""
    return scores.float().unsqueeze(-1) * mask.float()


def centred(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """weights minus their mean over the batch's real tokens (0 at pads)."""
    m = mask.float()
    mean = (weights * m).sum() / m.sum().clamp(min=1)
    return (weights - mean) * m


def whitened(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`centred` weights divided by their standard deviation over the batch's real tokens (0 at
    pads): the advantage then has unit scale whatever the reward model's spread, so the learning
    rate sets the step and the entropy bonus keeps its intended weight beside it."""
    return scaled(centred(weights, mask), mask)  # centred: their root mean square is the standard deviation


def token_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per position [B, T] between the policy's and the reference model's next-token
    distributions (exact, over the vocabulary; gradients flow into `logits` only)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    logq = torch.log_softmax(ref_logits.float().detach(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def adaptive_kl_coef(beta: float, kl: float, target: float, gain: float = 0.1) -> float:
    """The next KL weight of the adaptive controller (Ziegler et al. 2019, eq. 2):
    beta * (1 + gain * clip(kl / target - 1, -0.2, 0.2)). Above the target beta grows, below it
    shrinks, by at most gain * 20% a step; target <= 0 keeps beta as it is."""
    if target <= 0:
        return beta
    return beta * (1 + gain * min(max(kl / target - 1, -0.2), 0.2))


def align_rewards(rm_tokens: list[str], rm_rewards: list[float], ends: list[int]) -> list[float]:
    """Carry rewards from the reward model's tokens to another tokenisation of the same text.

    `rm_tokens` join to a prefix of the text (as `Encoded.tokens` do); `ends` are the character
    ends of the other tokens. A token gets the reward of the first reward-model token that ends
    at or after it (r_t scores the prefix up to t); past the scored text, the last reward."""
    if not rm_rewards:
        return [0.5] * len(ends)
    rm_ends, pos = [], 0
    for t in rm_tokens:
        pos += len(t)
        rm_ends.append(pos)
    out, j = [], 0
    for e in ends:
        while j < len(rm_ends) - 1 and rm_ends[j] < e:
            j += 1
        out.append(float(rm_rewards[j]))
    return out


def unigram_f1(candidate: str, reference: str) -> float:
    """A cheap automatic ranking signal for fresh samples (ROUGE-1 F1 on lowercase words)."""
    c, r = Counter(candidate.lower().split()), Counter(reference.lower().split())
    overlap = sum((c & r).values())
    if not overlap:
        return 0.0
    p, rec = overlap / sum(c.values()), overlap / sum(r.values())
    return 2 * p * rec / (p + rec)


# -- 2. the policy model ------------------------------------------------------------------
class Policy:
    """A causal or encoder-decoder LM with its tokenizer; builds inputs and samples."""

    def __init__(self, name_or_path: str, config: PolicyConfig, device: torch.device):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            hf = AutoConfig.from_pretrained(str(name_or_path))
        except (OSError, ValueError):
            raise NotFound(f"base_model {str(name_or_path)!r}: not a local folder with config.json and not "
                           "loadable offline (make one with `tokenwise make-tiny-model --out DIR`)") from None
        self.seq2seq = bool(getattr(hf, "is_encoder_decoder", False))
        cls = AutoModelForSeq2SeqLM if self.seq2seq else AutoModelForCausalLM
        self.tok = AutoTokenizer.from_pretrained(str(name_or_path))
        self.model = cls.from_pretrained(str(name_or_path)).to(device)
        self.pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        self.eos = self.tok.eos_token_id
        self.config, self.device = config, device

    @property
    def chat(self) -> bool:
        return not self.seq2seq and bool(getattr(self.tok, "chat_template", None))

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids of a prompt built by `build_prompt` (chat models: it already ends with the
        assistant's turn; plain causal models: an eos separates it from the answer)."""
        if self.chat:
            return self.tok(prompt, add_special_tokens=False)["input_ids"]
        ids = self.tok(prompt, add_special_tokens=self.seq2seq)["input_ids"][: self.config.max_prompt_length]
        return ids if self.seq2seq or not ids or ids[-1] == self.eos else ids + [self.eos]

    def logits(self, prompts: list[list[int]], targets: list[list[int]], model=None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced logits for targets: (logits [B, T, V], labels [B, T], mask [B, T]);
        `model` another model with the same tokenizer (the frozen starting model)."""
        model = model or self.model
        T = max(len(t) for t in targets)
        labels = torch.tensor([t + [self.pad] * (T - len(t)) for t in targets], device=self.device)
        mask = torch.tensor([[1] * len(t) + [0] * (T - len(t)) for t in targets], device=self.device).bool()
        if self.seq2seq:
            P = max(len(p) for p in prompts)
            enc = torch.tensor([p + [self.pad] * (P - len(p)) for p in prompts], device=self.device)
            att = torch.tensor([[1] * len(p) + [0] * (P - len(p)) for p in prompts], device=self.device)
            out = model(input_ids=enc, attention_mask=att, labels=labels.masked_fill(~mask, -100))
            return out.logits, labels, mask
        # causal: [prompt, target] right-padded; logits at position i predict token i + 1
        seqs = [p + t for p, t in zip(prompts, targets)]
        L = max(len(s) for s in seqs)
        ids = torch.tensor([s + [self.pad] * (L - len(s)) for s in seqs], device=self.device)
        att = torch.tensor([[1] * len(s) + [0] * (L - len(s)) for s in seqs], device=self.device)
        all_logits = model(input_ids=ids, attention_mask=att).logits
        idx = torch.tensor([[len(p) - 1 + j for j in range(T)] for p in prompts], device=self.device)
        idx = idx.clamp(max=L - 1)
        logits = all_logits.gather(1, idx.unsqueeze(-1).expand(-1, -1, all_logits.size(-1)))
        return logits, labels, mask

    @torch.no_grad()
    def sample(self, prompts: list[list[int]], n: int = 1) -> list[list[int]]:
        """n sampled continuations per prompt (token ids, cut at the first eos, eos kept), all prompts
        in one generate() call (left-padded for a causal model)."""
        P = max(len(p) for p in prompts)
        if self.seq2seq:
            ids = [p + [self.pad] * (P - len(p)) for p in prompts]
            att = [[1] * len(p) + [0] * (P - len(p)) for p in prompts]
        else:
            ids = [[self.pad] * (P - len(p)) + p for p in prompts]
            att = [[0] * (P - len(p)) + [1] * len(p) for p in prompts]
        gen = self.model.generate(
            input_ids=torch.tensor(ids, device=self.device), attention_mask=torch.tensor(att, device=self.device),
            do_sample=True, temperature=self.config.temperature, top_k=0, max_new_tokens=self.config.max_new_tokens,
            num_return_sequences=n, pad_token_id=self.pad, eos_token_id=self.eos)
        out = []
        for row in gen.tolist():
            cont = row[1:] if self.seq2seq else row[P:]
            if self.eos in cont:
                cont = cont[: cont.index(self.eos) + 1]
            cont = [t for t in cont if t != self.pad or t == self.eos] or [self.eos]
            out.append(cont)
        return out

    def pieces(self, ids: list[int]) -> tuple[str, list[int]]:
        """The decoded text and the character end of each token in it."""
        ends, text = [], ""
        for i in range(len(ids)):
            text = self.tok.decode(ids[: i + 1], skip_special_tokens=True)
            ends.append(len(text))
        return text, ends


# -- 3. training ----------------------------------------------------------------------------
def _reward_model_path(store: Store, project, config: PolicyConfig) -> str:
    if config.reward_model:
        return config.reward_model
    if project.active_reward_model is None:
        raise ValidationError(f"reward_model: project {project.name!r} has no active reward model; "
                              "pass --reward DIR or train one with `tokenwise train reward --activate`")
    return store.get_model(project.active_reward_model).path


def _rewards(rm, context: str, texts: list[str], ends: list[list[int]]) -> list[tuple[list[float], float]]:
    """(per-token rewards on the policy's tokens, the sequence reward) of each text, both in (0, 1).

    The sequence reward is what a sequence-level signal gives: the bounded score at the last token
    for the sequence-level baseline model, the mean token reward (AVG) for a token-level one."""
    from training.rewards.scoring import score_texts

    out = []
    for (toks, rs, _), e in zip(score_texts(rm, context, texts), ends):
        seq = (rs[-1] if rm.sequence_level else sum(rs) / len(rs)) if rs else 0.5
        out.append((align_rewards(toks, rs, e), float(seq)))
    return out


@dataclass
class _Setup:
    """What the loop needs: the project, the documents it trains on, both models, the optimiser."""

    project: Any
    method: str  # rwmle | reinforce (auto resolved)
    data: list  # the documents the policy trains on
    contexts: dict[int, str]  # document id -> the context text the reward model reads
    prompts: dict[int, str]  # document id -> the prompt the policy answers
    human_lists: list  # the annotators' rankings (to retrain the reward model on)
    rm: Any
    rm_path: str
    pol: Policy
    opt: torch.optim.Optimizer
    device: torch.device
    ref: Any = None  # the frozen starting model (kl_coef > 0)
    kl_coef: float = 0.0  # beta now (adapted after each step when config.kl_target > 0)


def train_policy(store: Store, project: str | int, config: PolicyConfig, out_dir: str | Path,
                 progress: Progress | None = None, job_id: int | None = None) -> ModelRecord:
    """Train the policy on a project's documents with the token-level reward; register it.

    Reads top to bottom: load (documents, reward model, policy) -> the loop (policy_step, and
    every M steps retrain_reward_model) -> save (checkpoint, card, registry)."""
    progress = ensure(progress)
    set_threads(config.threads)
    setup = load(store, project, config)
    progress.log(f"policy {setup.method} ({config.guidance} guidance) on {config.base_model} with reward model "
                 f"{setup.rm_path or '(none: plain MLE)'}: "
                 f"{len(setup.data)} documents")
    rng = random.Random(config.seed)
    history, retrained, t0 = [], 0, time.monotonic()
    for step in range(1, config.steps + 1):
        batch = rng.sample(setup.data, min(config.batch_size, len(setup.data)))
        beta = setup.kl_coef
        loss, mean_r, kl = policy_step(setup, batch, config)
        setup.kl_coef = adaptive_kl_coef(beta, kl, config.kl_target, config.kl_gain)
        history.append({"step": step, "loss": loss, "mean_reward": mean_r, "kl": kl, "kl_coef": beta})
        progress.step(step, config.steps, loss=loss, mean_reward=mean_r, kl=kl,
                      **({"kl_coef": beta} if config.kl_target > 0 else {}))
        if (config.retrain_every and setup.rm is not None and step % config.retrain_every == 0
                and step <= config.retrain_fraction * config.steps):
            n = retrain_reward_model(setup, batch, config, rng, seed=config.seed + step)
            retrained += bool(n)
            progress.log(f"step {step}: reward model retrained on {n} fresh lists" if n else
                         f"step {step}: no fresh lists to retrain the reward model on (needs references)")
    return save(store, setup, config, out_dir, history, retrained, time.monotonic() - t0, job_id)


def load(store: Store, project: str | int, config: PolicyConfig) -> _Setup:
    """The project's documents (and the method they allow), the reward model and the policy."""
    from training.data.context import project_context
    from training.ilf.generate import DEFAULT_PROMPTS, build_prompt
    from training.rewards.model import TokenRewardModel
    from training.rewards.trainer import lists_from_store

    if not config.base_model:
        raise ValidationError("base_model: give the policy LM to start from (--base-model DIR)")
    p = store.get_project(project)
    docs = store.documents(p.id)
    if not docs:
        raise ValidationError(f"project {p.name!r} has no documents to train a policy on")
    method = config.method
    with_ref = [d for d in docs if d.reference]
    if method == "auto":
        method = "rwmle" if with_ref and len(with_ref) == len(docs) else "reinforce"
    if method == "rwmle" and not with_ref:
        raise ValidationError(f"method: rwmle needs reference summaries; project {p.name!r} has none "
                              "(use --method reinforce)")
    if config.guidance == "uniform" and method != "rwmle":
        raise ValidationError("guidance: uniform (plain MLE) trains on references; this project needs reinforce")
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    rm_path, rm = "", None
    if config.guidance != "uniform":
        rm_path = _reward_model_path(store, p, config)
        rm = TokenRewardModel.load(rm_path, device=device)
    pol = Policy(config.base_model, config, device)
    ref = None
    if config.kl_coef > 0:
        import copy

        ref = copy.deepcopy(pol.model).eval().requires_grad_(False)
    template = config.prompt or DEFAULT_PROMPTS.get(p.kind, DEFAULT_PROMPTS["summarize"])
    prompts = {d.id: build_prompt(pol.tok, pol.seq2seq, template, p, d, config.max_prompt_length) for d in docs}
    return _Setup(project=p, method=method, data=with_ref if method == "rwmle" else docs,
                  contexts={d.id: project_context(p, d) for d in docs}, prompts=prompts,
                  human_lists=lists_from_store(store, p.id), rm=rm, rm_path=rm_path, pol=pol,
                  opt=torch.optim.AdamW(pol.model.parameters(), lr=config.lr), device=device, ref=ref,
                  kl_coef=config.kl_coef)


def policy_step(setup: _Setup, batch: list, config: PolicyConfig) -> tuple[float, float, float]:
    """One optimiser step on a batch of documents; returns (loss, mean token reward, mean KL)."""
    pol, device = setup.pol, setup.device
    k = config.samples_per_prompt if setup.method == "reinforce" else 1
    batch = [d for d in batch for _ in range(k)]  # a document's k answers side by side
    prompts = [pol.prompt_ids(setup.prompts[d.id]) for d in batch]
    # 1. targets (references, or fresh samples) and their rewards from r_phi
    pol.model.eval()
    if setup.method == "rwmle":
        targets = [pol.tok(d.reference, add_special_tokens=False)["input_ids"][: config.max_new_tokens]
                   + [pol.eos] for d in batch]
    else:
        targets = pol.sample(prompts)
    dense, seq = [], []
    for d, t in zip(batch, targets):
        if setup.rm is None:  # uniform guidance: plain MLE
            dense.append([1.0] * len(t))
            seq.append(1.0)
            continue
        text, ends = pol.pieces(t)
        (r, score), = _rewards(setup.rm, setup.contexts[d.id], [text], [ends])
        dense.append(r)
        seq.append(score)
    # 2. the loss on the policy
    pol.model.train()
    with autocast(device, enabled=config.bf16):
        logits, labels, mask = pol.logits(prompts, targets)
    T = labels.size(1)
    r = torch.tensor([x + [0.0] * (T - len(x)) for x in dense], device=device)
    if setup.method == "rwmle":
        scores = torch.tensor(seq, device=device)
        if config.guidance == "token":
            w = advantage_weights(r, mask, config.awr_beta) if config.awr_beta else rwmle_weights(r, mask.float())
        elif config.guidance == "sequence" and config.awr_beta:
            w = sequence_advantage_weights(scores, mask, config.awr_beta)
        else:  # sequence, or uniform (all scores 1: plain MLE)
            w = sequence_mle_weights(scores, mask)
        loss = weighted_mle_loss(logits, labels, w, mask)
    else:
        scores = torch.tensor(seq, device=device)
        if config.guidance == "token":
            w = rewards_to_go(r, mask.float()) if config.reward_to_go else r * mask
        else:
            w = sequence_weights(scores, mask)
        if k > 1:  # each answer against the other answers to its document
            w = (w - leave_one_out_baseline(scores, k).unsqueeze(-1)) * mask
        elif config.reward_baseline:  # against the batch
            w = centred(w, mask)
        if config.whiten and (k > 1 or config.reward_baseline):
            w = scaled(w, mask)
        loss = reinforce_loss(logits, labels, w, mask, alpha=config.entropy_coef)
    kl = torch.zeros((), device=device)
    if setup.ref is not None:
        with torch.no_grad(), autocast(device, enabled=config.bf16):
            ref_logits, _, _ = pol.logits(prompts, targets, model=setup.ref)
        m = mask.float()
        kl = (token_kl(logits, ref_logits) * m).sum() / m.sum().clamp(min=1)
        loss = loss + setup.kl_coef * kl
    setup.opt.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(pol.model.parameters(), config.grad_clip)
    setup.opt.step()
    return loss.item(), float((r * mask).sum() / mask.sum().clamp(min=1)), kl.detach().item()


def retrain_reward_model(setup: _Setup, batch: list, config: PolicyConfig, rng: random.Random, seed: int) -> int:
    """Alternating (Yang et al. 2023): rank fresh policy samples of the batch's documents by unigram
    F1 to their reference and fit r_phi one epoch on them plus as many human lists. Returns how
    many fresh lists it trained on (0: nothing to train on, the model is unchanged)."""
    from training.rewards.config import RewardConfig
    from training.rewards.trainer import RankedList, fit

    pol, rm = setup.pol, setup.rm
    fresh = []
    pol.model.eval()
    for d in batch:
        if not d.reference:
            continue
        context = setup.contexts[d.id]
        texts = [pol.pieces(s)[0] for s in pol.sample([pol.prompt_ids(setup.prompts[d.id])], config.retrain_samples)]
        texts = list(dict.fromkeys(texts + [d.reference]))
        f1 = [unigram_f1(t, d.reference) for t in texts]
        order = sorted(set(f1), reverse=True)
        ranks = tuple(order.index(x) + 1 for x in f1)
        if len(set(ranks)) > 1:
            fresh.append(RankedList(context, tuple(texts), ranks, group=str(d.id)))
    if not fresh:
        return 0
    lists = fresh + rng.sample(setup.human_lists, min(len(setup.human_lists), len(fresh)))
    fit(rm, lists, [], RewardConfig(base_model=rm.base_model, epochs=1, lr=config.reward_lr,
                                    batch_size=max(1, len(lists)), aggregation=rm.aggregation,
                                    baseline=rm.sequence_level, val_fraction=0, patience=0,
                                    device=str(setup.device), seed=seed))
    return len(fresh)


def save(store: Store, setup: _Setup, config: PolicyConfig, out_dir: str | Path, history: list[dict],
         retrained: int, seconds: float, job_id: int | None) -> ModelRecord:
    """save_pretrained + policy_card.json (and the retrained reward model, if any); register it."""
    p, method = setup.project, setup.method
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup.pol.model.save_pretrained(out)
    setup.pol.tok.save_pretrained(out)
    if retrained:
        setup.rm.save_pretrained(out / "reward_model", card={"retrained_from": setup.rm_path})
    first = sum(h["loss"] for h in history[:5]) / len(history[:5])
    last = sum(h["loss"] for h in history[-5:]) / len(history[-5:])
    metrics = {"method": method, "steps": config.steps, "first_loss": first, "last_loss": last,
               "first_mean_reward": history[0]["mean_reward"], "last_mean_reward": history[-1]["mean_reward"],
               "last_kl": history[-1]["kl"], "last_kl_coef": setup.kl_coef,
               "reward_retrained": retrained, "train_seconds": round(seconds, 2),
               "device": str(setup.device), "history": history,
               "summary": f"{method}: loss {first:.3f} -> {last:.3f} over {config.steps} steps"}
    card = {"kind": "policy", "project": p.name, "config": config.to_dict(), "reward_model": setup.rm_path,
            "metrics": {k: v for k, v in metrics.items() if k != "history"}}
    (out / CARD).write_text(json.dumps(card, indent=2, default=str))
    return store.add_model("policy", str(out.resolve()), base_model=config.base_model, project=p.id, job_id=job_id,
                           name=f"{p.name}-policy-{method}",
                           data_snapshot={"document_ids": [d.id for d in setup.data]},
                           metrics=metrics, card=card)
