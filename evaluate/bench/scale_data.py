"""A seeded, retail-like interactions table of any size, for the scale benchmark (`evaluate.bench_scale`).

Shaped like the built-in UCI Online Retail data, so the pipeline does the same work as on real data:
numeric customer ids, text stock codes, minute timestamps over a year, integer quantities (heavy-tailed),
unit prices that belong to the item, a user table (country, recency, frequency, monetary) and an item
table (price band, category). Item popularity is Zipf-like and user activity log-normal, so the head /
torso / tail buckets look like a real shop's. 10M interactions have 200k users and 50k items; smaller
tables scale both down in proportion.

Written as parquet with plain (not dictionary-encoded) text columns, so they read back as a CSV user's
would: object text, not pandas categories.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

USERS_PER_ROW = 200_000 / 10_000_000
ITEMS_PER_ROW = 50_000 / 10_000_000
COUNTRIES = 38
CATEGORIES = 20
PRICE_BANDS = ("0-1", "1-2", "2-5", "5-10", "10+")
START = np.datetime64("2010-12-01T08:00", "m")
MINUTES = 365 * 24 * 60


def table_sizes(rows: int) -> tuple[int, int]:
    """(users, items) for `rows` interactions: 200k and 50k at 10M, in proportion (at least 50 and 20)."""
    return max(50, round(rows * USERS_PER_ROW)), max(20, round(rows * ITEMS_PER_ROW))


def write_scale_tables(rows: int, folder: Path, seed: int = 0) -> dict[str, Path]:
    """Write interactions / users / items parquet files for `rows` interactions into `folder`; role -> path."""
    rng = np.random.default_rng(seed)
    n_users, n_items = table_sizes(rows)
    folder.mkdir(parents=True, exist_ok=True)
    item_price = np.round(rng.lognormal(0.9, 0.9, n_items), 2) + 0.01
    paths = {
        "users": _write(folder / "users.parquet", _users(rng, n_users)),
        "items": _write(folder / "items.parquet", _items(rng, n_items, item_price)),
        "interactions": _write(folder / "interactions.parquet",
                               _interactions(rng, rows, n_users, n_items, item_price)),
    }
    return paths


def _user_ids(n: int) -> np.ndarray:
    return np.arange(12_346, 12_346 + n, dtype=np.int64)


def _item_codes(n: int) -> pa.Array:
    return pa.array([f"S{i:06d}" for i in range(n)], type=pa.string())  # n <= 50k per 10M rows


def _users(rng: np.random.Generator, n: int) -> pa.Table:
    country_weights = 1.0 / np.arange(1, COUNTRIES + 1) ** 1.5
    country = rng.choice(COUNTRIES, n, p=country_weights / country_weights.sum())
    return pa.table({
        "CustomerID": _user_ids(n),
        "Country": pa.array([f"Country{i:02d}" for i in range(COUNTRIES)]).take(pa.array(country)),
        "recency_days": rng.integers(0, 374, n).astype(np.float64),
        "frequency": np.ceil(rng.lognormal(1.2, 1.0, n)),
        "monetary": np.round(rng.lognormal(6.0, 1.2, n), 2),
    })


def _items(rng: np.random.Generator, n: int, price: np.ndarray) -> pa.Table:
    band = np.digitize(price, [1.0, 2.0, 5.0, 10.0])
    return pa.table({
        "StockCode": _item_codes(n),
        "price_band": pa.array(PRICE_BANDS).take(pa.array(band)),
        "category": pa.array([f"cat{i:02d}" for i in range(CATEGORIES)]).take(
            pa.array(rng.integers(0, CATEGORIES, n))),
    })


def _interactions(rng: np.random.Generator, rows: int, n_users: int, n_items: int,
                  item_price: np.ndarray) -> pa.Table:
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item = rng.choice(n_items, rows, p=popularity / popularity.sum())
    activity = rng.lognormal(0.0, 1.0, n_users)
    user = rng.choice(n_users, rows, p=activity / activity.sum())
    day = rng.integers(0, 365, rows)
    minute_of_day = np.clip(rng.normal(12.5 * 60, 150, rows), 7 * 60, 20 * 60).astype(np.int64)
    stamps = START + (day * 1440 + minute_of_day - 8 * 60).clip(0, MINUTES - 1).astype("timedelta64[m]")
    quantity = np.minimum(rng.zipf(2.0, rows), 1000).astype(np.int64)
    price = np.round(item_price[item] * rng.choice([1.0, 1.0, 1.0, 0.85, 1.2], rows), 2)
    return pa.table({
        "CustomerID": _user_ids(n_users)[user],
        "StockCode": _item_codes(n_items).take(pa.array(item)),
        "InvoiceDate": pa.array(stamps.astype("datetime64[ns]")),
        "Quantity": quantity,
        "UnitPrice": price,
    })


def _write(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path, use_dictionary=False)
    return path


def scale_config(paths: dict[str, Path]) -> dict:
    """The data section of a run config for the written tables (the main job's columns and buckets)."""
    return {
        "interactions": {"path": str(paths["interactions"]), "user_id": "CustomerID", "item_id": "StockCode",
                         "timestamp": "InvoiceDate", "columns": {"Quantity": "numerical", "UnitPrice": "numerical"}},
        "users": {"path": str(paths["users"]), "id": "CustomerID",
                  "columns": {"Country": "categorical", "recency_days": "numerical", "frequency": "numerical",
                              "monetary": "numerical"}},
        "items": {"path": str(paths["items"]), "id": "StockCode",
                  "columns": {"price_band": "categorical", "category": "categorical"}},
        "time_parts": ["hour", "dayofweek"],
        "buckets": {"method": "share", "names": ["head", "torso", "tail"], "shares": [0.5, 0.3, 0.2],
                    "min_interactions": 5},
        "split": {"method": "random", "holdout_fraction": 0.2},
    }


def read_back(paths: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """The written tables as pandas frames (tests check their shape)."""
    return {role: pd.read_parquet(path) for role, path in paths.items()}
