"""Continuous conditions: an item-level number (an item's catalogue price) in the condition vector.

`ContinuousCondition` is one such condition's name and the standardisation fitted on the training rows: a
raw value x enters the vector as (sign(x) log(1 + |x|) - mean) / std. The signed log tames prices and counts
spanning orders of magnitude and keeps negative values (refunds) defined. `ConditionSpec` (`models.condition`)
appends one entry per continuous condition after its one-hot blocks. Stored as plain data in the bundle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class ContinuousCondition:
    """One continuous condition: its name and the standardisation fitted on the training rows.

    A raw value x enters the condition vector as (sign(x) log(1 + |x|) - mean) / std: the signed log tames
    prices and counts spanning orders of magnitude (and keeps negative values, such as refunds, defined).
    """

    name: str
    mean: float
    std: float
    scales: str | None = None
    """The generated column this condition is the level of (`model.condition.relative`): the model learns
    that column as `relative_to_level(x, level)` and its output is put back by `from_level`."""
    decimals: int | None = None
    """With `scales`: the decimals that column's real values have (prices in cents: 2); values put back are
    rounded to them, as the encoder rounds every other numerical column."""

    @classmethod
    def fit(cls, name: str, values: Tensor, scales: str | None = None,
            decimals: int | None = None) -> ContinuousCondition:
        """Mean and std of the transformed training values [n] (a std of 0 becomes 1: a constant is 0)."""
        transformed = signed_log1p(values.double())
        std = float(transformed.std(correction=0)) if transformed.numel() > 1 else 0.0
        return cls(name, float(transformed.mean()), std if std > 0 else 1.0, scales, decimals)

    def state(self) -> dict[str, Any]:
        state = {"name": self.name, "transform": TRANSFORM, "mean": self.mean, "std": self.std}
        return state if self.scales is None else {**state, "scales": self.scales, "decimals": self.decimals}

    def put_back(self, relative: np.ndarray, level: np.ndarray) -> np.ndarray:
        """The generated column's values from the model's relative ones [n] and the rows' levels [n]."""
        values = from_level(relative, level)
        return values if self.decimals is None else np.round(values, self.decimals)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ContinuousCondition:
        """The condition saved by `state`; ValueError when a field is missing, mistyped or not finite."""
        if state.get("transform") != TRANSFORM or not isinstance(state.get("name"), str):
            raise ValueError(f"continuous condition {state!r:.80}: expected a name and transform {TRANSFORM!r}")
        mean, std = state.get("mean"), state.get("std")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (mean, std)) \
                or std <= 0:
            raise ValueError(f"continuous condition {state['name']!r}: mean and std must be finite numbers, std > 0")
        scales, decimals = state.get("scales"), state.get("decimals")
        if (scales is not None and not isinstance(scales, str)) or \
                (decimals is not None and (not isinstance(decimals, int) or isinstance(decimals, bool) or decimals < 0)):
            raise ValueError(f"continuous condition {state['name']!r}: scales must be a column name and decimals a "
                             f"whole number >= 0, got {scales!r:.40} and {decimals!r:.20}")
        return cls(state["name"], float(mean), float(std), scales, decimals)


TRANSFORM = "signed_log1p"


def fit_continuous(names: Sequence[str], values: Tensor, scales: Sequence[str | None] | None = None,
                   decimals: Sequence[int | None] | None = None) -> tuple[ContinuousCondition, ...]:
    """Continuous conditions `names` standardised on the training rows' raw values [n, len(names)];
    scales[j] / decimals[j]: the generated column condition j is the level of, and its decimals (None: none)."""
    scales = list(scales) if scales is not None else [None] * len(names)
    decimals = list(decimals) if decimals is not None else [None] * len(names)
    return tuple(ContinuousCondition.fit(name, values[:, j], scales[j], decimals[j]) for j, name in enumerate(names))


def relative_to_level(values: np.ndarray, level: np.ndarray) -> np.ndarray:
    """A column as the model learns it when generated relative to its item's level: slog(x) - slog(level),
    slog the signed log1p (defined for 0 and negative prices; ~log(x / level) for large ones). Nulls stay."""
    return _slog(values) - _slog(level)


def from_level(relative: np.ndarray, level: np.ndarray) -> np.ndarray:
    """The inverse of `relative_to_level`: y = relative + slog(level), x = sign(y) (exp|y| - 1)."""
    total = relative + _slog(level)
    return np.sign(total) * np.expm1(np.abs(total))


def _slog(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.log1p(np.abs(values))


def continuous_from_state(states: Sequence[dict[str, Any]]) -> tuple[ContinuousCondition, ...]:
    """The continuous conditions of a bundle manifest's `condition_continuous` (written by
    `models.condition.continuous_state`); ValueError when malformed."""
    if not isinstance(states, list) or not all(isinstance(state, dict) for state in states):
        raise ValueError(f"expected a list of continuous conditions, got {states!r:.80}")
    return tuple(ContinuousCondition.from_state(state) for state in states)


def signed_log1p(values: Tensor) -> Tensor:
    """sign(x) * log(1 + |x|): log1p for non-negative values, odd-symmetric for negative ones."""
    return torch.sign(values) * torch.log1p(values.abs())
