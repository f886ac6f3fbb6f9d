"""ILF steps 5 and 6: review the selected refinements and turn the chosen ones into datasets.

    review:  a person accepts the selected refinement, picks another, or edits one (the store);
             `review_queue`, `refinement_rows` and `review_choices` are what the Review page lists,
             shows and offers (never a baseline made without the critique)
    dataset: sft      context -> refinement
             feedback context + x0 -> feedback + refinement
             from the accepted refinements (or also the selected ones nobody reviewed yet)

Nothing here touches SQL: the store does.
"""

from __future__ import annotations

from training.errors import ValidationError
from training.ilf.config import DatasetConfig
from training.ilf.templates import fill, item_fields, load_templates


def chosen_refinement(item, include: str = "accepted"):
    """The refinement a dataset uses for a critique: the accepted one; with include='selected'
    the selected one of a critique nobody has reviewed yet. None when there is none."""
    acc = item.accepted
    if acc is not None and acc.variant != BASELINE_VARIANT:  # (one accepted before baselines were refused)
        return acc
    sel = item.selected
    if include == "selected" and not item.reviewed and sel is not None and sel.variant != BASELINE_VARIANT:
        return sel
    return None


def build_dataset(store, project, variant: str = "sft", include: str = "accepted") -> list[dict]:
    """ILF finetuning rows {prompt, completion, critique_id, refinement_id, document_id}.

    sft: context -> refinement; feedback: context + output -> feedback + refinement.
    """
    DatasetConfig(variant=variant, include=include)  # refuses a bad value, naming the field
    p = store.get_project(project)
    t = load_templates(p)
    ds = t["dataset"]
    rows = []
    for it in store.critique_items(p.id):
        r = chosen_refinement(it, include)
        if r is None:
            continue
        f = {**item_fields(it, t, p.kind, max_text_chars=10**9, context_fields=p.context_fields),
             "refinement": r.text}
        rows.append({
            "prompt": fill(ds[f"{variant}_prompt"], f, f"dataset.{variant}_prompt"),
            "completion": fill(ds[f"{variant}_completion"], f, f"dataset.{variant}_completion"),
            "critique_id": it.critique.id, "refinement_id": r.id, "document_id": it.document.id,
        })
    if not rows:
        what = "accepted" if include == "accepted" else "accepted or selected"
        raise ValidationError(f"project {p.name!r} has no {what} refinements yet; refine and select, then "
                              "review them on the Review page"
                              + (" (or take the selected ones unreviewed: tokenwise ilf build --include selected, "
                                 "or the ILF build job's include setting)" if include == "accepted" else ""))
    return rows



# -- review (what the Review page shows) ------------------------------------------------------
# refinements sampled without the critique (refine.py's baseline_n draws): what the PMI and
# InstructRM selectors compare with, shown to a reviewer but never a choice
BASELINE_VARIANT = "no_feedback"


def review_queue(store, project, user, *, everyone: bool = False, unreviewed_only: bool = True) -> list:
    """Critiques with model refinements that `user` may review: their own; every annotator's for
    an admin who asks for `everyone`. Unreviewed ones first, then by id."""
    items = store.critique_items(project, annotator=None if (everyone and user.is_admin) else user)
    items = [it for it in items if it.refinements and not (unreviewed_only and it.reviewed)]
    return sorted(items, key=lambda it: (it.reviewed, it.critique.id))


def hidden_from_queue(store, project, user, *, everyone: bool = False, unreviewed_only: bool = True) -> dict:
    """How many more critiques the queue would list with the Review page's toggles set otherwise:
    {"unreviewed": with "Only unreviewed" off, "everyone": with an admin's "Every annotator's
    critiques" on, "both": with both}, for the toggles that would change (an empty dict if none)."""
    def count(ev: bool, un: bool) -> int:
        return len(review_queue(store, project, user, everyone=ev, unreviewed_only=un))

    shown = count(everyone, unreviewed_only)
    other_states = {"unreviewed": (everyone, False) if unreviewed_only else None,
                    "everyone": (True, unreviewed_only) if user.is_admin and not everyone else None,
                    "both": (True, False) if user.is_admin and not everyone and unreviewed_only else None}
    return {name: count(*state) - shown for name, state in other_states.items() if state is not None}


def review_choices(item) -> list:
    """The refinements a reviewer may accept: every one but the baselines made without the critique."""
    return [r for r in item.refinements if r.variant != BASELINE_VARIANT]


def default_choice(choices) -> int:
    """Where the choice starts: the reviewer's own (a later reselection must not pass for it), else
    the selector's, else the first. An index into `choices` (review_choices)."""
    return next((i for i, r in enumerate(choices) if r.accepted),
                next((i for i, r in enumerate(choices) if r.selected), 0))


def refinement_rows(item) -> list[dict]:
    """One display row per refinement: its text, variant (a baseline says it was made without the
    critique), scores; the selected/accepted marks. A score column no refinement of the item has is left out."""
    rows = []
    for i, r in enumerate(item.refinements, 1):
        variant = f"{r.variant} (baseline: without the critique)" if r.variant == BASELINE_VARIANT else r.variant
        row = {"#": i, "text": r.text, "variant": variant, "selected": r.selected,
               "accepted": {None: "", True: "yes", False: "no"}[r.accepted],
               "InstructRM": None if r.ensemble_score is None else round(r.ensemble_score, 3),
               "reward": None if r.rm_score is None else round(r.rm_score, 3)}
        row.update({k: round(v, 3) for k, v in r.scores.items() if isinstance(v, (int, float))})
        rows.append(row)
    empty = {k for k in ("InstructRM", "reward") if all(row[k] is None for row in rows)}
    return [{k: v for k, v in row.items() if k not in empty} for row in rows]
