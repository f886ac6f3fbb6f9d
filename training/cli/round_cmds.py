"""round start | list | show | close: blind A/B evaluation rounds (training/evaluation/rounds.py).

    tokenwise round start --project news --name r1 --model-a 7 --model-b smollm2 --documents 30
    tokenwise round show r1          # win rate with its 95% interval, ties, agreement, the judge
    tokenwise round close r1         # writes "preferred to X on n of m documents" to both cards

`start` queues the round's job (a worker generates both models' answers and opens the blind
project `eval-<name>` for annotators); every RoundConfig field is a flag.
"""

from __future__ import annotations

import dataclasses

from .common import add_config_flags, add_db, print_json


def register(sub) -> None:
    from training.evaluation.config import RoundConfig

    r = sub.add_parser("round", help="blind A/B evaluation rounds: two models, people rank their answers")
    rsub = r.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = rsub.add_parser("start", help="queue a round's job (answers from both models, then the blind project)")
    add_db(p)
    p.add_argument("--project", required=True, help="project whose documents the models answer")
    add_config_flags(p, RoundConfig)
    p.set_defaults(func=cmd_start)
    p = rsub.add_parser("list", help="every round with its status")
    add_db(p)
    p.set_defaults(func=cmd_list)
    for name, fn, text in (("show", cmd_show, "the round's results so far (one JSON line)"),
                           ("close", cmd_close, "close the round and write its result to both models' cards")):
        p = rsub.add_parser(name, help=text)
        add_db(p)
        p.add_argument("round", help="round name or id")
        p.set_defaults(func=fn)


def _round(s, ref: str):
    return s.get_round(int(ref) if ref.isdigit() else ref)


def cmd_start(args) -> int:
    from training.evaluation.config import RoundConfig
    from training.evaluation.rounds import start_round
    from training.store import Store

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RoundConfig)
              if getattr(args, f.name, None) is not None}
    with Store(args.db) as s:
        job = start_round(s, args.project, values)
    print(f"round queued as job {job.id}; a worker writes both models' answers, then annotators rank "
          f"project eval-{values.get('name') or f'round-{job.id}'}")
    return 0


def cmd_list(args) -> int:
    from training.store import Store

    with Store(args.db) as s:
        for r in s.list_rounds():
            print(f"{r.id}\t{r.name}\t{r.status}\tA={r.model_a}\tB={r.model_b}\t{len(r.documents)} documents")
    return 0


def cmd_show(args) -> int:
    from training.evaluation.rounds import round_results
    from training.store import Store

    with Store(args.db) as s:
        rnd = _round(s, args.round)
        res = round_results(s, rnd)
    labels = (rnd.config.get("labels") or [rnd.model_a, rnd.model_b])[:2]
    print_json({"round": rnd.name, "status": rnd.status, "a": labels[0], "b": labels[1],
                **dataclasses.asdict(res), "summary": res.summary(*labels)})
    return 0


def cmd_close(args) -> int:
    from training.evaluation.rounds import close_round
    from training.store import Store

    with Store(args.db) as s:
        rnd = close_round(s, _round(s, args.round).id)
    print(rnd.result["summary"])
    return 0
