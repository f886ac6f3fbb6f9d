"""train reward | train policy | train sft | eval reward | score.

Every field of a config dataclass is also a flag, generated from the dataclass (name, type,
default, help), so the CLI and the dashboard form never drift apart:

    tokenwise train reward --db t.db --project demo --base DIR --agg avg --out models/rm --epochs 5
    tokenwise train sft --file ilf.jsonl --base smollm2 --out models/ilf-sft

Each command shows a tqdm bar (`with tqdm_progress("...") as bar:`) that the trainer reports to.
"""

from __future__ import annotations

from pathlib import Path

from training.cli.common import add_config_flags, add_db, config_from_args, print_json, tqdm_progress
from training.errors import ValidationError
from training.forms import to_dict


def register(sub) -> None:
    from training.ilf.finetune_config import FinetuneConfig
    from training.policy.config import PolicyConfig
    from training.rewards.config import RewardConfig

    train = sub.add_parser("train", help="train a reward model, a policy, or an SFT model")
    tsub = train.add_subparsers(dest="what", required=True, metavar="WHAT")

    p = tsub.add_parser("reward", help="learn a token-level reward model from a project's rankings")
    add_db(p)
    p.add_argument("--project", required=True, help="project whose current rankings to train on")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to save the reward model into")
    p.add_argument("--activate", action="store_true", help="make it the project's active reward model")
    add_config_flags(p, RewardConfig)
    p.set_defaults(func=cmd_train_reward)

    p = tsub.add_parser("policy", help="train a policy with the token-level reward (reward-weighted MLE or REINFORCE)")
    add_db(p)
    p.add_argument("--project", required=True, help="project whose documents are the prompts")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to save the policy into")
    p.add_argument("--reward", dest="reward_model", metavar="DIR", default=None, help="reward model folder")
    add_config_flags(p, PolicyConfig, skip=("reward_model",))
    p.set_defaults(func=cmd_train_policy)

    p = tsub.add_parser("sft", help="finetune an LM on an ILF dataset (loss on the completions)")
    add_config_flags(p, FinetuneConfig)
    p.add_argument("--db", default=None, metavar="PATH",
                   help="register the checkpoint in this database's models table (with --project)")
    p.add_argument("--project", default=None, metavar="NAME", help="project the checkpoint belongs to")
    p.set_defaults(func=cmd_train_sft)

    ev = sub.add_parser("eval", help="evaluate a model on a file")
    esub = ev.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = esub.add_parser("reward", help="pairwise accuracy and Kendall tau on TRL pairs or ranking lists (one JSON line)")
    add_db(p, used=False)
    p.add_argument("--model", required=True, metavar="DIR", help="reward model folder")
    p.add_argument("--file", required=True, help="JSONL of {prompt, chosen, rejected} or ranking rows")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_eval_reward)

    p = sub.add_parser("score", help="cache per-token rewards of every candidate of a project (for heatmaps)")
    add_db(p)
    p.add_argument("--project", required=True)
    p.add_argument("--model", required=True, metavar="DIR|ID", help="reward model folder or registry id")
    p.add_argument("--batch-size", type=int, default=8, help="candidates per forward pass")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_score)


def cmd_train_reward(args) -> int:
    from training.rewards.config import RewardConfig
    from training.rewards.report import headline
    from training.rewards.scoring import score_project
    from training.rewards.trainer import train_reward
    from training.store import Store

    config = config_from_args(RewardConfig, args)
    with Store(args.db) as s:
        with tqdm_progress("reward model") as bar:
            rec = train_reward(s, args.project, config, args.out, progress=bar)
        if args.activate:
            s.update_project(args.project, active_reward_model=rec.id)
        if config.score_after:
            with tqdm_progress("scoring") as bar:
                score_project(s, rec.id, args.project, config.batch_size, bar, device=config.device)
    m = rec.metrics
    print(f"reward model {rec.id} saved to {rec.path}: {headline(m)} "
          f"({m['train_lists']} training lists, {m['val_lists']} validation, {m['test_lists']} test, "
          f"{m['train_seconds']}s)")
    return 0


def cmd_eval_reward(args) -> int:
    from training.rewards.trainer import evaluate_reward

    print_json(evaluate_reward(args.model, args.file, batch_size=args.batch_size, device=args.device))
    return 0


def cmd_score(args) -> int:
    from training.rewards.scoring import score_project
    from training.store import Store

    with Store(args.db) as s:
        model_id = _model_id(s, args.model, args.project)
        with tqdm_progress("scoring") as bar:
            n = score_project(s, model_id, args.project, args.batch_size, bar, device=args.device)
    print(f"scored {n} candidates of {args.project!r} with reward model {model_id}")
    return 0


def _model_id(s, model: str, project: str) -> int:
    """A registry id, or a folder (registered now if it is not yet)."""
    if model.isdigit():
        return s.get_model(int(model)).id
    path = Path(model).resolve()
    rec = s.find_model_by_path(str(path))
    if rec is not None:
        return rec.id
    from training.rewards.model import TokenRewardModel

    if not path.is_dir():
        raise ValidationError(f"--model: {model!r} is neither a registry id nor a folder")
    card = TokenRewardModel.read_card(path) if (path / "reward_card.json").is_file() else None
    if card is None:
        raise ValidationError(f"--model: {model!r} has no reward_card.json; is it a reward model folder?")
    return s.add_model("reward", str(path), base_model=card.get("base_model"), project=project,
                       metrics=card.get("metrics", {}), card=card).id


def cmd_train_policy(args) -> int:
    from training.policy.config import PolicyConfig
    from training.policy.trainer import train_policy
    from training.store import Store

    config = config_from_args(PolicyConfig, args, reward_model=args.reward_model)
    with Store(args.db) as s, tqdm_progress("policy") as bar:
        rec = train_policy(s, args.project, config, args.out, progress=bar)
    print(f"policy {rec.id} saved to {rec.path}: {rec.metrics.get('summary', '')}")
    return 0


def cmd_train_sft(args) -> int:
    from training.ilf.finetune import finetune
    from training.ilf.finetune_config import FinetuneConfig
    from training.store import Store

    cfg = config_from_args(FinetuneConfig, args)
    with tqdm_progress("sft") as bar:
        if args.db:
            with Store(args.db) as s:
                out = finetune(cfg, progress=bar, store=s, project=args.project)
        else:
            out = finetune(cfg, progress=bar)
    print_json({"out": out["out"], "model_id": out["model_id"], "metrics": out["metrics"],
                "config": to_dict(cfg)})
    return 0
