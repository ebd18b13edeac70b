"""SDV metadata as an alternative to our column roles: the same records as the YAML config gives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tailsynth.models.errors import ConfigError
from tailsynth.train.config import load_config
from tailsynth.train.records import build_records
from tailsynth.train.sdv_metadata import data_config_from_sdv

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"

METADATA = {
    "METADATA_SPEC_VERSION": "V1",
    "tables": {
        "interactions": {"columns": {
            "InvoiceNo": {"sdtype": "id"}, "StockCode": {"sdtype": "id"},
            "InvoiceDate": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d %H:%M:%S"},
            "Quantity": {"sdtype": "numerical"}, "UnitPrice": {"sdtype": "numerical"}, "CustomerID": {"sdtype": "id"},
        }},
        "users": {"primary_key": "CustomerID", "columns": {
            "CustomerID": {"sdtype": "id"}, "Country": {"sdtype": "categorical"},
            "recency_days": {"sdtype": "numerical"}, "frequency": {"sdtype": "numerical"}, "monetary": {"sdtype": "numerical"},
        }},
        "items": {"primary_key": "StockCode", "columns": {
            "StockCode": {"sdtype": "id"}, "price_band": {"sdtype": "categorical"}, "category": {"sdtype": "categorical"},
        }},
    },
    "relationships": [
        {"parent_table_name": "users", "parent_primary_key": "CustomerID", "child_table_name": "interactions", "child_foreign_key": "CustomerID"},
        {"parent_table_name": "items", "parent_primary_key": "StockCode", "child_table_name": "interactions", "child_foreign_key": "StockCode"},
    ],
}
PATHS = {role: str(DATA / f"tiny_{role}.csv") for role in ("interactions", "users", "items")}


def test_sdv_metadata_gives_the_same_records_as_the_yaml_config() -> None:
    from_sdv = build_records(data_config_from_sdv(METADATA, PATHS, split={"holdout_fraction": 0.25}))
    from_yaml = build_records(load_config(REPO / "configs" / "tiny.yaml").data)
    columns = [c for c in from_yaml.table.columns]
    assert set(from_sdv.table.columns) == set(columns)
    pd.testing.assert_frame_equal(from_sdv.table[columns], from_yaml.table[columns])
    pd.testing.assert_frame_equal(from_sdv.buckets, from_yaml.buckets)


def test_an_sdv_metadata_object_is_accepted() -> None:
    pytest.importorskip("sdv")
    from sdv.metadata import Metadata

    config = data_config_from_sdv(Metadata.load_from_dict(METADATA), PATHS)
    assert config.interactions.user_id == "CustomerID" and config.interactions.item_id == "StockCode"
    assert config.interactions.timestamp == "InvoiceDate"
    assert config.users is not None and config.users.columns["Country"] == "categorical"


def test_unsupported_sdtype_names_table_and_column() -> None:
    broken = {**METADATA, "tables": {**METADATA["tables"], "users": {
        "primary_key": "CustomerID", "columns": {"CustomerID": {"sdtype": "id"}, "Country": {"sdtype": "email"}}}}}
    with pytest.raises(ConfigError, match="'Country' of table 'users' has sdtype 'email'"):
        data_config_from_sdv(broken, PATHS)


def test_missing_relationship_is_named() -> None:
    broken = {**METADATA, "relationships": METADATA["relationships"][:1]}
    with pytest.raises(ConfigError, match="no relationship links 'interactions' to its parent 'items'"):
        data_config_from_sdv(broken, PATHS)
