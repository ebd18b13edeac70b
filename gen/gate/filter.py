"""The gate's discriminator filter: a calibrated real-vs-candidate classifier that thins fake-looking rows.

`RowFilter.fit(real, candidates, ...)` fits `evaluate.detection.RowDiscriminator` on two thirds of each
side and Platt-calibrates its logit on the other third (rows it never saw), so `p` below is an honest
probability "synthetic" under equal priors rather than an over-fitted network's confidence. `drop(rows)`
then drops a row with probability 1 - min(1, r(x) / r_t), where r = (1 - p) / p is the estimated
real/synthetic density ratio and r_t = (1 - t) / t its value at `fake_threshold` t:

- p <= t: always kept;  p just above t: rarely dropped;  p -> 1: always dropped;
- t = 0.5 keeps min(p_real, p_synthetic) of the candidate mass (rejection sampling with the ratio capped
  at 1), which removes what the generator over-produces and leaves a faithful generator's rows intact;
- a discriminator without skill calibrates to p ~ 0.5 everywhere (the slope is kept >= 0), so it drops
  (almost) nothing instead of cutting the candidates along a noise direction.

The thinning draws from a `np.random.Generator` seeded at fit time, so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from tailsynth.evaluate.measures.detection import RowDiscriminator, roc_auc

CHECK_EVERY = 3
"""One row in this many of each side is held out from the fit for the calibration."""


class RowFilter:
    """A fitted, calibrated thinning filter; `info` is the JSON-able description that goes in the report."""

    def __init__(
        self, judge: RowDiscriminator | None, slope: float, intercept: float, threshold: float,
        rng: np.random.Generator, info: dict[str, Any], cap_logit: float | None = None,
    ) -> None:
        self.judge, self.slope, self.intercept = judge, slope, intercept
        with np.errstate(divide="ignore"):  # t = 0 -> -inf (drop everything), t = 1 -> +inf (drop nothing)
            self.threshold_logit = float(np.log(threshold) - np.log1p(-threshold))
        if cap_logit is not None:  # selection="ratio": keep min(1, r / r_q), i.e. compare with the cap's logit
            self.threshold_logit = cap_logit
        self.rng = rng
        self.info = info

    @classmethod
    def fit(
        cls, real: pd.DataFrame, candidates: pd.DataFrame, columns: Mapping[str, str], *, threshold: float,
        seed: int, device: Any = None, selection: str = "threshold", ratio_quantile: float = 0.9,
    ) -> RowFilter:
        """Fit on `real` (label 0) vs `candidates` (label 1); both hold the judged columns only.

        selection="ratio" (discriminator rejection sampling): keep each row with probability
        min(1, r(x) / r_q), where r_q is the `ratio_quantile` quantile of r over the held-out calibration
        candidates — in logit terms, drop unless below the (1 - ratio_quantile) quantile of their
        calibrated logits. Rows of regions the generator under-produces (high r) are kept, the rest thinned
        in proportion, which moves the accepted rows towards the real distribution on both sides.
        """
        split_seed, judge_seed, thin_seed = np.random.SeedSequence(seed).generate_state(3).tolist()
        rule = (f"rows with calibrated prob_fake p > fake_threshold {threshold:g} are dropped with probability "
                "1 - min(1, r/r_t), r = (1-p)/p, r_t = (1-t)/t")
        if len(candidates) == 0 or len(real) == 0:
            info = {"fitted": False, "rule": rule, "reason": "no calibration candidate lies inside the real support"}
            return cls(None, 0.0, 0.0, threshold, np.random.default_rng(thin_seed), info)
        split = np.random.default_rng(split_seed)
        real_check, synth_check = _check_mask(len(real), split), _check_mask(len(candidates), split)
        judge = RowDiscriminator(columns, seed=judge_seed, device=device)
        judge.fit(real[~real_check], candidates[~synth_check])
        logits = _logits(judge, pd.concat([real[real_check], candidates[synth_check]], ignore_index=True))
        labels = np.r_[np.zeros(real_check.sum()), np.ones(synth_check.sum())]
        calibrated = 0 < labels.sum() < len(labels)
        slope, intercept = _platt(logits, labels) if calibrated else (1.0, 0.0)
        cap_logit = None
        if selection == "ratio" and calibrated:
            calibrated_logits = slope * logits[labels > 0] + intercept
            cap_logit = float(np.quantile(calibrated_logits, 1.0 - ratio_quantile))
            rule = (f"discriminator rejection sampling: every row kept with probability min(1, r/r_q), r = (1-p)/p, "
                    f"r_q the {ratio_quantile:g} quantile of r over the calibration candidates")
        info = {
            "fitted": True, "rule": rule, "selection": selection if cap_logit is not None else "threshold",
            "cap_logit": cap_logit,
            "fit_rows": {"real": int((~real_check).sum()), "candidates": int((~synth_check).sum())},
            "check_rows": {"real": int(real_check.sum()), "candidates": int(synth_check.sum())},
            "heldout_auc": roc_auc(labels, logits) if calibrated else None,
            "platt_slope": slope, "platt_intercept": intercept, "calibrated": calibrated,
        }
        return cls(judge, slope, intercept, threshold, np.random.default_rng(thin_seed), info, cap_logit)

    def keep_probability(self, rows: pd.DataFrame) -> np.ndarray:
        """[len(rows)] float: each row's chance to pass the thinning (no draw)."""
        if self.judge is None:
            return np.ones(len(rows))
        calibrated_logit = self.slope * _logits(self.judge, rows) + self.intercept
        return np.exp(np.minimum(0.0, self.threshold_logit - calibrated_logit))  # r / r_t, capped at 1

    def drop(self, rows: pd.DataFrame) -> np.ndarray:
        """[len(rows)] bool: True for rows the thinning drops (draws from the filter's generator)."""
        if self.judge is None:
            return np.zeros(len(rows), dtype=bool)
        return self.rng.random(len(rows)) >= self.keep_probability(rows)


def _check_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """[size] bool: a random third held out for calibration; none when a side is too small to spare it."""
    if size < CHECK_EVERY:
        return np.zeros(size, dtype=bool)
    return rng.permutation(size) % CHECK_EVERY == 0


def _logits(judge: RowDiscriminator, rows: pd.DataFrame) -> np.ndarray:
    """[len(rows)] logits of the judge's prob_fake (clipped so p = 0 or 1 stays finite)."""
    return special.logit(np.clip(judge.prob_fake(rows), 1e-12, 1 - 1e-12))


def _platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling: (slope >= 0, intercept) of sigmoid(slope * logit + intercept) fitted by log-loss.

    Targets are Platt's smoothed (N+ + 1)/(N+ + 2) and 1/(N- + 2), which keeps the fit finite when the held-
    out rows are perfectly separated. The slope is bounded below by 0: a judge that does worse than chance
    on unseen rows has no skill, and must not start dropping the rows it calls real.
    """
    positives = labels.sum()
    target = np.where(labels > 0, (positives + 1) / (positives + 2), 1 / (len(labels) - positives + 2))

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        score = params[0] * logits + params[1]
        residual = special.expit(score) - target
        value = np.sum(np.logaddexp(0.0, score) - target * score)
        return float(value), np.array([np.sum(residual * logits), np.sum(residual)])

    fit = optimize.minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                            bounds=[(0.0, None), (None, None)])
    return float(fit.x[0]), float(fit.x[1])


class FilterChain:
    """Filters applied in turn: a row is dropped when any stage drops it (`RowFilter`'s interface)."""

    def __init__(self, stages: list[RowFilter]) -> None:
        self.stages = stages

    @property
    def info(self) -> dict[str, Any]:
        return {**self.stages[0].info, "stages": [stage.info for stage in self.stages]}

    def keep_probability(self, rows: pd.DataFrame) -> np.ndarray:
        """[len(rows)] float: the chance to pass every stage (each stage's chance depends on the row alone)."""
        keep = np.ones(len(rows))
        for stage in self.stages:  # a few stages
            keep *= stage.keep_probability(rows)
        return keep

    def drop(self, rows: pd.DataFrame) -> np.ndarray:
        dropped = np.zeros(len(rows), dtype=bool)
        for stage in self.stages:  # a few stages
            left = ~dropped
            if left.any():
                dropped[left] = stage.drop(rows[left])
        return dropped
