"""Popularity buckets: which items are head, torso or tail, and which are cold-start.

`assign_buckets(counts, config)` labels every item from its interaction count by one of three rules
(`BucketConfig.method`), all deterministic (ties broken by item id):

- "share" (default): sort items by count, descending. An item joins bucket i when the share of all
  interactions held by the items *before* it is below `sum(shares[:i+1])`. So the head is the smallest
  top set of items reaching `shares[0]` of the interactions, the torso the next `shares[1]`, and so on.
- "count": `thresholds` are descending minimum counts; count >= thresholds[0] is names[0], and so on;
  below the last threshold is the last bucket.
- "quantile": items ranked by count (descending), cut into len(names) groups of (nearly) equal size:
  the item at rank r of n joins bucket floor(r * len(names) / n).

Under every rule an item with zero interactions joins the last bucket. `cold_start` marks items with fewer
than `min_interactions` interactions, independently of the bucket.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailsynth.models.errors import ConfigError, DataError
from tailsynth.train.config import BucketConfig

BUCKET_COLUMNS = ["item", "count", "pop_bucket", "cold_start"]
SUMMARY_ROWS_EXTRA = ("cold_start", "all")
"""Rows `bucket_summary` adds after the bucket rows; bucket names may not use them."""
_SHARE_TOLERANCE = 1e-9  # float slack when comparing cumulative shares with the bucket boundaries
_KEY = "data.buckets"


def validate_bucket_config(config: BucketConfig) -> None:
    """Raise ConfigError naming the key when the bucket config is inconsistent."""
    names = list(config.names)
    if not names:
        raise ConfigError(f"{_KEY}.names: at least one bucket name is required")
    if any(not isinstance(name, str) or not name for name in names):
        raise ConfigError(f"{_KEY}.names: names must be non-empty strings, got {names}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{_KEY}.names: names must be unique, got {names}")
    reserved = sorted(set(names) & set(SUMMARY_ROWS_EXTRA))
    if reserved:
        raise ConfigError(f"{_KEY}.names: {reserved} are reserved for summary rows")
    if config.min_interactions < 0:
        raise ConfigError(f"{_KEY}.min_interactions: must be >= 0, got {config.min_interactions}")
    if config.method != "count" and config.thresholds:
        raise ConfigError(f"{_KEY}.thresholds: {list(config.thresholds)} apply only to method: count, and "
                          f"method is {config.method!r} (they would be ignored); remove them, or set "
                          f"{_KEY}.method: count to bucket by them")
    if config.method == "share":
        _validate_shares(config.shares, names)
    elif config.method == "count":
        _validate_thresholds(config.thresholds, names)


def _validate_shares(shares: tuple[float, ...], names: list[str]) -> None:
    if len(shares) != len(names):
        raise ConfigError(f"{_KEY}.shares: expected {len(names)} shares (one per name in {names}), "
                          f"got {len(shares)}")
    if any(not np.isfinite(share) or share <= 0 for share in shares):
        raise ConfigError(f"{_KEY}.shares: every share must be a positive number, got {list(shares)}")
    if abs(sum(shares) - 1.0) > 1e-6:
        raise ConfigError(f"{_KEY}.shares: shares must sum to 1, got {list(shares)} (sum {sum(shares):g})")


def _validate_thresholds(thresholds: tuple[int, ...], names: list[str]) -> None:
    if len(thresholds) != len(names) - 1:
        raise ConfigError(f"{_KEY}.thresholds: expected {len(names) - 1} thresholds (one fewer than "
                          f"names {names}), got {list(thresholds)}")
    if any(t < 1 for t in thresholds):
        raise ConfigError(f"{_KEY}.thresholds: thresholds must be >= 1, got {list(thresholds)}")
    if any(a <= b for a, b in zip(thresholds, thresholds[1:])):
        raise ConfigError(f"{_KEY}.thresholds: must be strictly descending, got {list(thresholds)}")


def assign_buckets(counts: pd.Series, config: BucketConfig) -> pd.DataFrame:
    """Label items with a popularity bucket and a cold-start flag.

    counts: index = item id (unique), values = interaction counts (>= 0; items with none included as 0).
    Returns a frame with columns ["item", "count", "pop_bucket", "cold_start"], one row per item, sorted by
    count descending then item id; `pop_bucket` is categorical with categories in `config.names` order.
    """
    validate_bucket_config(config)
    ordered = _sorted_counts(counts)
    values = ordered["count"].to_numpy()
    index = _BUCKET_RULES[config.method](values, config)
    index[values == 0] = len(config.names) - 1
    ordered["pop_bucket"] = pd.Categorical.from_codes(index, categories=list(config.names))
    ordered["cold_start"] = values < config.min_interactions
    return ordered[BUCKET_COLUMNS]


def _sorted_counts(counts: pd.Series) -> pd.DataFrame:
    """Counts checked and sorted by count descending, then item id (stable and deterministic)."""
    if counts.index.has_duplicates:
        dup = counts.index[counts.index.duplicated()].unique()[:5].tolist()
        raise DataError(f"item counts: duplicate item ids {dup}")
    numeric = pd.to_numeric(counts, errors="coerce")
    if numeric.isna().any() or (numeric < 0).any() or (numeric % 1 != 0).any():
        bad = counts[numeric.isna() | (numeric < 0) | (numeric % 1 != 0)].head(5).to_dict()
        raise DataError(f"item counts: counts must be whole numbers >= 0, got {bad}")
    frame = pd.DataFrame({"item": counts.index, "count": numeric.to_numpy().astype("int64")})
    try:
        id_rank = frame["item"].rank(method="dense").to_numpy()
    except TypeError:  # mixed id types (e.g. int and str) cannot be compared; order by their text
        id_rank = frame["item"].astype(str).rank(method="dense").to_numpy()
    order = np.lexsort((id_rank, -frame["count"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def _share_rule(values: np.ndarray, config: BucketConfig) -> np.ndarray:
    """Bucket = number of boundaries the share of interactions before the item has reached."""
    total = values.sum()
    if total == 0:
        return np.full(len(values), len(config.names) - 1, dtype=np.int64)
    before = (np.cumsum(values) - values) / total
    boundaries = np.cumsum(config.shares)[:-1] - _SHARE_TOLERANCE
    return np.searchsorted(boundaries, before, side="right").astype(np.int64)


def _count_rule(values: np.ndarray, config: BucketConfig) -> np.ndarray:
    """Bucket = number of thresholds the count falls below (thresholds are descending)."""
    thresholds = np.asarray(config.thresholds, dtype=np.int64)
    return (values[:, None] < thresholds[None, :]).sum(axis=1).astype(np.int64)


def _quantile_rule(values: np.ndarray, config: BucketConfig) -> np.ndarray:
    """Bucket = floor(rank * k / n) on the sorted order: k groups of nearly equal item counts."""
    rank = np.arange(len(values), dtype=np.int64)
    return (rank * len(config.names)) // max(len(values), 1)


_BUCKET_RULES = {"share": _share_rule, "count": _count_rule, "quantile": _quantile_rule}


def bucket_summary(buckets: pd.DataFrame) -> pd.DataFrame:
    """Per-bucket table of an `assign_buckets` result.

    Rows: one per bucket in names order, then "cold_start" (the cold-start items, whatever their bucket)
    and "all". Only the bucket rows partition the items; do not sum all rows.
    Columns: bucket (the row's name), items, share_of_items, interactions, share_of_interactions,
    cold_start_items, min_count, max_count (min/max are 0 for an empty group).
    """
    names = list(buckets["pop_bucket"].cat.categories)
    groups = [(name, (buckets["pop_bucket"] == name).to_numpy()) for name in names]
    groups.append(("cold_start", buckets["cold_start"].to_numpy(dtype=bool)))
    groups.append(("all", np.ones(len(buckets), dtype=bool)))
    counts = buckets["count"].to_numpy()
    cold = buckets["cold_start"].to_numpy(dtype=bool)
    total_items, total_count = max(len(buckets), 1), max(int(counts.sum()), 1)
    rows = []
    for name, mask in groups:  # one pass per bucket (a handful), vectorised inside
        selected = counts[mask]
        rows.append({
            "bucket": name,
            "items": int(mask.sum()),
            "share_of_items": mask.sum() / total_items,
            "interactions": int(selected.sum()),
            "share_of_interactions": selected.sum() / total_count,
            "cold_start_items": int((cold & mask).sum()),
            "min_count": int(selected.min()) if selected.size else 0,
            "max_count": int(selected.max()) if selected.size else 0,
        })
    return pd.DataFrame(rows)
