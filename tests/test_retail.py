"""The built-in UCI Online Retail dataset: cleaning counts, derived tables, and the long tail it shows.

Bounds come from the published facts in shared/data/online_retail/README.md: 541,909 raw rows, 9,288
cancellation rows, 1,336 other negative-quantity rows; "purchases" (not cancelled, Quantity > 0, known
customer) are 397,924 rows, 4,339 customers and 3,665 items, which our stricter cleaning can only shrink.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tailsynth.train.config import load_config
from tailsynth.train.io import read_table
from tailsynth.train.records import Records, build_records
from tailsynth.train.retail import (CATEGORY_RULES, DATA_FILE, OTHER_CATEGORY, PRICE_BANDS, PRODUCT_CODE, RetailTables,
                          categorise, clean_purchases, load_online_retail, training_tables, users_without)

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "online_retail_ctgan.yaml"
RAW_ROWS = 541_909


@pytest.fixture(scope="module")
def retail() -> RetailTables:
    return load_online_retail()


@pytest.fixture(scope="module")
def retail_records() -> Records:
    return build_records(load_config(CONFIG).data)


def test_cleaning_steps_count_what_they_drop(retail: RetailTables) -> None:
    steps = retail.cleaning
    assert [step["step"].split(" ")[0] for step in steps] == ["cancelled", "non-positive", "non-positive",
                                                              "missing", "non-product"]
    assert all(step["dropped"] > 0 for step in steps)
    remaining = RAW_ROWS
    for step in steps:
        remaining -= step["dropped"]
        assert step["remaining"] == remaining
    assert steps[0]["dropped"] == 9_288  # published: rows whose InvoiceNo starts with C
    assert steps[1]["dropped"] == 1_336  # published: negative quantities outside cancellations
    assert 0 < steps[3]["dropped"] <= 135_080  # published: rows without CustomerID
    assert steps[-1]["remaining"] == len(retail.interactions)


def test_interactions_are_clean_purchases(retail: RetailTables) -> None:
    inter = retail.interactions
    assert 385_000 <= len(inter) <= 397_924
    assert list(inter.columns) == ["InvoiceNo", "StockCode", "InvoiceDate", "Quantity", "UnitPrice", "CustomerID"]
    assert not inter["InvoiceNo"].str.startswith("C").any()
    assert (inter["Quantity"] > 0).all() and (inter["UnitPrice"] > 0).all()
    assert inter["CustomerID"].notna().all()
    assert inter["StockCode"].str.match(PRODUCT_CODE).all()
    assert inter["InvoiceDate"].min() == pd.Timestamp("2010-12-01 08:26")
    assert inter["InvoiceDate"].max() == pd.Timestamp("2011-12-09 12:50")


def test_users_table(retail: RetailTables) -> None:
    users, inter = retail.users, retail.interactions
    assert 4_200 <= len(users) <= 4_339
    assert users["CustomerID"].is_unique
    assert set(users["CustomerID"]) == set(inter["CustomerID"])
    assert users["Country"].notna().all() and users["Country"].nunique() <= 37
    assert (users["recency_days"] >= 0).all() and (users["recency_days"] == 0).any()
    assert (users["frequency"] >= 1).all() and (users["monetary"] > 0).all()
    # one customer checked by hand from the interactions
    one = users.set_index("CustomerID").loc[12347]
    rows = inter[inter["CustomerID"] == 12347]
    assert one["frequency"] == rows["InvoiceNo"].nunique()
    assert one["monetary"] == pytest.approx((rows["Quantity"] * rows["UnitPrice"]).sum(), abs=0.01)
    assert one["recency_days"] == (inter["InvoiceDate"].max() - rows["InvoiceDate"].max()).days


def test_items_table(retail: RetailTables) -> None:
    items, inter = retail.items, retail.interactions
    assert 3_600 <= len(items) <= 3_665
    assert items["StockCode"].is_unique and set(items["StockCode"]) == set(inter["StockCode"])
    assert set(items["price_band"]) <= set(PRICE_BANDS)
    assert set(items["category"]) <= {name for name, _ in CATEGORY_RULES} | {OTHER_CATEGORY}
    top = items.set_index("StockCode").loc["85123A"]  # published: the most frequent item
    assert top["description"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert top["category"] == "candles & lighting" and top["price_band"] == "2-5"
    counts = inter["StockCode"].value_counts()
    other = items.loc[items["category"] == OTHER_CATEGORY, "StockCode"]
    assert counts.reindex(other).sum() / counts.sum() < 0.05  # README reports 1.6%


def test_categorise_rules() -> None:
    descriptions = pd.Series(["CHRISTMAS CANDLE", "WICKER BASKET", "jumbo bag red retrospot", "SET OF 3 CAKE TINS",
                              "ZZZ", None])
    assert categorise(descriptions).tolist() == ["christmas", "storage", "bags", "kitchen & tableware",
                                                 "other", "other"]


def test_clean_purchases_on_a_hand_made_frame() -> None:
    raw = pd.DataFrame({
        "InvoiceNo": ["1", "C2", "3", "4", "5", "6", "7"],
        "StockCode": ["10001", "10001", "10002", "10003", "10004", "POST", "85123A"],
        "Quantity": [1, -1, 0, 2, 2, 1, 3],
        "UnitPrice": [1.0, 1.0, 1.0, 0.0, 2.0, 5.0, 2.5],
        "CustomerID": pd.array([1, 1, 2, 2, None, 3, 3], dtype="Int64"),
    })
    kept, steps = clean_purchases(raw)
    assert [step["dropped"] for step in steps] == [1, 1, 1, 1, 1]
    assert [step["remaining"] for step in steps] == [6, 5, 4, 3, 2]
    assert kept["InvoiceNo"].tolist() == ["1", "7"]


def test_users_without_removed_purchases_equal_the_table_derived_without_them() -> None:
    """The validation's leak-free users (`evaluate.bench.cold_choice`): taking purchases out of the training-derived
    users table gives what `training_tables` derives from the rest (an invoice is one customer's purchase time)."""
    at = pd.Timestamp("2011-01-01")
    purchases = pd.DataFrame({
        "InvoiceNo": ["1", "1", "2", "3", "4", "4", "5", "6", "7"],
        "StockCode": ["A", "B", "A", "C", "B", "C", "A", "C", "C"],
        "Description": ["a", "b", "a", "c", "b", "c", "a", "c", "c"],
        "Quantity": [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "InvoiceDate": [at, at, at + pd.Timedelta(days=3), at + pd.Timedelta(days=9), at + pd.Timedelta(days=5),
                        at + pd.Timedelta(days=5), at + pd.Timedelta(days=2), at + pd.Timedelta(days=20),
                        at + pd.Timedelta(days=1)],
        "UnitPrice": [1.0, 2.5, 1.0, 0.5, 2.0, 3.0, 1.5, 4.0, 1.0],
        "CustomerID": [1, 1, 1, 2, 2, 2, 3, 3, 4],
        "Country": ["UK"] * 9,
    })
    training = purchases["InvoiceNo"] != "6"  # invoice 6 is held out
    users, _ = training_tables(purchases, training.to_numpy())
    train = purchases[training]
    removed = train["StockCode"] == "C"  # the hidden item: customer 2 loses invoice 3 and half of invoice 4
    got = users_without(users, train[~removed], train[removed])
    want, _ = training_tables(purchases, (training & (purchases["StockCode"] != "C")).to_numpy())
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    assert got.set_index("CustomerID").loc[2, "frequency"] == 1 and users.set_index("CustomerID").loc[2, "frequency"] == 2
    assert got.set_index("CustomerID").loc[4, ["frequency", "monetary"]].tolist() == [0, 0.0]  # only bought C


def test_builtin_records_show_the_long_tail(retail_records: Records) -> None:
    records = retail_records
    assert 385_000 <= len(records.table) <= 397_924
    assert len(records.cleaning) == 5
    summary = records.summary().set_index("bucket")
    head, tail = summary.loc["head"], summary.loc["tail"]
    assert tail["items"] > 4 * head["items"]
    assert tail["share_of_interactions"] == pytest.approx(0.2, abs=0.01)
    assert head["share_of_interactions"] == pytest.approx(0.5, abs=0.01)
    assert summary.loc["cold_start", "items"] == tail["cold_start_items"] > 0  # all cold items sit in the tail
    assert summary.loc["all", "items"] == len(records.items)
    assert records.model_columns() == {
        "InvoiceDate": "datetime", "Quantity": "numerical", "UnitPrice": "numerical", "Country": "categorical",
        "recency_days": "numerical", "frequency": "numerical", "monetary": "numerical",
        "price_band": "categorical", "category": "categorical", "hour": "categorical",
        "dayofweek": "categorical", "pop_bucket": "categorical"}
    assert records.table["Country"].notna().all() and records.table["category"].notna().all()


@pytest.mark.slow
def test_shipped_parquet_matches_the_shared_csv(shared_data: Path) -> None:
    csv = shared_data / "online_retail" / "online_retail.csv.gz"
    if not csv.is_file():
        pytest.skip(f"{csv} is not available")
    from_csv = read_table(csv, role="interactions")
    shipped = pd.read_parquet(DATA_FILE)
    assert len(from_csv) == len(shipped) == RAW_ROWS
    assert list(from_csv.columns) == list(shipped.columns)
    assert from_csv["Quantity"].sum() == shipped["Quantity"].sum()
    assert from_csv["CustomerID"].notna().sum() == shipped["CustomerID"].notna().sum() == RAW_ROWS - 135_080
