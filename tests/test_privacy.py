"""Distance to closest record and exact-copy checks of evaluate/privacy.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailsynth.evaluate.measures.privacy import copy_rate, dcr, rare_copy_mask

COLUMNS = {"price": "numerical", "country": "categorical", "when": "datetime"}


def _table(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    table = pd.DataFrame({
        "price": rng.normal(10, 2, rows),
        "country": rng.choice(["uk", "fr", "de"], rows),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, rows), unit="s"),
    })
    table.loc[rng.random(rows) < 0.1, "price"] = np.nan
    return table


def _brute_force_dcr(rows: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """The documented distance, pair by pair in float64, as an independent check."""
    price_ref = reference["price"].to_numpy()
    when_ref = reference["when"].astype("int64").to_numpy() / 1e9
    scales = []
    for values in (price_ref, when_ref):
        present = values[~np.isnan(values)]
        q25, median, q75 = np.quantile(present, [0.25, 0.5, 0.75])
        scales.append((median, q75 - q25))

    def encode(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        price = table["price"].to_numpy()
        when = table["when"].astype("int64").to_numpy() / 1e9
        null = np.isnan(price)
        numbers = np.stack([np.where(null, 0.0, (price - scales[0][0]) / scales[0][1]),
                            (when - scales[1][0]) / scales[1][1]], axis=1)
        return numbers, table["country"].to_numpy(), null

    numbers_a, country_a, null_a = encode(rows)
    numbers_b, country_b, null_b = encode(reference)
    squared = ((numbers_a[:, None, :] - numbers_b[None, :, :]) ** 2).sum(-1)
    squared += country_a[:, None] != country_b[None, :]
    squared += null_a[:, None] != null_b[None, :]
    return np.sqrt(squared.min(axis=1))


def test_dcr_is_zero_for_copies_and_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    reference, rows = _table(rng, 300), _table(rng, 60)
    rows.iloc[:10] = reference.iloc[[3, 7, 11, 50, 60, 99, 120, 150, 200, 299]].to_numpy()
    distances = dcr(rows, reference, COLUMNS, batch=16, device="cpu")
    assert distances.shape == (60,)
    assert (distances[:10] == 0.0).all()
    assert (distances[10:] > 0.0).all()
    assert distances == pytest.approx(_brute_force_dcr(rows, reference), rel=1e-4, abs=1e-5)
    # The blocking is an implementation detail: one block gives the same answer.
    assert dcr(rows, reference, COLUMNS, batch=4096, device="cpu") == pytest.approx(distances, abs=1e-6)


def test_dcr_one_hot_and_column_by_column_counts_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The matrix-product count of mismatches (narrow vocabularies) and the per-column compare (wide ones)."""
    import tailsynth.evaluate.measures.privacy as privacy

    rng = np.random.default_rng(1)
    reference, rows = _table(rng, 500), _table(rng, 80)
    rows.iloc[:5] = reference.iloc[[0, 1, 2, 3, 4]].to_numpy()
    one_hot = dcr(rows, reference, COLUMNS, batch=64, device="cpu")
    monkeypatch.setattr(privacy, "MAX_ONE_HOT", 0)
    by_column = dcr(rows, reference, COLUMNS, batch=64, device="cpu")
    assert (one_hot[:5] == 0.0).all() and (by_column[:5] == 0.0).all()
    np.testing.assert_allclose(one_hot, by_column, rtol=1e-6)


def test_dcr_counts_a_categorical_mismatch_as_one() -> None:
    reference = pd.DataFrame({"country": ["uk", "fr"]})
    rows = pd.DataFrame({"country": ["uk", "de"]})
    assert dcr(rows, reference, {"country": "categorical"}).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="non-empty reference"):
        dcr(rows, reference.iloc[:0], {"country": "categorical"})


def test_rare_copy_mask_catches_a_copied_rare_row_only() -> None:
    train = pd.DataFrame({
        "country": ["uk"] * 10 + ["fr", "de", "de"],
        "quantity": [1] * 10 + [7, 3, 3],
        "price": [2.5] * 10 + [9.99, np.nan, np.nan],
    })
    columns = {"country": "categorical", "quantity": "numerical", "price": "numerical"}
    rows = pd.DataFrame({
        "country": ["fr", "uk", "fr", "de", "uk"],
        "quantity": [7.0, 1.0, 8.0, 3.0, 1.0],  # floats against train's ints: still an exact copy
        "price": [9.99, 2.5, 9.99, np.nan, 2.5],
        "unjudged": [0, 1, 2, 3, 4],
    })
    # Row 0 copies the single (fr, 7, 9.99) row; row 3 the pair with a null price; rows 1/4 a combination
    # seen ten times; row 2 is new.
    assert rare_copy_mask(rows, train, columns, k=5).tolist() == [True, False, False, True, False]
    assert rare_copy_mask(rows, train, columns, k=2).tolist() == [True, False, False, False, False]
    assert rare_copy_mask(rows, train, columns, k=11).tolist() == [True, True, False, True, True]
    assert copy_rate(rows, train, columns) == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        rare_copy_mask(rows, train, columns, k=0)


def test_copy_rate_of_fresh_rows_is_zero() -> None:
    rng = np.random.default_rng(1)
    train, rows = _table(rng, 200), _table(rng, 100)
    assert copy_rate(rows, train, COLUMNS) == 0.0
    assert copy_rate(train.iloc[:40], train, COLUMNS) == 1.0
