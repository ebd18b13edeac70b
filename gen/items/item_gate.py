"""The gate of one item call (`gen augment`, `gen cold-start`): the screens fitted once per call on all
groups' candidates, the shared fill loop (`gen.gate.fill`), the judgement per unit of groups
(`gen.items.judge`, `gen.gate.verdict`) and the report's sections (`gen.items.gate_report`).

`ItemGate(...).run()` returns the emitted records (in item order; None when none) and the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tailsynth.evaluate.measures.privacy import CopyCounts
from tailsynth.gen.gate import report as rep
from tailsynth.gen.gate.adherence import LabelRanges
from tailsynth.gen.gate.core import privacy_trim
from tailsynth.gen.gate.fill import ITEM_REJECTIONS, Filled, ItemQuota, KeptScreen, RowScreens, fill, scaled
from tailsynth.gen.gate.filter import FilterChain, RowFilter
from tailsynth.gen.gate.support import Support
from tailsynth.gen.gate.verdict import UnitVerdict, budget_failure
from tailsynth.gen.items.gate_report import (base_report, event_copies_section, finish_report, gate_section,
                                             short_items_section)
from tailsynth.gen.items.groups import Group, device, group_of, in_item_order, item_codes, item_groups
from tailsynth.gen.items.judge import EVAL_ROWS, Unit, judge, plan_units
from tailsynth.gen.items.written import one, one_off, pair_repeats, pairs
from tailsynth.gen.sampling import rows_where
from tailsynth.train.config import GateConfig

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle
    from tailsynth.gen.items.pipeline import ItemsRequest, ItemStream

FILTER_RAKING_ROUNDS = 1
"""Existing items' taste users, matched to the items' first buyers: raking rounds on a fresh calibration draw
after the discriminator filter is fitted (`TasteUsers.after_filter`), each weighing the candidates by their
chance to pass the filter. The filter thins the rows whose generated events do not fit their user, which moved
the kept users off the target (built-in tail, seed 12: UK 91.7% kept, 89.2% of the one-off buyers) and the
union's Country test refused 3 of 12 augment calls. Augment on seeds 10-21 gated on the gate half of the
holdout (`pass_rate`, the rows no benchmark scores), main bundle / a second one: 0 rounds 92% / 59% of the rows
asked for, 1 round 92% / 91% (refused: 5 and 2 of 24); against the whole holdout, where it was first chosen,
52% / 58% and 100% / 42%. New items' calls do not take it: 92% against 100% there (evaluate/bench/README.md,
"The users' mix raked after the filter; ..." and "Pass rates on the gate half")."""


class ItemGate:
    """The gate of one call: filters fitted once, the fill loop, the judgement, the report."""

    def __init__(self, bundle: Bundle, request: ItemsRequest, groups: list[Group], stream: ItemStream,
                 config: GateConfig, seed: int, progress: bool, train: pd.DataFrame, train_groups: np.ndarray,
                 train_items: np.ndarray | None, held: HeldOut) -> None:
        """train: the bucket's real training rows; train_groups / train_items [len(train)]: their group and
        (`match_items`) their item's position in the request (-1: none); held: the call's reference rows and
        units (`held_out`)."""
        self.bundle, self.request, self.groups, self.stream, self.config = bundle, request, groups, stream, config
        self.seeds = dict(zip(("filter", "judge", "mix"), np.random.SeedSequence(seed).generate_state(3).tolist()))
        self.progress = progress
        self.accepted: pd.DataFrame | None = None
        self.train, self.train_groups, self.train_items = train, train_groups, train_items
        self.item_groups = item_groups(groups, len(request.counts))
        """[items] each requested item's group."""
        self.held = held
        self.holdout = held.rows
        self.one_off = None if stream.writer.taste is None or not request.taste.like_first_buyers else \
            one_off(train, stream.writer.user_id, stream.writer.item_id)
        """[len(train)] bool, taste users like first buyers (`TasteSettings.like_first_buyers`): the training rows the
        discriminator filter learns real rows from."""
        taste = stream.writer.taste
        self.user_cap = request.taste.per_user_cap if taste is None or taste.weights is None else \
            max(request.taste.per_user_cap, taste.weights.mix.row_cap(int(request.counts.sum())))
        """Most emitted rows per user: the taste settings' cap, or (users matched to one-off buyers) as many
        as the heaviest one-off buyer's share of the rows, when more (the real data's own heaviest user)."""
        self.judged = judged_columns(bundle, request)
        self.features = list(bundle.item_features)
        self.tested = {name: kind for name, kind in self.judged.items() if name not in self.features}
        self.events = None if request.new_items else event_tuple(bundle)
        """Existing items: the event tuple a candidate must not repeat (new items' ids are in no real row)."""

    def run(self) -> tuple[pd.DataFrame | None, dict]:
        """(the emitted records in item order, or None; the report)."""
        config = self.config
        report = base_report(self.bundle, self.request, self.groups, config)
        held = self.held
        if held.reference is not None:
            report["reference"] = held.reference
        report["holdout_privacy_trim"] = held.trim
        judged_holdout, holdout_groups, holdout_items = held.judged, held.groups, held.items
        units, unjudged = held.units, dict(held.unjudged)
        filled, calibration, report["gate"] = self._fill(judged_holdout)
        self.accepted = filled.rows
        accepted, report["short_items"] = self._filled_items(filled, unjudged)
        units = [u for u in units if not set(u.groups.tolist()) & set(unjudged)] + _regroup(units, unjudged)
        accepted = accepted[~accepted["_group"].isin(list(unjudged)).to_numpy()].reset_index(drop=True)
        strata = (accepted["_item"].to_numpy(), holdout_items) if self.request.match_items else None
        verdicts, union = judge(units, accepted, accepted["_group"].to_numpy(), judged_holdout, holdout_groups,
                                self.train, self.tested, self.judged, config, self.seeds["judge"],
                                device(self.bundle), strata=strata)
        emitted = self._emitted(verdicts, union, unjudged)
        report.update(units=[v.to_dict() for v in verdicts], union=union and union.to_dict())
        records = accepted[accepted["_group"].isin(emitted).to_numpy()]
        report["pair_repeats"] = pair_repeats(records, self.train, self.holdout, self.stream.writer.user_id,
                                              self.stream.writer.item_id)
        if self.events is not None:
            report["event_copies"] = event_copies_section(records, self.holdout, self.train, self.events, calibration)
        finish_report(report, self.request, self.groups, verdicts, union, unjudged, emitted, records,
                      self.stream.stats)
        if records.empty:
            return None, report
        return in_item_order(records), report

    def _fill(self, judged_holdout: pd.DataFrame) -> tuple[Filled, pd.DataFrame, dict]:
        """Fit the screens once per call and fill every item's count (`gen.gate.fill`): (the fill, the first
        calibration rows, the report's "gate" section)."""
        config, counts = self.config, self.request.counts
        support = Support.fit(self.train, self.judged, config.range_margin)
        numerical = [n for n, kind in self.tested.items() if kind == "numerical"]
        ranges = LabelRanges.fit(self.train, self.features, numerical, config.range_margin)
        budget = self._budget()
        # As many calibration rows as a chunk holds, in the request's mix of items: the filter learns from a
        # full chunk even when few rows are asked for (within a quarter of the budget per filter stage).
        size = min(config.chunk_rows, max(1, budget // (4 * config.filter_stages)))
        calibration_want = scaled(np.ceil(counts * max(1.0, size / counts.sum())), size)
        calibration = self.stream.draw(calibration_want)
        calibration_rows = len(calibration)
        row_filter = FilterChain([self._filter(calibration, support, ranges)])
        for _ in range(config.filter_stages - 1):  # each further stage learns what the last ones left
            fresh = self.stream.draw(calibration_want)
            calibration_rows += len(fresh)
            kept = fresh[~row_filter.drop(fresh[list(self.judged)])]
            row_filter = FilterChain([*row_filter.stages, self._filter(kept, support, ranges)])
        taste = self.stream.writer.taste
        if taste is not None and taste.weights is not None and not self.request.new_items:  # the users' mix, kept
            for _ in range(FILTER_RAKING_ROUNDS):
                fresh = self.stream.draw(calibration_want)
                calibration_rows += len(fresh)
                keep = row_filter.keep_probability(fresh[list(self.judged)]) * support.mask(fresh) * ranges.mask(fresh)
                taste.after_filter(self.stream.writer.user_positions(fresh), keep, fresh["_item"].to_numpy())
        screens = RowScreens(support, row_filter, CopyCounts(self.train, self.judged), self.judged, config.rare_k,
                             ranges, None if self.events is None else CopyCounts(self.train, self.events))
        fresh_pairs = [KeptScreen("repeat_pair", self._fresh_pairs)] if taste is not None else []
        filled = fill(self.stream.draw, ItemQuota(counts, config.chunk_rows), screens, budget,
                      calibration=calibration, calibration_rows=calibration_rows, reasons=ITEM_REJECTIONS,
                      bar=rep.Progress(f"{self.request.bucket} items", int(counts.sum()), enabled=self.progress),
                      kept_screens=fresh_pairs)
        section = gate_section(filled.accounting, budget, row_filter.info, ranges, calibration, filled.rows,
                               judged_holdout, list(self.judged), list(self.tested))
        return filled, calibration, section

    def _budget(self) -> int:
        """Most candidates the call may draw, calibration included."""
        return int(math.ceil(self.config.max_candidates_factor * self.request.counts.sum()))

    def _filled_items(self, filled: Filled, unjudged: dict[int, str]) -> tuple[pd.DataFrame, dict]:
        """The accepted rows of the items that got their whole count, and the report's "short_items".

        An item the budget left short of its count emits nothing (every emitted item gets exactly its
        count); its group is judged on its other items, and refused (added to `unjudged`) only when none
        was filled."""
        config, counts, accepted, tally = self.config, self.request.counts, filled.rows, filled.accounting
        whole = np.bincount(accepted["_item"].to_numpy(), minlength=len(counts)) >= counts
        # Groups refused before the fill (no held-out rows) do not count their items as short.
        short_items = np.flatnonzero(~whole & ~np.isin(self.item_groups, list(unjudged)))
        budget_message = budget_failure(tally.accepted, int(counts.sum()), tally.candidates, self._budget(),
                                        config.max_candidates_factor, tally.rejected).message
        any_filled = np.bincount(self.item_groups, weights=whole, minlength=len(self.groups)) > 0
        for g in np.flatnonzero(~any_filled):  # groups without one filled item (tens at most)
            unjudged.setdefault(int(g), f"{int((accepted['_group'] == g).sum())} of {self.groups[g].rows} rows "
                                        "accepted and no item filled when the call's candidate budget was spent; "
                                        + budget_message)
        accepted = accepted[whole[accepted["_item"].to_numpy()]].reset_index(drop=True)
        return accepted, short_items_section(self.request.items, counts, short_items, budget_message)

    def _filter(self, calibration: pd.DataFrame, support: Support, ranges: LabelRanges) -> RowFilter:
        """The discriminator filter of a stage, fitted on real training rows drawn in the calibration rows' mix
        of feature groups — or of items (`match_items`) — with replacement where a group's (item's) training
        rows are fewer, vs that stage's calibration rows. Every stage uses the same seeds; only its
        calibration rows differ."""
        inside = calibration[support.mask(calibration) & ranges.mask(calibration)]
        if self.request.match_items:
            labels, wanted_of = self.train_items, inside["_item"].to_numpy()
            size = len(self.request.counts)
        else:
            labels, wanted_of, size = self.train_groups, inside["_group"].to_numpy(), len(self.groups)
        if self.one_off is not None:  # taste rows are first purchases: so are the real rows they are told from
            labels = np.where(self.one_off, labels, -1)
        real = self.train.iloc[_draw_like(labels, np.bincount(wanted_of, minlength=size),
                                          np.random.default_rng(self.seeds["mix"]))]
        real = real.iloc[: EVAL_ROWS]
        return RowFilter.fit(real[list(self.judged)], inside[list(self.judged)].iloc[:EVAL_ROWS], self.judged,
                             threshold=self.config.fake_threshold, seed=self.seeds["filter"], device=device(self.bundle),
                             selection=self.config.selection, ratio_quantile=self.config.ratio_quantile)

    def _fresh_pairs(self, good: pd.DataFrame, kept: list[pd.DataFrame]) -> pd.DataFrame:
        """Taste users: rows whose (user, item) pair is already accepted or earlier in `good` are dropped, and
        a user's rows beyond the per-user cap of the accepted rows (candidates repeat pairs across rounds;
        the emitted rows must not). Vectorised over the chunk's rows."""
        user, item = self.stream.writer.user_id, self.stream.writer.item_id
        accepted = pd.concat([part[[user, item]] for part in kept], ignore_index=True)
        keys = pairs(good, user, item)
        fresh = ~keys.isin(pairs(accepted, user, item)) & ~keys.duplicated()
        good = good[fresh]
        before = accepted[user].astype(str).value_counts()
        users = good[user].astype(str)
        rank = users.groupby(users.to_numpy()).cumcount().to_numpy() + \
            before.reindex(users.to_numpy()).fillna(0).to_numpy(dtype=np.int64)
        return good[rank < self.user_cap]

    def _emitted(self, verdicts: list[UnitVerdict], union: UnitVerdict | None, unjudged: dict[int, str]) -> list[int]:
        """The groups whose rows are emitted: those of passing units, once the union passed too (none, under
        all_or_nothing, unless every group passed)."""
        if union is None or not union.passed:
            return []
        passed = [g for verdict in verdicts if verdict.passed for g in verdict.groups]
        if self.request.all_or_nothing and (unjudged or len(passed) < sum(len(v.groups) for v in verdicts)):
            return []
        return passed


@dataclass(frozen=True)
class HeldOut:
    """What a call is judged against, known before any row is drawn (`held_out`)."""

    rows: pd.DataFrame
    """The bucket's held-out rows (taste users: their first purchases, `first_purchases`)."""
    reference: dict | None
    """The report's note on `rows` (taste users), else None."""
    judged: pd.DataFrame
    """`rows` after the privacy trim (`gen.gate.core.privacy_trim`): the rows the units are judged against."""
    trim: dict
    """The report's `holdout_privacy_trim`."""
    groups: np.ndarray
    """[len(judged)] each judged row's feature group (-1: none of the request's)."""
    items: np.ndarray
    """[len(judged)] each judged row's item in the request (-1: not requested)."""
    units: list[Unit]
    """The units the gate judges (`judge.plan_units`)."""
    unjudged: dict[int, str]
    """{group: why it cannot be judged}."""


def held_out(bundle: Bundle, request: ItemsRequest, groups: list[Group], config: GateConfig, train: pd.DataFrame,
             taste: bool) -> HeldOut:
    """The call's reference rows and its units. train: the bucket's real training rows; taste: users chosen by
    taste (judged against first purchases)."""
    holdout = rows_where(bundle.table("holdout"), {bundle.spec.columns[0]: request.bucket}).reset_index(drop=True)
    reference = None
    if taste:
        holdout, reference = first_purchases(holdout, bundle.table("train"), one(bundle, "user_id"),
                                             one(bundle, "item_id"))
    judged, trim = privacy_trim(holdout, train, judged_columns(bundle, request), config.rare_k)
    judged = judged.reset_index(drop=True)
    holdout_groups = group_of(judged, groups, bundle)
    holdout_items = item_codes(request.items, judged)
    if request.match_items:  # per group: the sum over its items of min(the item's held-out rows, its rows asked)
        per_item = np.minimum(np.bincount(holdout_items[holdout_items >= 0], minlength=len(request.counts)),
                              request.counts)
        comparable = np.bincount(item_groups(groups, len(request.counts)), weights=per_item,
                                 minlength=len(groups)).astype(np.int64)
    else:
        comparable = np.bincount(holdout_groups[holdout_groups >= 0], minlength=len(groups))
    units, unjudged = plan_units([g.label for g in groups], comparable, np.array([g.rows for g in groups]), config)
    return HeldOut(holdout, reference, judged, trim, holdout_groups, holdout_items, units, unjudged)


def judged_columns(bundle: Bundle, request: ItemsRequest) -> dict[str, str]:
    """{column: kind} the gate judges: every column but the bucket (and the timestamp unless asked)."""
    excluded = {bundle.spec.columns[0]} | (set() if request.judge_timestamp else set(bundle.role("timestamp")))
    return {name: kind for name, kind in bundle.columns.items() if name not in excluded}


def event_tuple(bundle: Bundle) -> dict[str, str]:
    """The columns that make one real event: item id and timestamp, then the event columns (quantity, price),
    with the kinds exact matching compares them as (ids as labels, numbers and times as numbers)."""
    kinds = {one(bundle, "item_id"): "categorical"}
    kinds.update({name: "numerical" for name in bundle.role("timestamp")})
    kinds.update({name: bundle.columns.get(name, "numerical") for name in bundle.role("event")})
    return kinds


def first_purchases(holdout: pd.DataFrame, train: pd.DataFrame, user: str, item: str) -> tuple[pd.DataFrame, dict]:
    """The held-out rows whose (user, item) pair is not in training: the reference for rows of taste-chosen
    users, which are new pairs by construction (never a user who already has the item). Repeat purchases are
    a different population (their buyers are far heavier: on the built-in tail, frequency median 14 against 5),
    so judging new pairs against them would test the repeat share, not the rows."""
    repeat = pairs(holdout, user, item).isin(pairs(train, user, item))
    note = {"rows": "held-out rows whose (user, item) pair is new (first purchases): taste rows are new pairs",
            "held_out_rows": len(holdout), "repeat_purchases_left_out": int(repeat.sum())}
    return holdout.loc[~repeat].reset_index(drop=True), note


def _draw_like(labels: np.ndarray, wanted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shuffled positions of `labels` [n]: wanted[k] of label k each, drawn with replacement (labels without any
    row are skipped). Vectorised: one sort, no loop over labels."""
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(len(wanted)))
    sizes = np.searchsorted(labels[order], np.arange(len(wanted)), side="right") - starts
    wanted = np.where(sizes > 0, wanted, 0).astype(np.int64)
    label = np.repeat(np.arange(len(wanted)), wanted)
    picks = order[starts[label] + (rng.random(len(label)) * sizes[label]).astype(np.int64)]
    return rng.permutation(picks)


def _regroup(units: list[Unit], unjudged: dict[int, str]) -> list[Unit]:
    """A pooled unit that lost some groups (refused for their budget) keeps judging the rest."""
    kept = []
    for unit in units:
        rest = np.array([g for g in unit.groups if g not in unjudged])
        if unit.kind == "pooled" and 0 < rest.size < unit.groups.size:
            kept.append(Unit(unit.label, unit.kind, rest))
    return kept
