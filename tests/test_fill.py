"""gen.gate.fill: the one fill loop of `gen sample` and the item paths, with hand-made draws (no model).

Checked: every candidate is accounted for (candidates = calibration + accepted + sum(rejected) + unused),
each screen counts its own rejections (support, discriminator, privacy, event copy, a kept-rows screen),
an item quota fills every item's count exactly, and the budget bounds the draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailsynth.evaluate.measures.privacy import CopyCounts
from tailsynth.gen.gate import core, fill as fill_module
from tailsynth.gen.gate.fill import (ITEM_REJECTIONS, ROW_REJECTIONS, Accounting, ItemQuota, KeptScreen, RowQuota,
                                     RowScreens, fill)
from tailsynth.gen.gate.report import Progress
from tailsynth.gen.gate.support import Support
from tailsynth.gen.items import item_gate

COLUMNS = {"price": "numerical", "quantity": "numerical"}


class DropShare:
    """A stand-in discriminator filter: drops a seeded share of the rows it sees."""

    def __init__(self, share: float, seed: int = 0) -> None:
        self.share, self.rng = share, np.random.default_rng(seed)

    def drop(self, rows: pd.DataFrame) -> np.ndarray:
        return self.rng.random(len(rows)) < self.share


def real_rows(k: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"price": np.round(rng.uniform(1, 10, size=k), 2),
                         "quantity": rng.integers(1, 6, size=k).astype(float)})


def item_draw(train: pd.DataFrame, seed: int):
    """draw(want [items]) -> want[i] rows of item i: 10% copies of training rows, 10% out of support."""
    rng = np.random.default_rng(seed)

    def draw(want: np.ndarray) -> pd.DataFrame:
        items = np.repeat(np.arange(len(want)), want)
        rows = real_rows(len(items), rng)
        copied = rng.random(len(rows)) < 0.1
        rows.loc[copied, list(COLUMNS)] = train.sample(int(copied.sum()), replace=True, random_state=seed).to_numpy()
        rows.loc[rng.random(len(rows)) < 0.1, "price"] = 1e6
        return rows.assign(_item=items, _group=0, user=rng.integers(0, 30, size=len(rows)))

    return draw


def screens_for(train: pd.DataFrame, drop_share: float, events: bool) -> RowScreens:
    return RowScreens(Support.fit(train, COLUMNS, 0.0), DropShare(drop_share), CopyCounts(train, COLUMNS), COLUMNS,
                      rare_k=1, events=CopyCounts(train, COLUMNS) if events else None)


def assert_adds_up(accounting: Accounting, rows: pd.DataFrame) -> None:
    assert accounting.candidates == (accounting.calibration + accounting.accepted + sum(accounting.rejected.values())
                                     + accounting.unused)
    assert accounting.accepted == len(rows)


def test_item_fill_accounts_for_every_candidate_and_fills_each_count() -> None:
    rng = np.random.default_rng(1)
    train = real_rows(300, rng)
    counts = np.array([5, 40, 1, 12])
    draw = item_draw(train, seed=2)
    calibration = draw(counts)

    def fresh_users(good: pd.DataFrame, kept: list[pd.DataFrame]) -> pd.DataFrame:  # one row per user at most
        seen = pd.concat(kept)["user"]
        return good[~good["user"].isin(seen) & ~good["user"].duplicated()]

    reasons = tuple(r for r in ITEM_REJECTIONS if r != "adherence")
    filled = fill(draw, ItemQuota(counts, chunk_rows=50), screens_for(train, 0.3, events=True), budget=5_000,
                  calibration=calibration, bar=Progress("t", int(counts.sum()), enabled=False), reasons=reasons,
                  kept_screens=[KeptScreen("repeat_pair", fresh_users)])
    accounting = filled.accounting
    assert_adds_up(accounting, filled.rows)
    # The last round may pass the budget by at most one row per short item (each keeps at least one).
    assert accounting.calibration == len(calibration) and 5_000 <= accounting.candidates < 5_000 + len(counts)
    assert list(accounting.rejected) == [*reasons, "repeat_pair"]
    assert all(accounting.rejected[reason] > 0 for reason in ("support", "discriminator", "event_copy"))
    assert accounting.rejected["repeat_pair"] > 0 and not filled.rows["user"].duplicated().any()
    # 30 users, one row each: the quota cannot be met, and the items that were filled hold exactly their count.
    per_item = np.bincount(filled.rows["_item"], minlength=len(counts))
    assert (per_item <= counts).all() and per_item.sum() == 30
    assert accounting.violations["price"] >= accounting.rejected["support"] > 0


def test_row_fill_keeps_n_rows_in_drawn_order() -> None:
    rng = np.random.default_rng(3)
    train = real_rows(500, rng)
    drawn = [0]

    def draw(k: int) -> pd.DataFrame:  # each row numbered in drawing order
        rows = real_rows(k, rng).assign(drawn=np.arange(drawn[0], drawn[0] + k))
        drawn[0] += k
        return rows

    calibration = draw(100)
    filled = fill(draw, RowQuota(700, chunk_rows=400), screens_for(train, 0.2, events=False), budget=10_000,
                  calibration=calibration, bar=Progress("t", 700, enabled=False), reasons=ROW_REJECTIONS,
                  raw_rows=300)
    assert_adds_up(filled.accounting, filled.rows)
    assert len(filled.rows) == 700 and filled.accounting.unused > 0
    assert len(filled.raw) >= 300 and filled.raw.iloc[:100].equals(calibration.reset_index(drop=True))
    assert list(filled.accounting.rejected) == list(ROW_REJECTIONS)
    kept = filled.rows["drawn"].to_numpy()  # screened candidates (never calibration rows), in drawn order
    assert (kept >= 100).all() and (np.diff(kept) > 0).all() and kept.max() < filled.accounting.candidates


@pytest.mark.parametrize("budget", [100, 1_001])
def test_the_budget_bounds_the_draws(budget: int) -> None:
    rng = np.random.default_rng(4)
    train = real_rows(200, rng)
    filled = fill(lambda k: real_rows(k, rng), RowQuota(50, chunk_rows=300), screens_for(train, 1.0, events=False),
                  budget=budget, calibration=real_rows(100, rng), bar=Progress("t", 50, enabled=False),
                  reasons=ROW_REJECTIONS)
    accounting = filled.accounting
    assert_adds_up(accounting, filled.rows)
    assert accounting.accepted == 0 and accounting.candidates == max(budget, 100)
    assert accounting.rejected["discriminator"] + accounting.rejected["support"] == accounting.screened
    assert accounting.to_dict(budget)["acceptance_rate"] == (0.0 if accounting.screened else None)


def test_sample_and_item_paths_share_the_one_fill_loop() -> None:
    assert core.fill is fill_module.fill and item_gate.fill is fill_module.fill
