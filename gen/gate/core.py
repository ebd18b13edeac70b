"""The fidelity gate: the only way synthetic rows of a bucket reach a user's training set.

`run_gate(draw, n, ...)` draws candidate rows from the caller's generator and keeps those that pass three
row-level filters (the fill loop and screens shared with the item paths: `gen.gate.fill`), in this order
(a row rejected by several counts under the FIRST that rejected it):

1. support       - every value lies inside what the real training rows make possible (`gen.gate.support`);
2. discriminator - a `RowDiscriminator` fitted on real training rows vs a first, discarded calibration chunk
                   of candidates, its output Platt-calibrated on rows it was not fitted on (see `RowFilter`);
                   a row scored above `fake_threshold` is dropped with probability 1 - r(x)/r_t, where
                   r = (1 - p) / p is the estimated real/synthetic density ratio and r_t its value at the
                   threshold; so near-certain fakes are always dropped, borderline rows rarely;
3. privacy       - the row does not exactly copy a value combination seen 1..rare_k-1 times in training.

Why not a hard cut at the threshold: on candidates drawn from the real distribution itself, a hard cut of
an (inevitably noisy) discriminator's score carves a region out of the candidates' distribution, which the
final fresh discriminator then detects (column tests fail and the AUC rises above the limit).
Calibrated thinning keeps a perfect generator's rows almost intact and removes an over-produced region in
proportion to how over-produced it is (rejection sampling with the estimated density ratio).

When `n` rows are accepted (or the candidate budget `max_candidates_factor * n`, calibration included, is
spent), the accepted rows are judged against the real HELD-OUT rows, which nothing above was fitted on
(less those the privacy rule would itself have dropped, see `privacy_trim`):
per-column KS / chi-square tests with Holm correction at `alpha`, and a fresh cross-validated discriminator
whose AUC must be <= `max_auc`. Only then are rows returned. Every figure used is in the JSON-able report.

Determinism: for a given `seed` and a deterministic `draw`, the accepted rows and every measure are equal
(each discriminator, subsample and the thinning get their own seed derived from `seed`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tailsynth.evaluate.measures import detection
from tailsynth.evaluate.measures import fidelity
from tailsynth.evaluate.measures import privacy
from tailsynth.gen.gate import report as rep
from tailsynth.gen.gate.fill import ROW_REJECTIONS, Accounting, Filled, RowQuota, RowScreens, fill
from tailsynth.gen.gate.filter import RowFilter
from tailsynth.gen.gate.report import GateReport
from tailsynth.gen.gate.support import ColumnTypes, Support
from tailsynth.gen.gate.verdict import Verdict, budget_failure, cannot_judge, judge_rows, raw_diagnosis
from tailsynth.models.errors import ConfigError, DataError, GateError
from tailsynth.train.config import GateConfig, to_dict

EVAL_ROWS = 20_000
"""Most rows per side given to the measures, the final tests and the discriminators (keeps CPU runs fast)."""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    rows: pd.DataFrame | None
    """Exactly n accepted rows when passed, else None: nothing is emitted."""
    report: dict
    """Strict-JSON-able; every figure the gate used (see `run_gate`)."""


def run_gate(
    draw: Callable[[int], pd.DataFrame],
    n: int,
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    columns: ColumnTypes,
    config: GateConfig,
    seed: int = 0,
    device: Any = None,
    progress: bool = True,
    label: str = "tail",
) -> GateResult:
    """Draw, filter and judge candidates until `n` rows pass, or refuse with a report saying why.

    draw(k) -> k decoded candidate rows (the caller owns the model, its conditioning and its seeding).
    train / holdout: real training / held-out rows of the same bucket; only `train` is used to fit filters.
    columns: the judged columns and their sdtypes; other columns of the drawn rows are carried through.
    Report keys: label, requested_rows, seed, config, verdict (passed|failed|cannot_judge), passed,
    accounting (see `gen.gate.fill.Accounting`), discriminator_filter, eval_rows, before, after, floor, tests,
    auc, failures (dicts, each with a plain-sentence "message"), seconds.
    """
    started = time.monotonic()
    _check_arguments(n, holdout, train, columns, config)
    seeds = dict(zip(("sample", "filter", "auc", "measure"), np.random.SeedSequence(seed).generate_state(4).tolist()))
    budget = int(config.max_candidates_factor * n)
    report = partial(GateReport, label, int(n), int(seed), to_dict(config), len(train), len(holdout), budget=budget)
    trim, refusal = None, cannot_judge(len(train), len(holdout), 0, config.min_holdout_rows, n)
    if not refusal:
        judged, trim = privacy_trim(holdout, train, columns, config.rare_k)
        refusal = cannot_judge(len(train), len(holdout), len(holdout) - len(judged), config.min_holdout_rows, n)
    if refusal:  # nothing drawn: the report still has every count (all zero) so readers need no special case
        refused = report(Accounting.empty(ROW_REJECTIONS, list(columns)), failures=(refusal,),
                         verdict="cannot_judge", holdout_privacy_trim=trim)
        return GateResult(False, None, refused.to_dict())

    cols, rng = list(columns), np.random.default_rng(seeds["sample"])
    filled, row_filter = _fill(draw, n, train, columns, config, budget, subsample(train[cols], EVAL_ROWS, rng),
                               seeds["filter"], device, rep.Progress(label, n, enabled=progress), label)
    tally = filled.accounting

    holdout_eval = subsample(judged[cols], EVAL_ROWS, rng)
    size = min(n, EVAL_ROWS)
    drawn = {"discriminator_filter": row_filter.info,
             "eval_rows": {"holdout": len(holdout_eval), "synthetic": min(size, tally.accepted)},
             "before": _measure(holdout_eval, subsample(filled.raw[cols], size, rng), train, columns, seeds, device),
             "floor": _floor(holdout_eval, subsample(train[cols], size, rng), train, columns, seeds, device)}
    if tally.accepted < n:
        spent = budget_failure(tally.accepted, n, tally.candidates, budget, config.max_candidates_factor,
                               tally.rejected)
        failed = report(tally, failures=(spent, *raw_diagnosis(drawn["before"], config.alpha)), verdict="failed",
                        holdout_privacy_trim=trim, drawn=drawn, seconds=time.monotonic() - started)
        return GateResult(False, None, failed.to_dict())

    final, after = _judge(holdout_eval, subsample(filled.rows[cols], size, rng), train, columns, config, seeds,
                          device)
    judged_report = report(tally, failures=final.failures, verdict="passed" if final.passed else "failed",
                           holdout_privacy_trim=trim, drawn=drawn, judged=final, after=after,
                           seconds=time.monotonic() - started)
    return GateResult(final.passed, filled.rows if final.passed else None, judged_report.to_dict())


def _fill(
    draw: Callable[[int], pd.DataFrame], n: int, train: pd.DataFrame, columns: ColumnTypes, config: GateConfig,
    budget: int, train_fit: pd.DataFrame, filter_seed: int, device: Any, bar: rep.Progress, label: str,
) -> tuple[Filled, RowFilter]:
    """Fit the screens (the filter on `train_fit` vs a first, discarded calibration chunk) and fill n rows."""
    cols = list(columns)
    support = Support.fit(train, columns, config.range_margin)
    # The calibration chunk matches the real side in size: the discriminator sees balanced classes.
    calibration = _draw(draw, max(1, min(config.chunk_rows, len(train_fit), budget // 2)), columns, label)
    # Fitted on the calibration rows inside the support: the filter only ever scores such rows.
    row_filter = RowFilter.fit(train_fit, calibration.loc[support.mask(calibration), cols], columns,
                               threshold=config.fake_threshold, seed=filter_seed, device=device,
                               selection=config.selection, ratio_quantile=config.ratio_quantile)
    screens = RowScreens(support, row_filter, privacy.CopyCounts(train, columns), columns, config.rare_k)
    filled = fill(lambda k: _draw(draw, k, columns, label), RowQuota(n, config.chunk_rows), screens, budget,
                  calibration=calibration, bar=bar, reasons=ROW_REJECTIONS, raw_rows=min(n, EVAL_ROWS))
    return filled, row_filter


def _judge(
    holdout: pd.DataFrame, accepted: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes, config: GateConfig,
    seeds: dict, device: Any,
) -> tuple[Verdict, dict | None]:
    """The final test of the accepted rows against held-out rows, and the "after" measures."""
    auc = float(detection.discriminator_auc(holdout, accepted, columns, seed=seeds["auc"], max_rows=EVAL_ROWS,
                                            device=device))
    final = judge_rows(holdout, accepted, train, columns, auc, config)
    # "after" reuses this AUC (same tables, same estimator) instead of fitting three more networks.
    return final, {**_measure(holdout, accepted, train, columns, seeds, device, auc=False), "auc": auc}


def privacy_trim(
    holdout: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes, rare_k: int
) -> tuple[pd.DataFrame, dict]:
    """Held-out rows the privacy rule would let through, and the report entry saying how many were set aside.

    The privacy rule removes every candidate that repeats a combination seen 1..rare_k-1 times in training,
    so the accepted rows can only match real rows WITHOUT such combinations. Judging them against the full
    holdout would fail a perfect generator on low-cardinality data, where a good share of held-out rows
    repeat a rare training combination: unseen real rows run through the gate then fail the column tests,
    and pass against the trimmed holdout (figures: evaluate/bench/README.md).
    """
    rare = np.asarray(privacy.rare_copy_mask(holdout, train, columns, rare_k), dtype=bool)
    entry = {"rows": int(rare.sum()), "share": float(rare.mean()) if len(rare) else 0.0,
             "note": f"held-out rows repeating a combination seen 1..{rare_k - 1} times in training are set aside "
                     "before judging, because the privacy rule never lets such rows through"}
    return holdout[~rare], entry


def _measure(
    holdout: pd.DataFrame, rows: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes, seeds: dict,
    device: Any, auc: bool = True, copies: bool = True,
) -> dict | None:
    """evaluate.fidelity.measure(holdout, rows) with the training rows as copy/DCR reference; None if no rows."""
    if len(rows) == 0:
        return None
    return fidelity.measure(holdout, rows, columns, seed=seeds["measure"], auc=auc, reference=train, device=device,
                            copies=copies)


def _floor(
    holdout: pd.DataFrame, train_sample: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes, seeds: dict,
    device: Any,
) -> dict | None:
    """Real vs real: holdout vs a training sample of the synthetic side's size (the noise floor).

    Its copy_rate / dcr_median would be 1 / 0 (the sample IS training rows), so they are replaced by the
    held-out rows' own copy rate and median distance to the training rows: what an unseen real row scores.
    """
    floor = _measure(holdout, train_sample, train, columns, seeds, device, copies=False)  # replaced just below
    if floor is not None:
        distances = privacy.dcr(subsample(holdout, fidelity.DCR_ROWS, np.random.default_rng(seeds["measure"])),
                                train, columns, device=device)
        floor.update(copy_rate=privacy.copy_rate(holdout, train, columns), dcr_median=float(np.median(distances)),
                     copy_note="copy_rate and dcr_median of the held-out real rows against the training rows")
    return floor


def _draw(draw: Callable[[int], pd.DataFrame], k: int, columns: ColumnTypes, label: str) -> pd.DataFrame:
    """draw(k), checked: a DataFrame with the judged columns and 1..k rows (extra rows are cut off)."""
    rows = draw(k)
    if not isinstance(rows, pd.DataFrame):
        raise GateError(f"gate {label!r}: draw({k}) returned {type(rows).__name__}, expected a pandas DataFrame")
    missing = [name for name in columns if name not in rows.columns]
    if missing:
        raise GateError(f"gate {label!r}: draw({k}) returned rows without column(s) {missing}")
    if len(rows) == 0:
        raise GateError(f"gate {label!r}: draw({k}) returned no rows; the generator cannot fill the request")
    return rows.iloc[:k].reset_index(drop=True)


def subsample(table: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most `limit` rows, drawn without replacement (all rows, in order, when there are few enough)."""
    if len(table) <= limit:
        return table.reset_index(drop=True)
    picked = np.sort(rng.choice(len(table), size=limit, replace=False))
    return table.iloc[picked].reset_index(drop=True)


def _check_arguments(
    n: int, holdout: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes, config: GateConfig
) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise GateError(f"the gate needs a positive whole number of rows to emit, got n={n!r}")
    if not columns:
        raise GateError("the gate needs at least one column to judge; columns is empty")
    for what, table in (("training rows", train), ("held-out rows", holdout)):
        missing = [name for name in columns if name not in table.columns]
        if missing:
            raise DataError(f"gate {what}: column(s) {missing} are missing; the table has {list(table.columns)}")
    if config.chunk_rows < 1 or config.max_candidates_factor <= 0 or config.rare_k < 1:
        raise ConfigError(f"gate: chunk_rows, max_candidates_factor and rare_k must be positive, got {config}")
    if not (0 < config.alpha < 1 and 0 <= config.fake_threshold <= 1 and 0 < config.max_auc <= 1):
        raise ConfigError(f"gate: alpha, fake_threshold and max_auc must be probabilities, got {config}")
