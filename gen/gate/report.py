"""The gate's report: failure sentences, JSON-safe values, progress on stderr, and writing the output.

`write_gate_output(result, out)` writes `out` (parquet or CSV by extension) and `<out>.report.json` as one
unit (`gen.outputs`: checked, locked, both or neither). On a refusal NO rows file is written and nothing
is removed: a rows file left at `out` by an earlier run stays, next to the new report that says this run
refused (its `output.rows` is null). `format_refusal(report)` is the short explanation the command line
prints.

`GateReport` is the typed report of `run_gate` (its failures and verdict: `gen.gate.verdict`); nothing
here judges anything.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailsynth.gen.outputs import REPORT_SUFFIX, Output, claim_output, report_path  # noqa: F401 - re-exported
from tailsynth.models.errors import GateError

if TYPE_CHECKING:  # gen.gate imports this module; these types are only needed for hints here
    from tailsynth.gen.gate import GateResult
    from tailsynth.gen.gate.fill import Accounting
    from tailsynth.gen.gate.verdict import Failure, Verdict

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


@dataclass(frozen=True)
class GateReport:
    """The report of one `run_gate` call; `to_dict()` is its strict-JSON form (the keys `run_gate` lists)."""

    label: str
    requested_rows: int
    seed: int
    config: dict[str, Any]
    train_rows: int
    holdout_rows: int
    accounting: Accounting
    budget: int
    failures: tuple[Failure, ...]
    verdict: str
    """"passed", "failed" or "cannot_judge"."""
    holdout_privacy_trim: dict[str, Any] | None = None
    drawn: dict[str, Any] | None = None
    """discriminator_filter, eval_rows, before, floor: None when nothing was drawn (cannot judge)."""
    judged: Verdict | None = None
    """The final test; None when the budget was spent before the requested rows were accepted."""
    after: dict[str, Any] | None = None
    seconds: float | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def to_dict(self) -> dict[str, Any]:
        report: dict[str, Any] = {"label": self.label, "requested_rows": self.requested_rows, "seed": self.seed,
                                  "config": self.config, "train_rows": self.train_rows,
                                  "holdout_rows": self.holdout_rows, "passed": self.passed, "verdict": self.verdict}
        if self.holdout_privacy_trim is not None:
            report["holdout_privacy_trim"] = self.holdout_privacy_trim
        report.update(self.accounting.to_dict(self.budget))
        failures = [failure.to_dict() for failure in self.failures]
        if self.drawn is None:
            return plain({**report, "failures": failures})
        report.update(self.drawn)
        # Key order as the report has always had it: a spent budget lists "after" first.
        if self.judged is None:
            report.update(after=None, tests=[], auc={"value": None, "max": self.config["max_auc"]})
        else:
            report.update(tests=[test.to_dict() for test in self.judged.tests], auc=self.judged.auc_entry(),
                          after=self.after)
        return plain({**report, "failures": failures, "seconds": self.seconds})


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
