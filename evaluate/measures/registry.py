"""`METRICS`: the explicit registry of table-level scalars with their direction, for the gate to compose.

Its own module because it names measures of two modules (`metrics` and `detection`): `detection` builds
on `metrics`, and this registry on both, so no import goes back up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from tailsynth.evaluate.measures.detection import discriminator_auc
from tailsynth.evaluate.measures.metrics import ColumnTypes, column_tests, contingency_distance, correlation_difference


@dataclass(frozen=True)
class Metric:
    """A table-level measure: `fn(real, synth, columns) -> float` and whether lower or higher is better."""

    name: str
    direction: Literal["minimize", "maximize"]
    fn: Callable[[pd.DataFrame, pd.DataFrame, ColumnTypes], float]


def _mean_distance(kinds: tuple[str, ...]) -> Callable[[pd.DataFrame, pd.DataFrame, ColumnTypes], float]:
    def mean_distance(real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes) -> float:
        chosen = {col: kind for col, kind in columns.items() if kind in kinds}
        if not chosen:
            return float("nan")
        return float(column_tests(real, synth, chosen)["distance"].mean())

    return mean_distance


def _auc(real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes) -> float:
    return discriminator_auc(real, synth, columns)


def _corr_diff(real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes) -> float:
    return correlation_difference(real, synth, columns)[0]


METRICS: dict[str, Metric] = {
    "ks": Metric(name="ks", direction="minimize", fn=_mean_distance(("numerical", "datetime"))),
    "tvd": Metric(name="tvd", direction="minimize", fn=_mean_distance(("categorical",))),
    "corr_diff": Metric(name="corr_diff", direction="minimize", fn=_corr_diff),
    "contingency_distance": Metric(name="contingency_distance", direction="minimize", fn=contingency_distance),
    "auc": Metric(name="auc", direction="minimize", fn=_auc),
}
"""Table-level measures; `fidelity.measure` reports "ks" as mean_ks and "tvd" as mean_tvd."""
