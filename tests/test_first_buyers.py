"""Taste rows made like the items' first buyers (`TasteSettings.like_first_buyers`): the users' feature mix
raked to a target (`taste_mix`), each row at its user's nearest purchase time (`user_times`), item-level values
tilted toward the user's scale (`user_values`), one-off pairs (`written.one_off`); on hand-made tables with
known answers, then end to end on the tiny bundle."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailsynth import gen
from tailsynth.gen.items.item_values import ItemValues
from tailsynth.gen.items.taste_mix import UserMix, calibrate
from tailsynth.gen.items.user_times import UserTimes
from tailsynth.gen.items.user_values import UserTilt
from tailsynth.gen.items.written import one_off
from tailsynth.train.config import GateConfig, load_config
from tailsynth.train.fit import fit
from helpers import TINY_MIN_LIFT

REPO = Path(__file__).resolve().parents[1]


def _users(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user": np.arange(n), "frequency": rng.integers(1, 200, n).astype(float),
                         "Country": rng.choice(["UK", "DE", "FR"], n, p=[0.8, 0.1, 0.1])})


def test_raking_brings_a_biased_draw_to_the_target_mix() -> None:
    """A draw that favours frequent UK users (weight frequency, UK x3) is raked to a target of infrequent,
    mostly foreign users: every feature's binned KS falls below 0.05, from well above it."""
    users = _users()
    rng = np.random.default_rng(1)
    light = np.flatnonzero((users["frequency"] < 60).to_numpy())
    foreign = np.flatnonzero((users["Country"] != "UK").to_numpy())
    target = np.concatenate([rng.choice(light, 3000), rng.choice(foreign, 2000)])
    mix = UserMix.of(users, ["Country"], ["frequency"], target)
    base = np.log(users["frequency"].to_numpy()) + np.log(np.where(users["Country"] == "UK", 3.0, 1.0))

    def draw(weights):  # noqa: ANN001, ANN202
        logits = base + weights.offsets(np.arange(len(users)))[0]
        p = np.exp(logits - logits.max())
        return np.random.default_rng(2).choice(len(users), 5000, p=p / p.sum())

    weights = calibrate(draw, mix, rounds=12)
    before, after = weights.stats["binned_ks_before"], weights.stats["binned_ks_after"]
    assert min(before.values()) > 0.2
    assert max(after.values()) < 0.05
    assert mix.distances(draw(weights)) == after  # the stats describe the returned weights' draw


def _two_group_draw(users: pd.DataFrame, base: np.ndarray, rows: int = 3000):  # noqa: ANN202
    """A draw of `rows` rows for each of two groups of items, each under its own offsets (one row: both)."""
    def draw(weights):  # noqa: ANN001, ANN202
        offsets = weights.offsets(np.arange(len(users)))
        rng = np.random.default_rng(3)
        positions = []
        for group in range(2):
            logits = base + offsets[min(group, len(offsets) - 1)]
            p = np.exp(logits - logits.max())
            positions.append(rng.choice(len(users), rows, p=p / p.sum()))
        return np.concatenate(positions), np.repeat([0, 1], rows)
    return draw


def test_each_feature_group_is_raked_to_its_own_target() -> None:
    """Group 0's items were bought by UK users, group 1's by DE users, out of a draw that favours UK users for
    both: raked per group, each group's drawn mix comes within 0.03 of its own target; one pooled target for
    both meets only the pool's mix, and each group's stays far from its own."""
    users = pd.DataFrame({"Country": ["UK"] * 1000 + ["DE"] * 1000})
    rng = np.random.default_rng(0)
    target = np.r_[rng.choice(1000, 900), rng.choice(np.arange(1000, 2000), 100),
                   rng.choice(1000, 300), rng.choice(np.arange(1000, 2000), 2700)]
    target_groups = np.repeat([0, 1], [1000, 3000])
    grouped = UserMix.of(users, ["Country"], [], target, target_groups, groups=2)
    pooled = UserMix.of(users, ["Country"], [], target)
    uk = grouped.codes[0][0]
    base = np.where(users["Country"] == "UK", np.log(3.0), 0.0)
    draw = _two_group_draw(users, base)

    def uk_share(positions: np.ndarray, groups: np.ndarray, group: int) -> float:
        return float((grouped.codes[0][positions[groups == group]] == uk).mean())

    for mix in (grouped, pooled):
        weights = calibrate(draw, mix, rounds=12)
        positions, groups = draw(weights)
        shares = [uk_share(positions, groups, g) for g in (0, 1)]
        if mix is grouped:
            assert weights.stats["groups"] == 2
            assert all(abs(share - mix.targets[0][g, uk]) < 0.03 for g, share in enumerate(shares))
            assert mix.distances(positions, groups) == weights.stats["binned_ks_after"]
        else:
            assert abs(float((mix.codes[0][positions] == uk).mean()) - mix.target[0][uk]) < 0.03  # the pool's mix
            assert abs(shares[0] - grouped.targets[0][0, uk]) > 0.3  # group 0 wanted UK, got the pool's
    # The grouped targets: the group's own rows plus GROUP_PRIOR rows of the pooled mix.
    from tailsynth.gen.items.taste_mix import GROUP_PRIOR
    pool_uk = 1200 / 4000
    assert grouped.targets[0][0, uk] == pytest.approx((900 + GROUP_PRIOR * pool_uk) / (1000 + GROUP_PRIOR))
    assert grouped.targets[0][1, uk] == pytest.approx((300 + GROUP_PRIOR * pool_uk) / (3000 + GROUP_PRIOR))


def test_a_group_with_few_target_rows_is_raked_as_the_pool() -> None:
    """A group whose target is 5 DE rows (the pool: 90% UK) gets a target near the pool's, not all DE; rows of
    no group count in the pool only; a grouped mix without each drawn row's group is refused."""
    users = pd.DataFrame({"Country": ["UK"] * 100 + ["DE"] * 100})
    target = np.r_[np.arange(90).repeat(10), np.arange(100, 110).repeat(10), np.arange(100, 105)]
    groups = np.r_[np.full(900, -1), np.full(100, 0), np.full(5, 1)]
    mix = UserMix.of(users, ["Country"], [], target, groups, groups=2)
    uk = mix.codes[0][0]
    assert mix.target[0][uk] == pytest.approx(900 / 1005)
    assert abs(mix.targets[0][1, uk] - mix.target[0][uk]) < 0.03
    assert mix.targets[0][0, uk] < 0.7  # 100 rows of its own (all DE) move it
    with pytest.raises(ValueError, match="target_groups"):
        UserMix.of(users, ["Country"], [], target, np.full(len(target), 2), groups=2)
    with pytest.raises(AssertionError, match="group"):
        mix.distances(np.arange(10))


def test_mix_bins_cover_missing_and_rare_values() -> None:
    users = pd.DataFrame({"user": range(6), "Country": ["UK", "UK", "UK", "DE", None, "XX"],
                          "frequency": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0]})
    mix = UserMix.of(users, ["Country"], ["frequency"], np.array([0, 1, 3, 4]))
    country, frequency = mix.codes
    assert country[4] != country[0] and country[4] != country[3]  # a missing value is a bin of its own
    assert frequency[2] == frequency.max()  # so is a missing number
    assert mix.row_cap(100) == 25 and mix.top_share == 0.25


def test_a_country_of_half_a_percent_is_raked_on_its_own() -> None:
    """A value holding 0.5% of the target gets its own bin (the gate's chi-square tests every value); one
    below MIN_SHARE shares the pooled bin."""
    from tailsynth.gen.items.taste_mix import MIN_SHARE

    users = pd.DataFrame({"Country": ["UK"] * 1000 + ["NL"] * 5 + ["AU", "BR"]})
    target = np.r_[np.arange(1000).repeat(2), np.arange(1000, 1005).repeat(2), 1005]  # NL 0.5%, AU 0.05%
    assert 0.0005 < MIN_SHARE <= 0.005
    country = UserMix.of(users, ["Country"], [], target).codes[0]
    assert len({country[0], country[1000], country[1005]}) == 3  # UK, NL, the pool
    assert country[1005] == country[1006]  # AU (0.05% of the target) and BR (none) are pooled


def test_a_round_after_the_filter_gives_the_users_it_thins_more_weight() -> None:
    """The filter keeps DE users' rows half as often as UK users': the round after it raises DE's weight
    against UK's by STEP x log 2 (the target is met before the filter), and says how far the kept mix was."""
    from tailsynth.gen.items.taste_mix import STEP, MixWeights

    users = pd.DataFrame({"Country": ["UK"] * 50 + ["DE"] * 50})
    mix = UserMix.of(users, ["Country"], [], np.arange(100))
    weights = MixWeights.zero(mix)
    positions = np.arange(100)
    keep = np.where(users["Country"] == "UK", 0.8, 0.4)
    after = weights.after_filter(positions, keep)
    uk, de = mix.codes[0][0], mix.codes[0][50]
    offsets = after.offsets(positions)[0]
    assert offsets[50] - offsets[0] == pytest.approx(STEP * np.log(2.0), rel=0.01)
    assert after.weights[0][0, de] > 0 > after.weights[0][0, uk]
    assert after.stats["after_filter"]["binned_ks_kept_round_1"]["Country"] == pytest.approx(1 / 6, abs=1e-3)


def test_a_chain_keeps_a_row_with_the_product_of_its_stages_chances() -> None:
    from tailsynth.gen.gate.filter import FilterChain

    class Stage:
        def __init__(self, p: float) -> None:
            self.p = p

        def keep_probability(self, rows: pd.DataFrame) -> np.ndarray:
            return np.full(len(rows), self.p)

    rows = pd.DataFrame({"x": range(4)})
    assert np.allclose(FilterChain([Stage(0.5), Stage(0.4)]).keep_probability(rows), 0.2)


def test_a_row_takes_its_users_nearest_purchase_time() -> None:
    stamps = pd.to_datetime(["2011-01-01 10:00", "2011-01-10 09:00", "2011-03-01 12:00",   # user 7
                             "2011-02-01 08:00"])                                            # user 8
    train = pd.DataFrame({"user": [7, 7, 7, 8], "when": stamps})
    users = pd.DataFrame({"user": [8, 7, 9]})  # user 9 never bought
    times = UserTimes.fit(train, "user", "when", users)
    rows = pd.Series(pd.to_datetime(["2011-01-08", "2011-02-25", "2011-12-01", "2010-06-01", "2011-05-05"]))
    placed, stats = times.place(rows, np.array([1, 1, 1, 0, 2]))
    assert list(placed) == [stamps[1], stamps[2], stamps[2], stamps[3], rows[4]]
    assert stats["rows_moved"] == 4 and stats["after_last_purchase_before"] == 1


def test_quantities_tilt_toward_the_users_scale_among_the_items_own_values() -> None:
    """User 0 buys 4x an item's median, user 1 a quarter of it: drawn for item 0 (sold as 1, 4, 16), user 0's
    rows take larger quantities than user 1's, always one the item was sold at."""
    train = pd.DataFrame({"user": [0, 0, 0, 1, 1, 1, 2, 2, 2], "item": ["a", "b", "c"] * 3,
                          "Quantity": [16, 16, 16, 1, 1, 1, 4, 4, 4]})
    users = pd.DataFrame({"user": [0, 1, 2]})
    tilt = UserTilt.fit(train, "user", "item", "Quantity", users)
    assert tilt is not None and tilt.tilt[0] > 0 > tilt.tilt[1]
    values = ItemValues.fit(train, "item", pd.Series(["a"]), ["Quantity"], min_share=-1.0)
    rows = pd.DataFrame({"Quantity": np.zeros(2000, dtype=np.int64)})
    who = np.repeat([0, 1], 1000)
    drawn = values.apply(rows, np.zeros(2000, dtype=np.int64), np.random.default_rng(0),
                         {"Quantity": tilt.of(who)})["Quantity"].to_numpy()
    assert set(drawn) <= {1, 4, 16}
    assert drawn[who == 0].mean() > 2 * drawn[who == 1].mean()
    untilted = values.apply(rows, np.zeros(2000, dtype=np.int64), np.random.default_rng(0))["Quantity"].to_numpy()
    assert abs(untilted[who == 0].mean() - untilted[who == 1].mean()) < 2
    # Centred on the users the rows will go to (here mostly user 0, the big buyer): their mean tilt is 0, so the
    # rows' overall level stays the item's and user 1 is tilted further down than before.
    centred = UserTilt.fit(train, "user", "item", "Quantity", users, centre_on=np.array([0, 0, 0, 1]))
    assert centred is not None and abs(centred.of(np.array([0, 0, 0, 1])).mean()) < 1e-9
    assert centred.tilt[1] < tilt.tilt[1] and centred.info["centre"] > 0


def test_one_off_marks_pairs_bought_once() -> None:
    rows = pd.DataFrame({"u": [1, 1, 2, 3, 3], "i": ["a", "a", "a", "b", "c"]})
    assert one_off(rows, "u", "i").tolist() == [False, False, True, True, True]


TEST_GATE = GateConfig(alpha=1e-100, max_auc=1.0, min_holdout_rows=10, max_candidates_factor=50, chunk_rows=2000)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> gen.Bundle:
    config = load_config(REPO / "configs" / "tiny.yaml", ["monitor.enabled=false"])
    return gen.load(fit(replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="first")), device="cpu")


def test_augment_rows_sit_in_their_users_baskets_and_report_the_mix(bundle) -> None:  # noqa: ANN001
    result = gen.augment(bundle, per_item=2, seed=0, gate=TEST_GATE, min_lift=TINY_MIN_LIFT, progress=False)
    rows = result.rows
    assert rows is not None and len(rows) > 0
    train = bundle.table("train")
    baskets = set(zip(train["CustomerID"].astype(int), pd.to_datetime(train["InvoiceDate"])))
    assert all((int(u), t) in baskets for u, t in zip(rows["CustomerID"], pd.to_datetime(rows["InvoiceDate"])))
    assert not set(zip(rows["CustomerID"], rows["StockCode"])) & set(zip(train["CustomerID"], train["StockCode"]))
    section = result.report["taste"]["like_first_buyers"]
    assert section["features"] and section["per_user_cap"] >= 50
    assert max(section["binned_ks_after"].values()) <= max(section["binned_ks_before"].values())
    assert set(section["after_filter"]["binned_ks_kept_round_1"]) == set(section["features"])
    assert result.report["taste"]["check"]["split"]["mix_offsets"] is True  # the gate judged this very chooser


def test_new_items_are_raked_to_their_buckets_one_off_buyers(bundle) -> None:  # noqa: ANN001
    """Items without training pairs (new items) take the request bucket's one-off buyers as the target mix, not
    every bucket's; existing items keep their own one-off buyers whatever the bucket."""
    from tailsynth.gen.items.taste_plan import user_mix
    from tailsynth.gen.items.written import users_table

    train, users = bundle.table("train"), users_table(bundle)
    bucket_column = bundle.spec.columns[0]
    one = train[one_off(train, "CustomerID", "StockCode")]

    def shares(rows: pd.DataFrame) -> list[np.ndarray]:
        target = pd.Index(users["CustomerID"]).get_indexer(rows["CustomerID"])
        return UserMix.of(users, ["Country"], ["recency_days", "frequency", "monetary"], target[target >= 0]).target

    def same(left: list[np.ndarray], right: list[np.ndarray]) -> bool:
        return all(a.shape == b.shape and np.allclose(a, b) for a, b in zip(left, right))

    new = np.array(["new-1", "new-2"])
    tail = user_mix(bundle, users, "CustomerID", new, train, "tail").target
    assert same(tail, shares(one[one[bucket_column].astype(str) == "tail"]))
    assert not same(tail, shares(one))  # the tiny data's tail buyers differ from every bucket's
    assert same(user_mix(bundle, users, "CustomerID", new, train).target, shares(one))  # no bucket: every pair
    assert same(user_mix(bundle, users, "CustomerID", new, train, "no-such").target, shares(one))
    existing = one["StockCode"].astype(str).unique()[:5]
    assert same(user_mix(bundle, users, "CustomerID", existing, train, "tail").target,
                shares(one[one["StockCode"].astype(str).isin(existing)]))
