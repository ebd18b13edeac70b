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

    @classmethod
    def fit(cls, name: str, values: Tensor) -> ContinuousCondition:
        """Mean and std of the transformed training values [n] (a std of 0 becomes 1: a constant is 0)."""
        transformed = signed_log1p(values.double())
        std = float(transformed.std(correction=0)) if transformed.numel() > 1 else 0.0
        return cls(name, float(transformed.mean()), std if std > 0 else 1.0)

    def state(self) -> dict[str, Any]:
        return {"name": self.name, "transform": TRANSFORM, "mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ContinuousCondition:
        """The condition saved by `state`; ValueError when a field is missing, mistyped or not finite."""
        if state.get("transform") != TRANSFORM or not isinstance(state.get("name"), str):
            raise ValueError(f"continuous condition {state!r:.80}: expected a name and transform {TRANSFORM!r}")
        mean, std = state.get("mean"), state.get("std")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (mean, std)) \
                or std <= 0:
            raise ValueError(f"continuous condition {state['name']!r}: mean and std must be finite numbers, std > 0")
        return cls(state["name"], float(mean), float(std))


TRANSFORM = "signed_log1p"


def fit_continuous(names: Sequence[str], values: Tensor) -> tuple[ContinuousCondition, ...]:
    """Continuous conditions `names` standardised on the training rows' raw values [n, len(names)]."""
    return tuple(ContinuousCondition.fit(name, values[:, j]) for j, name in enumerate(names))


def continuous_from_state(states: Sequence[dict[str, Any]]) -> tuple[ContinuousCondition, ...]:
    """The continuous conditions of a bundle manifest's `condition_continuous` (written by
    `models.condition.continuous_state`); ValueError when malformed."""
    if not isinstance(states, list) or not all(isinstance(state, dict) for state in states):
        raise ValueError(f"expected a list of continuous conditions, got {states!r:.80}")
    return tuple(ContinuousCondition.from_state(state) for state in states)


def signed_log1p(values: Tensor) -> Tensor:
    """sign(x) * log(1 + |x|): log1p for non-negative values, odd-symmetric for negative ones."""
    return torch.sign(values) * torch.log1p(values.abs())
