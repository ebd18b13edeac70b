"""Taste of generated interactions: do the generated (user, item) pairs name users who really take the item?

`pair_lift` compares the share of generated pairs found among held-out real pairs of the same items with
the share expected of users drawn at random in proportion to their activity -- the strongest rule that
knows nothing of the item (a heavy buyer is more likely to buy anything). Lift 1 is chance; the gate asks
for 3 (issue 19, part 5). Pure: numpy only, no I/O; users are positions 0..n_users-1, items any integers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NAME = "pair_lift"
DIRECTION = "maximize"
BOOTSTRAP = 200
"""Resamples of the items for the lift's 95% interval."""


def pair_lift(
    generated_users: np.ndarray,
    generated_items: np.ndarray,
    heldout_users: np.ndarray,
    heldout_items: np.ndarray,
    user_activity: np.ndarray,
    n_users: int,
    seed: int,
    *,
    owned_users: np.ndarray | None = None,
    owned_items: np.ndarray | None = None,
) -> dict[str, Any]:
    """Hit rate of the generated pairs against held-out pairs, over the rate of activity-weighted random users.

    generated_* [m], heldout_* [h], owned_* [o]: (user, item) pairs; user_activity [n_users] >= 0.
    Only items with at least one held-out pair count (a pair of another item can never be a hit, for any
    rule). hit_rate = share of their generated pairs that are held-out pairs (held-out pairs deduplicated).
    random_rate, exactly: each generated pair of item i is a hit with probability
    sum over the held-out buyers of i of p(u), p proportional to activity over the users who do not own i
    in training (`owned_*`: the chooser may not pick them either), weighted by the item's generated pairs.
    lift = hit_rate / random_rate; `interval`: the 2.5% / 97.5% quantiles of the lift over items resampled
    with replacement (`BOOTSTRAP` times, seeded).
    """
    generated_users, generated_items = np.asarray(generated_users, np.int64), np.asarray(generated_items, np.int64)
    heldout_users, heldout_items = np.asarray(heldout_users, np.int64), np.asarray(heldout_items, np.int64)
    activity = np.asarray(user_activity, dtype=np.float64)
    if activity.shape != (n_users,):
        raise ValueError(f"pair_lift: user_activity of shape {activity.shape}, expected ({n_users},)")
    if len(generated_users) != len(generated_items) or len(heldout_users) != len(heldout_items):
        raise ValueError("pair_lift: users and items of a pair set must have the same length")
    items, item_codes = np.unique(heldout_items, return_inverse=True)
    held_keys = np.unique(item_codes.astype(np.int64) * n_users + heldout_users)
    held_code, held_user = held_keys // n_users, held_keys % n_users
    owned_keys = np.zeros(0, np.int64)
    if owned_users is not None and owned_items is not None:
        owned_code = _codes(items, np.asarray(owned_items, np.int64))
        known = owned_code >= 0
        owned_keys = np.unique(owned_code[known] * n_users + np.asarray(owned_users, np.int64)[known])
    # Per item: the activity of its held-out buyers who do not own it, and the activity of its owners.
    fresh = ~np.isin(held_keys, owned_keys)
    buyer_mass = np.bincount(held_code[fresh], weights=activity[held_user[fresh]], minlength=len(items))
    owner_mass = np.bincount(owned_keys // n_users, weights=activity[owned_keys % n_users], minlength=len(items))
    free_mass = activity.sum() - owner_mass
    chance = np.divide(buyer_mass, free_mass, out=np.zeros(len(items)), where=free_mass > 0)

    generated_code = _codes(items, generated_items)
    counted = generated_code >= 0
    keys = generated_code[counted] * n_users + generated_users[counted]
    pairs = np.bincount(generated_code[counted], minlength=len(items)).astype(np.float64)
    hits = np.bincount(generated_code[counted], weights=np.isin(keys, held_keys), minlength=len(items))
    hit_rate, random_rate = _rates(pairs, hits, chance)
    rng = np.random.default_rng(seed)
    used = np.flatnonzero(pairs > 0)
    interval = None
    if used.size and random_rate > 0:
        weights = rng.multinomial(used.size, np.full(used.size, 1.0 / used.size), size=BOOTSTRAP).astype(np.float64)
        boot_hits = weights @ hits[used]
        boot_random = weights @ (pairs[used] * chance[used])
        lifts = np.divide(boot_hits, boot_random, out=np.zeros(BOOTSTRAP), where=boot_random > 0)
        interval = [float(np.quantile(lifts, 0.025)), float(np.quantile(lifts, 0.975))]
    return {"hit_rate": hit_rate, "random_rate": random_rate,
            "lift": hit_rate / random_rate if random_rate > 0 else None, "interval": interval,
            "pairs": int(pairs.sum()), "hits": int(hits.sum()), "items": int(used.size)}


def _codes(items: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the sorted `items` (-1: not one of them)."""
    at = np.searchsorted(items, values)
    at = np.minimum(at, max(len(items) - 1, 0))
    found = (len(items) > 0) & (items[at] == values) if len(items) else np.zeros(len(values), dtype=bool)
    return np.where(found, at, -1).astype(np.int64)


def _rates(pairs: np.ndarray, hits: np.ndarray, chance: np.ndarray) -> tuple[float, float]:
    total = pairs.sum()
    if total == 0:
        return 0.0, 0.0
    return float(hits.sum() / total), float((pairs * chance).sum() / total)
