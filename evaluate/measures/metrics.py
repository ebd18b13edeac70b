"""Statistical fidelity measures of a synthetic table against a real one: pure functions, no I/O.

Every function takes the real table first and the synthetic one second and judges only the columns named in
a `ColumnTypes` mapping; extra columns are ignored. Datetimes are compared as numbers (seconds since the
epoch). Null handling, decided once here and used everywhere in `evaluate/`:

- categorical: a null is a category of its own (`NULL_LABEL`), so a change in the null share is a change
  in the category frequencies like any other;
- numerical/datetime: the KS test compares the non-null values, and the null share is checked separately
  with the chi-square test on the null/non-null indicator. The column's `pvalue` is then the Bonferroni
  combination `min(1, 2 * min(p_ks, p_null))` and its `distance` is `max(KS, |null share gap|)`, so a
  column whose values look right but whose nulls do not still fails. Columns without nulls on either side
  skip the indicator test and report the plain KS result.

The table-level registry with directions (`METRICS`) is `measures.registry`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

SdType = Literal["categorical", "numerical", "datetime"]
ColumnTypes = Mapping[str, SdType]
NULL_LABEL = "<null>"
"""Stand-in for a missing categorical value, so nulls are counted as a category of their own."""
SDTYPES = ("categorical", "numerical", "datetime")


# ---------------------------------------------------------------------------------------------------------
# column helpers shared by the other evaluate/ modules


def check_columns(table: pd.DataFrame, columns: ColumnTypes, name: str) -> None:
    """Raise ValueError naming the table and columns when a judged column is missing or mistyped."""
    bad_types = {col: kind for col, kind in columns.items() if kind not in SDTYPES}
    if bad_types:
        raise ValueError(f"columns {bad_types}: expected sdtypes among {list(SDTYPES)}")
    missing = [col for col in columns if col not in table.columns]
    if missing:
        raise ValueError(f"{name} table lacks column(s) {missing}; it has {list(table.columns)}")


def numeric_values(series: pd.Series) -> np.ndarray:
    """float64 values of a numerical or datetime column, NaN for nulls; datetimes become epoch seconds."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return _datetime_seconds(series)
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        # Object columns are parsed: numbers read from CSV as text, or datetimes as ISO strings.
        as_numbers = pd.to_numeric(series, errors="coerce")
        if as_numbers.notna().sum() >= series.notna().sum():
            return as_numbers.to_numpy(dtype="float64", na_value=np.nan)
        return _datetime_seconds(pd.to_datetime(series, errors="coerce", utc=True))
    return series.to_numpy(dtype="float64", na_value=np.nan)


def _datetime_seconds(series: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(series, errors="coerce")
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    nanos = stamps.astype("datetime64[ns]").to_numpy().astype("int64").astype("float64")
    nanos[stamps.isna().to_numpy()] = np.nan
    return nanos / 1e9


def category_labels(series: pd.Series) -> np.ndarray:
    """Object array of a categorical column's values with every kind of null replaced by `NULL_LABEL`."""
    labels = series.astype(object).to_numpy(copy=True)
    labels[pd.isna(series).to_numpy()] = NULL_LABEL
    return labels


def frequencies(labels: np.ndarray) -> pd.Series:
    """Share of each label, indexed by label."""
    return pd.Series(labels, dtype=object).value_counts(normalize=True, sort=False)


# ---------------------------------------------------------------------------------------------------------
# one-column tests


def ks_test(real: pd.Series, synth: pd.Series) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov test on the non-null values: (statistic, p-value).

    Datetime (or ISO-string) columns are compared in seconds. (nan, nan) when a side has no values.
    """
    real_values = numeric_values(real)
    synth_values = numeric_values(synth)
    real_values = real_values[~np.isnan(real_values)]
    synth_values = synth_values[~np.isnan(synth_values)]
    if real_values.size == 0 or synth_values.size == 0:
        return float("nan"), float("nan")
    result = stats.ks_2samp(real_values, synth_values)
    return float(result.statistic), float(result.pvalue)


def chi2_test(real: pd.Series, synth: pd.Series, *, known: Iterable | None = None) -> tuple[float, float]:
    """Chi-square homogeneity test on the 2 x categories table of counts: (statistic, p-value).

    Categories from either side count; nulls are a category. Pearson's statistic without Yates' continuity
    correction, so the result is the textbook sum over cells whatever the number of categories. A category
    the synthetic side has but the real side (and `known`, e.g. the training rows' values, when given)
    never has is an impossible value: the p-value is forced to 0 so the test fails however few such rows
    there are. One category on both sides: (0.0, 1.0).
    """
    real_counts = pd.Series(category_labels(real), dtype=object).value_counts(sort=False)
    synth_counts = pd.Series(category_labels(synth), dtype=object).value_counts(sort=False)
    table = pd.concat([real_counts, synth_counts], axis=1, keys=["real", "synth"]).fillna(0)
    if len(table) <= 1:
        return 0.0, 1.0
    if real_counts.sum() == 0 or synth_counts.sum() == 0:
        return float("nan"), float("nan")
    statistic, pvalue, _, _ = stats.chi2_contingency(table.to_numpy().T, correction=False)
    vocabulary = set(real_counts.index)
    if known is not None:
        vocabulary.update(known)
    invented = [label for label in synth_counts.index if label not in vocabulary]
    return float(statistic), 0.0 if invented else float(pvalue)


def tvd(real: pd.Series, synth: pd.Series) -> float:
    """Total-variation distance of the category frequencies, in [0, 1]; nulls are a category."""
    real_freq = frequencies(category_labels(real))
    synth_freq = frequencies(category_labels(synth))
    both = pd.concat([real_freq, synth_freq], axis=1).fillna(0.0).to_numpy()
    return float(0.5 * np.abs(both[:, 0] - both[:, 1]).sum())


def _numeric_row(
    real: pd.Series, synth: pd.Series, reference: pd.Series | None
) -> tuple[float, float, float]:
    """(KS statistic, p-value, distance) of a numerical/datetime column, folding in the null-share check."""
    statistic, pvalue = ks_test(real, synth)
    null_real, null_synth = real.isna(), synth.isna()
    if not null_real.any() and not null_synth.any():
        return statistic, pvalue, statistic
    gap = abs(float(null_real.mean()) - float(null_synth.mean()))
    # Nulls in a column whose real (and reference) rows never have any are invented values: p forced to 0.
    known = None if reference is None else set(reference.isna().unique())
    _, null_pvalue = chi2_test(null_real, null_synth, known=known)
    pvalues = [p for p in (pvalue, null_pvalue) if not np.isnan(p)]
    combined = min(1.0, len(pvalues) * min(pvalues)) if pvalues else float("nan")
    distance = gap if np.isnan(statistic) else max(statistic, gap)
    return statistic, combined, distance


def column_tests(
    real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes, *, reference: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per judged column: column, sdtype, test ("ks"|"chi2"), statistic, pvalue, distance.

    `distance` is the KS statistic (numerical/datetime, null gap folded in; see the module docstring) or
    the TVD (categorical). `reference` (the training rows) widens the categories that do not count as
    invented in the chi-square test: a synthesizer may emit a rare training category a holdout lacks.
    """
    check_columns(real, columns, "real")
    check_columns(synth, columns, "synthetic")
    if len(real) == 0 or len(synth) == 0:
        raise ValueError(f"cannot compare tables with {len(real)} real and {len(synth)} synthetic rows")
    if reference is not None:
        check_columns(reference, columns, "reference")
    rows = []
    for column, sdtype in columns.items():
        reference_column = None if reference is None else reference[column]
        if sdtype == "categorical":
            known = None if reference is None else set(category_labels(reference_column))
            statistic, pvalue = chi2_test(real[column], synth[column], known=known)
            rows.append((column, sdtype, "chi2", statistic, pvalue, tvd(real[column], synth[column])))
        else:
            rows.append((column, sdtype, "ks", *_numeric_row(real[column], synth[column], reference_column)))
    return pd.DataFrame(rows, columns=["column", "sdtype", "test", "statistic", "pvalue", "distance"])


def holm(pvalues: Sequence[float], alpha: float) -> np.ndarray:
    """Holm–Bonferroni step-down: bool array, True where the null hypothesis is rejected at level `alpha`.

    The k-th smallest p-value (k = 0, 1, ...) is compared with alpha / (m - k); rejection stops at the
    first that fails. NaN p-values (a test that could not run) are never rejected but still count in m.
    Ours because scipy has no Holm correction (`scipy.stats.false_discovery_control` is Benjamini-Hochberg)
    and statsmodels' `multipletests`, which has one, is not a dependency; tests check it against the
    definition's plain loop.
    """
    p = np.asarray(pvalues, dtype="float64")
    m = p.size
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    thresholds = alpha / (m - np.arange(m))
    passes = p[order] <= thresholds  # NaN compares False, which ends the step-down
    rejected = np.zeros(m, dtype=bool)
    rejected[order] = np.cumprod(passes).astype(bool)
    return rejected


# ---------------------------------------------------------------------------------------------------------
# column-pair measures


def correlation_difference(
    real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes
) -> tuple[float, pd.DataFrame]:
    """Mean |corr_real - corr_synth| over pairs of numerical/datetime columns, and the signed matrix.

    Pearson correlations on pairwise-complete values. The returned matrix is corr_synth - corr_real
    (positive: the synthetic pair is more correlated). An undefined correlation (a constant column) counts
    as 0 on that side. (nan, empty frame) with fewer than two such columns.
    """
    names = [col for col, kind in columns.items() if kind != "categorical"]
    if len(names) < 2:
        return float("nan"), pd.DataFrame()
    check_columns(real, {col: columns[col] for col in names}, "real")
    check_columns(synth, {col: columns[col] for col in names}, "synthetic")
    corr_real = _numeric_frame(real, names).corr().fillna(0.0)
    corr_synth = _numeric_frame(synth, names).corr().fillna(0.0)
    difference = corr_synth - corr_real
    upper = np.triu_indices(len(names), k=1)
    return float(np.abs(difference.to_numpy()[upper]).mean()), difference


def _numeric_frame(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({name: numeric_values(table[name]) for name in names})


def contingency_distance(
    real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes, max_pairs: int = 45
) -> float:
    """Mean TVD between the real and synthetic joint distributions of pairs of categorical columns.

    With more than `max_pairs` pairs, an evenly spaced (deterministic) selection of them is used so the
    cost stays bounded. nan with fewer than two categorical columns.
    """
    names = [col for col, kind in columns.items() if kind == "categorical"]
    pairs = list(itertools.combinations(names, 2))
    if not pairs:
        return float("nan")
    if len(pairs) > max_pairs:
        pairs = [pairs[i] for i in np.linspace(0, len(pairs) - 1, max_pairs).round().astype(int)]
    check_columns(real, {col: "categorical" for col in names}, "real")
    check_columns(synth, {col: "categorical" for col in names}, "synthetic")
    distances = [_joint_tvd(real, synth, first, second) for first, second in pairs]
    return float(np.mean(distances))


def _joint_tvd(real: pd.DataFrame, synth: pd.DataFrame, first: str, second: str) -> float:
    def joint(table: pd.DataFrame) -> pd.Series:
        pair = pd.DataFrame({"a": category_labels(table[first]), "b": category_labels(table[second])})
        return pair.value_counts(normalize=True, sort=False)

    both = pd.concat([joint(real), joint(synth)], axis=1).fillna(0.0).to_numpy()
    return float(0.5 * np.abs(both[:, 0] - both[:, 1]).sum())
