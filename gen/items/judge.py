"""The final test of item interactions: per feature group where the holdout allows, pooled where it does not,
and the union of everything emitted — each against a CONDITIONAL reference, never the bucket's marginal.

Why conditional: rows generated for "decor, price band >=10" must look like real decor items of that band,
not like the whole tail (30 real tail rows of a rare genre fail a KS test against the whole tail; wrong
rows of a common band pass it). So a *unit* of groups is judged against the held-out rows of exactly its
groups' feature values, and its synthetic rows are subsampled per group in the proportions of those held-out
rows (`stratified`), so the two sides have the same mix of feature values and any difference left is one
of the rows themselves. Rows of EXISTING items (augment) are matched finer, item by item (`matched`): item X's
rows against held-out rows of item X, min(held-out, synthetic) rows of each item on both sides, because
their rows are conditioned on the item itself. Measured on the built-in tail at 3 rows per item, real
training rows of each item (a perfect per-item copier) fail the group-mix reference (6 of 19 units, the
union's date p ~ 0: K rows per item weigh rare items as much as popular ones, the held-out rows do not) and
pass the item-matched one (8 of 8 units, union AUC 0.501). Items with no held-out row are not in the
comparison; their rows are emitted on their group's verdict (which items have held-out rows is decided by
the random split, not by the generator). Units:

- a group whose feature values have >= `min_holdout_rows` held-out rows and that asks for >= `MIN_UNIT_ROWS`
  rows is a unit of its own;
- the other groups with held-out rows form one *pooled* unit (judged only if the pool reaches
  `min_holdout_rows`); groups with no held-out row at all cannot be judged and are refused;
- the union of the units that passed is judged once more in the same way: many small verdicts must not
  become a way round the tests.

Each judgement: the per-column KS / chi-square tests with Holm correction at `alpha` (condition columns
are equal by construction and not tested), and a discriminator AUC <= `max_auc`. The discriminator is
fitted ONCE per call (3-fold cross-fitting over all units, `evaluate.detection.cross_fitted_logits`); a
unit's AUC is the AUC of those out-of-fold scores over its own rows (each unit's rows are a subset of the
rows cross-fitted). The union is judged on a stratified sample of its own, with a second cross-fitted
discriminator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tailsynth.evaluate.measures.detection import cross_fitted_logits, roc_auc
from tailsynth.gen.gate.support import ColumnTypes
from tailsynth.gen.gate.verdict import UnitVerdict, Verdict, judge_rows, too_few_to_compare
from tailsynth.train.config import GateConfig

EVAL_ROWS = 20_000
MIN_UNIT_ROWS = 50
"""A group asking for fewer rows is judged in the pool: a test over a handful of rows has no power."""
MIN_SIDE_ROWS = 6
"""Fewest rows per side a unit's AUC is computed from (3 folds x 2)."""


@dataclass(frozen=True)
class Unit:
    label: str
    kind: str
    """"group" or "pooled"."""
    groups: np.ndarray
    """Group indices judged together."""


def plan_units(
    group_labels: list[str], holdout_rows: np.ndarray, requested: np.ndarray, config: GateConfig
) -> tuple[list[Unit], dict[int, str]]:
    """The units to judge, and {group: reason} for groups that cannot be judged (refused)."""
    alone = (holdout_rows >= config.min_holdout_rows) & (requested >= MIN_UNIT_ROWS)
    units = [Unit(group_labels[g], "group", np.array([g])) for g in np.flatnonzero(alone)]
    pooled = np.flatnonzero(~alone & (holdout_rows > 0))
    unjudged = {int(g): "no held-out real row has these feature values, so the rows cannot be judged"
                for g in np.flatnonzero(holdout_rows == 0)}
    if pooled.size and holdout_rows[pooled].sum() >= config.min_holdout_rows:
        units.append(Unit(f"pooled: {pooled.size} groups with few held-out or requested rows", "pooled", pooled))
    else:
        for g in pooled:
            unjudged[int(g)] = (f"the {pooled.size} groups too small to judge alone have "
                                f"{int(holdout_rows[pooled].sum())} held-out rows together, fewer than "
                                f"min_holdout_rows {config.min_holdout_rows}")
    return units, unjudged


def stratified(synth_groups: np.ndarray, real_groups: np.ndarray, rng: np.random.Generator,
               limit: int = EVAL_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """(synthetic positions, real positions) with the same mix of groups on both sides.

    Either the synthetic rows are drawn in the real rows' proportions (as many as the scarcest group
    allows), or the real rows in the synthetic rows' proportions — whichever compares more rows (the larger
    effective size 1 / (1/n_real + 1/n_synth)); each side at most `limit` rows.
    """
    groups, real_counts = np.unique(real_groups, return_counts=True)
    synth_counts = np.array([(synth_groups == g).sum() for g in groups])  # groups of one unit (tens)
    options = [(_in_proportion(real_counts, synth_counts, limit), _capped(real_counts, limit)),   # synth to real mix
               (_capped(synth_counts, limit), _in_proportion(synth_counts, real_counts, limit))]  # real to synth mix
    synth_take, real_take = max(options, key=lambda o: _effective(o[0].sum(), o[1].sum()))
    pick_synth, pick_real = [], []
    for g, s_take, r_take in zip(groups, synth_take, real_take):
        pick_synth.append(rng.choice(np.flatnonzero(synth_groups == g), size=int(s_take), replace=False))
        pick_real.append(rng.choice(np.flatnonzero(real_groups == g), size=int(r_take), replace=False))
    return (np.sort(np.concatenate(pick_synth)).astype(np.int64) if pick_synth else np.zeros(0, dtype=np.int64),
            np.sort(np.concatenate(pick_real)).astype(np.int64) if pick_real else np.zeros(0, dtype=np.int64))


def matched(synth_strata: np.ndarray, real_strata: np.ndarray, rng: np.random.Generator,
            limit: int = EVAL_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """(synthetic positions, real positions) with EQUAL counts per stratum: min(synthetic, real) rows of each
    stratum on both sides (scaled down in proportion when more than `limit` in all), drawn without
    replacement. For fine strata such as items, where proportional matching would be held to the scarcest
    stratum's one or two rows."""
    strata, real_counts = np.unique(real_strata, return_counts=True)
    synth_counts = np.bincount(np.searchsorted(strata, synth_strata)[np.isin(synth_strata, strata)],
                               minlength=len(strata))
    take = _capped(np.minimum(real_counts, synth_counts), limit)
    return _draw(synth_strata, strata, take, rng), _draw(real_strata, strata, take, rng)


def _draw(labels: np.ndarray, strata: np.ndarray, take: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions: `take[k]` rows of each stratum `strata[k]` of `labels`, without replacement, by a
    random order within strata (one shuffle and a sort, no loop over strata)."""
    order = rng.permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]     # shuffled within each label
    sorted_labels = labels[order]
    steps = np.arange(len(labels))
    first = np.r_[True, sorted_labels[1:] != sorted_labels[:-1]] if len(labels) else np.zeros(0, dtype=bool)
    rank = steps - np.maximum.accumulate(np.where(first, steps, 0))    # position within its label's run
    at = np.minimum(np.searchsorted(strata, sorted_labels), max(len(strata) - 1, 0))
    keep = (strata[at] == sorted_labels) & (rank < take[at]) if len(strata) else np.zeros(len(labels), dtype=bool)
    return np.sort(order[keep]).astype(np.int64)


def _in_proportion(proportions: np.ndarray, available: np.ndarray, limit: int) -> np.ndarray:
    """Counts per group in the given proportions, as many as the scarcest group of `available` allows."""
    scale = min(float(np.min(available / np.maximum(proportions, 1))), limit / max(int(proportions.sum()), 1))
    return np.minimum(available, np.floor(scale * proportions)).astype(np.int64)


def _capped(counts: np.ndarray, limit: int) -> np.ndarray:
    """All rows per group, scaled down in proportion when there are more than `limit` in all."""
    total = int(counts.sum())
    return counts.astype(np.int64) if total <= limit else np.floor(counts * (limit / total)).astype(np.int64)


def _effective(first: int, second: int) -> float:
    """Effective size of a two-sample comparison, 1 / (1/n + 1/m) (0 when a side is empty)."""
    return 0.0 if min(first, second) == 0 else 1.0 / (1.0 / first + 1.0 / second)


def judge(
    units: list[Unit], accepted: pd.DataFrame, accepted_groups: np.ndarray, holdout: pd.DataFrame,
    holdout_groups: np.ndarray, train: pd.DataFrame, tested: ColumnTypes, discriminated: ColumnTypes,
    config: GateConfig, seed: int, device: Any, strata: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[list[UnitVerdict], UnitVerdict | None]:
    """(one verdict per unit, the union's verdict or None if no unit passed); `UnitVerdict.to_dict()` gives
    the report's entries: label, kind, groups, eval_rows, auc, tests, passed, failures.

    strata: (of the accepted rows, of the held-out rows) finer labels to match within a unit — the item, for
    rows of existing items (`matched`; held-out rows of items not requested: -1); None matches the groups'
    mix (`stratified`)."""
    rng = np.random.default_rng(seed)
    sides = _Sides(accepted_groups, holdout_groups, strata)
    samples = [sides.of(unit, rng) for unit in units]
    real_all = np.unique(np.concatenate([real for real, _ in samples])) if samples else np.zeros(0, dtype=np.int64)
    synth_all = np.unique(np.concatenate([synth for _, synth in samples])) if samples else np.zeros(0, dtype=np.int64)
    real_logits, synth_logits = _logits(holdout, real_all, accepted, synth_all, discriminated, seed, device)
    entries = []
    for unit, (real, synth) in zip(units, samples):
        auc = _subset_auc(real_all, real_logits, real, synth_all, synth_logits, synth)
        entries.append(_verdict(unit.label, unit.kind, unit.groups, holdout.iloc[real], accepted.iloc[synth],
                                train, tested, auc, config))
    passed = [unit for unit, entry in zip(units, entries) if entry.passed]
    if not passed:
        return entries, None
    groups = np.concatenate([unit.groups for unit in passed])
    union = Unit("union of the emitted groups", "union", groups)
    real, synth = sides.of(union, rng)
    # The union's own stratified sample, with a discriminator cross-fitted on it: its rows are not the units'
    # samples (other proportions), so the units' out-of-fold scores cannot be reused for it.
    union_real, union_synth = _logits(holdout, real, accepted, synth, discriminated, seed + 1, device)
    auc = _auc(union_real, union_synth)
    return entries, _verdict(union.label, "union", groups, holdout.iloc[real], accepted.iloc[synth], train, tested,
                             auc, config)


class _Sides:
    """The two sides of a unit: its held-out rows and its accepted rows, in the same mix (module docstring)."""

    def __init__(self, accepted_groups: np.ndarray, holdout_groups: np.ndarray,
                 strata: tuple[np.ndarray, np.ndarray] | None) -> None:
        self.accepted_groups, self.holdout_groups, self.strata = accepted_groups, holdout_groups, strata

    def of(self, unit: Unit, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(held-out positions, synthetic positions), each at most EVAL_ROWS."""
        real = np.flatnonzero(np.isin(self.holdout_groups, unit.groups))
        candidates = np.flatnonzero(np.isin(self.accepted_groups, unit.groups))
        if self.strata is None:
            synth_picked, real_picked = stratified(self.accepted_groups[candidates], self.holdout_groups[real], rng)
        else:
            accepted_strata, holdout_strata = self.strata
            real = real[holdout_strata[real] >= 0]
            synth_picked, real_picked = matched(accepted_strata[candidates], holdout_strata[real], rng)
        return real[real_picked], candidates[synth_picked]


def _logits(holdout: pd.DataFrame, real: np.ndarray, accepted: pd.DataFrame, synth: np.ndarray,
            columns: ColumnTypes, seed: int, device: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if min(len(real), len(synth)) < MIN_SIDE_ROWS:
        return None, None
    return cross_fitted_logits(holdout.iloc[real][list(columns)], accepted.iloc[synth][list(columns)], columns,
                               seed=seed, device=device)


def _subset_auc(real_all: np.ndarray, real_logits: np.ndarray | None, real: np.ndarray, synth_all: np.ndarray,
                synth_logits: np.ndarray | None, synth: np.ndarray) -> float | None:
    """AUC of the out-of-fold scores of a subset (real, synth) of the rows cross-fitted (real_all, synth_all)."""
    if real_logits is None or synth_logits is None:
        return None
    real_at, synth_at = np.searchsorted(real_all, real), np.searchsorted(synth_all, synth)
    if not (np.array_equal(real_all[np.minimum(real_at, len(real_all) - 1)], real)
            and np.array_equal(synth_all[np.minimum(synth_at, len(synth_all) - 1)], synth)):
        raise AssertionError("a unit's rows must be among the rows the discriminator was cross-fitted on")
    return _auc(real_logits[real_at], synth_logits[synth_at])


def _auc(real_logits: np.ndarray | None, synth_logits: np.ndarray | None) -> float | None:
    if real_logits is None or synth_logits is None or min(len(real_logits), len(synth_logits)) < MIN_SIDE_ROWS:
        return None
    labels = np.r_[np.zeros(len(real_logits)), np.ones(len(synth_logits))]
    return roc_auc(labels, np.r_[real_logits, synth_logits])


def _verdict(label: str, kind: str, groups: np.ndarray, real: pd.DataFrame, synth: pd.DataFrame,
             train: pd.DataFrame, tested: ColumnTypes, auc: float | None, config: GateConfig) -> UnitVerdict:
    if min(len(real), len(synth)) < MIN_SIDE_ROWS or auc is None:
        failure = too_few_to_compare(label, len(synth), len(real), MIN_SIDE_ROWS)
        verdict = Verdict((), auc, config.max_auc, (failure,))
    else:
        verdict = judge_rows(real, synth, train, tested, auc, config)
    return UnitVerdict(label, kind, tuple(int(g) for g in groups), len(real), len(synth), verdict)
