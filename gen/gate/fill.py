"""The gate's fill loop, shared by `gen sample` (`gen.gate.core.run_gate`) and the item paths (`gen augment`,
`gen cold-start`: `gen.items.pipeline`): draw candidates in rounds, screen them, keep the passing rows until
the wanted rows are kept or the candidate budget is spent.

    filled = fill(draw, RowQuota(n, chunk_rows), screens, budget, calibration=rows, bar=progress)
    filled.rows, filled.accounting.to_dict(budget)

The screens (`RowScreens`) run in this order, a row rejected by several counted under the FIRST:
support -> condition adherence (items) -> calibrated discriminator -> privacy (rare copies) -> event copy
(existing items: a candidate repeating a training row's event tuple), then the screens that read the rows
kept so far (`KeptScreen`: taste users' fresh (user, item) pairs). What to ask for each round and which
passing rows to keep is the quota's: `RowQuota` (n rows of one stream) or `ItemQuota` (a count per item).

Every candidate is accounted for (`Accounting`): candidates = calibration + accepted + sum(rejected) + unused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from tailsynth.evaluate.measures.privacy import CopyCounts
from tailsynth.gen.gate import report as rep
from tailsynth.gen.gate.adherence import LabelRanges
from tailsynth.gen.gate.support import ColumnTypes, Support

MIN_CHUNK = 256
"""Smallest draw of one stream after calibration, so the last few missing rows do not cost one call each."""
MAX_BOOST = 64
"""Most a short item's candidate count is multiplied by (`ItemQuota`)."""
ROW_REJECTIONS = ("support", "discriminator", "privacy")
"""Rejection reasons of one stream of feature rows (`run_gate`), in screening order."""
ITEM_REJECTIONS = ("support", "adherence", "discriminator", "privacy", "event_copy")
"""Rejection reasons of item interactions (`gen.items.pipeline`), in screening order."""


@dataclass(frozen=True)
class Accounting:
    """Where every candidate went: candidates = calibration + accepted + sum(rejected) + unused."""

    calibration: int
    candidates: int
    accepted: int
    unused: int
    """Rows that passed every screen but were not needed (their item or the stream already had its rows)."""
    rejected: dict[str, int]
    """Per reason, in screening order; a row failing several screens counts under the first."""
    violations: dict[str, int]
    """Per column, over screened candidates; a row can violate several columns."""

    @classmethod
    def empty(cls, reasons: Sequence[str], columns: Sequence[str]) -> Accounting:
        """No candidate drawn (a refusal before the fill): every count zero, so readers need no special case."""
        return cls(0, 0, 0, 0, dict.fromkeys(reasons, 0), dict.fromkeys(columns, 0))

    @property
    def screened(self) -> int:
        return self.candidates - self.calibration

    def pass_rate(self) -> float | None:
        """Share of screened (non-calibration) candidates that passed every screen; None before any."""
        return (self.accepted + self.unused) / self.screened if self.screened else None

    def to_dict(self, budget: int) -> dict[str, Any]:
        """The report's accounting entries (`gen.gate.report.ACCOUNTING_NOTE`)."""
        return {
            "budget": budget, "candidates": self.candidates, "calibration_rows": self.calibration,
            "accepted": self.accepted, "unused": self.unused, "rejected": dict(self.rejected),
            "rejection_order": list(self.rejected), "accounting": rep.ACCOUNTING_NOTE,
            "support_violations": dict(self.violations),
            "support_violations_note": "per column, over screened candidates; a row can violate several columns",
            "acceptance_rate": self.pass_rate(),
            "acceptance_rate_note": "share of screened (non-calibration) candidates that passed every filter",
        }


@dataclass
class Tally:
    """The counts of a fill in progress (frozen into an `Accounting` when it ends)."""

    calibration: int
    candidates: int
    rejected: dict[str, int]
    violations: dict[str, int]
    accepted: int = 0
    unused: int = 0

    def freeze(self) -> Accounting:
        return Accounting(self.calibration, self.candidates, self.accepted, self.unused, dict(self.rejected),
                          dict(self.violations))


class RowDropper(Protocol):
    def drop(self, rows: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class RowScreens:
    """The per-chunk screens, fitted once per call: support (-> adherence) -> discriminator -> privacy
    (-> event copy). `copies`: the training rows' value counts over `columns`; `ranges`: the condition-
    adherence screen of item interactions (`gen.gate.adherence`); `events`: the training rows' event tuples
    (item, time, event values) - a candidate repeating one is a real event with another user attached."""

    support: Support
    row_filter: RowDropper
    copies: CopyCounts
    columns: ColumnTypes
    rare_k: int
    ranges: LabelRanges | None = None
    events: CopyCounts | None = None

    def __call__(self, chunk: pd.DataFrame, tally: Tally) -> pd.DataFrame:
        """The rows of `chunk` that pass every screen; each rejection counted in `tally` under its first reason."""
        masks = self.support.column_masks(chunk)
        for name, inside in masks.items():
            tally.violations[name] += int((~inside).sum())
        rows = chunk[np.logical_and.reduce(list(masks.values()))]
        tally.rejected["support"] += len(chunk) - len(rows)
        if self.ranges is not None and len(rows):
            consistent = self.ranges.mask(rows)
            tally.rejected["adherence"] += int((~consistent).sum())
            rows = rows[consistent]
        if len(rows):
            fake = self.row_filter.drop(rows[list(self.columns)])
            tally.rejected["discriminator"] += int(fake.sum())
            rows = rows[~fake]
        if len(rows):
            copied = np.asarray(self.copies.rare(rows, self.rare_k), dtype=bool)
            tally.rejected["privacy"] += int(copied.sum())
            rows = rows[~copied]
        if self.events is not None and len(rows):
            repeated = self.events.of(rows) >= 1
            tally.rejected["event_copy"] += int(repeated.sum())
            rows = rows[~repeated]
        return rows


@dataclass(frozen=True)
class KeptScreen:
    """A screen that reads the rows kept so far: keep(passing rows, kept parts) -> the rows it lets through."""

    reason: str
    keep: Callable[[pd.DataFrame, list[pd.DataFrame]], pd.DataFrame]


class RowQuota:
    """n rows of one stream: ask for what the pass rate says is missing (+20%, at least MIN_CHUNK, at most a
    chunk), keep passing rows in drawn order."""

    def __init__(self, n: int, chunk_rows: int) -> None:
        self.n, self.chunk_rows, self.have = n, chunk_rows, 0

    def done(self) -> bool:
        return self.have >= self.n

    def ask(self, rate: float, room: int) -> int:
        want = max(MIN_CHUNK, math.ceil((self.n - self.have) / max(rate, 0.01) * 1.2))
        return min(self.chunk_rows, room, want)

    def take(self, good: pd.DataFrame) -> pd.DataFrame:
        take = good.iloc[: self.n - self.have]
        self.have += len(take)
        return take


class ItemQuota:
    """counts[i] rows of each item i (rows carry their item's position in `_item`): ask per item for what the
    pass rate says is missing (+20%) within 4 chunks; keep an item's passing rows up to its count.

    Items still short after a round get twice as many candidates the next (up to MAX_BOOST): the last few
    hard items otherwise took ~70 rounds of a handful of candidates each (60 s of a 100 s call)."""

    def __init__(self, counts: np.ndarray, chunk_rows: int) -> None:
        self.counts, self.chunk_rows = counts, chunk_rows
        self.have = np.zeros(len(counts), dtype=np.int64)
        self.boost = np.ones(len(counts))

    def done(self) -> bool:
        return not (self.have < self.counts).any()

    def ask(self, rate: float, room: int) -> np.ndarray:
        need = self.counts - self.have
        want = np.where(need > 0, np.ceil(need / max(rate, 0.02) * 1.2 * self.boost), 0).astype(np.int64)
        return scaled(want, min(int(want.sum()), room, 4 * self.chunk_rows))

    def take(self, good: pd.DataFrame) -> pd.DataFrame:
        items = good["_item"].to_numpy()
        rank = good.groupby("_item").cumcount().to_numpy() + self.have[items]
        take = good[rank < self.counts[items]]
        self.have += np.bincount(take["_item"].to_numpy(), minlength=len(self.counts))
        self.boost = np.where(self.have < self.counts, np.minimum(self.boost * 2, MAX_BOOST), self.boost)
        return take


class Quota(Protocol):
    def done(self) -> bool: ...
    def ask(self, rate: float, room: int) -> Any: ...
    def take(self, good: pd.DataFrame) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Filled:
    rows: pd.DataFrame
    """The kept rows, in the order they were kept."""
    raw: pd.DataFrame
    """The calibration rows, then the first drawn chunks up to `raw_rows` rows (the raw candidates' measures)."""
    accounting: Accounting


def fill(
    draw: Callable[[Any], pd.DataFrame], quota: Quota, screens: RowScreens, budget: int, *,
    calibration: pd.DataFrame, bar: rep.Progress, reasons: Sequence[str], calibration_rows: int | None = None,
    kept_screens: Sequence[KeptScreen] = (), raw_rows: int = 0,
) -> Filled:
    """Draw (`draw(quota.ask(...))`), screen and keep rows until the quota is met or `budget` candidates
    (calibration included) are drawn.

    calibration: the calibration rows already drawn (their count, `calibration_rows`, when several stages
    drew more); reasons: the rejection reasons in screening order (the report's rejection_order)."""
    spent = len(calibration) if calibration_rows is None else calibration_rows
    tally = Tally(spent, spent, dict.fromkeys(reasons, 0), dict.fromkeys(screens.columns, 0))
    kept, raw, raw_count = [calibration.iloc[:0]], [calibration], len(calibration)
    while not quota.done() and tally.candidates < budget:
        screened = tally.candidates - tally.calibration
        rate = (tally.accepted + tally.unused) / screened if screened else 1.0
        chunk = draw(quota.ask(rate, budget - tally.candidates))
        tally.candidates += len(chunk)
        if raw_count < raw_rows:
            raw.append(chunk)
            raw_count += len(chunk)
        good = screens(chunk, tally)
        for screen in kept_screens:
            fresh = screen.keep(good, kept)
            tally.rejected[screen.reason] = tally.rejected.get(screen.reason, 0) + len(good) - len(fresh)
            good = fresh
        take = quota.take(good)
        kept.append(take)
        tally.accepted += len(take)
        tally.unused += len(good) - len(take)
        bar.update(tally.accepted, tally.candidates)
    bar.close(tally.accepted, tally.candidates)
    return Filled(pd.concat(kept, ignore_index=True), pd.concat(raw, ignore_index=True), tally.freeze())


def scaled(want: np.ndarray, total: int) -> np.ndarray:
    """want scaled down to about `total` rows in all, every item with want > 0 keeping at least one."""
    want = np.asarray(want, dtype=np.int64)
    if want.sum() <= total:
        return want
    counts = np.floor(want * (total / want.sum())).astype(np.int64)
    return np.where(want > 0, np.maximum(counts, 1), 0)
