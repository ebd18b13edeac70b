"""Shared pytest fixtures. Keep each fixture small, seeded and documented; group them by topic.

Data-layer fixtures (train/records): a tiny hand-made behaviour set whose buckets are known by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch

from tailsynth.train.config import DataConfig, from_dict

REPO_ROOT = Path(__file__).resolve().parents[1]

# Every network in the suite is tiny (8-64 units): intra-op threads only add synchronisation, and on a
# loaded 2-core machine they spin against each other (a 0.5 s discriminator fit took 13 s with 2 threads).
torch.set_num_threads(1)

# ---------------------------------------------------------------------------------------------------------
# data layer: tiny interactions / users / items
#
# Item counts are I1: 8, I2: 5, I3: 3, I4: 2, I5: 1, I6: 0 (19 interactions). With the default share rule
# (0.5/0.3/0.2) the share of interactions before each item is 0, 8/19, 13/19, 16/19, 18/19, so
# head = {I1, I2}, torso = {I3}, tail = {I4, I5, I6}; with min_interactions 5: cold = {I3, I4, I5, I6}.

TINY_BUCKETS = {"I1": "head", "I2": "head", "I3": "torso", "I4": "tail", "I5": "tail", "I6": "tail"}
TINY_COUNTS = {"I1": 8, "I2": 5, "I3": 3, "I4": 2, "I5": 1, "I6": 0}

_TINY_ROWS = [  # user, item, timestamp, quantity, price
    (101, "I1", "2011-01-03 08:15:00", 2, 1.25), (102, "I1", "2011-01-03 09:00:00", 1, 1.25),
    (103, "I1", "2011-01-04 10:30:00", 6, 1.10), (104, "I1", "2011-01-05 11:45:00", 3, 1.25),
    (101, "I1", "2011-01-06 12:00:00", 12, 0.95), (102, "I1", "2011-01-07 13:20:00", 1, 1.25),
    (103, "I1", "2011-01-08 14:05:00", 2, 1.25), (101, "I1", "2011-01-09 15:10:00", 4, 1.25),
    (101, "I2", "2011-02-01 08:00:00", 1, 4.95), (102, "I2", "2011-02-02 16:30:00", 2, 4.95),
    (103, "I2", "2011-02-03 17:45:00", 1, 4.50), (104, "I2", "2011-02-04 18:00:00", 3, 4.95),
    (104, "I2", "2011-02-05 19:15:00", 1, 4.95), (101, "I3", "2011-03-01 09:30:00", 24, 0.42),
    (102, "I3", "2011-03-06 10:00:00", 12, 0.42), (103, "I3", "2011-03-13 20:00:00", 48, 0.39),
    (101, "I4", "2011-04-01 07:05:00", 1, 12.75), (104, "I4", "2011-04-02 21:40:00", 1, 12.75),
    (102, "I5", "2011-05-01 06:55:00", 2, 7.5),
]


@pytest.fixture
def tiny_truth() -> dict[str, dict[str, object]]:
    """What the tiny set must give, worked out by hand: per-item "counts" and "buckets"."""
    return {"counts": dict(TINY_COUNTS), "buckets": dict(TINY_BUCKETS)}


@pytest.fixture
def tiny_frames() -> dict[str, pd.DataFrame]:
    """The tiny behaviour set as DataFrames: interactions (19 rows), users (4), items (6, I6 unsold)."""
    interactions = pd.DataFrame(_TINY_ROWS, columns=["user", "item", "ts", "qty", "price"])
    users = pd.DataFrame({"user_id": [101, 102, 103, 104], "country": ["UK", "FR", "UK", "DE"],
                          "age": [34, 51, 27, 45]})
    items = pd.DataFrame({"item_id": ["I1", "I2", "I3", "I4", "I5", "I6"],
                          "category": ["decor", "bags", "decor", "garden", "toys", "toys"],
                          "weight": [0.2, 0.5, 0.05, 2.5, 0.8, 1.0]})
    return {"interactions": interactions, "users": users, "items": items}


def _write(frames: dict[str, pd.DataFrame], folder: Path, suffix: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, frame in frames.items():
        paths[role] = folder / f"{role}{suffix}"
        if suffix == ".parquet":
            frame.to_parquet(paths[role], index=False)
        else:
            frame.to_csv(paths[role], index=False)
    return paths


@pytest.fixture
def tiny_csv(tiny_frames: dict[str, pd.DataFrame], tmp_path: Path) -> dict[str, Path]:
    """The tiny set written as CSV files; role -> path."""
    return _write(tiny_frames, tmp_path / "csv", ".csv")


@pytest.fixture
def tiny_parquet(tiny_frames: dict[str, pd.DataFrame], tmp_path: Path) -> dict[str, Path]:
    """The tiny set written as parquet files; role -> path."""
    return _write(tiny_frames, tmp_path / "parquet", ".parquet")


def tiny_config_dict(paths: dict[str, Path | str]) -> dict:
    """Plain config dict (the `data:` section) for the tiny set at `paths`; edit it, then `from_dict`."""
    data: dict = {
        "interactions": {"path": str(paths["interactions"]), "user_id": "user", "item_id": "item",
                         "timestamp": "ts", "columns": {"qty": "numerical", "price": "numerical"}},
        "time_parts": ["hour", "dayofweek"],
        "buckets": {"method": "share", "names": ["head", "torso", "tail"], "shares": [0.5, 0.3, 0.2],
                    "min_interactions": 5},
    }
    if "users" in paths:
        data["users"] = {"path": str(paths["users"]), "id": "user_id",
                         "columns": {"country": "categorical", "age": "numerical"}}
    if "items" in paths:
        data["items"] = {"path": str(paths["items"]), "id": "item_id",
                         "columns": {"category": "categorical", "weight": "numerical"}}
    return data


@pytest.fixture
def tiny_config() -> Callable[..., DataConfig]:
    """Factory: `tiny_config(paths, **section_overrides)` -> DataConfig for the tiny set at `paths`."""

    def make(paths: dict[str, Path | str], **overrides: object) -> DataConfig:
        data = tiny_config_dict(paths)
        data.update(overrides)
        return from_dict(DataConfig, data)

    return make


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder (`../shared/data` next to the repository); skips the test when absent."""
    path = (REPO_ROOT / ".." / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is not available")
    return path
