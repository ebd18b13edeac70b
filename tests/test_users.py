"""gen.items.users.match_users on hand-made user tables whose exact / nearest / random-among-equals answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tailsynth.gen.items.users as users_module
from tailsynth.gen.items.users import match_users

# Positions 0..5. numpy's linear quantiles: spend q25 10, q75 47.5 -> scale 37.5 / 1.349 = 27.8;
# visits q25 1, q75 2.75 -> scale 1.75 / 1.349 = 1.30.
USERS = pd.DataFrame({
    "user": [101, 102, 103, 104, 105, 106],
    "country": ["UK", "UK", "FR", "FR", "DE", "DE"],
    "channel": ["web", "web", "web", "app", "app", "web"],
    "spend": [10.0, 40.0, 10.0, 10.0, 50.0, 90.0],
    "visits": [1, 3, 1, 1, 2, 5],
})


def match(rows: pd.DataFrame, *, categorical: list[str], numerical: list[str], seed: int = 0, **kwargs):
    return match_users(rows, USERS, categorical=categorical, numerical=numerical,
                       rng=np.random.default_rng(seed), device="cpu", **kwargs)


def test_exact_categorical_then_nearest_numerical() -> None:
    rows = pd.DataFrame({"country": ["UK", "UK", "DE"], "spend": [35.0, 12.0, 60.0], "visits": [3, 1, 2]})
    result = match(rows, categorical=["country"], numerical=["spend", "visits"])
    # UK users are 101 (10, 1) and 102 (40, 3); DE users 105 (50, 2) and 106 (90, 5).
    assert result.positions.tolist() == [1, 0, 4]
    assert result.stats["exact"] == 3 and result.stats["fallback"] == 0


def test_random_among_equals_uses_every_equal_user() -> None:
    """FR users 103 and 104 have equal spend and visits: each should get about half the rows."""
    rows = pd.DataFrame({"country": ["FR"] * 2000, "spend": [10.0] * 2000, "visits": [1] * 2000})
    result = match(rows, categorical=["country"], numerical=["spend", "visits"])
    picked = pd.Series(result.positions).value_counts()
    assert set(picked.index) == {2, 3}
    assert abs(picked[2] - 1000) < 4 * np.sqrt(2000 * 0.25)  # 4 sd of a fair binomial
    assert result.stats["mean_equal_candidates"] == 2.0


def test_ties_within_tolerance_count_as_equal() -> None:
    users = USERS.assign(spend=[10.0, 40.0, 10.0, 10.0 + 1e-9, 50.0, 90.0])
    rows = pd.DataFrame({"country": ["FR"] * 400, "spend": [10.0] * 400})
    loose = match_users(rows, users, categorical=["country"], numerical=["spend"], rng=np.random.default_rng(0))
    strict = match_users(rows, users, categorical=["country"], numerical=["spend"], rng=np.random.default_rng(0),
                         tolerance=0.0)
    assert set(loose.positions) == {2, 3}
    assert set(strict.positions) == {2}


def test_standardised_distance_not_raw_units() -> None:
    """Raw units would pick 101 (spend 10 is 1 away, visits 1 is 2 away); standardised, visits dominate.

    In raw units 101 is at sqrt(1 + 4) = 2.2 and 102 at 29. Standardised, spend 11 -> 10: 1/27.8 = 0.04 and
    11 -> 40: 29/27.8 = 1.04; visits 3 -> 1: 2/1.30 = 1.54 and 3 -> 3: 0. So 101 is at 1.54, 102 at 1.04.
    """
    rows = pd.DataFrame({"country": ["UK"], "spend": [11.0], "visits": [3]})
    result = match(rows, categorical=["country"], numerical=["spend", "visits"])
    assert result.positions.tolist() == [1]
    assert result.stats["scale"]["spend"] == pytest.approx(37.5 / 1.349)
    assert result.stats["scale"]["visits"] == pytest.approx(1.75 / 1.349)


def test_fallback_prefers_fewest_categorical_mismatches() -> None:
    """ES/app exists nowhere: users with channel app (104, 105) mismatch once, the others twice.

    Numerically 106 (spend 90) is nearest to 95, yet 105 (spend 50, one mismatch) wins over it.
    """
    rows = pd.DataFrame({"country": ["ES", "UK"], "channel": ["app", "web"], "spend": [95.0, 10.0]})
    result = match(rows, categorical=["country", "channel"], numerical=["spend"])
    assert result.positions.tolist() == [4, 0]
    assert result.stats["exact"] == 1 and result.stats["fallback"] == 1


def test_fallback_with_one_categorical_is_nearest_over_all_users() -> None:
    rows = pd.DataFrame({"country": ["ES"], "spend": [85.0]})
    result = match(rows, categorical=["country"], numerical=["spend"])
    assert result.positions.tolist() == [5] and result.stats["fallback"] == 1


def test_null_numbers_are_the_users_median() -> None:
    """Median spend 25: of the UK users 10 is 15 away and 40 is 15 away - both equal; visits breaks it."""
    rows = pd.DataFrame({"country": ["UK"], "spend": [np.nan], "visits": [3]})
    assert match(rows, categorical=["country"], numerical=["spend", "visits"]).positions.tolist() == [1]


def test_without_features_users_are_drawn_uniformly() -> None:
    rows = pd.DataFrame(index=range(3000))
    result = match(rows, categorical=[], numerical=[])
    counts = np.bincount(result.positions, minlength=len(USERS))
    assert (counts > 0).all() and counts.max() - counts.min() < 150  # 500 expected each, sd about 20


def test_same_seed_same_users_and_chunks_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    rows = pd.DataFrame({"country": rng.choice(["UK", "FR", "DE", "ES"], 500),
                         "spend": rng.uniform(0, 100, 500), "visits": rng.integers(0, 6, 500)})
    first = match(rows, categorical=["country"], numerical=["spend", "visits"], seed=3)
    again = match(rows, categorical=["country"], numerical=["spend", "visits"], seed=3)
    monkeypatch.setattr(users_module, "CHUNK_ENTRIES", 7)  # one row (or a few) per chunk
    chunked = match(rows, categorical=["country"], numerical=["spend", "visits"], seed=3)
    assert np.array_equal(first.positions, again.positions)
    assert np.array_equal(first.positions, chunked.positions)
    assert first.stats["fallback"] == int((rows["country"] == "ES").sum())


def test_empty_users_table_is_refused() -> None:
    with pytest.raises(ValueError, match="users table is empty"):
        match_users(pd.DataFrame({"spend": [1.0]}), USERS.iloc[:0], categorical=[], numerical=["spend"],
                    rng=np.random.default_rng(0))
