"""TensorBoard output of fidelity measures: scalars while training, a full report once at the end.

Tag scheme (prefix = "overall", "bucket/<b>", "floor/overall", "floor/bucket/<b>", or the caller's):
  <prefix>/<measure>            every numeric top-level measure (mean_ks, mean_tvd, auc, dcr_median, ...)
  <prefix>/ks/<column>          per numerical/datetime column: its distance (KS, null gap folded in)
  <prefix>/tvd/<column>         per categorical column: its TVD
  <prefix>/pvalue/<column>      per column: the test's p-value
  gate/<path>                   every numeric leaf under report["gate"] (acceptance rates, counts, ...)
  hist/overall/<column>, hist/<bucket>/<column>   overlay histograms (blue real, orange synthetic)
  corr_diff/overall             heatmap of corr_synth - corr_real (red: synthetic more correlated)
  summary                       the Markdown report as text
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from evaluate.images import heatmap, overlay_histogram
from evaluate.markdown import number, numeric_leaves, report_markdown
from evaluate.metrics import ColumnTypes, correlation_difference


class ScalarWriter(Protocol):
    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = None) -> Any: ...


def log_measures(writer: ScalarWriter, prefix: str, measures: dict[str, Any], step: int) -> None:
    """Log a `fidelity.measure` dict as scalars under `prefix` (see the module docstring for tags)."""
    for key, value in measures.items():
        scalar = None if isinstance(value, (bool, np.bool_)) else number(value)
        if scalar is not None:
            writer.add_scalar(f"{prefix}/{key}", scalar, step)
    for row in measures.get("columns", ()):
        kind = "tvd" if row.get("sdtype") == "categorical" else "ks"
        for tag, value in ((f"{prefix}/{kind}/{row['column']}", row.get("distance")),
                           (f"{prefix}/pvalue/{row['column']}", row.get("pvalue"))):
            scalar = number(value)
            if scalar is not None:
                writer.add_scalar(tag, scalar, step)


def _log_tables(writer: Any, report: dict[str, Any], step: int) -> None:
    """Scalars of the overall, per-bucket and floor measures, and of the gate section."""
    log_measures(writer, "overall", report["overall"], step)
    for bucket, measures in report.get("by_bucket", {}).items():
        log_measures(writer, f"bucket/{bucket}", measures, step)
    floor = report.get("floor") or {}
    if floor.get("overall"):
        log_measures(writer, "floor/overall", floor["overall"], step)
    for bucket, measures in floor.get("by_bucket", {}).items():
        log_measures(writer, f"floor/bucket/{bucket}", measures, step)
    for tag, value in numeric_leaves(report.get("gate"), ("gate",)):
        writer.add_scalar(tag, value, step)


def _log_images(
    writer: Any,
    real: pd.DataFrame,
    synth: pd.DataFrame,
    columns: ColumnTypes,
    buckets: list[str],
    by: str | None,
    step: int,
) -> None:
    """Overlay histograms per column, overall and per reported bucket, and the correlation heatmap."""
    groups = [("overall", real, synth)]
    if by is not None and by in real.columns and by in synth.columns:
        real_keys, synth_keys = real[by].astype(str), synth[by].astype(str)
        groups += [(bucket, real[real_keys == bucket], synth[synth_keys == bucket]) for bucket in buckets]
    for name, real_rows, synth_rows in groups:
        if len(real_rows) == 0 or len(synth_rows) == 0:
            continue
        for column, sdtype in columns.items():
            image = overlay_histogram(real_rows[column], synth_rows[column], sdtype)
            writer.add_image(f"hist/{name}/{column}", image, step, dataformats="HWC")
    _, difference = correlation_difference(real, synth, columns)
    if not difference.empty:
        writer.add_image("corr_diff/overall", heatmap(difference.to_numpy(), scale=1.0), step, dataformats="HWC")


def write_report(
    logdir: str | Path,
    report: dict[str, Any],
    real: pd.DataFrame,
    synth: pd.DataFrame,
    columns: ColumnTypes,
    *,
    step: int = 0,
    by: str | None = "pop_bucket",
    extra_text: str = "",
) -> None:
    """Write a `fidelity_report` (plus an optional "gate" section) to TensorBoard event files in `logdir`.

    `real` should be the rows synth was compared against (the holdout when the report used one); images
    are drawn per column overall and for every bucket the report measured. The text summary is the
    Markdown report followed by `extra_text`.
    """
    from torch.utils.tensorboard import SummaryWriter  # imported here: only report writing needs it

    writer = SummaryWriter(log_dir=str(logdir))
    try:
        _log_tables(writer, report, step)
        _log_images(writer, real, synth, columns, list(report.get("by_bucket", {})), by, step)
        text = report_markdown(report, "Fidelity report")
        legend = "\n\nHistograms: blue = real, orange = synthetic. Heatmap: corr_synth - corr_real, red = higher.\n"
        writer.add_text("summary", text + legend + (f"\n{extra_text}\n" if extra_text else ""), step)
        writer.flush()
    finally:
        writer.close()
