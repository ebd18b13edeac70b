"""Condition adherence: does a row honour the labels it was generated for?

A row generated for price band `>=10` priced at 2.15 honours its condition no more than a row of another
band would. `LabelRanges` learns, from the real training rows, the range each numerical column takes
under each label of each condition column (e.g. UnitPrice within price band `>=10`: [10.0, 649.5]),
widened by `margin` of that range like the plain support. A row is *consistent* with a condition column
when every numerical column lies in the range of its label; the gate drops inconsistent rows (a filter
beside the support) and reports, per condition column, the share of raw candidates that was consistent
next to the share of real held-out rows that is — the real rate an honest generator should reach.

Labels seen fewer than `min_rows` times in training get no range (everything is consistent with them):
a range from three rows would call most real rows inconsistent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

MIN_ROWS = 20


class LabelRanges:
    """{condition column: {label: {numerical column: (low, high)}}} fitted on real rows."""

    def __init__(self, ranges: dict[str, dict[Any, dict[str, tuple[float, float]]]]) -> None:
        self.ranges = ranges

    @classmethod
    def fit(cls, train: pd.DataFrame, conditions: Sequence[str], numerical: Sequence[str], margin: float,
            min_rows: int = MIN_ROWS) -> LabelRanges:
        ranges: dict[str, dict[Any, dict[str, tuple[float, float]]]] = {}
        for condition in conditions:  # condition columns x numerical columns: a handful
            labels = train[condition].astype(object)
            per_label: dict[Any, dict[str, tuple[float, float]]] = {}
            for name in numerical:
                values = pd.to_numeric(train[name], errors="coerce")
                stats = values.groupby(labels.to_numpy(), dropna=True).agg(["min", "max", "count"])
                for label, low, high, count in stats.itertuples():
                    if count >= min_rows and np.isfinite(low) and np.isfinite(high):
                        pad = margin * (high - low)
                        per_label.setdefault(label, {})[name] = (float(low - pad), float(high + pad))
            ranges[condition] = per_label
        return cls(ranges)

    def consistent(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        """{condition column: [n] bool}: rows whose numerical columns lie in their label's ranges."""
        masks = {}
        for condition, per_label in self.ranges.items():
            inside = np.ones(len(rows), dtype=bool)
            labels = rows[condition].astype(object).to_numpy()
            for name in {name for bounds in per_label.values() for name in bounds}:
                low, high = _bounds(labels, per_label, name)
                values = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)
                inside &= np.isnan(values) | ((values >= low) & (values <= high))
            masks[condition] = inside
        return masks

    def mask(self, rows: pd.DataFrame) -> np.ndarray:
        """[n] bool: consistent with every condition column."""
        masks = list(self.consistent(rows).values())
        return np.logical_and.reduce(masks) if masks else np.ones(len(rows), dtype=bool)

    def rates(self, rows: pd.DataFrame) -> dict[str, float | None]:
        """{condition column: share of rows consistent with it} (None for no rows)."""
        return {name: (float(mask.mean()) if mask.size else None) for name, mask in self.consistent(rows).items()}

    def plain(self) -> dict[str, Any]:
        return {condition: {str(label): {name: list(bounds) for name, bounds in columns.items()}
                            for label, columns in per_label.items()}
                for condition, per_label in self.ranges.items()}


def _bounds(labels: np.ndarray, per_label: Mapping[Any, Mapping[str, tuple[float, float]]],
            name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the (low, high) of `name` under its label; (-inf, inf) where the label has no range."""
    low, high = np.full(len(labels), -np.inf), np.full(len(labels), np.inf)
    for label, columns in per_label.items():  # labels of one condition column (tens)
        if name in columns:
            rows = labels == label
            low[rows], high[rows] = columns[name]
    return low, high
