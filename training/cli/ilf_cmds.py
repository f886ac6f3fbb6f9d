"""ilf refine | select | build | list: the ILF pipeline from the command line (`train sft` is in train_cmds).

    tokenwise ilf refine --db t.db --project demo --model smollm2 --n 5

Flags of refine and select are generated from their config dataclasses (training/ilf/config.py),
so the CLI and the dashboard share one set of settings and help.
"""

from __future__ import annotations

from training.cli.common import (
    add_config_flags,
    add_db,
    config_from_args,
    out_format,
    print_json,
    tqdm_progress,
)


def register(sub) -> None:
    from training.ilf.config import DatasetConfig, RefineConfig, SelectConfig

    p = sub.add_parser("ilf", help="ILF from critiques: refine, select, build a dataset")
    isub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    r = isub.add_parser("refine", help="sample refinements of each critiqued output from a refinement LM")
    add_db(r)
    r.add_argument("--project", required=True, metavar="NAME")
    r.add_argument("--critique", type=int, action="append", metavar="ID",
                   help="only this critique (repeat for several); default: every current critique")
    add_config_flags(r, RefineConfig)
    r.set_defaults(func=cmd_refine)

    s = isub.add_parser("select", help="score refinements and mark the best one per critique")
    add_db(s)
    s.add_argument("--project", required=True, metavar="NAME")
    s.add_argument("--critique", type=int, action="append", metavar="ID", help="only this critique (repeatable)")
    add_config_flags(s, SelectConfig)
    s.set_defaults(func=cmd_select)

    b = isub.add_parser("build", help="write the ILF finetuning dataset (JSONL or Parquet)")
    add_db(b)
    b.add_argument("--project", required=True, metavar="NAME")
    add_config_flags(b, DatasetConfig)
    b.add_argument("--out", required=True, metavar="FILE", help="output file")
    b.add_argument("--format", choices=["jsonl", "parquet"], default=None,
                   help="default: parquet when FILE ends in .parquet, else jsonl")
    b.set_defaults(func=cmd_build)

    ls = isub.add_parser("list", help="list critiques with their refinements and scores")
    add_db(ls)
    ls.add_argument("--project", required=True, metavar="NAME")
    ls.set_defaults(func=cmd_list)


def cmd_refine(args) -> int:
    from training.ilf.config import RefineConfig
    from training.ilf.refine import refine
    from training.store import Store

    cfg = config_from_args(RefineConfig, args)
    with Store(args.db) as s, tqdm_progress("refine") as bar:
        out = refine(s, args.project, cfg, critique_ids=args.critique, progress=bar)
    print_json(out)
    return 0


def cmd_select(args) -> int:
    from training.ilf.config import SelectConfig
    from training.ilf.select import select
    from training.store import Store

    cfg = config_from_args(SelectConfig, args)
    with Store(args.db) as s, tqdm_progress("select") as bar:
        out = select(s, args.project, cfg, critique_ids=args.critique, progress=bar)
    print_json({**out, "selected": {str(k): v for k, v in out["selected"].items()}})
    return 0


def cmd_build(args) -> int:
    from training.data.exports import write_export
    from training.ilf.config import DatasetConfig
    from training.ilf.dataset import build_dataset
    from training.store import Store

    cfg = config_from_args(DatasetConfig, args)
    fmt = out_format(args.out, args.format)
    with Store(args.db) as s:
        rows = build_dataset(s, args.project, variant=cfg.variant, include=cfg.include)
    n = write_export(rows, args.out, fmt)
    print(f"wrote {n} ilf-{cfg.variant} rows from project {args.project!r} to {args.out} ({fmt})")
    return 0


def cmd_list(args) -> int:
    from training.store import Store

    with Store(args.db) as s:
        for it in s.critique_items(args.project):
            print_json({
                "critique_id": it.critique.id, "annotator": it.annotator, "critique": it.critique.text,
                "output": it.candidate.text,
                "refinements": [{"id": r.id, "variant": r.variant, "selected": r.selected, "accepted": r.accepted,
                                 "ensemble_score": r.ensemble_score, "rm_score": r.rm_score, "scores": r.scores,
                                 "text": r.text} for r in it.refinements],
            })
    return 0
