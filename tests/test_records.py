"""Behaviour records on the tiny hand-made set: joins, time parts, buckets, dtypes, schema and the split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailsynth.models.errors import ConfigError, DataError
from tailsynth.train.config import DataConfig, SplitConfig
from tailsynth.train.io import read_table
from tailsynth.train.records import Records, build_records
from tailsynth.train.split import split_records

ConfigFactory = Callable[..., DataConfig]


@pytest.fixture
def records(tiny_csv: dict[str, Path], tiny_config: ConfigFactory) -> Records:
    return build_records(tiny_config(tiny_csv))


def test_every_row_carries_its_users_and_items_features(records: Records,
                                                        tiny_frames: dict[str, pd.DataFrame]) -> None:
    table = records.table
    source = tiny_frames["interactions"]
    assert len(table) == len(source) == 19
    assert table["user"].tolist() == source["user"].tolist()  # row order kept
    users = tiny_frames["users"].set_index("user_id")
    items = tiny_frames["items"].set_index("item_id")
    assert table["country"].astype(str).tolist() == users.loc[source["user"], "country"].tolist()
    assert table["age"].tolist() == users.loc[source["user"], "age"].tolist()
    assert table["category"].astype(str).tolist() == items.loc[source["item"], "category"].tolist()
    np.testing.assert_allclose(table["weight"].to_numpy(), items.loc[source["item"], "weight"].to_numpy())
    np.testing.assert_allclose(table["price"].to_numpy(), source["price"].to_numpy())


def test_time_parts_match_the_timestamps(records: Records, tiny_frames: dict[str, pd.DataFrame]) -> None:
    stamps = pd.to_datetime(tiny_frames["interactions"]["ts"])
    table = records.table
    assert (table["ts"] == stamps).all()
    assert table["hour"].astype(int).tolist() == stamps.dt.hour.tolist()
    assert table["dayofweek"].astype(int).tolist() == stamps.dt.dayofweek.tolist()
    assert list(table["hour"].cat.categories) == list(range(24))
    assert list(table["dayofweek"].cat.categories) == list(range(7))


def test_month_and_dayofmonth_parts(tiny_csv: dict[str, Path], tiny_config: ConfigFactory) -> None:
    table = build_records(tiny_config(tiny_csv, time_parts=["month", "dayofmonth"])).table
    assert table["month"].astype(int).tolist()[:9] == [1] * 8 + [2]
    assert table["dayofmonth"].astype(int).tolist()[:3] == [3, 3, 4]
    assert list(table["month"].cat.categories) == list(range(1, 13))
    assert "hour" not in table.columns


def test_pop_bucket_and_bucket_table(records: Records, tiny_truth: dict[str, dict[str, object]]) -> None:
    expected = records.table["item"].map(tiny_truth["buckets"])
    assert records.table["pop_bucket"].astype(str).tolist() == expected.tolist()
    buckets = records.buckets.set_index("item")
    assert buckets["count"].to_dict() == tiny_truth["counts"]  # I6 is in the item table with no interactions
    assert buckets["pop_bucket"].astype(str).to_dict() == tiny_truth["buckets"]
    assert buckets["cold_start"].to_dict() == {"I1": False, "I2": False, "I3": True, "I4": True, "I5": True,
                                               "I6": True}
    summary = records.summary().set_index("bucket")
    assert summary.loc[["head", "torso", "tail"], "interactions"].tolist() == [13, 3, 3]
    assert summary.loc["tail", "items"] == 3


def test_summary_text_counts_the_records_and_lists_every_bucket(records: Records) -> None:
    from tailsynth.train.summary import summary_text

    text = summary_text(records)  # what `tailsynth train --summary` prints
    assert text.startswith(f"behaviour records: {len(records.table):,} interactions")
    assert all(name in text for name in ("head", "torso", "tail", "cold_start"))


def test_schema_roles_and_dtypes(records: Records) -> None:
    table = records.table
    assert [column.name for column in records.columns] == list(table.columns)
    assert list(table.columns) == ["user", "item", "ts", "qty", "price", "country", "age", "category", "weight",
                                   "hour", "dayofweek", "pop_bucket"]
    assert records.column("event") == ["qty", "price"]
    assert records.column("user_feature") == ["country", "age"]
    assert records.column("time_part") == ["hour", "dayofweek"]
    assert table["user"].dtype == np.int64 and table["item"].dtype == object  # ids keep their source dtype
    assert str(table["qty"].dtype) == "Int64" and str(table["age"].dtype) == "Int64"  # integers stay integer
    assert table["price"].dtype == np.float64 and table["weight"].dtype == np.float64
    for name in ("country", "category", "hour", "dayofweek", "pop_bucket"):
        assert isinstance(table[name].dtype, pd.CategoricalDtype), name
    assert table["ts"].dtype == "datetime64[ns]"


def test_model_columns(records: Records) -> None:
    columns = records.model_columns()
    assert "user" not in columns and "item" not in columns
    assert columns["ts"] == "datetime" and columns["hour"] == "categorical"
    assert columns["pop_bucket"] == "categorical" and columns["qty"] == "numerical"
    with_ids = records.model_columns(include_ids=True)
    # asked-for ids are modelled as categories (the encoder's max_categories limit then applies)
    assert with_ids["user"] == "categorical" and with_ids["item"] == "categorical"
    assert len(with_ids) == len(records.table.columns)


def test_feature_tables_are_kept_parsed(records: Records) -> None:
    assert records.users is not None and records.items is not None
    assert list(records.users.columns) == ["user_id", "country", "age"]
    assert list(records.items.columns) == ["item_id", "category", "weight"]
    assert isinstance(records.items["category"].dtype, pd.CategoricalDtype)
    assert records.cleaning == ()


def test_csv_and_parquet_give_the_same_records(tiny_csv: dict[str, Path], tiny_parquet: dict[str, Path],
                                               tiny_config: ConfigFactory) -> None:
    from_csv = build_records(tiny_config(tiny_csv))
    from_parquet = build_records(tiny_config(tiny_parquet))
    pd.testing.assert_frame_equal(from_csv.table, from_parquet.table)
    pd.testing.assert_frame_equal(from_csv.buckets, from_parquet.buckets)


def test_gzipped_csv_is_read(tiny_frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv.gz"
    tiny_frames["interactions"].to_csv(path, index=False)
    frame = read_table(path, role="interactions")
    assert len(frame) == 19 and frame["qty"].dtype == np.int64


def test_integer_column_with_gaps_stays_integer(tiny_frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    frame = tiny_frames["interactions"].astype({"qty": "Int64"})
    frame.loc[3, "qty"] = pd.NA
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    read = read_table(tmp_path / "gaps.csv", role="interactions")
    assert str(read["qty"].dtype) == "Int64" and read["qty"].isna().sum() == 1
    assert read["item"].dtype == object


def test_without_feature_tables(tiny_csv: dict[str, Path], tiny_config: ConfigFactory) -> None:
    records = build_records(tiny_config({"interactions": tiny_csv["interactions"]}))
    assert records.users is None and records.items is None
    assert records.column("user_feature") == [] and records.column("item_feature") == []
    assert "I6" not in set(records.buckets["item"])  # no item table, so no zero-count items
    assert len(records.buckets) == 5


def test_missing_keys_drop_warns_and_records_a_step(tiny_frames: dict[str, pd.DataFrame], tmp_path: Path,
                                                    tiny_config: ConfigFactory) -> None:
    users = tiny_frames["users"][tiny_frames["users"]["user_id"] != 104]  # user 104 has 4 interactions
    paths = {"interactions": tmp_path / "i.csv", "users": tmp_path / "u.csv"}
    tiny_frames["interactions"].to_csv(paths["interactions"], index=False)
    users.to_csv(paths["users"], index=False)
    with pytest.warns(UserWarning, match=r"4 of 19 interactions have a 'user'"):
        records = build_records(tiny_config(paths, missing_keys="drop"))
    assert len(records.table) == 15 and 104 not in set(records.table["user"])
    assert records.cleaning == ({"step": f"interactions with user not in users table {paths['users']}",
                                 "dropped": 4, "remaining": 15},)
    assert records.buckets["count"].sum() == 15  # popularity counted after the drop


# ---------------------------------------------------------------------------------------------------------
# split


def test_random_split_is_seeded_and_sized(records: Records) -> None:
    config = SplitConfig(method="random", holdout_fraction=0.25)
    train, holdout = split_records(records.table, config, seed=7, timestamp="ts")
    again_train, again_holdout = split_records(records.table, config, seed=7, timestamp="ts")
    other_train, _ = split_records(records.table, config, seed=8, timestamp="ts")
    pd.testing.assert_frame_equal(train, again_train)
    pd.testing.assert_frame_equal(holdout, again_holdout)
    assert not train.index.equals(other_train.index)
    assert len(holdout) == round(19 * 0.25) == 5 and len(train) == 14
    assert set(train.index).isdisjoint(holdout.index)
    assert sorted([*train.index, *holdout.index]) == list(range(19))


@pytest.mark.parametrize("method", ["random", "time"])
def test_max_train_rows_samples_by_position_the_rows_pandas_would(records: Records, method: str) -> None:
    config = SplitConfig(method=method, holdout_fraction=0.25)
    full, holdout = split_records(records.table, config, seed=3, timestamp="ts")
    train, same_holdout = split_records(records.table, config, seed=3, timestamp="ts", max_train_rows=6)
    pd.testing.assert_frame_equal(train, full.sample(n=6, random_state=3).sort_index())  # the earlier rule
    pd.testing.assert_frame_equal(holdout, same_holdout)
    everything, _ = split_records(records.table, config, seed=3, timestamp="ts", max_train_rows=100)
    pd.testing.assert_frame_equal(everything, full)


def test_records_without_rows_keep_schema_and_tables(records: Records) -> None:
    empty = records.without_rows()
    assert len(empty.table) == 0 and list(empty.table.dtypes) == list(records.table.dtypes)
    assert empty.buckets is records.buckets and empty.columns == records.columns and len(records.table) == 19


def test_reading_copies_no_column_whose_dtype_is_already_right() -> None:
    from tailsynth.train.io import normalise_dtypes
    from tailsynth.train.records import with_columns

    frame = pd.DataFrame({"n": np.arange(5, dtype=np.int64), "x": np.linspace(0, 1, 5),
                          "s": pd.array(list("abcde"), dtype="string"), "i": pd.array([1, 2, None, 4, 5], "Int32")})
    out = normalise_dtypes(frame)
    assert np.shares_memory(out["n"].to_numpy(), frame["n"].to_numpy())
    assert np.shares_memory(out["x"].to_numpy(), frame["x"].to_numpy())
    assert out["s"].dtype == object and str(out["i"].dtype) == "Int64" and str(frame["i"].dtype) == "Int32"
    replaced = with_columns(frame, {"x": frame["x"] * 2})
    assert replaced["x"].tolist() == [0, 0.5, 1, 1.5, 2] and frame["x"].tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert np.shares_memory(replaced["n"].to_numpy(), frame["n"].to_numpy())


def test_time_split_holds_out_the_latest_rows(records: Records) -> None:
    train, holdout = split_records(records.table, SplitConfig(method="time", holdout_fraction=0.2), seed=0,
                                   timestamp="ts")
    assert len(holdout) == 4 and len(train) == 15
    assert holdout["ts"].min() >= train["ts"].max()
    assert holdout["ts"].tolist() == sorted(records.table["ts"])[-4:]


def test_split_rejects_bad_fraction_and_tiny_tables(records: Records) -> None:
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match="holdout_fraction"):
            split_records(records.table, SplitConfig(holdout_fraction=fraction), seed=0, timestamp="ts")
    with pytest.raises(DataError, match="at least 2"):
        split_records(records.table.head(1), SplitConfig(), seed=0, timestamp="ts")
    with pytest.raises(DataError, match="'when'"):
        split_records(records.table, SplitConfig(method="time"), seed=0, timestamp="when")


def test_unix_second_timestamps_are_remembered_for_writing_back(
        tiny_frames: dict[str, pd.DataFrame], tmp_path: Path, tiny_config: ConfigFactory) -> None:
    """A Unix-seconds integer timestamp is parsed as a datetime and recorded as such (`written_as`), so
    emitted interactions can carry it as integers again; text dates record nothing."""
    from conftest import _write
    from tailsynth.gen.items.written import unix_seconds

    frames = dict(tiny_frames)
    stamps = pd.to_datetime(frames["interactions"]["ts"]).astype("datetime64[ns]")  # pandas 3 reads microseconds
    frames["interactions"] = frames["interactions"].assign(ts=stamps.astype("int64") // 1_000_000_000)
    paths = _write(frames, tmp_path / "unix", ".csv")
    records = build_records(tiny_config(paths))
    assert records.written_as == {"ts": "int64"}
    assert (records.table["ts"].to_numpy() == stamps.to_numpy()).all()
    back = unix_seconds(records.table["ts"], "int64")
    assert back.dtype == np.int64 and back.tolist() == frames["interactions"]["ts"].tolist()
    assert build_records(tiny_config(_write(tiny_frames, tmp_path / "text", ".csv"))).written_as == {}
