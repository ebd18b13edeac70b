"""The gate's report: failure sentences, JSON-safe values, progress on stderr, and writing the output.

`write_gate_output(result, out)` writes `out` (parquet or CSV by extension) and `<out>.report.json` as one
unit (`gen.outputs`: checked, locked, both or neither). On a refusal NO rows file is written and nothing
is removed: a rows file left at `out` by an earlier run stays, next to the new report that says this run
refused (its `output.rows` is null). `format_refusal(report)` is the short explanation the command line
prints.

The other helpers build pieces of the report for `gen.gate` (which owns the decisions); nothing here
judges anything.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailsynth.gen.outputs import REPORT_SUFFIX, Output, claim_output, report_path  # noqa: F401 - re-exported
from tailsynth.models.errors import GateError

if TYPE_CHECKING:  # gen.gate imports this module; the result type is only needed for hints here
    from tailsynth.gen.gate import GateResult

MIN_JUDGED_ROWS = 6
"""Fewest accepted rows the final test can judge: the 3-fold discriminator AUC needs 2 rows per fold."""
ACCOUNTING_NOTE = (
    "candidates = calibration_rows + accepted + rejected.support + rejected.discriminator + rejected.privacy "
    "+ unused. Filters run in rejection_order and a row failing several counts under the first; unused rows "
    "passed every filter in the last chunk but were not needed to reach the requested rows."
)


def write_gate_output(result: GateResult, out: str | Path | Output) -> Path | None:
    """Write the report; write the rows too when the gate passed. Returns the rows path, or None on refusal.

    out: a path (checked and locked here) or an `Output` a command already claimed before its work.
    """
    if result.passed and result.rows is None:
        raise GateError(f"{out}: the gate result says passed but holds no rows; nothing written")
    if isinstance(out, Output):
        out.write(result.rows if result.passed else None, result.report)
        return out.rows_path if result.passed else None
    with claim_output(out) as output:
        return write_gate_output(result, output)


def format_refusal(report: dict[str, Any]) -> str:
    """A few lines for the command line: what was refused, and each failed measure with its figures."""
    label = report.get("label", "?")
    requested = report.get("requested_rows", 0)
    if report.get("passed"):
        return f"gate {label}: passed, {requested:,} rows accepted"
    from tailsynth.gen.gate.advice import advice

    verdict = "cannot judge" if report.get("verdict") == "cannot_judge" else "refused"
    failures = report.get("failures", [])
    if verdict == "refused" and report.get("accepted", 0) >= requested > 0:
        lines = [f"gate {label}: {report['accepted']:,} candidates passed the filters; the final test against real "
                 f"held-out rows refused them because:"]
    else:
        lines = [f"gate {label}: {verdict} - no rows emitted ({requested:,} requested)"]
    for failure in failures:
        lines.append("  - " + (failure.get("message", str(failure)) if isinstance(failure, dict) else str(failure)))
    if report.get("candidates"):
        rejected = ", ".join(f"{reason} {count:,}" for reason, count in report.get("rejected", {}).items())
        lines.append(f"  candidates {report['candidates']:,} (calibration {report['calibration_rows']:,}), "
                     f"accepted {report['accepted']:,}, rejected: {rejected}")
    lines += [f"  try: {line}" for line in advice(failures)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# pieces of the report


def column_entries(
    table: pd.DataFrame, rejected: np.ndarray, thresholds: np.ndarray, alpha: float
) -> tuple[list[dict], list[dict]]:
    """`evaluate.metrics.column_tests` rows + Holm results -> (report "tests" entries, failures).

    table: one row per column (column, sdtype, test, statistic, pvalue, distance); rejected, thresholds: [m].
    """
    tests, failures = [], []
    for i, row in enumerate(table.to_dict("records")):  # one entry per judged column, not per data row
        entry = {"column": row["column"], "sdtype": row["sdtype"], "test": row["test"],
                 "statistic": row["statistic"], "pvalue": row["pvalue"], "distance": row["distance"],
                 "holm_threshold": float(thresholds[i]), "holm_rejected": bool(rejected[i])}
        tests.append(entry)
        if entry["holm_rejected"]:
            message = (f"column {row['column']}: {str(row['test']).upper()} {_number(row['statistic'], '.3g')}, "
                       f"p={_number(row['pvalue'], '.2g')} < Holm threshold {thresholds[i]:.2g} (alpha {alpha:g})")
            failures.append({"measure": "column_test", **entry, "message": message})
    return tests, failures


def _number(value: Any, spec: str) -> str:
    """A figure for a sentence; "n/a" for a missing (None/NaN) value rather than a formatting error."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def auc_failure(auc: float, max_auc: float) -> dict:
    return {"measure": "auc", "value": auc, "max": max_auc,
            "message": f"discriminator AUC {auc:.3f} > max {max_auc:.3f} (a fresh classifier tells the accepted "
                       "rows from real held-out rows)"}


def budget_failure(accepted: int, n: int, candidates: int, budget: int, factor: float, rejected: dict) -> dict:
    worst = max(rejected, key=rejected.get)
    message = (f"candidate budget spent: {accepted:,} of {n:,} rows accepted after {candidates:,} candidates "
               f"(budget {budget:,} = max_candidates_factor {factor:g} x {n:,}); most rejections by {worst} "
               f"({rejected[worst]:,})")
    return {"measure": "candidate_budget", "accepted": accepted, "requested": n, "candidates": candidates,
            "budget": budget, "message": message}


def cannot_judge(
    train_rows: int, holdout_rows: int, set_aside: int, min_holdout_rows: int, requested: int
) -> dict | None:
    """The failure entry when the real rows (or the requested rows) are too few to judge by, else None.

    set_aside: held-out rows excluded from judging by the privacy rule (see `gen.gate._privacy_trim`).
    """
    if requested < MIN_JUDGED_ROWS:
        return {"measure": "requested_rows", "value": requested, "min": MIN_JUDGED_ROWS,
                "message": f"{requested} rows are too few to judge: the cross-validated discriminator needs at "
                           f"least {MIN_JUDGED_ROWS} accepted rows, so nothing is emitted"}
    left = holdout_rows - set_aside
    if left < min_holdout_rows:
        trimmed = (f", {set_aside:,} of which repeat a rare training combination and are set aside, leaving "
                   f"{left:,}") if set_aside else ""
        return {"measure": "holdout_rows", "value": left, "min": min_holdout_rows,
                "message": f"holdout has {holdout_rows:,} rows{trimmed}, fewer than min_holdout_rows "
                           f"{min_holdout_rows:,}: too few real held-out rows to judge fidelity, so nothing is emitted"}
    if train_rows == 0:
        return {"measure": "train_rows", "value": 0,
                "message": "there are no real training rows for this bucket: no support or discriminator can be "
                           "fitted, so nothing is emitted"}
    return None


def plain(value: Any) -> Any:
    """Strict-JSON values: numpy scalars become Python ones, NaN/inf None, tuples lists, stamps ISO text."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


class Progress:
    """A one-line text progress report on stderr, at most every 0.5 s; silent for runs shorter than that.

    tqdm is installed only through Lightning (not a dependency we declare), and one throttled line is all a
    gate run needs. On a terminal the line is rewritten in place; in a log each update is its own line.
    """

    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.started = self.last = time.monotonic()
        self.line = ""
        self.tty = sys.stderr.isatty()

    def update(self, accepted: int, candidates: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.5):
            return
        line = (f"gate {self.label}: {accepted:,}/{self.total:,} rows accepted "
                f"({100 * accepted / self.total:.0f}%), {candidates:,} candidates, {now - self.started:.0f}s")
        if line == self.line:
            return
        self.last, self.line = now, line
        sys.stderr.write(("\r" + line) if self.tty else (line + "\n"))
        sys.stderr.flush()

    def close(self, accepted: int, candidates: int) -> None:
        if self.line:  # only finish a line that was started; short runs print nothing
            self.update(accepted, candidates, final=True)
            if self.tty:
                sys.stderr.write("\n")
