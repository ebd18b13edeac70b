"""Give each cold-start row a real, existing user whose features match the ones the generator produced.

The demographic rule: since issue 19 an explicit option (`users="demographic"`) and the fallback for a
bundle without a taste space; by default rows go to users chosen by taste (`gen.items.taste_users`). On the
issue's probe, pairs matched this way hit held-out pairs at chance (0.9-1.2x activity-weighted random users).

The generator emits the user side of an interaction as features (role `user_feature`, e.g. Country,
recency_days, frequency, monetary), never a user id. Each generated row is given to one user of the
bundle's users table, chosen like this:

1. Exact on categorical features: the candidates are the users whose categorical features all equal the
   row's (nulls equal nulls).
2. Nearest on numerical features: among the candidates, those at the smallest Euclidean distance over
   the numerical features, each standardised by the users table's robust scale: the interquartile range
   / 1.349 (the standard deviation of a normal with that IQR), the standard deviation when the IQR is 0,
   and 1 when both are 0. Nulls (in users or rows) are set to the users' median first.
3. Random among equals: every candidate within `tolerance` (in standardised units) of the smallest
   distance is equally likely; one is drawn with the caller's `np.random.Generator`. So rows with the
   same features spread over all equally good users instead of piling onto the first one.
4. Fallback: when no user has the row's exact categorical combination, the candidates are the users
   that differ from the row in the FEWEST categorical features (with one categorical feature: all
   users), then 2 and 3 as above. Such rows are counted as `fallback` in the stats (`exact` otherwise).

Vectorised: one loop over the categorical combinations present among the rows (tens), and distances by
`torch.cdist` in chunks of rows on the given device (float64, direct differences rather than the
matrix-product shortcut, so equal distances compare equal); never a loop over rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

IQR_TO_STD = 1.349
"""The IQR of a normal distribution in units of its standard deviation."""
CHUNK_ENTRIES = 1 << 22
"""Most row x user distance entries held at once (32 MiB of float64)."""


@dataclass(frozen=True)
class UserMatch:
    """Positions [n] (int64) into the users table, one per row, and JSON-able stats of the matching."""

    positions: np.ndarray
    stats: dict[str, Any]


def match_users(
    rows: pd.DataFrame,
    users: pd.DataFrame,
    *,
    categorical: Sequence[str],
    numerical: Sequence[str],
    rng: np.random.Generator,
    tolerance: float = 1e-6,
    device: str | torch.device | None = None,
) -> UserMatch:
    """The user (row position in `users`) each row of `rows` is given to; see the module docstring.

    rows / users: tables holding the `categorical` and `numerical` feature columns (users: [u] rows, u >= 1).
    """
    if len(users) == 0:
        raise ValueError("match_users: the users table is empty; there is no user to give rows to")
    device = torch.device(device or "cpu")
    row_keys, user_keys = _category_codes(rows, users, categorical)
    row_numbers, user_numbers, scales = _standardised(rows, users, numerical)
    uniforms = rng.random(len(rows))
    positions = np.full(len(rows), -1, dtype=np.int64)
    distance = np.zeros(len(rows))
    ties = np.zeros(len(rows), dtype=np.int64)

    combos, row_combo = np.unique(row_keys, axis=0, return_inverse=True)
    row_combo = row_combo.reshape(-1)
    user_index = {tuple(key): np.flatnonzero(np.all(user_keys == key, axis=1)) for key in combos}
    fallback = np.zeros(len(rows), dtype=bool)
    order = np.argsort(row_combo, kind="stable")
    bounds = np.searchsorted(row_combo[order], np.arange(len(combos) + 1))
    for g, key in enumerate(combos):  # categorical combinations present, not rows
        members = order[bounds[g]:bounds[g + 1]]
        candidates = user_index[tuple(key)]
        if len(candidates) == 0:
            fallback[members] = True
            continue
        pick, distance[members], ties[members] = _nearest(
            row_numbers[members], user_numbers[candidates], uniforms[members], tolerance, device)
        positions[members] = candidates[pick]
    if fallback.any():
        members = np.flatnonzero(fallback)
        pick, distance[members], ties[members] = _nearest(
            row_numbers[members], user_numbers, uniforms[members], tolerance, device,
            row_codes=row_keys[members], user_codes=user_keys)
        positions[members] = pick
    stats = {
        "rows": int(len(rows)), "exact": int((~fallback).sum()), "fallback": int(fallback.sum()),
        "distinct_users": int(len(np.unique(positions))), "categorical": list(categorical),
        "numerical": list(numerical), "scale": scales, "tolerance": tolerance,
        "median_distance": float(np.median(distance)) if len(rows) else None,
        "mean_equal_candidates": float(ties.mean()) if len(rows) else None,
        "rule": ("exact match on the categorical user features, nearest on the standardised numerical ones, "
                 "random among equals; without an exact categorical match: fewest categorical mismatches "
                 "first (counted as fallback)"),
    }
    return UserMatch(positions, stats)


def _category_codes(rows: pd.DataFrame, users: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Shared integer codes of the categorical columns: ([n, 1 + k], [u, 1 + k]); nulls get a code of their own."""
    # Column 0 is a constant, so that without categorical features all rows form one combination.
    row_codes = np.zeros((len(rows), 1 + len(columns)), dtype=np.int64)
    user_codes = np.zeros((len(users), 1 + len(columns)), dtype=np.int64)
    for j, column in enumerate(columns, start=1):  # feature columns, not rows
        both = pd.concat([users[column].astype(object), rows[column].astype(object)], ignore_index=True)
        codes, _ = pd.factorize(both, use_na_sentinel=False)
        user_codes[:, j], row_codes[:, j] = codes[: len(users)], codes[len(users):]
    return row_codes, user_codes


def _standardised(
    rows: pd.DataFrame, users: pd.DataFrame, columns: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Numerical features as float64 ([n, d], [u, d]) centred on the users' median, over their scale."""
    row_values = np.zeros((len(rows), len(columns)))
    user_values = np.zeros((len(users), len(columns)))
    scales: dict[str, float] = {}
    for j, column in enumerate(columns):
        user_column, row_column = numeric_values(users[column]), numeric_values(rows[column])
        known = user_column[~np.isnan(user_column)]
        centre = float(np.median(known)) if known.size else 0.0
        scale = _scale(known)
        scales[column] = scale
        user_values[:, j] = (np.where(np.isnan(user_column), centre, user_column) - centre) / scale
        row_values[:, j] = (np.where(np.isnan(row_column), centre, row_column) - centre) / scale
    return row_values, user_values, scales


def numeric_values(column: pd.Series) -> np.ndarray:
    """float64 values of a numerical or datetime column (datetimes in seconds), NaN for nulls."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        seconds = column.astype("datetime64[ns]").astype("int64").astype("float64") / 1e9
        return np.where(column.isna().to_numpy(), np.nan, seconds)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _scale(values: np.ndarray) -> float:
    if values.size == 0:
        return 1.0
    q25, q75 = np.quantile(values, [0.25, 0.75])
    scale = (q75 - q25) / IQR_TO_STD
    if not scale > 0:
        scale = float(values.std())
    return float(scale) if scale > 0 else 1.0


def _nearest(
    queries: np.ndarray,
    candidates: np.ndarray,
    uniforms: np.ndarray,
    tolerance: float,
    device: torch.device,
    *,
    row_codes: np.ndarray | None = None,
    user_codes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query [r, d]: a candidate [c, d] among the nearest ones, drawn by its uniform [r].

    With codes ([r, k], [c, k]) only the candidates with the fewest categorical mismatches count.
    Returns (position in candidates [r], distance to it [r], number of equally near candidates [r]).
    """
    pool = torch.as_tensor(candidates, dtype=torch.float64, device=device)
    pool_codes = None if user_codes is None else torch.as_tensor(user_codes, device=device)
    width = max(1, pool.shape[0] * (1 if pool_codes is None else 1 + pool_codes.shape[1]))
    step = max(1, CHUNK_ENTRIES // width)
    picks, distances, counts = [], [], []
    for lo in range(0, len(queries), step):  # chunks of rows bound the [rows, users] temporaries
        query = torch.as_tensor(queries[lo:lo + step], dtype=torch.float64, device=device)
        if pool.shape[1]:
            dist = torch.cdist(query, pool, compute_mode="donot_use_mm_for_euclid_dist")
        else:
            dist = torch.zeros(query.shape[0], pool.shape[0], dtype=torch.float64, device=device)
        if pool_codes is not None:
            codes = torch.as_tensor(row_codes[lo:lo + step], device=device)
            mismatches = (codes[:, None, :] != pool_codes[None, :, :]).sum(-1)
            dist = dist.masked_fill(mismatches != mismatches.min(1, keepdim=True).values, float("inf"))
        best = dist.min(1, keepdim=True).values
        equal = dist <= best + tolerance
        count = equal.sum(1)
        # The k-th of the equally near candidates (k uniform in 0..count-1): one uniform per row.
        rank = torch.as_tensor(uniforms[lo:lo + step], dtype=torch.float64, device=device)
        k = torch.clamp((rank * count).long(), max=count - 1)
        pick = (equal & (equal.long().cumsum(1) == (k + 1)[:, None])).long().argmax(1)
        picks.append(pick.cpu())
        distances.append(best[:, 0].cpu())
        counts.append(count.cpu())
    if not picks:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64)
    return torch.cat(picks).numpy(), torch.cat(distances).numpy(), torch.cat(counts).numpy()


CANDIDATES = 1
"""Pool entries drawn per row by `choose_among`: 1 keeps the real buyer mix exactly; more let the generated
user features and the time pick among them. Measured on the built-in tail (README, "Tail augmentation"):
feature groups passing the gate at 1 / 2 / 8 candidates: 10 / 4 / 5 of 19 (8 nearest in time alone: 8)."""


MIN_WITHIN = 1
"""Fewest pool entries with a row's categorical features for `within_categories` to draw among them alone
(else: from the whole pool). Measured on the built-in tail at 3 rows per item: 30 (a buyer or two count as
none) -> the union's Country test fails (p 6e-4); 1 -> passes (p 0.14). Rows whose only same-country users
are the item's own buyers then copy their purchases and the privacy check refuses them (the budget refuses
their items, `item_gate.ItemGate.run`)."""


def _draw_within(row_keys: np.ndarray, entry_keys: np.ndarray, candidates: int,
                 rng: np.random.Generator) -> np.ndarray:
    """[rows, candidates] positions into the pool: entries with the row's categorical codes (row_keys [n, k],
    entry_keys [m, k]), drawn uniformly with replacement; rows whose codes fewer than MIN_WITHIN entries have
    draw from all entries.
    Vectorised: entries sorted once by their combined code, each row draws inside its code's range."""
    _, combined = np.unique(np.concatenate([entry_keys, row_keys]), axis=0, return_inverse=True)
    combined = combined.reshape(-1)
    entry_code, row_code = combined[: len(entry_keys)], combined[len(entry_keys):]
    order = np.argsort(entry_code, kind="stable")
    low = np.searchsorted(entry_code[order], row_code, side="left")
    high = np.searchsorted(entry_code[order], row_code, side="right")
    none = high - low < MIN_WITHIN
    low, high = np.where(none, 0, low), np.where(none, len(entry_keys), high)
    at = low[:, None] + np.floor(rng.random((len(row_keys), candidates)) * (high - low)[:, None]).astype(np.int64)
    within = order[np.minimum(at, len(entry_keys) - 1)]
    return np.where(none[:, None], np.minimum(at, len(entry_keys) - 1), within)


def choose_among(
    rows: pd.DataFrame,
    users: pd.DataFrame,
    pool: np.ndarray,
    *,
    categorical: Sequence[str],
    numerical: Sequence[str],
    rng: np.random.Generator,
    candidates: int = CANDIDATES,
    pool_seconds: np.ndarray | None = None,
    row_seconds: np.ndarray | None = None,
    within_categories: bool = False,
) -> UserMatch:
    """Each row's user: of `candidates` users drawn from `pool` (positions in `users`, one per real
    interaction, so a user who bought often is drawn often), the one nearest to the row's generated
    features — fewest categorical mismatches first, then the standardised numerical distance (scales as in
    `match_users`, over the pool's users). So the emitted rows keep the real mix of who buys (nearest
    matching over all users over-uses the users at the edges of where the generator puts its mass; measured
    on the built-in tail: monetary KS 0.085 as written, frequency 0.074) while the generator still says
    which kind of buyer a row has. With `pool_seconds` (the time of each pool entry's real interaction) and
    `row_seconds` (each row's written timestamp), the distance also counts how far apart in time they are,
    in units of the pool's robust time scale: a user is given an interaction when they were buying (a user's
    recency and activity are facts about when they bought; drawn regardless of time, a discriminator told
    the rows from real ones at AUC ~0.7). Vectorised: [rows, candidates] arrays, no loop over rows.

    With `within_categories` the candidates are drawn from the pool entries whose users have the row's
    categorical features (from the whole pool where none has them), so the categorical mix is the rows' own.
    """
    if len(pool) == 0:
        raise ValueError("choose_among: the pool of users is empty; there is no user to give rows to")
    row_keys, user_keys = _category_codes(rows, users, categorical)
    picked = (_draw_within(row_keys, user_keys[np.asarray(pool)], candidates, rng) if within_categories
              else rng.integers(0, len(pool), size=(len(rows), candidates)))
    drawn = np.asarray(pool)[picked]
    # Rows and every user on the pool's median and scale (the pool's users are those that can be drawn).
    row_numbers, _, scales = _standardised(rows, users.iloc[np.unique(pool)], numerical)
    all_numbers, _, _ = _standardised(users, users.iloc[np.unique(pool)], numerical)
    mismatches = (row_keys[:, None, :] != user_keys[drawn]).sum(-1)
    distance = (np.sqrt(((row_numbers[:, None, :] - all_numbers[drawn]) ** 2).sum(-1)) if numerical
                else np.zeros(drawn.shape))
    if pool_seconds is not None and row_seconds is not None:
        distance = distance + np.abs(row_seconds[:, None] - pool_seconds[picked]) / _scale(pool_seconds)
    cost = mismatches * (1.0 + distance.max(initial=0.0)) + distance
    best = cost.argmin(1)
    positions = drawn[np.arange(len(rows)), best]
    exact = mismatches[np.arange(len(rows)), best] == 0
    stats = {
        "rows": int(len(rows)), "exact": int(exact.sum()), "fallback": int((~exact).sum()),
        "distinct_users": int(len(np.unique(positions))), "categorical": list(categorical),
        "numerical": list(numerical), "scale": scales, "candidates": candidates,
        "rule": (f"{candidates} entries drawn from the pool (one per real interaction)"
                 + (", among those whose users have the row's categorical features where any has them"
                    if within_categories else "")
                 + "; the one with the fewest categorical mismatches (a mismatch counts as fallback), then the "
                 + " plus ".join([*(["standardised numerical distance"] if numerical else []),
                                  *(["distance in time"] if pool_seconds is not None and row_seconds is not None
                                    else [])] or ["first drawn"])),
    }
    return UserMatch(positions, stats)


def nearest_of(
    rows: pd.DataFrame,
    users: pd.DataFrame,
    candidates: np.ndarray,
    *,
    categorical: Sequence[str],
    numerical: Sequence[str],
) -> UserMatch:
    """Each row's user among its own `candidates` [n, c] (positions in `users`, -1: none; every row needs
    one): fewest categorical mismatches with the row's generated user features first, then the smallest
    standardised numerical distance (scales as in `match_users`, over the users table). For taste
    shortlists (`gen.items.taste_users.TasteUsers`): taste says who may take the item, the generated
    features say which of them looks like this row's buyer. Vectorised: [n, c] arrays."""
    candidates = np.asarray(candidates, dtype=np.int64)
    valid = candidates >= 0
    if len(candidates) and not valid.any(axis=1).all():
        raise ValueError("nearest_of: a row has no candidate user")
    row_keys, user_keys = _category_codes(rows, users, categorical)
    row_numbers, user_numbers, _ = _standardised(rows, users, numerical)
    safe = np.where(valid, candidates, 0)
    mismatches = (row_keys[:, None, :] != user_keys[safe]).sum(-1)
    distance = np.sqrt(((row_numbers[:, None, :] - user_numbers[safe]) ** 2).sum(-1))
    # Mismatches first (each outweighs any distance), then the distance; missing candidates never win.
    order_key = np.where(valid, mismatches * (distance.max(initial=0.0) + 1.0) + distance, np.inf)
    pick = order_key.argmin(axis=1) if len(candidates) else np.zeros(0, dtype=np.int64)
    positions = candidates[np.arange(len(candidates)), pick]
    taken = np.arange(len(candidates))
    stats = {"rows": int(len(rows)), "exact": int((mismatches[taken, pick] == 0).sum()) if len(rows) else 0,
             "fallback": int((mismatches[taken, pick] > 0).sum()) if len(rows) else 0,
             "categorical": list(categorical), "numerical": list(numerical)}
    return UserMatch(positions, stats)
