"""The gate's judgement, shared by `gen sample` (`gen.gate.core`) and the item paths (`gen.items.judge`):
accepted rows against real held-out rows, per-column KS / chi-square tests with Holm correction at `alpha`
and a discriminator AUC that must be <= `max_auc`.

    verdict = judge_rows(holdout_rows, accepted_rows, train, columns, auc, config)
    verdict.passed, [failure.to_dict() for failure in verdict.failures]

The results are typed (`ColumnTest`, `Failure`, `Verdict`, `UnitVerdict`); `to_dict()` gives the report's
JSON entries. The failure builders (`auc_failure`, `budget_failure`, `cannot_judge`, ...) write each
refusal's plain sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from tailsynth.evaluate.measures import metrics
from tailsynth.gen.gate.support import ColumnTypes
from tailsynth.train.config import GateConfig

MIN_JUDGED_ROWS = 6
"""Fewest accepted rows the final test can judge: the 3-fold discriminator AUC needs 2 rows per fold."""


@dataclass(frozen=True)
class ColumnTest:
    """One column's two-sample test (`evaluate.metrics.column_tests`) and its Holm decision."""

    column: str
    sdtype: str
    test: str
    statistic: Any
    pvalue: Any
    distance: Any
    holm_threshold: float
    holm_rejected: bool

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "sdtype": self.sdtype, "test": self.test, "statistic": self.statistic,
                "pvalue": self.pvalue, "distance": self.distance, "holm_threshold": self.holm_threshold,
                "holm_rejected": self.holm_rejected}


@dataclass(frozen=True)
class Failure:
    """Why rows were refused: the measure, its figures and a plain sentence."""

    measure: str
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"measure": self.measure, **self.figures, "message": self.message}


@dataclass(frozen=True)
class Verdict:
    """The final test of one set of accepted rows against held-out rows."""

    tests: tuple[ColumnTest, ...]
    auc: float | None
    max_auc: float
    failures: tuple[Failure, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def auc_entry(self) -> dict[str, Any]:
        return {"value": self.auc, "max": self.max_auc}


@dataclass(frozen=True)
class UnitVerdict:
    """The verdict of a unit of item groups (`gen.items.judge`): a group, pooled groups, or their union."""

    label: str
    kind: str
    """"group", "pooled" or "union"."""
    groups: tuple[int, ...]
    holdout_rows: int
    synthetic_rows: int
    verdict: Verdict

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "groups": list(self.groups),
                "eval_rows": {"holdout": self.holdout_rows, "synthetic": self.synthetic_rows},
                "auc": self.verdict.auc_entry(), "tests": [test.to_dict() for test in self.verdict.tests],
                "passed": self.passed, "failures": [failure.to_dict() for failure in self.verdict.failures]}


def judge_rows(
    holdout: pd.DataFrame, accepted: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes, auc: float | None,
    config: GateConfig,
) -> Verdict:
    """The column tests of `accepted` vs `holdout` over `columns` (Holm at config.alpha), and the AUC rule."""
    tests, failures = column_tests(holdout, accepted, train, columns, config.alpha)
    if not auc <= config.max_auc:  # written this way so a NaN AUC fails too
        failures.append(auc_failure(auc, config.max_auc))
    return Verdict(tuple(tests), auc, config.max_auc, tuple(failures))


def column_tests(
    holdout: pd.DataFrame, accepted: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes, alpha: float
) -> tuple[list[ColumnTest], list[Failure]]:
    """Per-column tests with Holm correction: (every column's test, failures for rejected columns)."""
    # reference=train: a training label the (smaller) holdout happens to lack is not an "invented" category.
    table = metrics.column_tests(holdout, accepted, columns, reference=train).reset_index(drop=True)
    return holm_tests(table, alpha)


def holm_tests(table: pd.DataFrame, alpha: float) -> tuple[list[ColumnTest], list[Failure]]:
    """`evaluate.metrics.column_tests` rows (column, sdtype, test, statistic, pvalue, distance) with Holm's
    decisions at `alpha`: (tests, failures of the rejected columns)."""
    pvalues = table["pvalue"].to_numpy(dtype=float)  # None (a test that could not run) becomes NaN
    rejected = np.asarray(metrics.holm(pvalues, alpha), dtype=bool)
    thresholds = _holm_thresholds(pvalues, alpha)
    tests, failures = [], []
    for i, row in enumerate(table.to_dict("records")):  # one entry per judged column, not per data row
        test = ColumnTest(row["column"], row["sdtype"], row["test"], row["statistic"], row["pvalue"],
                          row["distance"], float(thresholds[i]), bool(rejected[i]))
        tests.append(test)
        if test.holm_rejected:
            message = (f"column {row['column']}: {str(row['test']).upper()} {_number(row['statistic'], '.3g')}, "
                       f"p={_number(row['pvalue'], '.2g')} < Holm threshold {thresholds[i]:.2g} (alpha {alpha:g})")
            failures.append(Failure("column_test", message, test.to_dict()))
    return tests, failures


def raw_diagnosis(before: dict | None, alpha: float) -> list[Failure]:
    """After a spent budget: the columns in which the RAW candidates differ from holdout (what to fix)."""
    if not before:
        return []
    _, failures = holm_tests(pd.DataFrame(before["columns"]), alpha)
    return [replace(failure, measure="raw_candidates_column_test",
                    message="raw candidates vs holdout, " + failure.message) for failure in failures]


def _holm_thresholds(pvalues: np.ndarray, alpha: float) -> np.ndarray:
    """The Holm step-down threshold each p-value meets: alpha / (m - rank), rank 0 = smallest p (for messages)."""
    order = np.argsort(np.where(np.isnan(pvalues), np.inf, pvalues), kind="stable")
    ranks = np.empty(len(pvalues), dtype=int)
    ranks[order] = np.arange(len(pvalues))
    return alpha / (len(pvalues) - ranks)


def _number(value: Any, spec: str) -> str:
    """A figure for a sentence; "n/a" for a missing (None/NaN) value rather than a formatting error."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def auc_failure(auc: float, max_auc: float) -> Failure:
    return Failure("auc", f"discriminator AUC {auc:.3f} > max {max_auc:.3f} (a fresh classifier tells the accepted "
                          "rows from real held-out rows)", {"value": auc, "max": max_auc})


def budget_failure(accepted: int, n: int, candidates: int, budget: int, factor: float,
                   rejected: dict[str, int]) -> Failure:
    worst = max(rejected, key=rejected.get)
    message = (f"candidate budget spent: {accepted:,} of {n:,} rows accepted after {candidates:,} candidates "
               f"(budget {budget:,} = max_candidates_factor {factor:g} x {n:,}); most rejections by {worst} "
               f"({rejected[worst]:,})")
    return Failure("candidate_budget", message, {"accepted": accepted, "requested": n, "candidates": candidates,
                                                 "budget": budget})


def too_few_to_compare(label: str, synthetic_rows: int, holdout_rows: int, minimum: int) -> Failure:
    return Failure("eval_rows", f"{label}: only {synthetic_rows} synthetic and {holdout_rows} held-out rows can be "
                                f"compared in the held-out mix of feature values (at least {minimum} each needed)",
                   {"value": synthetic_rows, "min": minimum})


def cannot_judge(
    train_rows: int, holdout_rows: int, set_aside: int, min_holdout_rows: int, requested: int
) -> Failure | None:
    """The failure when the real rows (or the requested rows) are too few to judge by, else None.

    set_aside: held-out rows excluded from judging by the privacy rule (see `gen.gate.core.privacy_trim`).
    """
    if requested < MIN_JUDGED_ROWS:
        return Failure("requested_rows", f"{requested} rows are too few to judge: the cross-validated discriminator "
                                         f"needs at least {MIN_JUDGED_ROWS} accepted rows, so nothing is emitted",
                       {"value": requested, "min": MIN_JUDGED_ROWS})
    left = holdout_rows - set_aside
    if left < min_holdout_rows:
        trimmed = (f", {set_aside:,} of which repeat a rare training combination and are set aside, leaving "
                   f"{left:,}") if set_aside else ""
        return Failure("holdout_rows", f"holdout has {holdout_rows:,} rows{trimmed}, fewer than min_holdout_rows "
                                       f"{min_holdout_rows:,}: too few real held-out rows to judge fidelity, so "
                                       "nothing is emitted", {"value": left, "min": min_holdout_rows})
    if train_rows == 0:
        return Failure("train_rows", "there are no real training rows for this bucket: no support or discriminator "
                                     "can be fitted, so nothing is emitted", {"value": 0})
    return None
