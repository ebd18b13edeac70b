"""evaluate.measures.taste.pair_lift on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from tailsynth.evaluate.measures.taste import pair_lift


def test_hit_rate_random_rate_and_lift_by_hand() -> None:
    # 4 users, activity 1, 1, 2, 4 (total 8). Item 10: held-out buyers 0 and 2; item 20: held-out buyer 3.
    # Generated: item 10 -> users 0, 1 (one hit); item 20 -> user 3 (hit); item 30 has no held-out pair.
    result = pair_lift([0, 1, 3, 2], [10, 10, 20, 30], [0, 2, 3], [10, 10, 20], [1, 1, 2, 4], 4, seed=0)
    # random: item 10 (2 pairs) (1 + 2) / 8, item 20 (1 pair) 4 / 8 -> (2 * 3/8 + 4/8) / 3 = 10/24
    assert result["hit_rate"] == pytest.approx(2 / 3)
    assert result["random_rate"] == pytest.approx(10 / 24)
    assert result["lift"] == pytest.approx((2 / 3) / (10 / 24))
    assert (result["pairs"], result["hits"], result["items"]) == (3, 2, 2)


def test_owners_leave_the_random_users_and_their_held_out_repeats() -> None:
    # User 3 (activity 4) owns item 10 in training and buys it again in the held-out rows; the chooser may not
    # pick them, so the random users are the other three (mass 4) and the repeat is no hit to find.
    result = pair_lift([0], [10], [0, 3], [10, 10], [1, 1, 2, 4], 4, seed=0, owned_users=[3], owned_items=[10])
    assert result["random_rate"] == pytest.approx(1 / 4)
    assert result["lift"] == pytest.approx(4.0)


def test_duplicate_held_out_pairs_count_once_and_no_hits_give_zero_lift() -> None:
    result = pair_lift([1, 1], [5, 5], [0, 0, 0], [5, 5, 5], [1, 1], 2, seed=0)
    assert result["random_rate"] == pytest.approx(0.5)
    assert result["hit_rate"] == 0 and result["lift"] == 0


def test_interval_brackets_the_lift_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 50, 400), rng.integers(0, 40, 400)
    held_users, held_items = rng.integers(0, 50, 300), rng.integers(0, 40, 300)
    first = pair_lift(users, items, held_users, held_items, np.ones(50), 50, seed=3)
    assert first == pair_lift(users, items, held_users, held_items, np.ones(50), 50, seed=3)
    low, high = first["interval"]
    assert low <= first["lift"] <= high


def test_mismatched_activity_is_an_error() -> None:
    with pytest.raises(ValueError, match="user_activity"):
        pair_lift([0], [1], [0], [1], [1, 1, 1], 2, seed=0)
