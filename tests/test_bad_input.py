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

from models.errors import DataError
from train.config import DataConfig
from train.io import read_table
from train.records import build_records

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


def test_id_kinds_must_match(tiny_frames: Frames, tmp_path: Path, tiny_config: ConfigFactory) -> None:
    users = tiny_frames["users"].assign(user_id=["u101", "u102", "u103", "u104"])
    paths = _write_set(tiny_frames, tmp_path, users=users)
    _fails(tiny_config(paths), str(paths["interactions"]), str(paths["users"]), "'user'", "'user_id'",
           "numbers or both as text")


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
