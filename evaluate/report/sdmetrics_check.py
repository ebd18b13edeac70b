"""Optional cross-check with SDMetrics' QualityReport (column shapes, column pair trends).

SDMetrics is an optional dependency (the `sdv` extra), so it is imported only when this runs; without it
`quality_report` returns None. Its scores are similarities in [0, 1] (1 = identical), the opposite direction
of our distances, and they use their own definitions (KS complement, TV complement, correlation similarity);
they are reported beside ours as an independent reading, never used by the gate.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pandas as pd

from tailsynth.evaluate.measures.metrics import ColumnTypes, check_columns

TABLE = "table"


def _prepared(table: pd.DataFrame, columns: ColumnTypes) -> pd.DataFrame:
    """Only the judged columns, with datetime columns parsed (SDMetrics needs datetime64 or a format)."""
    out = table.loc[:, list(columns)].copy()
    for column, sdtype in columns.items():
        if sdtype == "datetime" and not pd.api.types.is_datetime64_any_dtype(out[column].dtype):
            out[column] = pd.to_datetime(out[column], errors="coerce")
    return out


def _report_class() -> tuple[type, bool] | None:
    """(QualityReport class, whether it is the unified multi-table-style API), or None without sdmetrics."""
    try:
        from sdmetrics.reports import QualityReport  # sdmetrics >= 0.19: one report for 1..n tables

        return QualityReport, True
    except ImportError:
        pass
    try:
        from sdmetrics.reports.single_table import QualityReport

        return QualityReport, False
    except ImportError:
        return None


def quality_report(real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes) -> dict[str, Any] | None:
    """SDMetrics' quality scores for the judged columns, or None when sdmetrics is not installed.

    Returns {"score": overall, "properties": {"Column Shapes": s, "Column Pair Trends": s},
    "column_shapes": {column: score}} with plain floats; a score SDMetrics leaves undefined is None (recent
    versions score a column pair only when the real pair's correlation/association passes a threshold, so
    a table of independent columns has no Column Pair Trends score).
    """
    found = _report_class()
    if found is None:
        return None
    report_class, unified = found
    check_columns(real, columns, "real")
    check_columns(synth, columns, "synthetic")
    table_metadata = {"columns": {column: {"sdtype": sdtype} for column, sdtype in columns.items()}}
    real_rows, synth_rows = _prepared(real, columns), _prepared(synth, columns)
    report = report_class()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SDMetrics warns about its own deprecations and small samples
        if unified:
            report.generate(
                {TABLE: real_rows}, {TABLE: synth_rows}, {"tables": {TABLE: table_metadata}}, verbose=False
            )
        else:
            report.generate(real_rows, synth_rows, table_metadata, verbose=False)
        properties = report.get_properties()
        shapes = report.get_details("Column Shapes")
    return {
        "score": _score(report.get_score()),
        "properties": {str(row["Property"]): _score(row["Score"]) for _, row in properties.iterrows()},
        "column_shapes": {str(row["Column"]): _score(row["Score"]) for _, row in shapes.iterrows()},
    }


def _score(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
