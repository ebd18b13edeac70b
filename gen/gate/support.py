"""The real support of a bucket: which values the training rows make possible, per column.

A synthetic row outside it (a label never seen in training, a number far beyond the observed range, a null
where training had none) cannot be a plausible record of that bucket, so the fidelity gate drops it before
asking anything more expensive. Numerical and datetime columns get a margin of `margin * (max - min)` on
each side, so values a little beyond the extremes of a finite sample still pass.

Everything is vectorised (`isin` / comparisons over whole columns); the fitted state is plain JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from tailsynth.models.errors import DataError

ColumnTypes = Mapping[str, Literal["categorical", "numerical", "datetime"]]


@dataclass(frozen=True)
class ColumnSupport:
    """What one column may hold.

    categorical: `labels` are the non-null labels seen in training.
    numerical/datetime: [`low`, `high`] is the widened range (floats, or ISO strings for datetimes); both
    are None when training held no non-null value, so any non-null value is outside the support.
    """

    sdtype: str
    nulls: bool
    labels: tuple = ()
    low: Any = None
    high: Any = None


class Support:
    """Per-column support fitted on real training rows; `mask` says which rows lie inside all of it."""

    def __init__(self, columns: dict[str, ColumnSupport], margin: float) -> None:
        self.columns = columns
        self.margin = margin

    @classmethod
    def fit(cls, train: pd.DataFrame, columns: ColumnTypes, margin: float) -> Support:
        """Record seen labels / widened ranges / whether nulls occur, for every column in `columns`."""
        if margin < 0:
            raise DataError(f"support margin must be >= 0, got {margin}")
        _require_columns(train, columns, "training rows")
        fitted = {name: _fit_column(train[name], sdtype, margin, name) for name, sdtype in columns.items()}
        return cls(fitted, margin)

    def column_masks(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per column, a bool array of shape (len(rows),): True where the value is inside the support."""
        _require_columns(rows, self.columns, "rows checked against the support")
        return {name: _column_mask(rows[name], spec) for name, spec in self.columns.items()}

    def mask(self, rows: pd.DataFrame) -> np.ndarray:
        """Bool array of shape (len(rows),): True where every column of the row is inside the support."""
        inside = np.ones(len(rows), dtype=bool)
        for column_mask in self.column_masks(rows).values():
            inside &= column_mask
        return inside

    def violations(self, rows: pd.DataFrame) -> dict[str, int]:
        """Rows outside the support, counted per column (a row can count under several columns)."""
        return {name: int((~m).sum()) for name, m in self.column_masks(rows).items()}

    def state(self) -> dict[str, Any]:
        """Plain JSON-able description; `Support.from_state(s.state())` rebuilds an equal support."""
        return {
            "margin": self.margin,
            "columns": {
                name: {"sdtype": s.sdtype, "nulls": s.nulls, "labels": list(s.labels), "low": s.low, "high": s.high}
                for name, s in self.columns.items()
            },
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Support:
        try:
            columns = {
                name: ColumnSupport(
                    sdtype=spec["sdtype"],
                    nulls=bool(spec["nulls"]),
                    labels=tuple(spec.get("labels", ())),
                    low=spec.get("low"),
                    high=spec.get("high"),
                )
                for name, spec in state["columns"].items()
            }
            return cls(columns, float(state["margin"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"support state is malformed ({exc!r}); expected the dict written by Support.state()")


def _require_columns(table: pd.DataFrame, columns: Mapping[str, Any], what: str) -> None:
    missing = [name for name in columns if name not in table.columns]
    if missing:
        raise DataError(f"{what}: column(s) {missing} are missing; the table has {list(table.columns)}")


def _fit_column(values: pd.Series, sdtype: str, margin: float, name: str) -> ColumnSupport:
    nulls = bool(values.isna().any())
    present = values.dropna()
    if sdtype == "categorical":
        # .tolist() turns numpy scalars into plain Python values so the state is JSON-able.
        labels = tuple(pd.unique(present.to_numpy(dtype=object)).tolist())
        return ColumnSupport(sdtype, nulls, labels=labels)
    if sdtype == "numerical":
        numbers = _as_numbers(present, name)
        if len(numbers) == 0:
            return ColumnSupport(sdtype, nulls)
        low, high = float(numbers.min()), float(numbers.max())
        pad = margin * (high - low)
        return ColumnSupport(sdtype, nulls, low=low - pad, high=high + pad)
    if sdtype == "datetime":
        stamps = pd.to_datetime(present)
        if len(stamps) == 0:
            return ColumnSupport(sdtype, nulls)
        low, high = stamps.min(), stamps.max()
        pad = (high - low) * margin
        return ColumnSupport(sdtype, nulls, low=(low - pad).isoformat(), high=(high + pad).isoformat())
    raise DataError(f"column {name!r}: sdtype {sdtype!r} has no support; expected categorical, numerical or datetime")


def _column_mask(values: pd.Series, spec: ColumnSupport) -> np.ndarray:
    """True where the value is allowed: a seen label / a value inside the range, or a null if nulls were seen."""
    null = values.isna().to_numpy()
    if spec.sdtype == "categorical":
        inside = values.isin(spec.labels).to_numpy()
    elif spec.low is None:
        inside = np.zeros(len(values), dtype=bool)
    elif spec.sdtype == "numerical":
        numbers = pd.to_numeric(values, errors="coerce")  # a non-number is outside, never an exception
        inside = numbers.between(spec.low, spec.high).to_numpy()
    else:
        stamps = pd.to_datetime(values, errors="coerce")
        inside = stamps.between(pd.Timestamp(spec.low), pd.Timestamp(spec.high)).to_numpy()
    inside = np.asarray(inside, dtype=bool) & ~null
    return inside | (null & spec.nulls)


def _as_numbers(values: pd.Series, name: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        raise DataError(f"column {name!r} is declared numerical but holds non-numeric values in the training rows")
    return numbers
