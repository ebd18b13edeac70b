"""Paired bootstrap over users: a 95% interval for the difference of two arms' mean per-user recall.

Both arms rank the same users, so the difference is taken user by user (d_u = first_u - second_u) and the
users are resampled with replacement; the interval is the percentile interval of the resampled means.
Vectorised: one [resamples, users] index draw, no Python loop over resamples. Users where either arm has
no figure (NaN: no relevant item in the group) are left out of both. Seeds enter before this: a per-user
vector is the mean of that user's recall over the seeds, so the interval is that of the seed-averaged
difference (it covers the users' variation; the seeds' spread is reported beside it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Difference:
    """first - second on the users both cover: the mean difference and its bootstrap interval."""

    first_mean: float
    second_mean: float
    difference: float
    low: float
    high: float
    users: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def paired_bootstrap(first: np.ndarray, second: np.ndarray, rng: np.random.Generator,
                     resamples: int = RESAMPLES, level: float = LEVEL) -> Difference:
    """The difference of means of per-user vectors `first`, `second` [users] with its percentile interval."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(f"paired bootstrap: per-user vectors of shapes {first.shape} and {second.shape}")
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"paired bootstrap: resamples >= 1 and 0 < level < 1 (got {resamples}, {level})")
    both = ~(np.isnan(first) | np.isnan(second))
    if not both.any():
        nan = float("nan")
        return Difference(nan, nan, nan, nan, nan, 0)
    a, b = first[both], second[both]
    delta = a - b
    draws = rng.integers(0, delta.size, size=(resamples, delta.size))
    means = delta[draws].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Difference(float(a.mean()), float(b.mean()), float(delta.mean()), float(low), float(high), int(delta.size))


def seed_mean(vectors: list[np.ndarray]) -> np.ndarray:
    """Per-user mean over seeds [users] (NaN where a user has no figure in any seed)."""
    stacked = np.stack([np.asarray(v, dtype=np.float64) for v in vectors])
    counted = (~np.isnan(stacked)).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(counted > 0, np.nansum(stacked, axis=0) / np.maximum(counted, 1), np.nan)


def common_seeds(first: list[np.ndarray | None], second: list[np.ndarray | None]
                 ) -> tuple[list[int], np.ndarray, np.ndarray] | None:
    """(the seeds both arms were measured on, each arm's per-user vector averaged over those seeds); None if
    they share no seed. An arm refused on some seed is compared on the others only, never across seeds."""
    seeds = [s for s, (x, y) in enumerate(zip(first, second)) if x is not None and y is not None]
    if not seeds:
        return None
    return seeds, seed_mean([first[s] for s in seeds]), seed_mean([second[s] for s in seeds])
