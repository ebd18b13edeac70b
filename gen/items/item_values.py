"""The item-level signal of augmentation: columns an existing item carries with it, taken from its own rows.

A long-tail item that already has interactions says more about itself than its feature group does. In the
built-in data an item's unit price is nearly fixed (the item explains 92% of the variance of the price's
rank within the tail; quantity: 36%; the date: 35% - items sell in their own season; a user's features:
8%, about what ~25 rows per item explain by chance), so a generated row for item X priced, sized and dated
like the average of X's feature group looks like a different item. `ItemValues` finds such columns and,
for each row, draws the column's value from the item's own training rows (uniformly over them, each column
independently, so a row is a new combination of the item's own values, not a copy of one of its rows):

- a numerical or datetime column is *item-level* when the item explains at least `min_share` of the
  variance of the column's within-bucket rank (1 - within-item variance / total variance, on percentile
  ranks so one huge order does not decide it);
- other columns keep the generated values, and so do items with no training row in the bucket.

Measured on the built-in tail against held-out rows of the same items (`gen.items.judge.matched`, 3 rows
per item): the value of the item's own rows NEAREST to the generated one (which kept the generator's say on
where in the item's range a row lies) fails the union's quantity test (p 6e-4: the generator's group-level
quantities pull each item's towards its group's), drawing passes (p 0.23-0.33 over two seeds). That was
before the quantity's pack sizes got spike modes of their own (`model.encoder.spike_columns`): with them,
`snap_whole` (what `gen.augment` asks for) moves the generator's quantity to the item's nearest own value and
the main job's union passes (Quantity KS 0.019, p 0.37; per-item median KS against the item's held-out rows
0.42, drawn 0.37, the real floor 0.35; evaluate/bench/README.md). The report's closeness entry shows draft vs
emitted.

Vectorised: values of all items sorted once by item; each row is one draw, never a loop over rows or items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tailsynth.gen.items.users import numeric_values

MIN_SHARE = 0.25
"""Share of a column's rank variance the item must explain for the column to count as item-level: well
above what chance gives an item of a few dozen rows (user features: 0.08), below quantity's and date's."""


@dataclass(frozen=True)
class _Column:
    values: np.ndarray
    """float64 [m]: the observed values, grouped by item code (ascending within an item)."""
    bounds: np.ndarray
    """int64 [items + 1]: item i's values are values[bounds[i]:bounds[i + 1]]."""


class ItemValues:
    """Per-item observed values of the item-level columns; `info` is the JSON-able report entry.

    `snapped` columns keep the generator's value, moved to the nearest value the item has been sold at (its
    pack sizes): the generator decides where in the item's range a row lies, the item's own set of values which
    ones exist (quantities of 1, 6, 12, 24 are not a ratio of a median)."""

    def __init__(self, columns: dict[str, _Column], info: dict[str, Any],
                 snapped: dict[str, _Column] | None = None) -> None:
        self._columns = columns
        self._snapped = snapped or {}
        self.info = info

    @property
    def columns(self) -> list[str]:
        """Columns whose emitted value is not the generator's own (drawn or snapped)."""
        return [*self._columns, *self._snapped]

    @classmethod
    def fit(
        cls, train: pd.DataFrame, item_column: str, item_ids: pd.Series, candidates: list[str],
        min_share: float = MIN_SHARE, snap: list[str] | None = None, snap_whole: bool = False,
    ) -> ItemValues:
        """train: real training rows of the bucket; item_ids [items]: the items rows will be generated for
        (their positions are the item codes passed to `apply`); candidates: numerical event columns drawn
        when item-level; snap: generated columns moved to the nearest value of the item's own rows;
        snap_whole: an item-level candidate whose training values are all whole numbers (a quantity) is
        snapped too, not drawn (`gen.augment`: the generator's quantity at the item's pack sizes)."""
        codes = pd.Index(item_ids).get_indexer(train[item_column])
        snapped = {name: _index(numeric_values(train[name]), codes, len(item_ids)) for name in snap or []}
        shares, columns = {}, {}
        for name in candidates:  # a few event columns
            values = numeric_values(train[name])
            share = _item_share(values, train[item_column].to_numpy())
            shares[name] = share
            if share is None or share < min_share:
                continue
            known = values[~np.isnan(values)]
            whole = snap_whole and not pd.api.types.is_datetime64_any_dtype(train[name].dtype) and \
                bool(np.all(known == np.round(known)))
            (snapped if whole else columns)[name] = _index(values, codes, len(item_ids))
        info = {"rule": (f"a numerical or datetime column is item-level when the item explains >= {min_share:g} of the "
                         "variance of its percentile rank in the bucket's training rows; an augmented row takes "
                         "a value drawn from its item's own training rows (each column independently)"),
                "item_share": shares, "item_level_columns": list(columns), "snapped_columns": list(snapped),
                "snapped_rule": "the generator's value moved to the nearest value of the item's own training rows"}
        return cls(columns, info, snapped)

    def apply(self, rows: pd.DataFrame, item_codes: np.ndarray, rng: np.random.Generator,
              tilts: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
        """A copy of `rows` whose item-level columns hold values drawn from each row's own item's rows.
        tilts: per column, each row's tilt (`user_values.UserTilt.of`): the draw favours the item's values on
        the row's user's side of the item's median (exponential tilting, `_tilted`)."""
        rows = rows.copy()
        tilts = tilts or {}
        for name, column in [*self._columns.items(), *self._snapped.items()]:
            if name in tilts and name not in self._snapped:
                values = _tilted(column, item_codes, numeric_values(rows[name]), tilts[name], rng)
            else:
                values = (_nearest if name in self._snapped else _drawn)(column, item_codes, numeric_values(rows[name]),
                                                                         rng)
            drawn = pd.Series(values, index=rows.index)
            if pd.api.types.is_datetime64_any_dtype(rows[name].dtype):
                rows[name] = pd.to_datetime(drawn, unit="s").astype(rows[name].dtype)
            else:
                rows[name] = drawn.astype(rows[name].dtype)
        return rows


def _item_share(values: np.ndarray, items: np.ndarray) -> float | None:
    """1 - within-item variance / total variance of the percentile ranks (None without variance)."""
    known = ~np.isnan(values)
    if known.sum() < 2:
        return None
    ranks = pd.Series(values[known]).rank(pct=True)
    total = float(ranks.var(ddof=0))
    if total == 0:
        return None
    within = float((ranks - ranks.groupby(items[known]).transform("mean").to_numpy()).var(ddof=0))
    return 1.0 - within / total


def _index(values: np.ndarray, codes: np.ndarray, items: int) -> _Column:
    keep = (codes >= 0) & ~np.isnan(values)
    codes, values = codes[keep].astype(np.int64), values[keep]
    order = np.lexsort((values, codes))  # by item, ascending values within it (`_nearest` searches them)
    return _Column(values[order], np.searchsorted(codes[order], np.arange(items + 1)))


def _drawn(column: _Column, item_codes: np.ndarray, generated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[n]: per row, one of its item's observed values drawn uniformly (the generated value if none)."""
    item_codes = np.asarray(item_codes, dtype=np.int64)
    low, high = column.bounds[item_codes], column.bounds[item_codes + 1]
    has = high > low
    at = low + np.floor(rng.random(len(item_codes)) * np.maximum(high - low, 1)).astype(np.int64)
    values = column.values[np.minimum(at, max(column.values.size - 1, 0))] if column.values.size else generated
    return np.where(has, values, generated)


TILT_DRAWS = 16
"""Values drawn per row (uniformly from its item's rows, with replacement) among which the tilted draw picks."""


def _tilted(column: _Column, item_codes: np.ndarray, generated: np.ndarray, tilt: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """[n]: per row, one of its item's observed values drawn with probability proportional to the item's
    frequency of it times exp(tilt x (log value - log item median)): TILT_DRAWS uniform draws of the item's
    values, then one of them by the Gumbel-max trick on the tilt. With log values roughly normal within an
    item (variance s2), a tilt of f / s2 moves the row's expected log value by f (`user_values`). Values <= 0
    (no log) are drawn untilted."""
    item_codes = np.asarray(item_codes, dtype=np.int64)
    low, high = column.bounds[item_codes], column.bounds[item_codes + 1]
    has = high > low
    if not column.values.size:
        return generated
    last = column.values.size - 1
    at = low[:, None] + np.floor(rng.random((len(item_codes), TILT_DRAWS)) *
                                 np.maximum(high - low, 1)[:, None]).astype(np.int64)
    values = column.values[np.minimum(at, last)]
    median = column.values[np.minimum(low + (np.maximum(high - low, 1) - 1) // 2, last)]
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.log(values) - np.log(median)[:, None]
    offset = np.where(np.isfinite(offset), offset, 0.0)
    keys = np.asarray(tilt, dtype=np.float64)[:, None] * offset - np.log(-np.log(rng.random(values.shape) + 1e-300))
    picked = values[np.arange(len(values)), keys.argmax(axis=1)]
    return np.where(has, picked, generated)


def _nearest(column: _Column, item_codes: np.ndarray, generated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[n]: per row, its item's observed value nearest to the generated one (the generated value if none).
    One search over (item, value rank) keys, exact in integers: no loop over items."""
    del rng  # deterministic
    item_codes = np.asarray(item_codes, dtype=np.int64)
    low, high = column.bounds[item_codes], column.bounds[item_codes + 1]
    if not column.values.size:
        return generated
    grid = np.unique(column.values)
    span = grid.size + 1
    owner = np.repeat(np.arange(column.bounds.size - 1), np.diff(column.bounds))
    keys = owner * span + np.searchsorted(grid, column.values)
    at = np.searchsorted(keys, item_codes * span + np.searchsorted(grid, np.nan_to_num(generated, nan=-np.inf)))
    above = np.clip(at, low, np.maximum(high - 1, low))
    below = np.clip(at - 1, low, np.maximum(high - 1, low))
    last = column.values.size - 1
    upper, lower = column.values[np.minimum(above, last)], column.values[np.minimum(below, last)]
    best = np.where(np.abs(upper - generated) < np.abs(generated - lower), upper, lower)
    return np.where((high > low) & ~np.isnan(generated), best, generated)
