"""TensorBoard output of fidelity measures: scalars while training, a full report once at the end.

Tag scheme (prefix = "overall", "bucket/<b>", "floor/overall", "floor/bucket/<b>", or the caller's):
  <prefix>/<measure>            every numeric top-level measure (mean_ks, mean_tvd, auc, dcr_median, ...)
  <prefix>/ks/<column>          per numerical/datetime column: its distance (KS, null gap folded in)
  <prefix>/tvd/<column>         per categorical column: its TVD
  <prefix>/pvalue/<column>      per column: the test's p-value
  gate/<path>                   every numeric leaf under report["gate"] (acceptance rates, counts, ...)
  hist/<column>                 the caller's figures (`evaluate.images.report_figures`): per column one
  corr_diff                     panel per group, and the correlation-difference heatmap; any tag works
  summary                       the Markdown report as text
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tailsynth.evaluate.measures.scalars import log_measures, numeric_leaves
from tailsynth.evaluate.report.markdown import report_markdown


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


def write_report(
    logdir: str | Path,
    report: dict[str, Any],
    images: Mapping[str, np.ndarray] | None = None,
    *,
    step: int = 0,
    title: str = "Fidelity report",
    extra_text: str = "",
) -> None:
    """Write a `fidelity_report` (plus an optional "gate" section) to TensorBoard event files in `logdir`.

    `images` maps a tag to a uint8 [H, W, 3] image (`evaluate.images.to_rgb` of `report_figures`), drawn
    once by the caller so the same pixels can also be saved as PNGs. The text summary is the Markdown
    report followed by `extra_text`.
    """
    from torch.utils.tensorboard import SummaryWriter  # imported here: only report writing needs it

    writer = SummaryWriter(log_dir=str(logdir))
    try:
        _log_tables(writer, report, step)
        for tag, image in (images or {}).items():
            writer.add_image(tag, image, step, dataformats="HWC")
        text = report_markdown(report, title)
        writer.add_text("summary", text + (f"\n\n{extra_text}\n" if extra_text else ""), step)
        writer.flush()
    finally:
        writer.close()
