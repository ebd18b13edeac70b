"""What to try when the gate refuses: each kind of failure mapped to the advice a user can act on.

`advice(failures)` reads the failure dicts of a gate report (`measure` and, for column tests, `column`)
and returns one line per kind of failure present, most common first - never a setting that loosens
the gate (alpha, max_auc, rare_k are the product's promise, see README).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

ADVICE = {
    "auc": ("a fresh discriminator tells the rows from real ones: train longer (trainer.max_epochs), try the other "
            "model (model.kind: tvae / ctgan), or train on a GPU where more epochs fit the time"),
    "column_test": ("column(s) {columns} differ from real held-out rows: more epochs usually fix a column the "
                    "model has not learnt yet; a column with a point mass or a heavy tail may need "
                    "model.encoder.spike_share > 0"),
    "candidate_budget": ("the filters rejected most candidates (the model is far from the data): train longer, or "
                         "ask for fewer rows; gate.max_candidates_factor only buys more tries"),
    "holdout_rows": ("too few real held-out rows to judge by: request fewer rows per group, raise "
                     "data.split.holdout_fraction, or augment a bucket with more held-out interactions"),
    "requested_rows": "too few rows requested to be judged: ask for at least 6",
    "eval_rows": "too few rows of a group to compare: ask for more rows per item (--per-item)",
    "no_holdout": ("items whose feature values have no held-out interactions cannot be judged; they are never "
                   "emitted (a larger data.split.holdout_fraction gives them some)"),
}


def kind(failure: dict[str, Any] | str) -> str:
    """The advice key of one failure (a gate failure dict, or an items-path refusal reason)."""
    if isinstance(failure, str):
        if "no held-out real row" in failure:
            return "no_holdout"
        if "candidate budget" in failure:
            return "candidate_budget"
        return "holdout_rows" if "min_holdout_rows" in failure else "other"
    measure = str(failure.get("measure", ""))
    if measure == "raw_candidates_column_test":
        return "column_test"
    if "no held-out real row" in str(failure.get("message", "")):
        return "no_holdout"
    return measure if measure in ADVICE else "other"


def advice(failures: Iterable[dict[str, Any] | str]) -> list[str]:
    """One line of advice per kind of failure present, most frequent first."""
    failures = list(failures)
    kinds = Counter(kind(f) for f in failures)
    columns = sorted({str(f["column"]) for f in failures if isinstance(f, dict) and f.get("column")})
    lines = []
    for name, _ in kinds.most_common():
        if name in ADVICE:
            lines.append(ADVICE[name].format(columns=", ".join(columns) or "some"))
    return lines
