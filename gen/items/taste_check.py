"""The gate's taste test (issue 19, part 5), and the validation split the chooser's defaults were chosen on.

From the TRAINING interactions only (never the bundle's held-out rows), `validation_split` sets aside two
sets of warm items and refits the taste space and the content predictor without what they hide:
- pseudo-cold: items whose every training row is hidden; their vectors are the content prediction alone
  (the predictor refitted on the remaining warm items, so an item is never its own neighbour);
- pseudo-tail: items thinned to `TAIL_ROWS` training rows (drawn at random); their vectors blend what is
  left of their own with the content prediction, as a real tail item's do.
The hidden rows are the held-out pairs. `validation_lift` chooses users for both sets with `choose_users`
and scores them with `evaluate.measures.taste.pair_lift` against activity-weighted random users.
`check_taste` is the gate's verdict: below `MIN_LIFT` on the set that matches the request (pseudo-tail for
existing items, pseudo-cold for new ones) nothing is emitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from tailsynth.evaluate.measures.taste import pair_lift
from tailsynth.gen.items.taste_users import NEIGHBOURS, Evidence, TasteSettings, choose_users
from tailsynth.models.content_taste import ContentTaste
from tailsynth.models.taste import TasteSpace, fit_taste_space

MIN_LIFT = 3.0
"""Generated pairs must hit held-out pairs at least 3x as often as activity-weighted random users."""
VALIDATION_ITEMS = 200
"""Items per validation set (fewer when the data has fewer eligible items, see `HIDDEN_SHARE`)."""
HIDDEN_SHARE = 0.1
"""Each validation set takes at most this share of the warm items: hiding more would refit the space on
too little (on the tiny data, 126 of 260 items held 77% of the training pairs)."""
MIN_ROWS = 6
"""Fewest distinct training buyers an item needs to be a validation item (something left to find)."""
TAIL_ROWS = 3
"""Training buyers a pseudo-tail item keeps."""


@dataclass(frozen=True)
class ValidationSet:
    """One set of validation items in the refitted space: vectors [n, k], held-out and owned pairs."""

    name: str
    vectors: torch.Tensor
    heldout: tuple[np.ndarray, np.ndarray]
    """(item 0..n-1, user position in the refitted space)."""
    owned: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ValidationSplit:
    space: TasteSpace
    """Refitted on the training pairs less the hidden ones."""
    sets: dict[str, ValidationSet]
    evidence: Evidence
    info: dict[str, Any]


def validation_split(users: np.ndarray, items: np.ndarray, *, dim: int, seed: int,
                     content: ContentTaste | None = None, items_table: pd.DataFrame | None = None,
                     n_items: int = VALIDATION_ITEMS, neighbours: int = NEIGHBOURS,
                     device: str | torch.device = "cpu") -> ValidationSplit:
    """users / items [n]: the training interactions' ids. `content` (the bundle's predictor, for its
    settings) and `items_table` (item id + content columns): without them pseudo-cold is skipped and
    pseudo-tail items keep their own thinned vector."""
    user_ids, user_rows = np.unique(np.asarray(users), return_inverse=True)
    item_ids, item_rows = np.unique(np.asarray(items), return_inverse=True)
    pairs = np.unique(item_rows.astype(np.int64) * len(user_ids) + user_rows)
    pair_item, pair_user = pairs // len(user_ids), pairs % len(user_ids)
    buyers = np.bincount(pair_item, minlength=len(item_ids))
    rng = np.random.default_rng(seed)
    eligible = rng.permutation(np.flatnonzero(buyers >= MIN_ROWS))
    take = min(n_items, len(eligible) // 2, max(1, int(HIDDEN_SHARE * len(item_ids))))
    cold_items = np.sort(eligible[:take]) if content is not None and items_table is not None else np.zeros(0, np.int64)
    tail_items = np.sort(eligible[take:2 * take])
    # Hidden pairs: all of a pseudo-cold item's, all but TAIL_ROWS random ones of a pseudo-tail item's.
    shuffled = rng.permutation(len(pairs))
    order = shuffled[np.argsort(pair_item[shuffled], kind="stable")]
    rank = np.empty(len(pairs), np.int64)
    rank[order] = np.arange(len(pairs)) - np.searchsorted(pair_item[order], pair_item[order])
    hidden = np.isin(pair_item, cold_items) | (np.isin(pair_item, tail_items) & (rank >= TAIL_ROWS))
    fit_users, fit_items = user_ids[pair_user[~hidden]], item_ids[pair_item[~hidden]]
    space = fit_taste_space(fit_users, fit_items, dim=dim, seed=seed, device=device)
    refit = None
    if content is not None and items_table is not None and len(cold_items):
        refit = ContentTaste.fit(items_table, content.item_column, list(content.features.feature_columns),
                                 content.features.text_column, space, seed, method=content.method,
                                 neighbours=content.neighbours, blend=content.blend, pairs=(fit_users, fit_items),
                                 device=device)
    sets = {}
    for name, members in (("pseudo_cold", cold_items), ("pseudo_tail", tail_items)):  # two sets
        if len(members) == 0:
            continue
        sets[name] = _set(name, members, item_ids, user_ids, pair_item, pair_user, hidden, space, refit,
                          items_table)
    evidence = Evidence.fit(space, space.user_positions(fit_users), space.item_positions(fit_items), neighbours)
    info = {"rule": (f"from the training interactions only: {take} warm items with >= {MIN_ROWS} buyers hidden "
                     f"whole (pseudo-cold, content-predicted vectors) and {take} thinned to {TAIL_ROWS} buyers "
                     "(pseudo-tail, blended vectors); taste space and content predictor refitted without the "
                     "hidden pairs, which are the held-out pairs"),
            "items": {name: int(len(s.vectors)) for name, s in sets.items()},
            "hidden_pairs": int(hidden.sum()), "fit_pairs": int((~hidden).sum())}
    return ValidationSplit(space, sets, evidence, info)


def _set(name: str, members: np.ndarray, item_ids: np.ndarray, user_ids: np.ndarray, pair_item: np.ndarray,
         pair_user: np.ndarray, hidden: np.ndarray, space: TasteSpace, content: ContentTaste | None,
         items_table: pd.DataFrame | None) -> ValidationSet:
    """Vectors, held-out and owned pairs of one set (items renumbered 0..len(members)-1)."""
    code = np.full(len(item_ids), -1, np.int64)
    code[members] = np.arange(len(members))
    ids = item_ids[members]
    mine = code[pair_item] >= 0
    positions = space.user_positions(user_ids[pair_user])
    known = positions >= 0
    held = mine & hidden & known
    owned = mine & ~hidden & known
    counts = np.bincount(code[pair_item[owned]], minlength=len(members))
    if content is None:
        at = space.item_positions(ids)
        vectors = torch.zeros(len(members), space.dim)
        vectors[torch.as_tensor(at >= 0)] = space.item_vectors[torch.as_tensor(at[at >= 0], dtype=torch.long)]
    else:
        table = content_rows(content, ids, items_table)
        usable = content.features_known(table) | (space.item_positions(ids) >= 0)
        vectors = torch.zeros(len(members), space.dim)
        if usable.any():
            vectors[torch.as_tensor(usable)] = content.vectors_for(table[usable], counts[usable])
    return ValidationSet(name, vectors, (code[pair_item[held]], positions[held]),
                         (code[pair_item[owned]], positions[owned]))


def content_rows(content: ContentTaste, ids: np.ndarray, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per id with the predictor's content columns (from `table`, else the predictor's fit table is
    unknown: nulls), in `ids`' order; columns a table lacks are nulls (they then contribute nothing)."""
    columns = [*content.features.feature_columns, *([content.features.text_column]
                                                     if content.features.text_column else [])]
    out = pd.DataFrame({content.item_column: ids})
    if table is None:
        for column in columns:
            out[column] = None
        return out
    key = table[content.item_column].astype(str)
    at = pd.Index(key).get_indexer(pd.Index(pd.Series(ids).astype(str)))
    for column in columns:
        values = table[column].to_numpy(dtype=object) if column in table.columns else np.full(len(table), None)
        out[column] = np.where(at >= 0, values[np.maximum(at, 0)] if len(table) else None, None)
    return out


def validation_lift(split: ValidationSplit, settings: TasteSettings, rows_per_item: int, seed: int,
                    device: str | torch.device = "cpu", offsets: np.ndarray | None = None) -> dict[str, dict]:
    """pair_lift of the users `choose_users` picks for each validation set: rows_per_item x shortlist per
    item, all of them scored (the generated features' pick among a shortlist is not made here). offsets
    [refitted space users]: the call's prior log-weights (`TasteUsers.match`)."""
    out = {}
    for name, one in split.sets.items():  # two sets
        generator = torch.Generator(device=device).manual_seed(seed)
        choice = choose_users(one.vectors, np.full(len(one.vectors), rows_per_item * settings.shortlist), split.space,
                              owned=one.owned,
                              settings=settings, evidence=split.evidence, offsets=offsets, generator=generator,
                              device=device)
        out[name] = pair_lift(choice.users, choice.items, one.heldout[1], one.heldout[0], split.space.user_activity,
                              len(split.space.user_ids), seed, owned_users=one.owned[1], owned_items=one.owned[0])
    return out


@dataclass(frozen=True)
class TasteCheck:
    """The gate's taste verdict (strict-JSON-able through `plain`)."""

    passed: bool
    judged: str | None
    """The validation set the verdict reads ("pseudo_tail" / "pseudo_cold"), None when none could be built."""
    lifts: dict[str, dict]
    info: dict[str, Any]
    message: str | None
    min_lift: float = MIN_LIFT

    @property
    def lift(self) -> float | None:
        return None if self.judged is None else self.lifts[self.judged]["lift"]

    def plain(self) -> dict[str, Any]:
        return {"passed": self.passed, "judged": self.judged, "lift": self.lift, "min_lift": self.min_lift,
                "validation": self.lifts, "split": self.info, "message": self.message}


def check_taste(split: ValidationSplit, settings: TasteSettings, *, new_items: bool, rows_per_item: int, seed: int,
                min_lift: float = MIN_LIFT, device: str | torch.device = "cpu",
                offsets: np.ndarray | None = None) -> TasteCheck:
    """Lift on both validation sets; the verdict reads pseudo-cold for new items, pseudo-tail for existing
    ones (pseudo-tail when there is no content predictor). offsets: see `validation_lift`."""
    lifts = validation_lift(split, settings, rows_per_item, seed, device, offsets)
    judged = "pseudo_cold" if new_items and "pseudo_cold" in lifts else ("pseudo_tail" if "pseudo_tail" in lifts
                                                                         else None)
    info = {**split.info, "settings": settings.plain(), "rows_per_item": rows_per_item,
            "mix_offsets": offsets is not None}
    if judged is None:
        return TasteCheck(False, None, lifts, info, "taste: no validation items (no warm item has "
                                                    f">= {MIN_ROWS} buyers); the users' taste cannot be checked",
                          min_lift)
    lift = lifts[judged]["lift"]
    if lift is None or lift < min_lift:
        shown = "none (no held-out pair had a chance)" if lift is None else f"{lift:.2f}x"
        return TasteCheck(False, judged, lifts, info,
                          f"taste: the users chosen for {lifts[judged]['items']} {judged.replace('_', '-')} "
                          f"validation items hit their hidden real pairs {shown} as often as activity-weighted "
                          f"random users (needed >= {min_lift:g}x); nothing emitted", min_lift)
    return TasteCheck(True, judged, lifts, info, None, min_lift)
