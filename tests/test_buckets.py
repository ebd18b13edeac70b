"""Popularity buckets on hand-made count tables whose answer is worked out by the documented rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailsynth.models.errors import ConfigError, DataError
from tailsynth.train.buckets import BUCKET_COLUMNS, assign_buckets, bucket_summary
from tailsynth.train.config import BucketConfig

SHARE = BucketConfig()  # head/torso/tail, shares 0.5/0.3/0.2, min_interactions 5


def _by_item(frame: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frame["item"], frame["pop_bucket"].astype(str)))


def test_share_rule_on_a_known_table() -> None:
    # total 100; share before each item: A 0, B .50, C .80, D .90, E .95, F .98
    counts = pd.Series({"A": 50, "B": 30, "C": 10, "D": 5, "E": 3, "F": 2})
    out = assign_buckets(counts, SHARE)
    assert list(out.columns) == BUCKET_COLUMNS
    assert _by_item(out) == {"A": "head", "B": "torso", "C": "tail", "D": "tail", "E": "tail", "F": "tail"}
    assert out["cold_start"].tolist() == [False, False, False, False, True, True]
    assert list(out["pop_bucket"].cat.categories) == ["head", "torso", "tail"]


def test_share_rule_head_is_smallest_top_set_reaching_half() -> None:
    # before: A 0, B .40, C .70 -> A and B are needed to reach 50%; C starts below 80% so it is torso
    out = assign_buckets(pd.Series({"A": 40, "B": 30, "C": 30}), SHARE)
    assert _by_item(out) == {"A": "head", "B": "head", "C": "torso"}
    # an item starting exactly at a boundary belongs to the next bucket
    out = assign_buckets(pd.Series({"A": 50, "B": 50}), SHARE)
    assert _by_item(out) == {"A": "head", "B": "torso"}


def test_share_rule_invariant_on_random_counts() -> None:
    rng = np.random.default_rng(0)
    counts = pd.Series(rng.zipf(1.7, size=500).clip(max=10_000), index=[f"i{k:03d}" for k in range(500)])
    out = assign_buckets(counts, SHARE)
    total = counts.sum()
    head = out.loc[out["pop_bucket"] == "head", "count"].to_numpy()
    torso = out.loc[out["pop_bucket"] == "torso", "count"].to_numpy()
    assert head.sum() / total >= 0.5 > (head.sum() - head[-1]) / total  # smallest top set reaching 50%
    assert (head.sum() + torso.sum()) / total >= 0.8 > (head.sum() + torso.sum() - torso[-1]) / total
    assert out["count"].is_monotonic_decreasing
    codes = out["pop_bucket"].cat.codes.to_numpy()
    assert (np.diff(codes) >= 0).all()  # buckets never go back up the popularity order


def test_ties_are_broken_by_item_id() -> None:
    counts = pd.Series({"d": 10, "b": 10, "a": 10, "c": 10})
    out = assign_buckets(counts, SHARE)
    assert out["item"].tolist() == ["a", "b", "c", "d"]  # before: a 0, b .25, c .50, d .75
    assert _by_item(out) == {"a": "head", "b": "head", "c": "torso", "d": "torso"}
    shuffled = assign_buckets(counts.sample(frac=1.0, random_state=3), SHARE)
    pd.testing.assert_frame_equal(out, shuffled)


def test_zero_counts_go_to_the_last_bucket_under_every_rule() -> None:
    counts = pd.Series({"A": 5, "B": 0, "C": 0})
    for config in (SHARE, BucketConfig(method="count", thresholds=(3, 1)), BucketConfig(method="quantile")):
        out = assign_buckets(counts, config)
        assert _by_item(out)["B"] == _by_item(out)["C"] == "tail"
        assert out.set_index("item").loc[["B", "C"], "cold_start"].all()
    all_zero = assign_buckets(pd.Series({"A": 0, "B": 0}), SHARE)
    assert set(all_zero["pop_bucket"]) == {"tail"}


def test_count_rule() -> None:
    config = BucketConfig(method="count", thresholds=(10, 3), min_interactions=4)
    counts = pd.Series({"A": 12, "B": 10, "C": 9, "D": 3, "E": 2, "F": 0})
    out = assign_buckets(counts, config)
    assert _by_item(out) == {"A": "head", "B": "head", "C": "torso", "D": "torso", "E": "tail", "F": "tail"}
    assert out.set_index("item")["cold_start"].to_dict() == {"A": False, "B": False, "C": False, "D": True,
                                                             "E": True, "F": True}


def test_quantile_rule_gives_equal_groups_by_rank() -> None:
    config = BucketConfig(method="quantile")
    counts = pd.Series({"A": 9, "B": 8, "C": 7, "D": 6, "E": 5, "F": 4, "G": 3})
    # rank r of 7 -> floor(3 r / 7): 0,0,0,1,1,2,2
    assert _by_item(assign_buckets(counts, config)) == {"A": "head", "B": "head", "C": "head", "D": "torso",
                                                        "E": "torso", "F": "tail", "G": "tail"}
    two = BucketConfig(method="quantile", names=("popular", "rare"))
    out = assign_buckets(pd.Series({"x": 4, "y": 3, "z": 2, "w": 1}), two)
    assert out["pop_bucket"].astype(str).tolist() == ["popular", "popular", "rare", "rare"]


def test_integer_item_ids_keep_their_dtype() -> None:
    out = assign_buckets(pd.Series([3, 7, 7], index=pd.Index([30, 20, 10], dtype="int64")), SHARE)
    assert out["item"].tolist() == [10, 20, 30]
    assert out["item"].dtype == np.int64 and out["count"].dtype == np.int64


@pytest.mark.parametrize(("config", "key"), [
    (BucketConfig(shares=(0.5, 0.3, 0.3)), "shares"),
    (BucketConfig(shares=(0.5, 0.5)), "shares"),
    (BucketConfig(shares=(1.2, -0.4, 0.2)), "shares"),
    (BucketConfig(method="count", thresholds=(10,)), "thresholds"),
    (BucketConfig(method="count", thresholds=(3, 10)), "thresholds"),
    (BucketConfig(method="count", thresholds=(5, 5)), "thresholds"),
    (BucketConfig(names=("head", "head", "tail")), "names"),
    (BucketConfig(names=()), "names"),
    (BucketConfig(names=("head", "all", "tail")), "names"),
    (BucketConfig(min_interactions=-1), "min_interactions"),
])
def test_bad_configs_name_the_key(config: BucketConfig, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"data\.buckets\.{key}"):
        assign_buckets(pd.Series({"A": 1}), config)


def test_unused_keys_are_not_validated() -> None:
    # method=count with two names: the default (three) shares are irrelevant and must not be rejected
    out = assign_buckets(pd.Series({"A": 5, "B": 1}), BucketConfig(method="count", names=("hot", "cold"),
                                                                     thresholds=(3,)))
    assert _by_item(out) == {"A": "hot", "B": "cold"}


def test_bad_counts_are_data_errors() -> None:
    with pytest.raises(DataError, match="duplicate item ids"):
        assign_buckets(pd.Series([1, 2], index=["A", "A"]), SHARE)
    with pytest.raises(DataError, match="whole numbers"):
        assign_buckets(pd.Series({"A": -1, "B": 2}), SHARE)


def test_bucket_summary_layout_and_totals() -> None:
    counts = pd.Series({"A": 50, "B": 30, "C": 10, "D": 5, "E": 3, "F": 2, "G": 0})
    summary = bucket_summary(assign_buckets(counts, SHARE))
    assert summary["bucket"].tolist() == ["head", "torso", "tail", "cold_start", "all"]
    rows = summary.set_index("bucket")
    assert rows.loc[["head", "torso", "tail"], "items"].tolist() == [1, 1, 5]
    assert rows.loc[["head", "torso", "tail"], "interactions"].tolist() == [50, 30, 20]
    assert rows.loc["tail", "share_of_interactions"] == pytest.approx(0.2)
    assert rows.loc["cold_start", "items"] == 3 and rows.loc["tail", "cold_start_items"] == 3
    assert rows.loc["all", "items"] == 7 and rows.loc["all", "interactions"] == 100
    assert rows.loc["tail", ["min_count", "max_count"]].tolist() == [0, 10]
