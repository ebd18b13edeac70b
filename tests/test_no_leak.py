"""No leak from the future (issue 19, part 7): features the built-in tables derive from purchases (recency,
frequency, monetary, price band) come from the training split only, so changing a held-out row changes no
training feature.

Runs `prepare_tables` on a small hand-made raw invoice table standing in for the built-in data (the loader is
replaced; the full dataset would take seconds per build).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tailsynth.train.records as records_module
import tailsynth.train.split_features as split_features_module
from tailsynth.train.config import RunConfig, load_config
from tailsynth.train.fit import prepare_tables
from tailsynth.train.retail import RAW_COLUMNS, derive_users, tables_from_raw

REPO = Path(__file__).resolve().parents[1]
BUILTIN = "builtin:online_retail"
WORDS = ["RED", "HEART", "CANDLE", "BAG", "GARDEN", "MUG", "BOX", "STAR", "LACE", "TIN"]


def raw_purchases(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Clean raw invoice lines: 40 customers, 25 items, one year of dates (every row survives cleaning)."""
    rng = np.random.default_rng(seed)
    items = [f"{20000 + i}" for i in range(25)]
    item = rng.integers(0, len(items), rows)
    return pd.DataFrame({
        "InvoiceNo": [f"{500000 + i // 3}" for i in range(rows)],
        "StockCode": np.asarray(items, dtype=object)[item],
        "Description": [f"{WORDS[i % 10]} {WORDS[(i * 3) % 10]} {WORDS[(i * 7) % 10]}" for i in item],
        "Quantity": rng.integers(1, 24, rows),
        "InvoiceDate": pd.Timestamp("2011-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 365 * 24, rows)), "h"),
        "UnitPrice": np.round(0.5 + item * 0.6 + rng.random(rows) * 0.2, 2),
        "CustomerID": rng.integers(12000, 12040, rows).astype("float64"),
        "Country": np.asarray(["United Kingdom", "France", "Germany"], dtype=object)[rng.integers(0, 3, rows)],
    })[RAW_COLUMNS]


def builtin_config(method: str) -> RunConfig:
    return load_config(REPO / "configs" / "tiny.yaml", [
        f"data.interactions.path={BUILTIN}", f"data.users.path={BUILTIN}", f"data.items.path={BUILTIN}",
        f"data.split.method={method}", "data.split.holdout_fraction=0.3"])


def prepared(raw: pd.DataFrame, config: RunConfig, monkeypatch: pytest.MonkeyPatch):
    for module in (records_module, split_features_module):
        monkeypatch.setattr(module, "load_online_retail", lambda: tables_from_raw(raw))
    return prepare_tables(config)


def changed_holdout_row(raw: pd.DataFrame, holdout: pd.DataFrame) -> pd.DataFrame:
    """`raw` with one held-out row's quantity, price, date, country and description changed (row i of the
    records is row i of the raw table here: every row survives cleaning and joins)."""
    row = holdout.index[len(holdout) // 2]
    edited = raw.copy()
    edited.loc[row, ["Quantity", "UnitPrice", "Country", "Description"]] = [999, 250.0, "Japan", "NEW THING"]
    edited.loc[row, "InvoiceDate"] = raw["InvoiceDate"].max() + pd.Timedelta(days=60)
    return edited


@pytest.mark.parametrize("method", ["random", "time"])
def test_changing_a_held_out_row_changes_no_training_feature(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, config = raw_purchases(), builtin_config(method)
    records, train_rows, holdout_rows, _ = prepared(raw, config, monkeypatch)
    edited = changed_holdout_row(raw, holdout_rows)
    if method == "time":  # keep the edited row in the holdout: it is the latest already, or becomes it
        assert edited["InvoiceDate"].idxmax() in holdout_rows.index
    records_2, train_2, holdout_2, _ = prepared(edited, config, monkeypatch)
    assert train_2.index.equals(train_rows.index)
    pd.testing.assert_frame_equal(train_2, train_rows)
    users = records.users[records.users["CustomerID"].isin(train_rows["CustomerID"])]
    users_2 = records_2.users[records_2.users["CustomerID"].isin(train_rows["CustomerID"])]
    pd.testing.assert_frame_equal(users_2, users)
    items = records.items[records.items["StockCode"].isin(train_rows["StockCode"])]
    items_2 = records_2.items[records_2.items["StockCode"].isin(train_rows["StockCode"])]
    pd.testing.assert_frame_equal(items_2, items)


def test_the_change_would_leak_if_derived_from_all_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The edit above is one the all-rows derivation sees: the test above would fail without the fix (for the
    users; one row seldom moves an item's median price band or most frequent description)."""
    raw = raw_purchases()
    _, _, holdout_rows, _ = prepared(raw, builtin_config("random"), monkeypatch)
    edited = changed_holdout_row(raw, holdout_rows)
    assert not derive_users(edited)["recency_days"].equals(derive_users(raw)["recency_days"])
    assert not derive_users(edited)["monetary"].equals(derive_users(raw)["monetary"])


def test_users_without_a_training_purchase_get_empty_history(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = raw_purchases()
    raw.loc[raw.index[-5:], "CustomerID"] = 13000.0  # a customer whose only purchases are the latest ones
    records, train_rows, holdout_rows, _ = prepared(raw, builtin_config("time"), monkeypatch)
    assert 13000 not in set(train_rows["CustomerID"]) and 13000 in set(holdout_rows["CustomerID"])
    late = records.users.set_index("CustomerID").loc[13000]
    assert late["frequency"] == 0 and late["monetary"] == 0.0
    assert late["recency_days"] == (train_rows["InvoiceDate"].max() - train_rows["InvoiceDate"].min()).days
