"""The report's one-pass DCR (evaluate/report_cmd._fill_dcr) equals one DCR per table, as fidelity_report
computes it, for every table pair of the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailsynth.evaluate.measures.fidelity import fidelity_report
from tailsynth.evaluate.report.command import DCR_ROWS, _fill_dcr

COLUMNS = {"price": "numerical", "country": "categorical"}


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"price": rng.normal(10 + shift, 2, rows), "country": rng.choice(["uk", "fr", "de"], rows),
                         "pop_bucket": rng.choice(["head", "torso", "tail"], rows, p=[0.5, 0.3, 0.2])})


def test_one_pass_equals_one_dcr_per_table() -> None:
    rng = np.random.default_rng(0)
    train, holdout, synth = _table(rng, 900), _table(rng, 300), _table(rng, 400, shift=1.5)
    assert max(len(holdout), len(synth)) <= DCR_ROWS  # every row sampled: both ways use the same rows
    expected = fidelity_report(train, synth, COLUMNS, holdout=holdout, auc=False, dcr_rows=DCR_ROWS)
    report = fidelity_report(train, synth, COLUMNS, holdout=holdout, auc=False, dcr_rows=0)
    assert report["overall"]["dcr_median"] is None
    _fill_dcr(report, train, holdout, synth, COLUMNS, seed=0)

    def medians(result: dict) -> dict[str, float]:
        floor = result["floor"]
        found = {"overall": result["overall"]["dcr_median"], "floor": floor["overall"]["dcr_median"]}
        found.update({b: m["dcr_median"] for b, m in result["by_bucket"].items()})
        found.update({f"floor {b}": m["dcr_median"] for b, m in floor["by_bucket"].items()})
        return found

    assert len(medians(report)) == 8  # overall, three buckets, and the same for the floor
    assert medians(report) == pytest.approx(medians(expected), rel=1e-6)
    assert medians(report)["overall"] > medians(report)["floor"]  # shifted synthetic rows sit farther away
