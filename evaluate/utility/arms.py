"""The training set of each utility arm: which (user, item) rows the recommender sees, and their weights.

Arms (the issue's letters); every arm holds all real training rows, weight 1, plus:
    a  nothing else                                   real only
    b  gated tail augmentation rows (`gen.augment`)   share S of the tail's real training count requested
    c  ungated tail rows (`gen.augment(gate=False)`), a seeded subsample of exactly as many rows as (b)
    d  real tail rows duplicated to the same count: whole copies, then a seeded draw without replacement
    e  no extra rows: real tail rows weighted 1 + added / tail rows, the same total weight as (d)
    f  (a)'s rows: the cold-start items have none, so a pure CF model cannot rank them
    g  (a)'s rows; cold-start items get factors mapped from their features (`utility_model.content_factors`)
    h  synthetic rows for the cold-start items (`gen.cold_start`)
    i  (b)'s gated tail rows, and the real tail rows weighted as in (e): our rows + confidence weights
"added" - the count (b), (c), (d) and (e) add - is what (b) emitted; when (b) is unavailable or emitted
nothing, the requested count (share x tail rows) for (d) and (e), and (c) is not run.

Generated rows carry real user and item ids. Rows of ids the frame does not index are dropped and counted;
so are rows for the wrong kind of item (augmentation rows for anything but warm tail items, cold-start rows
for anything but the cold-start items), so each arm holds only what it claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailsynth.evaluate.utility.data import UtilityData

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle

ORIGINS = ("real", "duplicate", "gated", "ungated", "cold_synthetic")
"""What a training row is; `TrainingSet.origin` holds positions in this tuple."""
REAL, DUPLICATE, GATED, UNGATED, COLD_SYNTHETIC = range(len(ORIGINS))
ARMS = {
    "a": "real only",
    "b": "real + gated tail augmentation",
    "c": "real + ungated tail rows (same count as b)",
    "d": "real + tail oversampling (same count)",
    "e": "real, tail confidence up-weighted (same total)",
    "f": "real only, cold items unscored",
    "g": "real + content mapping for cold items",
    "h": "real + synthetic cold-start rows",
    "i": "real + gated tail rows + tail confidence weights",
}


SHOWN_FAILURES = 5
"""Refusal messages of a generation call kept in utility.json (the count says how many there were)."""


class AugmentUnavailable(RuntimeError):
    """gen.augment is not in this installation: arms (b) and (c) cannot run."""


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """One arm's training rows: positions in the frame's users / items, weights and where each row came from."""

    users: np.ndarray
    """int64 [rows]"""
    items: np.ndarray
    """int64 [rows]"""
    weights: np.ndarray
    """float32 [rows]: ALS confidence added by the row."""
    origin: np.ndarray
    """int8 [rows]: position in ORIGINS."""
    real_row: np.ndarray
    """int64 [rows]: the real training row a real or duplicated row is (its position); -1 if generated."""

    def counts(self) -> dict[str, int]:
        """Rows per origin (all ORIGINS listed)."""
        return {name: int(n) for name, n in zip(ORIGINS, np.bincount(self.origin, minlength=len(ORIGINS)))}

    def matrix(self, n_users: int, n_items: int) -> sp.csr_matrix:
        """float32 [users, items]: summed weights per pair, the recommender's input."""
        matrix = sp.csr_matrix((self.weights, (self.users, self.items)), shape=(n_users, n_items), dtype=np.float32)
        matrix.sum_duplicates()
        return matrix


def real_only(data: UtilityData) -> TrainingSet:
    n = len(data.train_users)
    return TrainingSet(data.train_users, data.train_items, np.ones(n, dtype=np.float32),
                       np.full(n, REAL, dtype=np.int8), np.arange(n, dtype=np.int64))


def with_rows(data: UtilityData, rows: pd.DataFrame, origin: int, allowed_items: np.ndarray,
              columns: tuple[str, str], keep: int | None = None,
              rng: np.random.Generator | None = None) -> tuple[TrainingSet, dict[str, int]]:
    """Real rows + generated `rows` (user id, item id `columns`) for items in bool mask `allowed_items`.

    keep: take a seeded subsample of exactly this many of the usable rows (`rng` required); ValueError
    when fewer are usable. Returns the set and the counts of rows given, dropped and added.
    """
    users, items = data.positions(rows[columns[0]], rows[columns[1]])
    known = (users >= 0) & (items >= 0)
    usable = known & allowed_items[np.where(items >= 0, items, 0)]
    chosen = np.flatnonzero(usable)
    if keep is not None:
        if keep > len(chosen):
            raise ValueError(f"asked to keep {keep} generated rows, only {len(chosen)} are usable")
        chosen = np.sort(rng.choice(chosen, size=keep, replace=False))
    stats = {"given": len(rows), "dropped_unknown_id": int((~known).sum()),
             "dropped_wrong_item": int((known & ~usable).sum()), "added": len(chosen)}
    return _extend(real_only(data), users[chosen], items[chosen], np.ones(len(chosen), dtype=np.float32),
                   origin, np.full(len(chosen), -1, dtype=np.int64)), stats


def oversampled(data: UtilityData, added: int, rng: np.random.Generator) -> TrainingSet:
    """Real rows + `added` duplicates of real tail rows: whole copies first, the remainder drawn at random."""
    tail = np.flatnonzero(tail_rows(data))
    if len(tail) == 0:
        raise ValueError("tail oversampling: the training rows hold no tail item")
    copies, rest = divmod(added, len(tail))
    picked = np.concatenate([np.tile(tail, copies), np.sort(rng.choice(tail, size=rest, replace=False))])
    return _extend(real_only(data), data.train_users[picked], data.train_items[picked],
                   np.ones(len(picked), dtype=np.float32), DUPLICATE, picked)


def tail_weighted(data: UtilityData, added: int) -> TrainingSet:
    """Real rows, tail rows weighted 1 + added / tail rows: total weight = rows + added, as in (d)."""
    base = real_only(data)
    tail = tail_rows(data)
    if not tail.any():
        raise ValueError("tail weighting: the training rows hold no tail item")
    weights = np.where(tail, 1.0 + added / tail.sum(), 1.0).astype(np.float32)
    return TrainingSet(base.users, base.items, weights, base.origin, base.real_row)


def rows_and_weights(data: UtilityData, gated: TrainingSet, added: int) -> TrainingSet:
    """(b)'s training set with its real tail rows weighted 1 + added / tail rows, as (e) weights them."""
    tail = tail_rows(data)
    if not tail.any():
        raise ValueError("tail weighting: the training rows hold no tail item")
    real = gated.origin == REAL
    weights = gated.weights.copy()
    weights[real] = np.where(tail[gated.real_row[real]], 1.0 + added / tail.sum(), 1.0)
    return TrainingSet(gated.users, gated.items, weights.astype(np.float32), gated.origin, gated.real_row)


def tail_rows(data: UtilityData) -> np.ndarray:
    """bool [train rows]: real training rows of tail items (the last bucket)."""
    return data.item_group[data.train_items] == data.tail


def warm_tail_items(data: UtilityData) -> np.ndarray:
    """bool [items]: the warm items of the tail bucket, the only items augmentation rows may be for."""
    return (data.item_group == data.tail) & ~data.cold


def augment_request(data: UtilityData, share: float) -> dict[str, Any]:
    """Rows per tail item that request `share` x the tail's real training rows in all (at least 1 each)."""
    if not share > 0:
        raise ValueError(f"share: expected a positive fraction of the tail's real rows, got {share}")
    tail = tail_rows(data)
    items = int(np.unique(data.train_items[tail]).size)
    per_item = max(1, round(share * tail.sum() / max(items, 1)))
    return {"share": share, "tail_rows": int(tail.sum()), "tail_items": items, "per_item": per_item,
            "target_rows": round(share * tail.sum())}


def augment_rows(bundle: Bundle, bucket: str, per_item: int, seed: int,
                 gate: Any) -> tuple[pd.DataFrame | None, dict]:
    """`gen.augment` rows for the bundle's `bucket` items: (rows or None, a summary of its report)."""
    from tailsynth import gen

    try:
        augment = gen.augment
    except AttributeError:
        raise AugmentUnavailable("gen.augment is not available in this installation: arms b and c need it") from None
    result = augment(bundle, bucket=bucket, per_item=per_item, seed=seed, gate=gate, progress=False)
    return result.rows, _said(result)


def cold_rows(bundle: Bundle, data: UtilityData, per_item: int | str, seed: int,
              gate: Any) -> tuple[pd.DataFrame | None, dict]:
    """`gen.cold_start` rows for the frame's cold-start items, with their real features from the items table."""
    from tailsynth import gen

    item_id = bundle.role("item_id")[0]
    items = bundle.table("items")
    new_items = items[items[item_id].isin(data.items[data.n_warm:])].reset_index(drop=True)
    if len(new_items) < len(data.items) - data.n_warm:
        raise ValueError(f"{bundle.path}: the items table lacks features for some cold-start items")
    result = gen.cold_start(bundle, new_items, per_item=per_item, bucket=data.tail, seed=seed, gate=gate,
                            progress=False)
    return result.rows, _said(result)


def _said(result: Any) -> dict[str, Any]:
    """What a generation result said: passed, rows emitted, verdict, the first refusal messages."""
    report = result.report if isinstance(result.report, Mapping) else {}
    failures = [f.get("message", str(f)) if isinstance(f, Mapping) else str(f) for f in report.get("failures", [])]
    return {"passed": bool(result.passed), "rows": None if result.rows is None else len(result.rows),
            "verdict": report.get("verdict"), "failures": failures[:SHOWN_FAILURES],
            "failures_total": len(failures)}


def held_out_hits(data: UtilityData, training: TrainingSet) -> dict[str, float] | None:
    """How often generated rows name a (user, item) pair that is in fact held out, against random users.

    A diagnostic of taste, read after the fact (it never selects rows): `hits` generated rows whose pair is a
    scored held-out pair; `chance` the hits expected if each row's user were drawn uniformly from all users
    (per row: the item's held-out users / users); `lift` = hits / chance. Heavy buyers hold more held-out
    pairs of every item, so `activity_chance` / `activity_lift` draw the user in proportion to their real
    training rows instead: lift above 1 there is taste, not only a preference for busy users. None when the
    set has no generated rows.
    """
    generated = np.flatnonzero(training.real_row < 0)
    if generated.size == 0:
        return None
    row_of_user = np.full(len(data.users), -1, dtype=np.int64)
    row_of_user[data.eval_users] = np.arange(len(data.eval_users))
    rows, items = row_of_user[training.users[generated]], training.items[generated]
    known = rows >= 0
    hits = int(np.asarray(data.relevant[rows[known], items[known]]).ravel().sum())
    users_per_item = np.asarray(data.relevant.sum(axis=0)).ravel()
    chance = float(users_per_item[items].sum() / len(data.users))
    activity = np.bincount(data.train_users, minlength=len(data.users)).astype(np.float64)
    activity_per_item = np.asarray(data.relevant.T @ activity[data.eval_users]).ravel() / activity.sum()
    by_activity = float(activity_per_item[items].sum())
    return {"rows": int(generated.size), "hits": hits, "chance": chance, "lift": hits / chance if chance else None,
            "activity_chance": by_activity, "activity_lift": hits / by_activity if by_activity else None}


def _extend(base: TrainingSet, users: np.ndarray, items: np.ndarray, weights: np.ndarray, origin: int,
            real_row: np.ndarray) -> TrainingSet:
    return TrainingSet(
        np.concatenate([base.users, users]).astype(np.int64), np.concatenate([base.items, items]).astype(np.int64),
        np.concatenate([base.weights, weights]).astype(np.float32),
        np.concatenate([base.origin, np.full(len(users), origin, dtype=np.int8)]),
        np.concatenate([base.real_row, real_row]).astype(np.int64),
    )
