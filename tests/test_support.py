"""gen.gate.support: the real support a synthetic row must lie inside (labels, widened ranges, nulls)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tailsynth.gen.gate.support import Support
from tailsynth.models.errors import DataError

COLUMNS = {"country": "categorical", "price": "numerical", "when": "datetime", "code": "categorical"}


@pytest.fixture()
def train() -> pd.DataFrame:
    return pd.DataFrame({
        "country": ["UK", "FR", "UK", None],  # a null was seen, so nulls are inside the support
        "price": [0.0, 2.5, 10.0, 4.0],
        "when": pd.to_datetime(["2020-01-01", "2020-01-11", "2020-01-05", "2020-01-03"]),
        "code": [1, 2, 3, 2],
        "ignored": ["a", "b", "c", "d"],
    })


def _rows(**overrides: list) -> pd.DataFrame:
    """Three rows that are inside the support, with chosen columns replaced."""
    base = {
        "country": ["UK", "FR", None],
        "price": [0.0, 10.0, 5.0],
        "when": pd.to_datetime(["2020-01-01", "2020-01-11", "2020-01-06"]),
        "code": [1, 3, 2],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_rows_inside_the_support_pass(train: pd.DataFrame) -> None:
    support = Support.fit(train, COLUMNS, margin=0.1)
    assert support.mask(_rows()).tolist() == [True, True, True]
    assert support.violations(_rows()) == {name: 0 for name in COLUMNS}


def test_numerical_range_is_widened_by_margin_times_range(train: pd.DataFrame) -> None:
    support = Support.fit(train, COLUMNS, margin=0.1)  # [0, 10] widened by 1 on each side -> [-1, 11]
    rows = _rows(price=[-1.0, 11.0, 11.01])
    assert support.mask(rows).tolist() == [True, True, False]
    rows = _rows(price=[-1.01, np.nan, 5.0])  # no null price in training, so a null is outside too
    assert support.mask(rows).tolist() == [False, False, True]
    assert support.violations(rows)["price"] == 2


def test_unseen_labels_and_nulls_are_violations(train: pd.DataFrame) -> None:
    support = Support.fit(train.assign(country=["UK", "FR", "UK", "DE"]), COLUMNS, margin=0.0)
    rows = _rows(country=["XX", None, "DE"], code=[1, 4, 2])
    assert support.mask(rows).tolist() == [False, False, True]
    assert support.violations(rows) == {"country": 2, "code": 1, "price": 0, "when": 0}


def test_datetime_range_with_margin(train: pd.DataFrame) -> None:
    support = Support.fit(train, COLUMNS, margin=0.1)  # 10 days, widened by 1 day on each side
    rows = _rows(when=pd.to_datetime(["2019-12-31 00:00:00", "2020-01-12 00:00:00", "2020-01-12 00:00:01"]))
    assert support.mask(rows).tolist() == [True, True, False]


def test_non_numbers_in_a_numerical_column_are_outside_not_errors(train: pd.DataFrame) -> None:
    support = Support.fit(train, COLUMNS, margin=0.0)
    rows = _rows(price=pd.Series(["3.0", "abc", 4.0], dtype=object))
    assert support.mask(rows).tolist() == [True, False, True]


def test_state_is_json_and_round_trips(train: pd.DataFrame) -> None:
    support = Support.fit(train, COLUMNS, margin=0.05)
    state = json.loads(json.dumps(support.state()))
    again = Support.from_state(state)
    rows = pd.concat([_rows(), _rows(country=["XX", "UK", "FR"], price=[99.0, 1.0, 2.0])], ignore_index=True)
    assert again.mask(rows).tolist() == support.mask(rows).tolist()
    assert again.violations(rows) == support.violations(rows)
    assert support.mask(rows).sum() == 5  # only the XX/99.0 row is outside


def test_missing_column_is_a_data_error_naming_it(train: pd.DataFrame) -> None:
    support = Support.fit(train, COLUMNS, margin=0.05)
    with pytest.raises(DataError, match="price"):
        support.mask(_rows().drop(columns=["price"]))
    with pytest.raises(DataError, match="price"):
        Support.fit(train.drop(columns=["price"]), COLUMNS, margin=0.05)


def test_vectorised_mask_matches_a_direct_check_on_many_rows() -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=1000), "c": rng.choice(["a", "b"], size=1000)})
    rows = pd.DataFrame({"x": rng.normal(scale=2, size=5000), "c": rng.choice(["a", "b", "z"], size=5000)})
    support = Support.fit(train, {"x": "numerical", "c": "categorical"}, margin=0.0)
    expected = (rows["x"] >= train["x"].min()) & (rows["x"] <= train["x"].max()) & (rows["c"] != "z")
    assert support.mask(rows).tolist() == expected.tolist()
    assert 0 < support.mask(rows).sum() < len(rows)
