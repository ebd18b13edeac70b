"""How close do an existing item's synthetic interactions come to its own real held-out interactions?

For every augmented item with at least `MIN_HELD_OUT` held-out rows, and every numerical event column,
the KS statistic between the item's emitted rows and its held-out rows — beside two comparisons of the
same size:
- `floor`: as many of the item's own real TRAINING rows (what an unseen real sample of the item scores);
- `draft`: the generator's own values for those rows before the item-level signal replaced them
  (`gen.items.item_values`) — what the item's feature group alone would give.
The report quotes the median over items of each. Closer to the floor is better.

One loop over items (thousands at most), never over rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tailsynth.gen.items.written import DRAFT_PREFIX

MIN_HELD_OUT = 5


def closeness(records: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, item_column: str,
              columns: list[str], rng: np.random.Generator) -> dict[str, Any] | None:
    """records: emitted records as written (item id, event columns, `_draft_*`); train / holdout: real rows of
    the bucket. None when no emitted item has enough held-out rows."""
    held = holdout.groupby(item_column, sort=False).indices
    known = train.groupby(item_column, sort=False).indices
    mine = records.groupby(item_column, sort=False).indices
    items = [item for item, rows in mine.items() if len(held.get(item, ())) >= MIN_HELD_OUT and item in known]
    if not items or not columns:
        return None
    figures: dict[str, dict[str, list[float]]] = {c: {"emitted": [], "draft": [], "floor": []} for c in columns}
    for item in items:  # items, not rows
        rows, real = mine[item], held[item]
        floor = rng.choice(known[item], size=len(rows), replace=len(known[item]) < len(rows))
        for column in columns:
            target = _numbers(holdout[column].to_numpy()[real])
            figures[column]["emitted"].append(_ks(_numbers(records[column].to_numpy()[rows]), target))
            figures[column]["floor"].append(_ks(_numbers(train[column].to_numpy()[floor]), target))
            draft = DRAFT_PREFIX + column
            source = records[draft] if draft in records.columns else records[column]
            figures[column]["draft"].append(_ks(_numbers(source.to_numpy()[rows]), target))
    return {
        "items_measured": len(items), "min_held_out_rows": MIN_HELD_OUT,
        "note": ("median over items of the KS statistic against the item's own held-out rows: emitted rows; "
                 "'draft' = the generator's values before the item-level signal; 'floor' = as many of the "
                 "item's real training rows"),
        "median_ks": {column: {kind: float(np.median(values)) for kind, values in parts.items()}
                      for column, parts in figures.items()},
    }


def _numbers(values: np.ndarray) -> np.ndarray:
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return numbers[~np.isnan(numbers)]


def _ks(sample: np.ndarray, target: np.ndarray) -> float:
    if sample.size == 0 or target.size == 0:
        return float("nan")
    return float(stats.ks_2samp(sample, target, method="asymp").statistic)
