"""The report structure of evaluate/fidelity.py, its Markdown form, and the optional SDMetrics check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tailsynth.evaluate.measures.fidelity import fidelity_report, measure
from tailsynth.evaluate.report.markdown import report_markdown
from tailsynth.evaluate.report.sdmetrics_check import quality_report

COLUMNS = {"price": "numerical", "quantity": "numerical", "country": "categorical", "when": "datetime"}
MEASURE_KEYS = {"rows_real", "rows_synth", "columns", "mean_ks", "mean_tvd", "corr_diff", "contingency_distance"}



def _table(rng: np.random.Generator, rows: int, shift: float = 0.0, tail_share: float = 0.2) -> pd.DataFrame:
    table = pd.DataFrame({
        "price": rng.lognormal(1 + shift, 0.5, rows),
        "quantity": rng.integers(1, 12, rows),
        "country": rng.choice(["uk", "fr", "de"], rows, p=[0.7, 0.2, 0.1]),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, rows), unit="s"),
        "pop_bucket": rng.choice(["head", "torso", "tail"], rows, p=[0.8 - tail_share, 0.2, tail_share]),
    })
    table.loc[rng.random(rows) < 0.05, "price"] = np.nan
    return table


def test_fidelity_report_structure_with_holdout_and_buckets() -> None:
    rng = np.random.default_rng(0)
    train, holdout = _table(rng, 600), _table(rng, 300)
    synth = _table(rng, 400, shift=0.3, tail_share=0.02)  # ~8 tail rows: too few to measure
    report = fidelity_report(train, synth, COLUMNS, holdout=holdout, auc=False)
    assert report["compared_to"] == "holdout" and report["by"] == "pop_bucket"
    assert set(report["by_bucket"]) == {"head", "torso"}
    assert "tail" in report["skipped"] and "need >= 20" in report["skipped"]["tail"]
    overall = report["overall"]
    assert MEASURE_KEYS | {"copy_rate", "dcr_median"} <= set(overall)
    assert "auc" not in overall
    assert overall["rows_real"] == 300 and overall["rows_synth"] == 400
    assert [row["column"] for row in overall["columns"]] == list(COLUMNS)
    assert overall["mean_ks"] > report["floor"]["overall"]["mean_ks"]  # the shifted price shows
    floor = report["floor"]
    assert floor["overall"]["rows_real"] == 600 and floor["overall"]["rows_synth"] == 300
    assert set(floor["by_bucket"]) == {"head", "torso", "tail"} and floor["skipped"] == {}
    assert sum(m["rows_synth"] for m in report["by_bucket"].values()) == (synth["pop_bucket"] != "tail").sum()
    json.dumps(report, allow_nan=False)  # strict JSON: no NaN anywhere


def test_fidelity_report_without_holdout_or_buckets() -> None:
    rng = np.random.default_rng(1)
    real, synth = _table(rng, 200), _table(rng, 150)
    report = fidelity_report(real, synth, COLUMNS, by=None, auc=False)
    assert report["compared_to"] == "real" and report["floor"] is None
    assert report["by_bucket"] == {} and report["skipped"] == {}
    with pytest.raises(ValueError, match="lacks the bucket column 'segment'"):
        fidelity_report(real, synth, COLUMNS, by="segment", auc=False)


def test_measure_auc_privacy_and_missing_values() -> None:
    rng = np.random.default_rng(2)
    real = _table(rng, 300)
    copies = real.iloc[:120].copy()
    result = measure(real, copies, COLUMNS, reference=real, auc=True)
    assert result["copy_rate"] == 1.0 and result["dcr_median"] == 0.0
    assert 0.0 <= result["auc"] <= 1.0
    # Only one numerical-like column: the correlation difference does not apply and is None, not NaN.
    only = measure(real, copies, {"price": "numerical", "country": "categorical"}, auc=False)
    assert only["corr_diff"] is None and only["contingency_distance"] is None
    assert measure(real.iloc[:5], copies.iloc[:5], COLUMNS)["auc"] is None  # too few rows to cross-validate


def test_reference_categories_are_not_invented() -> None:
    rng = np.random.default_rng(3)
    train = _table(rng, 500)
    train.loc[:4, "country"] = "lu"  # a rare training category
    holdout = _table(rng, 200)  # has no "lu"
    synth = _table(rng, 200)
    synth.loc[:1, "country"] = "lu"
    with_reference = measure(holdout, synth, COLUMNS, reference=train, auc=False)
    without = measure(holdout, synth, COLUMNS, auc=False)

    def country_pvalue(result: dict) -> float:
        return next(row["pvalue"] for row in result["columns"] if row["column"] == "country")

    assert country_pvalue(without) == 0.0
    assert country_pvalue(with_reference) > 0.0


def test_markdown_report_lists_buckets_floor_and_gate() -> None:
    rng = np.random.default_rng(4)
    train, holdout = _table(rng, 400), _table(rng, 200)
    synth = _table(rng, 300, tail_share=0.02)
    report = fidelity_report(train, synth, COLUMNS, holdout=holdout, auc=False)
    report["gate"] = {"accepted": 250, "acceptance_rate": 0.83, "passed": True}
    text = report_markdown(report, "Demo run")
    assert text.startswith("# Demo run")
    assert "| measure | synthetic | real-vs-real floor |" in text
    assert "## Bucket head" in text and "## Bucket tail" in text
    assert "- tail:" in text  # skipped for the synthetic side, measured for the floor
    assert "| acceptance_rate | 0.83 |" in text
    mean_ks = f"{report['overall']['mean_ks']:.4g} | {report['floor']['overall']['mean_ks']:.4g}"
    assert mean_ks in text


def test_sdmetrics_quality_report() -> None:
    pytest.importorskip("sdmetrics")
    rng = np.random.default_rng(5)
    result = quality_report(_table(rng, 200), _table(rng, 200), COLUMNS)
    assert 0.0 <= result["score"] <= 1.0
    assert set(result["column_shapes"]) == set(COLUMNS)
    assert "Column Shapes" in result["properties"]
    json.dumps(result, allow_nan=False)
