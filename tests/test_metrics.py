"""Statistical measures of evaluate/metrics.py against scipy and hand computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tailsynth.evaluate.measures.registry import METRICS
from tailsynth.evaluate.measures.metrics import (
    chi2_test,
    column_tests,
    contingency_distance,
    correlation_difference,
    holm,
    ks_test,
    tvd,
)


def test_ks_agrees_with_scipy_on_random_samples() -> None:
    rng = np.random.default_rng(1)
    real, synth = rng.normal(0, 1, 300), rng.normal(0.2, 1.3, 250)
    expected = stats.ks_2samp(real, synth)
    statistic, pvalue = ks_test(pd.Series(real), pd.Series(synth))
    assert statistic == pytest.approx(expected.statistic)
    assert pvalue == pytest.approx(expected.pvalue)


def test_ks_hand_case_and_nulls_ignored() -> None:
    # ECDF gaps at 1, 2, 3, 4: 1/3, 2/3-1/4, 1-2/4, 1-3/4 -> the largest is 1/2.
    statistic, pvalue = ks_test(pd.Series([1.0, 2.0, 3.0, None]), pd.Series([2, 3, 4, 5]))
    assert statistic == pytest.approx(0.5)
    assert pvalue == pytest.approx(stats.ks_2samp([1, 2, 3], [2, 3, 4, 5]).pvalue)


def test_ks_compares_datetimes_in_seconds() -> None:
    base = pd.Timestamp("2021-03-01")
    seconds_real, seconds_synth = np.array([0, 60, 3600, 7200]), np.array([30, 90, 5000, 9000, 10_000])
    real = pd.Series(base + pd.to_timedelta(seconds_real, unit="s"))
    synth = pd.Series(base + pd.to_timedelta(seconds_synth, unit="s"))
    assert ks_test(real, synth) == pytest.approx(ks_test(pd.Series(seconds_real), pd.Series(seconds_synth)))


def test_chi2_hand_case() -> None:
    real = pd.Series(["a"] * 10 + ["b"] * 20)
    synth = pd.Series(["a"] * 20 + ["b"] * 10)
    # Every expected count is 15: statistic = 4 * 5^2 / 15, one degree of freedom, no continuity correction.
    statistic, pvalue = chi2_test(real, synth)
    assert statistic == pytest.approx(20 / 3)
    assert pvalue == pytest.approx(stats.chi2.sf(20 / 3, 1))


def test_chi2_agrees_with_scipy_and_counts_nulls() -> None:
    rng = np.random.default_rng(2)
    real = pd.Series(rng.choice(["x", "y", "z", None], 400, p=[0.4, 0.3, 0.2, 0.1]))
    synth = pd.Series(rng.choice(["x", "y", "z", None], 300, p=[0.3, 0.3, 0.3, 0.1]))
    table = np.array([[(real == v).sum() for v in "xyz"] + [real.isna().sum()],
                      [(synth == v).sum() for v in "xyz"] + [synth.isna().sum()]])
    expected = stats.chi2_contingency(table, correction=False)
    assert chi2_test(real, synth) == pytest.approx((expected[0], expected[1]))


def test_chi2_fails_hard_on_a_category_real_never_had() -> None:
    real = pd.Series(["a", "b"] * 500)
    clean = pd.Series(["a", "b"] * 400)
    invented = pd.Series(["a", "b"] * 400 + ["zzz"])
    assert chi2_test(real, clean)[1] > 0.5
    assert chi2_test(real, invented)[1] == 0.0
    # A category the training rows had is not invented, even if this (holdout) sample lacks it.
    assert chi2_test(real, invented, known={"zzz"})[1] > 0.0
    # One category on both sides: nothing to test.
    assert chi2_test(pd.Series(["a", "a"]), pd.Series(["a"])) == (0.0, 1.0)


def test_tvd_hand_cases() -> None:
    assert tvd(pd.Series(["a", "b", "b"]), pd.Series(["a", "a", "b"])) == pytest.approx(1 / 3)
    assert tvd(pd.Series(["a", None]), pd.Series(["a", "a"])) == pytest.approx(0.5)
    assert tvd(pd.Series(["a", "b"]), pd.Series(["b", "a"])) == 0.0


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "price": rng.normal(10 + shift, 2, rows),
        "country": rng.choice(["uk", "fr", "de"], rows),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, rows), unit="s"),
        "ignored": rng.random(rows),
    })


COLUMNS = {"price": "numerical", "country": "categorical", "when": "datetime"}


def test_column_tests_one_row_per_column() -> None:
    rng = np.random.default_rng(3)
    real, synth = _table(rng, 300), _table(rng, 200, shift=1.0)
    result = column_tests(real, synth, COLUMNS)
    assert list(result.columns) == ["column", "sdtype", "test", "statistic", "pvalue", "distance"]
    assert list(result["column"]) == list(COLUMNS)
    assert list(result["test"]) == ["ks", "chi2", "ks"]
    price = result.set_index("column").loc["price"]
    assert price["distance"] == pytest.approx(ks_test(real["price"], synth["price"])[0])
    assert price["pvalue"] < 1e-6  # a shift of half a standard deviation over 200+ rows
    country = result.set_index("column").loc["country"]
    assert country["distance"] == pytest.approx(tvd(real["country"], synth["country"]))


def test_column_tests_names_a_missing_column() -> None:
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="synthetic table lacks column.*country"):
        column_tests(_table(rng, 50), _table(rng, 50).drop(columns="country"), COLUMNS)


def test_null_share_is_folded_into_numerical_columns() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, 1000)
    real = pd.DataFrame({"x": values})
    with_nulls = pd.DataFrame({"x": np.where(rng.random(1000) < 0.3, np.nan, rng.normal(0, 1, 1000))})
    row = column_tests(real, with_nulls, {"x": "numerical"}).iloc[0]
    assert row["pvalue"] == 0.0  # real has no nulls at all: the synthetic nulls are invented values
    assert row["distance"] >= 0.25  # the null share gap dominates the KS of the non-null values
    real_with_nulls = pd.DataFrame({"x": np.where(rng.random(1000) < 0.3, np.nan, values)})
    row = column_tests(real_with_nulls, with_nulls, {"x": "numerical"}).iloc[0]
    assert row["pvalue"] > 0.01 and row["distance"] < 0.1


def test_holm_hand_example() -> None:
    # Sorted: 0.005 <= .05/4, 0.01 <= .05/3, 0.03 > .05/2 -> stop; 0.04 is not rejected either.
    assert holm([0.01, 0.04, 0.03, 0.005], 0.05).tolist() == [True, False, False, True]
    # Step-down rejects all three where plain Bonferroni (p <= .05/3) would reject only the first.
    assert holm([0.001, 0.02, 0.02], 0.05).tolist() == [True, True, True]
    assert holm([0.2, float("nan"), 0.001], 0.05).tolist() == [False, False, True]
    assert holm([], 0.05).tolist() == []


def test_holm_agrees_with_the_definitions_loop() -> None:
    # The step-down as Holm (1979) states it, one hypothesis at a time: ours must give the same verdicts.
    def reference(p: np.ndarray, alpha: float) -> list[bool]:
        rejected = [False] * len(p)
        order = sorted(range(len(p)), key=lambda i: (np.isnan(p[i]), p[i]))
        for rank, i in enumerate(order):
            if not p[i] <= alpha / (len(p) - rank):
                break
            rejected[i] = True
        return rejected

    rng = np.random.default_rng(11)
    for _ in range(200):
        p = rng.random(rng.integers(1, 12)) ** 3  # many small p-values, so step-downs go deep
        p[rng.random(p.size) < 0.1] = np.nan
        p[rng.random(p.size) < 0.2] = p[0]  # ties
        for alpha in (0.01, 0.05, 0.2):
            assert holm(p, alpha).tolist() == reference(p, alpha), (p, alpha)


def test_correlation_difference() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, 500)
    real = pd.DataFrame({"a": x, "b": x + rng.normal(0, 0.01, 500)})
    synth = pd.DataFrame({"a": x, "b": -x})
    value, matrix = correlation_difference(real, synth, {"a": "numerical", "b": "numerical"})
    assert value == pytest.approx(2.0, abs=1e-3)
    assert matrix.loc["a", "b"] == pytest.approx(-2.0, abs=1e-3)  # corr_synth - corr_real
    assert correlation_difference(real, real, {"a": "numerical", "b": "numerical"})[0] == 0.0
    value, matrix = correlation_difference(real, synth, {"a": "numerical"})
    assert math.isnan(value) and matrix.empty


def test_contingency_distance() -> None:
    rng = np.random.default_rng(7)
    first = rng.choice(["p", "q"], 2000)
    dependent = pd.DataFrame({"u": first, "v": first})
    independent = pd.DataFrame({"u": first, "v": rng.choice(["p", "q"], 2000)})
    kinds = {"u": "categorical", "v": "categorical"}
    assert contingency_distance(dependent, dependent, kinds) == 0.0
    # Joint real: (p,p) (q,q) ~1/2 each; independent: ~1/4 each cell -> TVD ~ 1/2.
    assert contingency_distance(dependent, independent, kinds) == pytest.approx(0.5, abs=0.05)
    assert math.isnan(contingency_distance(dependent, independent, {"u": "categorical"}))


def test_registry_declares_directions() -> None:
    rng = np.random.default_rng(8)
    real, synth = _table(rng, 100), _table(rng, 100)
    real["other"] = rng.choice(["m", "n"], 100)
    synth["other"] = rng.choice(["m", "n"], 100)
    columns = {**COLUMNS, "other": "categorical"}
    assert {"ks", "tvd", "corr_diff", "contingency_distance", "auc"} <= set(METRICS)
    for name in ("ks", "tvd", "contingency_distance"):
        metric = METRICS[name]
        assert metric.name == name and metric.direction == "minimize"
        assert 0.0 < metric.fn(real, synth, columns) <= 1.0
        assert metric.fn(real, real, columns) == 0.0
