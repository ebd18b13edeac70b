"""Every malformed input is a DataError naming the file, the column and example rows -- never a traceback."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailsynth.models.errors import DataError
from tailsynth.train.config import DataConfig
from tailsynth.train.io import read_table
from tailsynth.train.records import build_records

ConfigFactory = Callable[..., DataConfig]
Frames = dict[str, pd.DataFrame]


def _write_set(frames: Frames, folder: Path, **replace: pd.DataFrame) -> dict[str, Path]:
    """Write the tiny set as CSV, with some roles replaced by broken frames; role -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, frame in {**frames, **replace}.items():
        paths[role] = folder / f"{role}.csv"
        frame.to_csv(paths[role], index=False)
    return paths


def _fails(config: DataConfig, *fragments: str) -> str:
    """build_records raises DataError whose message holds every fragment (literally); returns it."""
    with pytest.raises(DataError) as caught:
        build_records(config)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# ---------------------------------------------------------------------------------------------------------
# files


def test_missing_file(tiny_csv: dict[str, Path], tiny_config: ConfigFactory, tmp_path: Path) -> None:
    absent = tmp_path / "nowhere" / "users.csv"
    _fails(tiny_config({**tiny_csv, "users": absent}), "users table", str(absent), "does not exist")


def test_unknown_extension(tiny_csv: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "interactions.xlsx"
    path.write_text("user,item\n1,2\n")
    with pytest.raises(DataError, match=r"interactions table .*interactions\.xlsx.*unknown file type"):
        read_table(path, role="interactions")


def test_unreadable_files(tmp_path: Path) -> None:
    corrupt = tmp_path / "items.parquet"
    corrupt.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=r"items table .*items\.parquet: cannot be read"):
        read_table(corrupt, role="items")
    bad_gzip = tmp_path / "users.csv.gz"
    bad_gzip.write_bytes(b"not gzip")
    with pytest.raises(DataError, match=r"users table .*users\.csv\.gz: cannot be read"):
        read_table(bad_gzip, role="users")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DataError, match=r"users table .*folder\.csv: not a regular file"):
        read_table(folder, role="users")


def test_empty_tables(tmp_path: Path) -> None:
    header_only = tmp_path / "interactions.csv"
    header_only.write_text("user,item,ts\n")
    with pytest.raises(DataError, match=r"interactions table .*interactions\.csv: the table has no rows"):
        read_table(header_only, role="interactions")
    zero_bytes = tmp_path / "users.csv"
    zero_bytes.write_text("")
    with pytest.raises(DataError, match=r"users table .*users\.csv: the file is empty"):
        read_table(zero_bytes, role="users")
    empty_parquet = tmp_path / "items.parquet"
    pd.DataFrame({"item_id": pd.Series([], dtype=object)}).to_parquet(empty_parquet)
    with pytest.raises(DataError, match="no rows"):
        read_table(empty_parquet, role="items")


def _csv(tmp_path: Path, content: bytes, name: str = "interactions.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        import gzip

        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("name", ["interactions.csv", "interactions.csv.gz"])
def test_nul_byte_names_line_and_column(tmp_path: Path, name: str) -> None:
    path = _csv(tmp_path, b"user,item,qty\n1,I1,2\n2,I\x002,3\n3,I3,4\n", name)
    with pytest.raises(DataError, match=r"interactions table .*interactions\.csv.*: NUL byte at line 3 "
                                        r"\(data row 1 \(counted from 0\)\), column 'item'"):
        read_table(path, role="interactions")


def test_duplicated_column_name_in_csv_header(tmp_path: Path) -> None:
    path = _csv(tmp_path, b"user,Quantity,item,Quantity\n1,2,I1,5\n")
    with pytest.raises(DataError, match=r"interactions\.csv: duplicate column name\(s\) \['Quantity'\] in the "
                                        r"header line .*'Quantity\.1'"):
        read_table(path, role="interactions")
    # a genuine column named Quantity.1 is not a duplicate
    assert list(read_table(_csv(tmp_path, b"Quantity,Quantity.1\n1,2\n"), role="items").columns) == [
        "Quantity", "Quantity.1"]


def test_truncated_last_line(tmp_path: Path) -> None:
    path = _csv(tmp_path, b"user,item,ts,qty\n1,I1,2011-01-01,2\n2,I2,2011-0")
    with pytest.raises(DataError, match=r"interactions\.csv: the last line \(line 3\) has 3 of the header's 4 "
                                        r"fields .*truncated"):
        read_table(path, role="interactions")
    # a complete last row without a final newline is fine, and so is an explicitly empty last cell
    assert len(read_table(_csv(tmp_path, b"user,item\n1,I1\n2,I2"), role="interactions")) == 2
    assert read_table(_csv(tmp_path, b"user,item\n1,I1\n2,"), role="interactions")["item"].isna().sum() == 1


def test_repeated_header_line_inside_the_file(tiny_frames: Frames, tmp_path: Path) -> None:
    items = tiny_frames["items"]
    text = items.iloc[:3].to_csv(index=False) + items.iloc[3:].to_csv(index=False)  # two files concatenated
    path = _csv(tmp_path, text.encode(), "items.csv")
    with pytest.raises(DataError, match=r"items table .*items\.csv: 1 data row\(s\) repeat the header line "
                                        r"\(rows 3, counted from 0\)"):
        read_table(path, role="items")


def test_unknown_builtin(tiny_csv: dict[str, Path], tiny_config: ConfigFactory) -> None:
    _fails(tiny_config({**tiny_csv, "items": "builtin:movielens"}), "builtin:movielens", "unknown built-in")


# ---------------------------------------------------------------------------------------------------------
# columns


@pytest.mark.parametrize(("role", "column"), [("interactions", "user"), ("interactions", "ts"),
                                              ("interactions", "qty"), ("users", "user_id"),
                                              ("items", "category")])
def test_missing_required_column(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory, role: str,
                                 column: str) -> None:
    paths = _write_set(tiny_frames, tmp_path, **{role: tiny_frames[role].drop(columns=column)})
    _fails(tiny_config(paths), f"{role} table {paths[role]}", "missing required column", repr(column))


def test_duplicate_ids_in_feature_table(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory) -> None:
    items = tiny_frames["items"].copy()
    items.loc[4, "item_id"] = "I2"
    paths = _write_set(tiny_frames, tmp_path, items=items)
    _fails(tiny_config(paths), str(paths["items"]), "'item_id'", "duplicate ids", "row 1: 'I2'", "row 4: 'I2'")


@pytest.mark.parametrize(("role", "key", "value"), [("users", "user", 999), ("items", "item", "I99")])
def test_missing_keys_error(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory, role: str, key: str,
                            value: object) -> None:
    interactions = tiny_frames["interactions"].copy()
    interactions.loc[[2, 11], key] = value
    paths = _write_set(tiny_frames, tmp_path, interactions=interactions)
    message = _fails(tiny_config(paths), str(paths["interactions"]), str(paths[role]), f"'{key}'",
                     "2 of 19 interactions", f"row 2: {value!r}", "missing_keys=drop")
    assert "row 11" in message


def test_non_numeric_value(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory) -> None:
    interactions = tiny_frames["interactions"].astype({"qty": object})
    interactions.loc[5, "qty"] = "twelve"
    paths = _write_set(tiny_frames, tmp_path, interactions=interactions)
    _fails(tiny_config(paths), str(paths["interactions"]), "'qty'", "not finite numbers", "row 5: 'twelve'")


def test_infinite_value(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory) -> None:
    items = tiny_frames["items"].copy()
    items.loc[0, "weight"] = np.inf
    paths = _write_set(tiny_frames, tmp_path, items=items)
    _fails(tiny_config(paths), str(paths["items"]), "'weight'", "row 0")


def test_unparsable_timestamp(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory) -> None:
    interactions = tiny_frames["interactions"].copy()
    interactions.loc[[7, 9], "ts"] = ["yesterday", "2011-13-45 99:00"]
    paths = _write_set(tiny_frames, tmp_path, interactions=interactions)
    _fails(tiny_config(paths), str(paths["interactions"]), "'ts'", "not dates", "2 row(s)",
           "row 7: 'yesterday'", "row 9: '2011-13-45 99:00'")


def test_entirely_null_column(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory) -> None:
    users = tiny_frames["users"].assign(country=np.nan)
    paths = _write_set(tiny_frames, tmp_path, users=users)
    _fails(tiny_config(paths), str(paths["users"]), "'country'", "entirely null")


@pytest.mark.parametrize(("column", "what"), [("user", "user id"), ("item", "item id"), ("ts", "timestamp")])
def test_null_keys_in_interactions(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory, column: str,
                                   what: str) -> None:
    interactions = tiny_frames["interactions"].copy()
    interactions[column] = interactions[column].astype(object)
    interactions.loc[4, column] = None
    paths = _write_set(tiny_frames, tmp_path, interactions=interactions)
    _fails(tiny_config(paths), str(paths["interactions"]), f"'{column}' ({what})", "null values", "row 4")


def test_null_id_in_feature_table(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory) -> None:
    users = tiny_frames["users"].astype({"user_id": "Int64"})
    users.loc[2, "user_id"] = pd.NA
    paths = _write_set(tiny_frames, tmp_path, users=users)
    _fails(tiny_config(paths), str(paths["users"]), "'user_id'", "null values", "row 2")


def test_ids_of_other_types_that_do_not_match_are_missing_keys(tiny_frames: Frames, tmp_path: Path,
                                                               tiny_config: ConfigFactory) -> None:
    users = tiny_frames["users"].assign(user_id=["u101", "u102", "u103", "u104"])
    paths = _write_set(tiny_frames, tmp_path, users=users)
    _fails(tiny_config(paths), str(paths["interactions"]), str(paths["users"]), "'user'", "'user_id'",
           "19 of 19 interactions", "row 0: '101'")


def test_numeric_looking_interaction_ids_join_mixed_item_ids(tiny_frames: Frames, tmp_path: Path,
                                                             tiny_config: ConfigFactory) -> None:
    """Every item id an interaction uses looks numeric, some of the items table's do not (as StockCode)."""
    codes = {"I1": "22423", "I2": "85123", "I3": "22197", "I4": "84879", "I5": "21212", "I6": "85123A"}
    interactions = tiny_frames["interactions"].assign(item=tiny_frames["interactions"]["item"].map(codes))
    items = tiny_frames["items"].assign(item_id=tiny_frames["items"]["item_id"].map(codes))
    paths = _write_set(tiny_frames, tmp_path, interactions=interactions, items=items)
    assert pd.api.types.is_integer_dtype(read_table(paths["interactions"], role="interactions")["item"])
    records = build_records(tiny_config(paths))
    assert len(records.table) == 19
    assert records.table["item"].map(type).eq(str).all()
    assert records.table.loc[records.table["item"] == "22423", "category"].eq("decor").all()
    assert set(records.buckets["item"]) == set(codes.values())  # the unsold 85123A is still an item


def test_numbers_that_overflow_the_encoder_are_refused(tiny_frames: Frames, tmp_path: Path,
                                                       tiny_config: ConfigFactory) -> None:
    interactions = tiny_frames["interactions"].copy()
    interactions.loc[[3, 8, 12], "price"] = [1e308, -1e308, 1e308]
    paths = _write_set(tiny_frames, tmp_path, interactions=interactions)
    _fails(tiny_config(paths), str(paths["interactions"]), "'price'", "beyond +-1e+15", "data.max_abs_value",
           "3 row(s)", "row 3: 1e+308", "row 8: -1e+308", "out_of_range=clip")


def test_numbers_beyond_the_limit_are_clipped_and_reported_when_configured(
        tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory) -> None:
    interactions = tiny_frames["interactions"].copy()
    interactions.loc[[3, 8], "price"] = [1e308, -1e308]
    paths = _write_set(tiny_frames, tmp_path, interactions=interactions)
    with pytest.warns(UserWarning, match=r"'price' clipped to \+-1000.*2 value"):
        records = build_records(tiny_config(paths, out_of_range="clip", max_abs_value=1000.0))
    assert records.table["price"].tolist()[3] == 1000.0 and records.table["price"].tolist()[8] == -1000.0
    assert records.table["price"].drop([3, 8]).equals(tiny_frames["interactions"]["price"].drop([3, 8]))
    step = records.cleaning[-1]
    assert step["clipped"] == 2 and step["dropped"] == 0 and "'price'" in step["step"]


# ---------------------------------------------------------------------------------------------------------
# timestamps: one format per column

def _with_dates(tiny_frames: Frames, tmp_path: Path, dates: list[str]) -> dict[str, Path]:
    interactions = tiny_frames["interactions"].assign(ts=dates)
    return _write_set(tiny_frames, tmp_path, interactions=interactions)


_DAY_FIRST = ["01/12/2010 08:15", "02/12/2010 09:00", "13/12/2010 10:30"] + ["05/01/2011 11:45"] * 16


def test_day_first_column_is_read_day_first_throughout(tiny_frames: Frames, tmp_path: Path,
                                                        tiny_config: ConfigFactory) -> None:
    records = build_records(tiny_config(_with_dates(tiny_frames, tmp_path, _DAY_FIRST)))
    ts = records.table["ts"]
    # 13/12 proves the column day-first, so 01/12 is 1 December (pandas alone reads it as 12 January)
    assert ts[0] == pd.Timestamp("2010-12-01 08:15") and ts[1] == pd.Timestamp("2010-12-02 09:00")
    assert ts[2] == pd.Timestamp("2010-12-13 10:30") and (ts[3:] == pd.Timestamp("2011-01-05 11:45")).all()


def test_ambiguous_day_month_column_is_an_error(tiny_frames: Frames, tmp_path: Path,
                                                tiny_config: ConfigFactory) -> None:
    dates = ["01/12/2010 08:15", "02/11/2010 09:00"] + ["05/05/2011 11:45"] * 17
    paths = _with_dates(tiny_frames, tmp_path, dates)
    _fails(tiny_config(paths), str(paths["interactions"]), "'ts'", "ambiguous", "'%m/%d/%Y %H:%M'",
           "'%d/%m/%Y %H:%M'", "row 0: '01/12/2010 08:15'", "data.interactions.date_formats.ts")


def test_mixed_day_first_and_month_first_is_an_error(tiny_frames: Frames, tmp_path: Path,
                                                     tiny_config: ConfigFactory) -> None:
    dates = ["13/12/2010 08:15"] * 10 + ["12/14/2010 09:00"] * 9
    paths = _with_dates(tiny_frames, tmp_path, dates)
    _fails(tiny_config(paths), str(paths["interactions"]), "'ts'", "not dates in the format '%d/%m/%Y %H:%M'",
           "9 row(s)", "row 10: '12/14/2010 09:00'", "one format")


def test_configured_date_format_is_applied_strictly(tiny_frames: Frames, tmp_path: Path,
                                                    tiny_config: ConfigFactory) -> None:
    dates = ["01/02/2010 08:15"] * 18 + ["2010-02-03 09:00"]
    paths = _with_dates(tiny_frames, tmp_path, dates)
    interactions = {**tiny_config(paths).interactions.__dict__, "date_formats": {"ts": "%m/%d/%Y %H:%M"}}
    config = tiny_config(paths, interactions=interactions)
    _fails(config, "'ts'", "configured format '%m/%d/%Y %H:%M'", "data.interactions.date_formats.ts",
           "1 row(s)", "row 18: '2010-02-03 09:00'")
    dates[-1] = "01/02/2010 10:00"
    records = build_records(tiny_config(_with_dates(tiny_frames, tmp_path, dates), interactions=interactions))
    assert (records.table["ts"].dt.month == 1).all() and (records.table["ts"].dt.day == 2).all()


# ---------------------------------------------------------------------------------------------------------
# names


@pytest.mark.parametrize(("role", "old", "new", "owner"), [
    ("interactions", "qty", "hour", "derived time part"),
    ("items", "weight", "pop_bucket", "derived popularity bucket"),
    ("items", "weight", "age", "items table"),
    ("users", "age", "user", "users table"),
])
def test_column_name_collisions(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory, role: str,
                                old: str, new: str, owner: str) -> None:
    frames = {**tiny_frames, role: tiny_frames[role].rename(columns={old: new})}
    paths = _write_set(frames, tmp_path)
    config = tiny_config(paths)
    section = getattr(config, role)
    renamed = {new if name == old else name: sdtype for name, sdtype in section.columns.items()}
    config = replace(config, **{role: replace(section, columns=renamed)})
    message = _fails(config, repr(new), "collides", owner)
    assert re.search(r"(interactions|users|items) table .*\.csv", message)


# ---------------------------------------------------------------------------------------------------------
# a small seeded fuzz: whatever we break, the answer is valid records or a DataError, never a raw exception

_ODD_VALUES = [None, float("nan"), "", "abc", "inf", 10**30, -1, 1.5, True, "2011-01-01T10:00:00+05:00",
               "2011-02-30", "1,5", 1_700_000_000, [1, 2]]


def _break(frames: Frames, rng: np.random.Generator) -> Frames:
    """One to three random edits: an odd value in a cell or a whole column, a dropped column or duplicated row."""
    frames = {role: frame.copy() for role, frame in frames.items()}
    for _ in range(int(rng.integers(1, 4))):
        role = str(rng.choice(list(frames)))
        frame = frames[role]
        column, row = str(rng.choice(list(frame.columns))), int(rng.integers(len(frame)))
        edit = int(rng.integers(4))
        frame[column] = frame[column].astype(object)
        if edit == 0:
            frame.at[row, column] = _ODD_VALUES[int(rng.integers(len(_ODD_VALUES)))]
        elif edit == 1:
            frame[column] = [_ODD_VALUES[int(rng.integers(len(_ODD_VALUES)))]] * len(frame)
        elif edit == 2 and frame.shape[1] > 1:
            frames[role] = frame.drop(columns=column)
        else:
            frames[role] = pd.concat([frame, frame.iloc[[row]]], ignore_index=True)
    return frames


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_tables_give_records_or_data_errors(tiny_frames: Frames, tmp_path: Path,
                                                   tiny_config: ConfigFactory, seed: int) -> None:
    rng = np.random.default_rng(seed)
    outcomes = {"records": 0, "errors": 0}
    for trial in range(15):
        paths = _write_set(_break(tiny_frames, rng), tmp_path / f"trial{trial}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                records = build_records(tiny_config(paths, missing_keys=str(rng.choice(["error", "drop"]))))
        except DataError as exc:
            assert str(exc) and "Traceback" not in str(exc)
            outcomes["errors"] += 1
            continue
        assert [column.name for column in records.columns] == list(records.table.columns)
        assert len(records.table) > 0 and records.table["pop_bucket"].notna().all()
        outcomes["records"] += 1
    assert outcomes["errors"] > 0  # the edits do break things
