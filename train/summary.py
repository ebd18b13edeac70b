"""A plain-text view of the behaviour records: what cleaning dropped and the popularity buckets."""

from __future__ import annotations

import pandas as pd

from tailsynth.train.records import Records


def summary_text(records: Records) -> str:
    lines = [f"behaviour records: {len(records.table):,} interactions x {records.table.shape[1]} columns"]
    if records.cleaning:
        lines.append("cleaning:")
        for step in records.cleaning:
            lines.append(f"  {step['step']:<48} dropped {step['dropped']:>9,}  remaining {step['remaining']:>9,}")
    lines.append("popularity buckets:")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        lines.append(records.summary().to_string(index=False))
    return "\n".join(lines)


def print_summary(records: Records) -> None:
    print(summary_text(records))
