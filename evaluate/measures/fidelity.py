"""One call that measures a synthetic table, overall and per popularity bucket, beside a real-vs-real floor.

`measure` gathers every measure of `evaluate/` for one pair of tables into a JSON-able dict; `fidelity_report`
runs it overall, per bucket, and for the floor (real training rows vs real holdout rows, i.e. how far two
honest samples of the same data already are), so a reader can tell "the model is off" from "this bucket is
small and noisy". Values that do not apply (no numerical columns, a test that could not run) are None, never
NaN, so the dicts serialise as strict JSON and a comparison with a missing value fails loudly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from tailsynth.evaluate.measures.detection import discriminator_auc
from tailsynth.evaluate.measures.metrics import ColumnTypes, check_columns, column_tests, contingency_distance, correlation_difference
from tailsynth.evaluate.measures.privacy import copy_rate, dcr

MIN_BUCKET_ROWS = 20
"""A bucket with fewer rows than this on either side is skipped: its measures would be noise."""
MIN_AUC_ROWS = 10
"""`measure` leaves auc None below this many rows per side (a 3-fold classifier cannot be trained)."""
DCR_ROWS = 2000
"""DCR is computed for a seeded sample of at most this many synthetic rows (its median is what we report)."""


def _plain(value: Any) -> Any:
    """A JSON-safe scalar: numpy types become Python ones, NaN/inf become None."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


def _mean(values: pd.Series) -> float | None:
    values = values.dropna()
    return _plain(values.mean()) if len(values) else None


def measure(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    columns: ColumnTypes,
    *,
    seed: int = 0,
    auc: bool = True,
    reference: pd.DataFrame | None = None,
    device: str | torch.device | None = None,
    dcr_rows: int = DCR_ROWS,
    copies: bool = True,
) -> dict[str, Any]:
    """Every fidelity measure of `synth` against `real` as a JSON-able dict.

    Keys: rows_real, rows_synth, columns (one dict per judged column: column, sdtype, test, statistic,
    pvalue, distance), mean_ks (mean distance of numerical/datetime columns), mean_tvd (mean TVD of
    categorical columns), corr_diff, contingency_distance; auc when `auc` (None below `MIN_AUC_ROWS` rows
    per side); copy_rate and dcr_median when `reference` (the real training rows) is given: exact-twin
    share of synth in reference and median distance to the closest reference record. `reference` also
    widens the categories the chi-square test accepts (see `metrics.chi2_test`). `copies=False` skips
    copy_rate and dcr_median (a caller that replaces them, as the gate's real-vs-real floor does).
    """
    check_columns(real, columns, "real")
    check_columns(synth, columns, "synthetic")
    tests = column_tests(real, synth, columns, reference=reference)
    numeric = tests["sdtype"] != "categorical"
    result: dict[str, Any] = {
        "rows_real": len(real),
        "rows_synth": len(synth),
        "columns": [{key: _plain(value) for key, value in row.items()} for row in tests.to_dict("records")],
        "mean_ks": _mean(tests.loc[numeric, "distance"]),
        "mean_tvd": _mean(tests.loc[~numeric, "distance"]),
        "corr_diff": _plain(correlation_difference(real, synth, columns)[0]),
        "contingency_distance": _plain(contingency_distance(real, synth, columns)),
    }
    if auc:
        enough = min(len(real), len(synth)) >= MIN_AUC_ROWS
        result["auc"] = (
            _plain(discriminator_auc(real, synth, columns, seed=seed, device=device)) if enough else None
        )
    if reference is not None and copies:
        result["copy_rate"] = _plain(copy_rate(synth, reference, columns))
        sample = synth
        if len(synth) > dcr_rows:
            rng = np.random.default_rng(seed)
            sample = synth.iloc[np.sort(rng.choice(len(synth), dcr_rows, replace=False))]
        distances = dcr(sample, reference, columns, device=device)
        result["dcr_median"] = _plain(np.median(distances)) if len(distances) else None
    return result


def _buckets(target: pd.DataFrame, synth: pd.DataFrame, by: str) -> list:
    """Bucket values found on either side, in a stable order (sorted as text when types are mixed)."""
    values = pd.unique(pd.concat([target[by], synth[by]], ignore_index=True).dropna())
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _per_bucket(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    columns: ColumnTypes,
    by: str,
    reference: pd.DataFrame,
    options: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, str]]:
    """(measures per bucket, reasons for skipped buckets); bucket keys are the bucket values as text."""
    measures, skipped = {}, {}
    for bucket in _buckets(real, synth, by):
        real_rows, synth_rows = real[real[by] == bucket], synth[synth[by] == bucket]
        if min(len(real_rows), len(synth_rows)) < MIN_BUCKET_ROWS:
            skipped[str(bucket)] = (
                f"{len(real_rows)} real and {len(synth_rows)} synthetic rows; "
                f"need >= {MIN_BUCKET_ROWS} on each side"
            )
            continue
        measures[str(bucket)] = measure(real_rows, synth_rows, columns, reference=reference, **options)
    return measures, skipped


def fidelity_report(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    columns: ColumnTypes,
    *,
    holdout: pd.DataFrame | None = None,
    by: str | None = "pop_bucket",
    seed: int = 0,
    auc: bool = True,
    device: str | torch.device | None = None,
    dcr_rows: int = DCR_ROWS,
) -> dict[str, Any]:
    """Measures of `synth` overall and per bucket of column `by`, beside the real-vs-real floor.

    `real` is the training rows (always the DCR/copy reference). With `holdout`, synth is compared against
    the holdout rows, and the floor is `measure(real, holdout)`: training vs holdout, the distance two real
    samples already have. Without it, synth is compared against `real` and there is no floor (None).
    Returns {"compared_to": "holdout"|"real", "by": by, "overall": {...}, "by_bucket": {bucket: {...}},
    "skipped": {bucket: reason}, "floor": {"overall", "by_bucket", "skipped"} | None}. Buckets with fewer
    than `MIN_BUCKET_ROWS` rows on either side are listed under "skipped" with the counts. `dcr_rows` is
    each DCR median's sample size (every table pair scans all training rows for it, the costliest step).
    """
    check_columns(real, columns, "real")
    check_columns(synth, columns, "synthetic")
    target = real if holdout is None else holdout
    named = {"real": real, "synthetic": synth, **({} if holdout is None else {"holdout": holdout})}
    if holdout is not None:
        check_columns(holdout, columns, "holdout")
    for name, table in named.items():
        if by is not None and by not in table.columns:
            raise ValueError(
                f"{name} table lacks the bucket column {by!r}; pass by=None to skip per-bucket measures"
            )
    options = {"seed": seed, "auc": auc, "device": device, "dcr_rows": dcr_rows}
    report: dict[str, Any] = {
        "compared_to": "real" if holdout is None else "holdout",
        "by": by,
        "overall": measure(target, synth, columns, reference=real, **options),
        "by_bucket": {},
        "skipped": {},
        "floor": None,
    }
    if by is not None:
        report["by_bucket"], report["skipped"] = _per_bucket(target, synth, columns, by, real, options)
    if holdout is not None:
        floor_overall = measure(real, holdout, columns, reference=real, **options)
        floor = {"overall": floor_overall, "by_bucket": {}, "skipped": {}}
        if by is not None:
            floor["by_bucket"], floor["skipped"] = _per_bucket(real, holdout, columns, by, real, options)
        report["floor"] = floor
    return report
