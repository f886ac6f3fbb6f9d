"""One feedback round, end to end: does the model that comes out beat the one that went in?

    python bench/feedback_round.py --quick                  # SmolLM2-135M-Instruct on 2 CPU cores: 34 min
    # causal (SmolLM2) reward models with advantage weights (the README's tables: every arm, pooled over
    # --policy-seed 0,1,2); 22-28 min for base and the three MLE arms
    python bench/feedback_round.py --quick --rm-backbone smollm2 --judge-backbone minilm --awr-beta 1 \
        --arms base,sft_preferred,token_wmle,seq_wmle --keep
    # the same split and reward models, another training order (11-14 min)
    python bench/feedback_round.py <the same flags> --policy-seed 1 --reuse-rms /tmp/feedback-round-XXXX
    # three training orders, the verdicts pooled over them (interval: a bootstrap over the test questions)
    python bench/feedback_round.py <the same flags> --policy-seed 0,1,2 --reuse-rms /tmp/feedback-round-XXXX
    # REINFORCE with two answers per question, each weighed against the other (leave-one-out): 60 min with the RMs
    python bench/feedback_round.py --quick --rm-backbone smollm2 --judge-backbone minilm --awr-beta 1 \
        --arms base,token_reinforce,seq_reinforce --policy-seed 0,1,2 --samples-per-prompt 2
    # the reward models on a known preference (ROUGE-L to the gold answer) from 260 questions: 19 min for one order
    python bench/feedback_round.py --quick --rm-backbone minilm --judge-backbone minilm --awr-beta 1 --rm-data rouge \
        --rm-n-train 260 --arms base,sft_preferred,token_wmle,seq_wmle,token_reinforce,seq_reinforce
    # the full run below takes about 5 hours on 2 CPU cores (README); on a GPU:
    python bench/feedback_round.py --device cuda --dtype bf16 --json-out out.json
    # the README's H200 run: SmolLM2 reward models and judge, 30 steps x 16, 80 answers per generate()
    python bench/feedback_round.py --device cuda --dtype bf16 --rm-backbone smollm2 --rm-max-length 512 \
        --rm-lr 5e-5 --steps 30 --batch-size 16 --lr 3e-5 --gen-batch 80 --json-out out.json

QA-Feedback (Wu et al. 2023; ../shared/datasets/qa_feedback_finegrained): 500 questions with
passages, four answers, six pairwise human preferences, the human error spans and missing
information of answer 1, its human correction, and the ASQA gold answer. Questions are split
three ways by question (seeded): policy-train, judge, test. Every arm starts from the same
policy LM (SmolLM2-135M-Instruct, chat template: question and passages in, answer out) and
trains with the same optimiser, steps, batch, tokens and learning rate in Tokenwise's own
policy trainer (training/policy/trainer.py):

  base             no training
  sft_preferred    plain MLE on the best-ranked of the four answers   (guidance=uniform)
  token_wmle       MLE weighted per token by the token-level RM       (PTG: guidance=token)
  seq_wmle         the same weighted by the sequence-level RM         (guidance=sequence)
  token_reinforce  REINFORCE on samples with the dense token reward
  seq_reinforce    REINFORCE with the one sequence reward at the end (same samples budget);
                   both with a KL weight to the start that adapts to a target (--kl-target)
  ilf              critiques written from answer 1's error spans and missing information
                   (qa_feedback.qa_critique: the span, its error type, the missing passage sentences),
                   refinements by the ILF pipeline, selected, then plain MLE on the selections
  sft_initial      plain MLE on answer 1 as it was      (the ILF paper's floor)
  sft_corrected    plain MLE on the human correction    (its ceiling)

Both reward models (token-level AVG and the sequence-level baseline, same backbone) learn from
the policy-train questions' preferences only (with --rm-data preferences+corrections, also each
human correction ranked above the answer 1 it corrects); with --rm-n-train N, from N questions:
the policy-train ones and questions in no other split (the judge and test questions stay as
they are, so the runs compare); only those the chosen --arms use are trained. --rm-data rouge
swaps the people's preferences for a known one, each question's four answers ranked by ROUGE-L
against the gold answer, for the two reward models and sft_preferred's choice of answer (the
judge still learns the people's): a check of the guidance where what it should learn is known,
read on the ROUGE-L verdicts. Levers on the guided WMLE arms, the same for token and sequence:
--awr-beta (weights exp(z / beta) of the whitened rewards instead of r_t / sum r_t) and
--retrain-every (PTG's alternating reward-model training on fresh samples); on the REINFORCE
arms, --kl / --kl-target, --entropy-coef and --samples-per-prompt (several answers per question,
each weighed against the others). --keep leaves the work folder (models, the round's database, answers.json: each test
question's answers with their judge scores and ROUGE-L), and --reuse-rms FOLDER then takes
its reward models and judge (checked against the run's split, backbones and length) so a
policy-side experiment skips their training; --policy-seed varies the arms' training order and
samples alone, on the same split and reward models, and with several seeds every arm trains once
per seed and its figures are pooled over the runs (the training order moves an arm as far as the
arms differ at the --quick size). Test answers are greedy. Each arm gets:
its win rate against `base` judged by a JUDGE reward model trained only on the judge questions'
feedback (its accuracy on the test questions' human preferences is printed, beside the token and
sequence RMs' and that of "longer wins" on the same pairs: an RM no better than that rule can only
guide by length), with a 95% interval over the decided pairs (Wilson's for one seed; for several,
a bootstrap over the test questions, each resampled with all its runs); ROUGE-L against the ASQA
gold answer; the mean answer length, and the win rate a length-only judge ("longer wins") would
give, so length hacking shows; and a reference-based judge beside the learned one: per test
question, is the arm's ROUGE-L above base's (win rate over the questions that differ, the same
interval). A table; then the issue's goals head to head (token_wmle against sft_preferred and
seq_wmle, token_reinforce against seq_reinforce, ilf against sft_initial: the same three verdicts
on the same test questions, the judge's verdict on the pairs of about the same length (within
MATCHED_WORDS words), and the gap between the two arms' win rates against base); then one JSON
line with the arms and the goals.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import qa_feedback

ARMS = ("base", "sft_preferred", "token_wmle", "seq_wmle", "token_reinforce", "seq_reinforce", "ilf",
        "sft_initial", "sft_corrected")
# the goals, head to head on the same test questions: (arm, the arm it must beat)
GOALS = (("token_wmle", "sft_preferred"), ("token_wmle", "seq_wmle"), ("token_reinforce", "seq_reinforce"),
         ("ilf", "sft_initial"))
PROMPT = ("Answer the question in a few sentences, using the passages.\n\n{text}")
# answers this many words apart or closer count as the same length: the judge's verdict on those pairs alone
# is the length-matched one (on QA-Feedback the judge prefers the longer answer, as the human raters did)
MATCHED_WORDS = 3


def arguments(argv=None) -> argparse.Namespace:
    from training.policy.config import PolicyConfig

    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--policy", default="smollm2", help="policy LM every arm starts from")
    a.add_argument("--rm-backbone", default="minilm", help="backbone of the reward models (and of the judge, by default)")
    a.add_argument("--judge-backbone", default="", help="backbone of the judge (empty: --rm-backbone)")
    a.add_argument("--arms", default=",".join(ARMS))
    a.add_argument("--n-train", type=int, default=300, help="policy-train questions")
    a.add_argument("--n-judge", type=int, default=120, help="judge questions")
    a.add_argument("--n-test", type=int, default=80, help="test questions")
    a.add_argument("--rm-n-train", type=int, default=0,
                   help="questions the token and sequence reward models learn from: the policy-train questions and, "
                        "beyond --n-train, questions that are in no other split (0: --n-train). The judge and test "
                        "questions do not move, so runs with and without it are measured on the same test")
    a.add_argument("--steps", type=int, default=60)
    a.add_argument("--batch-size", type=int, default=8)
    a.add_argument("--lr", type=float, default=1e-5)
    # With a reward model near chance REINFORCE drifts below base; the adaptive KL holds it near the start
    # (quick run: beta 0.05 -> 0.62 still let KL reach 0.21-0.26 nats; from 0.5 it stayed at 0.06-0.09)
    a.add_argument("--kl", type=float, default=0.5, help="KL weight to the starting model (REINFORCE arms), at the start")
    a.add_argument("--kl-target", type=float, default=0.05,
                   help="adapt the REINFORCE arms' KL weight towards this mean per-token KL in nats (0: fixed --kl)")
    a.add_argument("--kl-gain", type=float, default=1.0,
                   help="how fast that weight adapts (PolicyConfig.kl_gain; 1: up to 20%% a step, for short runs)")
    a.add_argument("--entropy-coef", type=float, default=PolicyConfig.entropy_coef,
                   help="REINFORCE arms: weight of the entropy bonus (PolicyConfig.entropy_coef)")
    a.add_argument("--samples-per-prompt", type=int, default=PolicyConfig.samples_per_prompt,
                   help="REINFORCE arms: answers sampled per question each step; from 2 on each is weighed against the "
                        "question's other answers (leave-one-out baseline, PolicyConfig.samples_per_prompt)")
    a.add_argument("--retrain-every", type=int, default=0,
                   help="token_wmle / seq_wmle: retrain the reward model every M steps on fresh policy samples ranked "
                        "by unigram F1 to the arm's reference, plus as many human lists (PTG's alternating "
                        "training, PolicyConfig.retrain_every; 0: the reward model stays as trained)")
    a.add_argument("--awr-beta", type=float, default=0.0,
                   help="token_wmle / seq_wmle: 0 weighs by r_t / sum r_t (PTG); beta > 0 advantage-weights, exp(z / beta) "
                        "with z the rewards whitened over the batch (PolicyConfig.awr_beta)")
    a.add_argument("--max-new-tokens", type=int, default=96)
    a.add_argument("--passage-chars", type=int, default=1200)
    a.add_argument("--rm-epochs", type=int, default=2)
    a.add_argument("--rm-lr", type=float, default=1e-4, help="peak learning rate of the reward models")
    a.add_argument("--rm-max-length", type=int, default=256, help="tokens a reward model reads (question, passages, answer)")
    a.add_argument("--rm-data", default="preferences", choices=("preferences", "preferences+corrections", "rouge"),
                   help="what the reward models and the judge learn from: the pairwise human preferences, or "
                        "also each human correction preferred to the answer it corrects; rouge: the token and "
                        "sequence reward models (and sft_preferred's choice of answer) follow a known preference "
                        "instead, each question's four answers ranked by ROUGE-L against the gold answer, and are "
                        "tested on the test questions' ROUGE-L rankings; the judge still learns the human ones")
    a.add_argument("--ilf-n", type=int, default=3, help="refinements per critique")
    a.add_argument("--selector", default="", help="ILF selector (empty = the ILF form's default)")
    a.add_argument("--gen-batch", type=int, default=8,
                   help="prompts per generate() call for the test answers and the ILF refinements (larger on a GPU)")
    a.add_argument("--device", default="auto")
    a.add_argument("--dtype", default="bf16", choices=("bf16", "fp32"))
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--seed", type=int, default=0, help="the split of the questions and the reward models' training")
    a.add_argument("--policy-seed", type=seed_list, default=None, metavar="SEED[,SEED...]",
                   help="the arms' training order, samples and ILF refinements (default: --seed); with --reuse-rms "
                        "it varies the policy side alone, on the same split and reward models. Several (0,1,2) "
                        "train every arm once per seed and pool the verdicts over the runs")
    a.add_argument("--json-out", default="")
    a.add_argument("--reuse-rms", default="",
                   help="a work folder kept with --keep: take its rm-token / rm-seq / rm-judge (and their test "
                        "figures) instead of training them again, for experiments on the policy side; only on the split "
                        "and reward-model recipe they were trained with (its split.json)")
    a.add_argument("--keep", action="store_true",
                   help="keep the work folder (reward models, judge and every arm's policy: GBs); else it is removed")
    a.add_argument("--quick", action="store_true", help="a run that fits in ~40 minutes on 2 CPU cores")
    if a.parse_known_args(argv)[0].quick:  # --quick sets the defaults; a flag given explicitly still wins
        a.set_defaults(n_train=48, n_judge=120, n_test=120, steps=16, batch_size=4, max_new_tokens=48,
                       passage_chars=400, rm_epochs=2, rm_max_length=128, ilf_n=2, lr=5e-5)
    args = a.parse_args(argv)
    args.policy_seeds = args.policy_seed or [args.seed]
    args.policy_seed = args.policy_seeds[0]
    return args


def seed_list(text: str) -> list[int]:
    """--policy-seed: one seed or several, comma-separated, each once."""
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give integers separated by commas, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more different seeds, e.g. 0,1,2")
    return seeds


# what a work folder's reward models and judge learned from: --reuse-rms takes them only when all of these match
SPLIT_KEYS = ("seed", "n_train", "n_judge", "n_test", "rm_n_train", "passage_chars", "rm_data", "rm_epochs",
              "rm_lr")


def check_reuse(args) -> None:
    """--reuse-rms only from a work folder whose reward models saw this run's split: another seed or
    size puts this run's test questions in their training data."""
    record = Path(args.reuse_rms) / "split.json"
    if not record.is_file():
        sys.exit(f"--reuse-rms: {args.reuse_rms} has no split.json; give a work folder that this bench kept with --keep")
    theirs = json.loads(record.read_text())
    theirs.setdefault("rm_n_train", 0)  # kept before --rm-n-train: the reward models saw the policy-train questions
    differ = [f"--{k.replace('_', '-')} {theirs.get(k)} there, {getattr(args, k)} here" for k in SPLIT_KEYS
              if theirs.get(k) != getattr(args, k)]
    if differ:
        sys.exit(f"--reuse-rms: {args.reuse_rms}'s reward models were trained on another split or recipe ("
                 + "; ".join(differ) + "); use --policy-seed to vary the policy side alone")


# -- data -----------------------------------------------------------------------------------------
def shuffled(rows: list[dict], seed: int) -> list[dict]:
    """The questions in the seeded order every split is cut from."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return [rows[i] for i in order]


def split_questions(rows: list[dict], args) -> tuple[list, list, list]:
    """policy-train / judge / test, by question, seeded; nothing of a question crosses sides."""
    a, b = args.n_train, args.n_train + args.n_judge
    pick = shuffled(rows, args.seed)
    return pick[:a], pick[a:b], pick[b:b + args.n_test]


def reward_model_questions(rows: list[dict], args) -> list[dict]:
    """What the token and sequence reward models learn from: the policy-train questions, then (up to
    --rm-n-train) the shuffled questions after the test split's, so the judge and test questions are
    those of a run without it."""
    want = args.rm_n_train or args.n_train
    if want < args.n_train:
        sys.exit(f"--rm-n-train {want}: give at least --n-train ({args.n_train}); the reward models learn from "
                 "the policy-train questions and more")
    spare = len(rows) - args.n_train - args.n_judge - args.n_test
    if want - args.n_train > spare:
        sys.exit(f"--rm-n-train {want}: only {args.n_train + max(spare, 0)} questions are outside the judge and test "
                 f"splits ({len(rows)} in all, --n-judge {args.n_judge}, --n-test {args.n_test})")
    pick, beyond = shuffled(rows, args.seed), args.n_train + args.n_judge + args.n_test
    return pick[:args.n_train] + pick[beyond:beyond + want - args.n_train]


def preferred_answer(args, row: dict) -> str:
    """The best-ranked of a question's four answers: by the people's preferences, or by ROUGE-L
    against the gold answer with --rm-data rouge (what the reward models learn from)."""
    return qa_feedback.rouge_best(row) if args.rm_data == "rouge" else qa_feedback.best_answer(row)


# -- models ---------------------------------------------------------------------------------------
def needed_reward_models(args, arms: list[str]) -> list[str]:
    """The reward models the arms use: token (token_*, and ilf with a reward-based selector), seq
    (seq_*), and always the judge."""
    need = {"judge"}
    for arm in arms:
        if arm.startswith("token_") or (arm == "ilf" and args.selector in ("reward", "ensemble")):
            need.add("token")
        if arm.startswith("seq_"):
            need.add("seq")
    return [n for n in ("token", "seq", "judge") if n in need]


def reward_models(args, train_rows, judge_rows, test_rows, out: Path, names=("token", "seq", "judge")) -> dict:
    """The token-level and sequence-level RMs (the preferences of `train_rows`: the policy-train
    questions, and more with --rm-n-train; with --rm-data rouge their ROUGE-L rankings) and the judge
    (judge preferences), those of `names`, each measured on the test questions' rankings of its kind."""
    from training.rewards.config import RewardConfig
    from training.rewards.trainer import Split, fit_and_test

    def cfg(baseline: bool, backbone: str) -> RewardConfig:  # the recipe of bench/reward_quality.py (README)
        return RewardConfig(base_model=backbone, aggregation="avg", baseline=baseline, epochs=args.rm_epochs,
                            lr=args.rm_lr, warmup_fraction=0.1, grad_clip=1.0,
                            batch_size=8, max_length=args.rm_max_length, max_candidate_length=min(128, args.rm_max_length - 16),
                            patience=0,
                            seed=args.seed, device=args.device, bf16=args.dtype == "bf16", threads=args.threads,
                            refit=False)

    def lists(rows, corrections: bool = args.rm_data == "preferences+corrections", rouge: bool = False):
        if rouge:
            return qa_feedback.rouge_lists(rows, chars=args.passage_chars)
        out = qa_feedback.preference_lists(rows, chars=args.passage_chars)
        return out + qa_feedback.correction_lists(rows, chars=args.passage_chars) if corrections else out

    def split(ls, test):  # a tenth of the questions (never their lists on both sides) picks the epoch
        groups = sorted({x.group for x in ls})
        val_groups = set(random.Random(args.seed).sample(groups, max(1, len(groups) // 10)))
        return Split([x for x in ls if x.group not in val_groups], [x for x in ls if x.group in val_groups], test)

    out_models = {}
    judge_backbone = args.judge_backbone or args.rm_backbone
    human_test = lists(test_rows, corrections=False)
    for name, baseline, rows, backbone in (("token", False, train_rows, args.rm_backbone),
                                           ("seq", True, train_rows, args.rm_backbone),
                                           ("judge", False, judge_rows, judge_backbone)):
        if name not in names:
            continue
        rouge = args.rm_data == "rouge" and name != "judge"
        test = lists(test_rows, rouge=True) if rouge else human_test
        if args.reuse_rms and (Path(args.reuse_rms) / f"rm-{name}").is_dir():
            out_models[name] = reused_reward_model(args, name, baseline, backbone, test)
            continue
        t0 = time.monotonic()
        rm, m = fit_and_test(backbone, split(lists(rows, rouge=rouge), test), cfg(baseline, backbone))
        path = out / f"rm-{name}"
        rm.save_pretrained(path, card={"metrics": m})
        out_models[name] = {"path": str(path), "seconds": round(time.monotonic() - t0, 1), "metrics": m}
    return out_models


def reused_reward_model(args, name: str, baseline: bool, backbone: str, test: list) -> dict:
    """rm-<name> of a kept work folder, checked against this run's settings, with its test figures
    (measured now on `test` when its card has none: a folder kept before every model was tested)."""
    from training.device import pick_device
    from training.lm import resolve
    from training.rewards.model import TokenRewardModel
    from training.rewards.trainer import test_metrics

    path = Path(args.reuse_rms) / f"rm-{name}"
    card = TokenRewardModel.read_card(path)
    level = "sequence" if baseline else "token"
    have = (card["base_model"], "sequence" if card["sequence_level"] else "token", card["max_length"])
    want = (resolve(backbone), level, args.rm_max_length)
    if have != want:
        sys.exit(f"--reuse-rms: {path} is a {have[1]}-level reward model on {have[0]} at {have[2]} tokens; this "
                 f"run's {name} model is {level}-level on {want[0]} at {want[2]} (--rm-backbone / --judge-backbone, "
                 f"--rm-max-length)")
    print(f"reusing {path} ({card['base_model']})", flush=True)
    metrics = card.get("metrics", {})
    if "test_pairwise_accuracy" not in metrics:
        metrics = {**metrics, **test_metrics(TokenRewardModel.load(path, device=pick_device(args.device)), test,
                                             seed=args.seed)}
    return {"path": str(path), "seconds": 0.0, "metrics": metrics}


def guidance_spread(args, rm_path: str, rows: list[dict]) -> dict:
    """How far a reward model can move weighted MLE away from plain MLE on the arms' targets (the
    preferred answers): the coefficient of variation of r_t inside an answer (token RWMLE's w_t * T
    is r_t / mean r: CV 0 is plain MLE) and of the sequence rewards across answers (what seq_wmle's
    relative weights vary by)."""
    from statistics import mean, median, pstdev

    from training.device import pick_device
    from training.rewards.model import TokenRewardModel
    from training.rewards.scoring import score_texts

    rm = TokenRewardModel.load(rm_path, device=pick_device(args.device))
    within, seqs = [], []
    for r in rows:
        (_, rs, _), = score_texts(rm, qa_feedback.context(r, args.passage_chars), [preferred_answer(args, r)])
        if rs:
            within.append(pstdev(rs) / max(mean(rs), 1e-8))
            seqs.append(rs[-1] if rm.sequence_level else mean(rs))
    return {"within_answer_cv_median": median(within) if within else float("nan"),
            "across_answers_cv": pstdev(seqs) / max(mean(seqs), 1e-8) if seqs else float("nan"), "n": len(seqs)}


def train_arm(args, arm: str, rows: list[dict], targets: dict[str, str] | None, rm_path: str | None,
              method: str, guidance: str, db: str, out: Path) -> tuple[str, dict]:
    """A project of the policy-train questions (references = the arm's targets) and one policy run."""
    from training.policy.config import PolicyConfig
    from training.policy.trainer import train_policy
    from training.store import NewDocument, Store

    with Store(db) as s:
        s.create_project(arm, kind="prompt", k=2)
        s.add_documents(arm, [NewDocument(str(i), qa_feedback.context(r, args.passage_chars),
                                          [r["prediction 1"], r["prediction 2"]],
                                          reference=(targets or {}).get(r["question"]))
                              for i, r in enumerate(rows)])
        cfg = PolicyConfig(base_model=policy_path(args), reward_model=rm_path or "", method=method, guidance=guidance,
                           steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           kl_coef=args.kl if method == "reinforce" else 0.0,
                           kl_target=args.kl_target if method == "reinforce" else 0.0, kl_gain=args.kl_gain,
                           entropy_coef=args.entropy_coef,
                           samples_per_prompt=args.samples_per_prompt if method == "reinforce" else 1,
                           retrain_every=args.retrain_every if method == "rwmle" and rm_path else 0,
                           awr_beta=args.awr_beta if method == "rwmle" and rm_path else 0.0,
                           max_new_tokens=args.max_new_tokens,
                           max_prompt_length=768, prompt=PROMPT, device=args.device, bf16=args.dtype == "bf16",
                           threads=args.threads, seed=args.policy_seed, temperature=0.8)
        rec = train_policy(s, arm, cfg, out / arm)
    return rec.path, rec.metrics


def ilf_targets(args, rows: list[dict], db: str, rm_path: str, project: str) -> tuple[dict[str, str], dict]:
    """The ILF pipeline on answer 1 of each policy-train question: critique -> refinements -> selection
    (in the round's database, as `project`)."""
    from training.ilf.config import RefineConfig, SelectConfig
    from training.ilf.refine import refine
    from training.ilf.select import select
    from training.store import NewDocument, Store

    rows = [r for r in rows if qa_feedback.qa_critique(r)]
    with Store(db) as s:
        s.create_project(project, kind="prompt", k=2)
        s.add_documents(project, [NewDocument(str(i), qa_feedback.context(r, args.passage_chars),
                                                 [r["prediction 1"], r["prediction 2"]]) for i, r in enumerate(rows)])
        critic, _ = s.add_annotator(f"qa-feedback-critic-{project}")
        for d, r in zip(s.documents(project), rows):
            s.save_critique(critic, d.candidates[0].id, qa_feedback.qa_critique(r))
        t0 = time.monotonic()
        # the refinement budget is the pipeline's own (1.5x the critiqued answer, up to 160 tokens), not the
        # policy's answer budget: with --quick's 48 tokens the ILF arm learned to answer in 18 words; with this
        # the selected refinements have a median of 62 words (the answers they rewrite: 70)
        refine(s, project, RefineConfig(model=policy_path(args), n=args.ilf_n, baseline_n=0, device=args.device,
                                           seed=args.policy_seed, max_text_chars=max(100, args.passage_chars + 200),
                                           batch_size=max(RefineConfig.batch_size, args.gen_batch // args.ilf_n)))
        sel = {"selector": args.selector} if args.selector else {}  # default: the ILF form's (PMI)
        select(s, project, SelectConfig(**sel, model=policy_path(args), reward_model=rm_path, device=args.device,
                                           seed=args.policy_seed))
        targets = {}
        for it, r in zip(s.critique_items(s.get_project(project).id), rows):
            chosen = it.selected
            if chosen is not None:
                targets[r["question"]] = chosen.text
    return targets, {"critiques": len(rows), "selected": len(targets), "seconds": round(time.monotonic() - t0, 1)}


def policy_path(args) -> str:
    from training.lm import resolve

    return resolve(args.policy)


def answers(args, model: str, rows: list[dict]) -> list[str]:
    """Greedy answers to the test questions, with the prompt the arms were trained on."""
    from training.device import pick_device
    from training.ilf.generate import GenerateConfig, generate_outputs
    from training.lm import load_lm
    from training.store import Document, Project

    lm = load_lm(model, device=pick_device(args.device))
    project = Project(id=0, name="test", kind="prompt", k=2, overlap=1)
    docs = [Document(id=i, project_id=0, ext_id=str(i), title="", text=qa_feedback.context(r, args.passage_chars))
            for i, r in enumerate(rows)]
    cfg = GenerateConfig(num_candidates=1, do_sample=False, max_new_tokens=args.max_new_tokens,
                         max_input_tokens=768, prompt=PROMPT, device=args.device, batch_size=args.gen_batch, only_open=False)
    return [o[0] for o in generate_outputs(lm, project, docs, cfg)]


def judge_scores(args, judge_path: str, rows, texts: list[str]) -> list[float]:
    """The judge's score of each answer to its question, at Lbar = 1 (AVG: the mean r_t). Its
    verdict on any two answers is the one it gives them as a list of two, whose shared Lbar only
    scales both scores, so the arms can be compared with base and with each other."""
    from training.device import pick_device
    from training.rewards.model import TokenRewardModel
    from training.rewards.scoring import score_encoded

    judge = TokenRewardModel.load(judge_path, device=pick_device(args.device))
    enc = [judge.encode(qa_feedback.context(r, args.passage_chars), a or " ") for r, a in zip(rows, texts)]
    return [s for i in range(0, len(enc), 16) for _, _, s in score_encoded(judge, enc[i:i + 16], [1.0] * len(enc[i:i + 16]))]


def verdicts(mine: dict[int, dict], theirs: dict[int, dict]) -> dict:
    """The judge's, ROUGE-L's and a length-only judge's ("longer wins") verdicts on two arms'
    answers, question by question, over the training runs (policy seeds) both arms have: each arm's
    runs keyed by seed, paired seed with seed (base has one run, the same for every seed). The same
    answer is a tie for the judge and for ROUGE-L. `matched_*`: the judge's verdicts on the pairs
    whose lengths differ by MATCHED_WORDS words or fewer. The win rate is over the decided (question, run)
    pairs; its 95% interval is Wilson's for one run, for several a bootstrap over test questions
    (`clustered_rate_interval`), since the runs answer the same questions."""
    pairs = [(mine[s], theirs[s]) for s in mine if s in theirs]
    same = [[_norm(a) == _norm(b) for a, b in zip(m["answers"], t["answers"])] for m, t in pairs]
    words = [([len(a.split()) for a in m["answers"]], [len(b.split()) for b in t["answers"]]) for m, t in pairs]
    judge = [outcomes(m["judge"], t["judge"], sm) for (m, t), sm in zip(pairs, same)]
    out = win_rate(judge)
    out["ties"] = sum(len(x) for x in judge) - out["wins"] - out["losses"]
    out.update(win_rate([outcomes(m["rouge"], t["rouge"], sm) for (m, t), sm in zip(pairs, same)], "rouge_"))
    out.update(win_rate([outcomes(a, b) for a, b in words], "length_judge_"))
    matched = [[abs(x - y) <= MATCHED_WORDS for x, y in zip(a, b)] for a, b in words]
    out.update(win_rate([[o if m else 0 for o, m in zip(j, mt)] for j, mt in zip(judge, matched)], "matched_"))
    if len(pairs) > 1:
        out["runs"] = len(pairs)
    return out


def outcomes(mine: list[float], theirs: list[float], tie: list[bool] | None = None) -> list[int]:
    """Per question +1 (mine scores higher), -1 (lower) or 0 (equal, or a tie by `tie`)."""
    tie = tie or [False] * len(mine)
    return [0 if t else (a > b) - (a < b) for a, b, t in zip(mine, theirs, tie)]


def win_rate(runs: list[list[int]], prefix: str = "") -> dict:
    """The win rate over the decided questions of one or several runs' `outcomes` (aligned by
    question) with its 95% interval, and the wins and losses (keys start with `prefix`)."""
    from training.stats import clustered_rate_interval, wilson_interval

    wins = [sum(r[i] > 0 for r in runs) for i in range(len(runs[0]))] if runs else []
    decided = [sum(r[i] != 0 for r in runs) for i in range(len(runs[0]))] if runs else []
    win, n = sum(wins), sum(decided)
    lo, hi = wilson_interval(win, n) if len(runs) == 1 else clustered_rate_interval(wins, decided)
    return {f"{prefix}win_rate": win / n if n else float("nan"), f"{prefix}ci_low": lo,
            f"{prefix}ci_high": hi, f"{prefix}wins": win, f"{prefix}losses": n - win}


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s or "").strip().lower()


def head_to_head(per_question: dict) -> dict:
    """Each goal of GOALS whose two arms ran (in at least one common policy seed): the first arm's
    verdicts against the second on those seeds, and the gap between their win rates against base
    on the same seeds (the issue's measure), in points."""
    out = {}
    for arm, other in GOALS:
        common = [s for s in per_question.get(arm, {}) if s in per_question.get(other, {})]
        if not common:
            continue
        mine, theirs = ({s: per_question[a][s] for s in common} for a in (arm, other))
        g = verdicts(mine, theirs)
        vs_base = verdicts(mine, per_question["base"]), verdicts(theirs, per_question["base"])
        g.update({f"{k}_gap_points": 100 * (vs_base[0][f"{p}win_rate"] - vs_base[1][f"{p}win_rate"])
                  for k, p in (("judge", ""), ("rouge", "rouge_"))})
        out[f"{arm} > {other}"] = g
    return out


def test_accuracies(rms: dict, rouge: bool = False) -> dict:
    """Each reward model's pairwise accuracy on the test questions' human preferences, and "longer
    wins" on the same pairs: a reward model no better than that rule guides by length at best. With
    `rouge` (--rm-data rouge) the token and sequence models are tested on the ROUGE-L rankings
    instead, and "longer wins" on those is `longer_wins_rouge`."""
    out = {name: rm["metrics"].get("test_pairwise_accuracy", float("nan")) for name, rm in rms.items()}
    out["longer_wins"] = rms["judge"]["metrics"].get("test_longer_wins", float("nan"))
    policy_rms = [rm for name, rm in rms.items() if name != "judge"]
    if rouge and policy_rms:
        out["longer_wins_rouge"] = policy_rms[0]["metrics"].get("test_longer_wins", float("nan"))
    return out


def accuracy_line(rms: dict, acc: dict) -> str:
    """The printed line of `test_accuracies`."""
    def pairs(name):
        return rms[name]["metrics"].get("test_pairs")

    rouge = [n for n in ("token", "seq") if n in rms] if "longer_wins_rouge" in acc else []
    human = [n for n in ("token", "seq", "judge") if n in rms and n not in rouge]
    line = (f"accuracy on the test questions' human preferences (n={pairs('judge')} pairs): "
            + ", ".join(f"{n} {acc[n]:.3f}" for n in human) + f", longer wins {acc['longer_wins']:.3f}")
    if rouge:
        line += (f"; on their ROUGE-L rankings (n={pairs(rouge[0])} pairs): "
                 + ", ".join(f"{n} {acc[n]:.3f}" for n in rouge) + f", longer wins {acc['longer_wins_rouge']:.3f}")
    return line


def summary(args, results: dict, goals: dict, rm_acc: dict, splits, t_all: float, spread: dict) -> dict:
    """The JSON line: the run's settings and machine, and each finished arm's figures."""
    import torch

    device = str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    settings = {k: getattr(args, k) for k in ("policy", "rm_backbone", "judge_backbone", "reuse_rms", "rm_data",
                                              "rm_n_train", "rm_max_length", "retrain_every", "awr_beta", "steps",
                                              "batch_size", "lr", "kl", "kl_target", "kl_gain", "entropy_coef",
                                              "samples_per_prompt", "max_new_tokens", "passage_chars", "dtype", "seed",
                                              "policy_seeds")}
    return {"bench": "feedback_round", "machine": device, "threads": args.threads, "quick": args.quick,
            "seconds": round(time.monotonic() - t_all, 1), "judge_test_accuracy": rm_acc["judge"],
            "rm_test_accuracy": rm_acc,
            "guidance_spread": spread, "settings": settings,
            "n": {**dict(zip(("train", "judge", "test"), map(len, splits))), "rm_train": args.rm_n_train or args.n_train},
            "arms": {a: {k: v for k, v in r.items() if k != "arm"} for a, r in results.items()}, "goals": goals}


# -- the round -----------------------------------------------------------------------------------
def main(argv=None) -> None:
    args = arguments(argv)
    import torch

    torch.set_num_threads(args.threads)
    t_all = time.monotonic()
    rows = qa_feedback.rows()
    splits = train_rows, judge_rows, test_rows = split_questions(rows, args)
    rm_rows = reward_model_questions(rows, args)
    arms = [a for a in args.arms.split(",") if a]
    if set(arms) - set(ARMS):
        sys.exit(f"--arms: {', '.join(sorted(set(arms) - set(ARMS)))} not among {', '.join(ARMS)}")
    if args.reuse_rms:
        check_reuse(args)
    work = Path(tempfile.mkdtemp(prefix="feedback-round-"))
    db = str(work / "round.db")
    (work / "split.json").write_text(json.dumps({k: getattr(args, k) for k in SPLIT_KEYS}))
    print(f"QA-Feedback: {len(train_rows)} policy-train ({len(rm_rows)} for the reward models), {len(judge_rows)} "
          f"judge, {len(test_rows)} test questions; "
          f"policy {args.policy}, RM backbone {args.rm_backbone}, judge {args.judge_backbone or args.rm_backbone}, "
          f"{args.steps} steps x {args.batch_size}, "
          f"lr {args.lr}, device {args.device}, {args.threads} threads", flush=True)

    t0 = time.monotonic()
    rms = reward_models(args, rm_rows, judge_rows, test_rows, work, needed_reward_models(args, arms))
    rm_acc = test_accuracies(rms, rouge=args.rm_data == "rouge")
    print(f"reward models in {time.monotonic() - t0:.0f}s; {accuracy_line(rms, rm_acc)}", flush=True)

    spread = {name: guidance_spread(args, rms[name]["path"], train_rows) for name in ("token", "seq") if name in rms}
    if spread:
        print("guidance on the preferred answers (0 = plain MLE): " + "; ".join(
            f"token RM r_t CV inside an answer, median {v['within_answer_cv_median']:.3f}" if name == "token" else
            f"sequence RM score CV across answers {v['across_answers_cv']:.3f}" for name, v in spread.items()),
            flush=True)

    def path(name: str) -> str | None:
        return rms[name]["path"] if name in rms else None

    preferred = {r["question"]: preferred_answer(args, r) for r in train_rows}
    specs = {
        "sft_preferred": (preferred, None, "rwmle", "uniform"),
        "token_wmle": (preferred, path("token"), "rwmle", "token"),
        "seq_wmle": (preferred, path("seq"), "rwmle", "sequence"),
        "token_reinforce": (None, path("token"), "reinforce", "token"),
        "seq_reinforce": (None, path("seq"), "reinforce", "sequence"),
        "sft_initial": ({r["question"]: r["prediction 1"] for r in train_rows}, None, "rwmle", "uniform"),
        "sft_corrected": ({r["question"]: qa_feedback.corrected(r) for r in train_rows if qa_feedback.corrected(r)},
                          None, "rwmle", "uniform"),
    }
    seeds = args.policy_seeds

    def evaluate(model: str) -> dict:
        mine = answers(args, model, test_rows)
        return {"answers": mine, "rouge": [qa_feedback.rouge_l(a, r["gold"]) for a, r in zip(mine, test_rows)],
                "judge": judge_scores(args, rms["judge"]["path"], test_rows, mine)}

    def figures(arm: str, of_seeds: list[int], timing: dict) -> dict:
        """An arm's row: the answers of its runs `of_seeds` against base's, with their mean ROUGE-L and length."""
        qs = [per_question[arm][s] for s in of_seeds]
        return {"arm": arm, **timing, "rouge_l": sum(sum(q["rouge"]) / len(q["rouge"]) for q in qs) / len(qs),
                "mean_words": sum(sum(len(a.split()) for a in q["answers"]) / len(q["answers"]) for q in qs) / len(qs),
                **verdicts({s: per_question[arm][s] for s in of_seeds}, per_question["base"])}

    # base once (greedy, untrained: the same for every seed); then every arm, one policy seed after the other
    t0 = time.monotonic()
    base = evaluate(policy_path(args))
    per_question: dict[str, dict[int, dict]] = {"base": {s: base for s in seeds}}
    results = {"base": figures("base", seeds[:1], {"train_s": 0.0, "total_s": round(time.monotonic() - t0, 1)})}
    runs: dict[str, dict[int, dict]] = {}  # arm -> policy seed -> that run's row
    print(f"  {'base':16s} rougeL {results['base']['rouge_l']:.3f}  words {results['base']['mean_words']:.1f}  "
          f"{results['base']['total_s']:.0f}s", flush=True)

    def record() -> str:
        """The JSON line so far, and answers.json in the work folder (after each arm, so a run stopped early
        keeps what it measured)."""
        line = json.dumps(summary(args, results, goals, rm_acc, splits, t_all, spread), default=float)
        (work / "answers.json").write_text(json.dumps(
            [{"question": r["question"], "gold": r["gold"],
              **{(a if a == "base" or len(seeds) == 1 else f"{a}@{s}"): {k: v[i] for k, v in q.items()}
                 for a, by_seed in per_question.items() for s, q in by_seed.items()
                 if a != "base" or s == seeds[0]}}
             for i, r in enumerate(test_rows)], indent=1))
        if args.json_out:
            Path(args.json_out).write_text(line + "\n")
        return line

    goals: dict = {}
    line = record()
    for seed, arm in [(s, arm) for s in seeds for arm in arms if arm != "base"]:
        run_args = argparse.Namespace(**{**vars(args), "policy_seed": seed})
        t0 = time.monotonic()
        if arm == "ilf":
            targets, info = ilf_targets(run_args, train_rows, db, path("token") or "", f"ilf-data-seed{seed}")
            spec = (targets, None, "rwmle", "uniform")
        else:
            spec, info = specs[arm], {}
        targets, rm_path, method, guidance = spec
        use = [r for r in train_rows if targets is None or r["question"] in targets]
        name = arm if len(seeds) == 1 else f"{arm}-seed{seed}"
        model, m = train_arm(run_args, name, use, targets, rm_path, method, guidance, db, work)
        info.update(first_loss=m["first_loss"], last_loss=m["last_loss"], train_rows=len(use))
        if m.get("reward_retrained"):  # the spread of the reward model as the arm left it
            info.update(reward_retrained=m["reward_retrained"],
                        retrained_spread=guidance_spread(args, str(Path(model) / "reward_model"), train_rows))
        if method == "reinforce":  # how far the policy moved from the start, and the KL weight at the end
            info.update(last_kl=m["last_kl"], last_kl_coef=m["last_kl_coef"])
        train_s = time.monotonic() - t0
        per_question.setdefault(arm, {})[seed] = evaluate(model)
        row = figures(arm, [seed], {"train_s": round(train_s, 1), "total_s": round(time.monotonic() - t0, 1)})
        runs.setdefault(arm, {})[seed] = {k: v for k, v in {**row, **info}.items() if k != "arm"}
        print(f"  {arm:16s} {f'seed {seed}  ' if len(seeds) > 1 else ''}win {row['win_rate']:.3f} "
              f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}] (w{row['wins']}/l{row['losses']}/t{row['ties']})  "
              f"rougeL {row['rouge_l']:.3f}  (ROUGE-L win {row['rouge_win_rate']:.3f})  "
              f"words {row['mean_words']:.1f}  longer-wins {row['length_judge_win_rate']:.2f}  "
              f"{row['total_s']:.0f}s", flush=True)
        if len(seeds) == 1:
            results[arm] = {"arm": arm, **runs[arm][seed]}
        else:  # pooled over the seeds run so far, each seed's own row beside
            timing = {k: round(sum(r[k] for r in runs[arm].values()), 1) for k in ("train_s", "total_s")}
            results[arm] = {**figures(arm, list(runs[arm]), timing), "per_seed": runs[arm]}
        goals = head_to_head(per_question)
        line = record()

    several = len(seeds) > 1
    if several:
        print(f"\nPooled over the policy seeds {','.join(map(str, seeds))} (the same split and reward models): each "
              "win rate over all decided (question, seed) pairs, its 95% interval by a bootstrap over the test "
              "questions; ROUGE-L and words are the seeds' means.")

    def per_seed(arm: str, key: str) -> str:
        return " / ".join(f"{r[key]:.2f}" for r in results[arm].get("per_seed", {}).values()) or "-"

    print("\n| arm | judge win rate vs base (95% CI) | W/L/T | ROUGE-L | ROUGE-L win vs base (95% CI) | mean words "
          "| length-judge win | train s |" + (" judge win per seed | ROUGE-L win per seed |" if several else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|---|" if several else ""))
    for arm, r in results.items():
        print(f"| {arm} | {r['win_rate']:.3f} ({r['ci_low']:.2f}–{r['ci_high']:.2f}) | {r['wins']}/{r['losses']}/"
              f"{r['ties']} | {r['rouge_l']:.3f} | {r['rouge_win_rate']:.3f} ({r['rouge_ci_low']:.2f}–"
              f"{r['rouge_ci_high']:.2f}) | {r['mean_words']:.1f} | {r['length_judge_win_rate']:.2f} | "
              f"{r['train_s']:.0f} |" + (f" {per_seed(arm, 'win_rate')} | {per_seed(arm, 'rouge_win_rate')} |"
                                          if several else ""))
    if goals:
        print("\nThe goals, head to head on the same test questions (win rate over the questions whose answers "
              "differ; the gap in win rate against base, in points):\n")
        print("| goal | judge win (95% CI) | W/L/T | judge gap vs base | judge win, lengths within "
              f"{MATCHED_WORDS} words (W/L) | longer answer W/L | ROUGE-L win (95% CI) | ROUGE-L gap vs base |")
        print("|---|---|---|---|---|---|---|---|")
        for goal, g in goals.items():
            print(f"| {goal} | {g['win_rate']:.3f} ({g['ci_low']:.2f}–{g['ci_high']:.2f}) | {g['wins']}/{g['losses']}/"
                  f"{g['ties']} | {g['judge_gap_points']:+.1f} | {g['matched_win_rate']:.3f} ({g['matched_wins']}/"
                  f"{g['matched_losses']}) | {g['length_judge_wins']}/{g['length_judge_losses']} | "
                  f"{g['rouge_win_rate']:.3f} ({g['rouge_ci_low']:.2f}–{g['rouge_ci_high']:.2f}) | "
                  f"{g['rouge_gap_points']:+.1f} |")
    print(line)
    if args.keep:
        print(f"models and the round's database kept in {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
