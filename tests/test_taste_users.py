"""gen.items.taste_users.choose_users on hand-made taste spaces (invariants, a planted structure), the gate's
taste test on a planted space, and an augment on the tiny bundle whose users come from its taste space."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tailsynth import gen
from tailsynth.gen.items.taste_check import check_taste, validation_split
from tailsynth.gen.items.taste_users import (ACTIVITY_POWER, NEW_ITEMS_ACTIVITY_POWER, NEW_ITEMS_LIKE_FIRST_BUYERS,
                                             NEW_ITEMS_PER_USER_CAP, PER_USER_CAP, Evidence, TasteSettings,
                                             choose_users)
from tailsynth.models.taste import TasteSpace
from tailsynth.train.config import GateConfig, load_config
from tailsynth.train.fit import fit
from helpers import TINY_MIN_LIFT

REPO = Path(__file__).resolve().parents[1]


def planted_space(users: int = 400, items: int = 60, dim: int = 8, seed: int = 0) -> TasteSpace:
    """Users and items in `dim` taste clusters: a user's vector is its cluster's axis plus noise."""
    rng = np.random.default_rng(seed)
    user_cluster, item_cluster = rng.integers(0, dim, users), rng.integers(0, dim, items)
    axes = np.eye(dim, dtype=np.float32)
    user_vectors = axes[user_cluster] + 0.1 * rng.standard_normal((users, dim)).astype(np.float32)
    item_vectors = axes[item_cluster] + 0.1 * rng.standard_normal((items, dim)).astype(np.float32)
    return TasteSpace(np.arange(1000, 1000 + users), np.arange(items), torch.as_tensor(user_vectors),
                      torch.as_tensor(item_vectors), rng.integers(1, 20, users).astype(np.int64),
                      np.full(items, 5, dtype=np.int64))


def draw(space: TasteSpace, counts: np.ndarray, seed: int = 0, **kwargs):
    return choose_users(space.item_vectors, counts, space, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_no_owned_pair_no_duplicate_pair_and_exact_counts() -> None:
    space = planted_space()
    counts = np.full(60, 12)
    rng = np.random.default_rng(1)
    owned = (rng.integers(0, 60, 3000), rng.integers(0, 400, 3000))
    choice = draw(space, counts, owned=owned)
    pairs = choice.items * 1000 + choice.users
    assert len(np.unique(pairs)) == len(pairs)  # without replacement
    assert not np.isin(pairs, owned[0] * 1000 + owned[1]).any()
    assert (np.bincount(choice.items, minlength=60) == counts).all()
    assert choice.stats["rows_missing"] == 0


def test_offsets_per_group_move_only_their_groups_items() -> None:
    """[G, U] offsets: the items of group 1 take a -30 log-weight on users 0-199, so they draw only users
    200-399; group 0's items (no offset) draw from both halves. Without offset_groups: an error."""
    space = planted_space()
    offsets = np.zeros((2, 400), dtype=np.float32)
    offsets[1, :200] = -30.0
    item_groups = np.arange(60) % 2
    choice = draw(space, np.full(60, 10), offsets=offsets, offset_groups=item_groups)
    in_group_1 = item_groups[choice.items] == 1
    assert (choice.users[in_group_1] >= 200).all()
    assert (choice.users[~in_group_1] < 200).mean() > 0.3
    with pytest.raises(ValueError, match="offset_groups"):
        draw(space, np.full(60, 10), offsets=offsets)


def test_per_user_cap_holds_across_the_call_and_counts_earlier_rows() -> None:
    space = planted_space(users=120)
    choice = draw(space, np.full(60, 10), settings=TasteSettings(per_user_cap=6))
    per_user = np.bincount(choice.users, minlength=120)
    assert per_user.max() <= 6 and per_user.sum() == 600
    used = np.zeros(120, dtype=np.int64)
    used[:60] = 6  # half the users are already full
    later = choose_users(space.item_vectors[:10], np.full(10, 3), space, used=used,
                         settings=TasteSettings(per_user_cap=6), generator=torch.Generator().manual_seed(0))
    assert (later.users >= 60).all()


def test_same_seed_same_users_other_seed_other_users() -> None:
    space = planted_space()
    first, again, other = draw(space, np.full(60, 5)), draw(space, np.full(60, 5)), draw(space, np.full(60, 5), seed=1)
    assert np.array_equal(first.users, again.users) and np.array_equal(first.items, again.items)
    assert not np.array_equal(first.users, other.users)


def test_users_of_the_items_cluster_are_chosen_far_more_often() -> None:
    space = planted_space()
    choice = draw(space, np.full(60, 10), settings=TasteSettings(activity_power=0.0))
    same = (space.user_vectors.argmax(1).numpy()[choice.users] == space.item_vectors.argmax(1).numpy()[choice.items])
    # 1 in 8 at random; the planted structure puts nearly every row in the item's own cluster.
    assert same.mean() > 0.9


def test_stratified_shortlists_take_users_of_the_rows_generated_country_only() -> None:
    from tailsynth.gen.items.taste_users import Strata, TasteUsers

    space = planted_space()
    rng = np.random.default_rng(0)
    countries = pd.Series(rng.choice(["UK", "FR", "DE", "CY"], size=len(space.user_ids), p=[0.6, 0.25, 0.13, 0.02]))
    chooser = TasteUsers(space, space.item_vectors, (np.zeros(0, np.int64), np.zeros(0, np.int64)),
                         np.arange(len(space.user_ids)), TasteSettings(shortlist=2, stratify=True), "cpu")
    items = np.repeat(np.arange(len(space.item_ids)), 6)
    row_countries = pd.Series(rng.choice(["UK", "FR", "DE", "CY", "XX"], size=len(items)))
    strata = Strata.of("Country", row_countries, countries, min_users=20)
    assert sorted(set(strata.users)) == [0, 1, 2, 3]  # DE, FR, UK and one code for the rare CY with unseen XX
    picks, stats = chooser.shortlist(items, np.random.default_rng(1), strata)
    served = picks >= 0
    assert served[:, 0].mean() > 0.95 and "generated Country" in stats["rule"]
    rows = np.broadcast_to(strata.rows[:, None], picks.shape)
    assert np.array_equal(strata.users[picks[served]], rows[served])
    plain, _ = chooser.shortlist(items, np.random.default_rng(1))
    assert (strata.users[plain[:, 0]] != strata.rows).mean() > 0.3  # without strata rows cross countries


def test_drop_share_drops_the_least_certain_pairs() -> None:
    space = planted_space()
    counts = np.full(60, 8)
    kept = draw(space, counts, settings=TasteSettings(drop_uncertain=0.5))
    none = draw(space, counts, settings=TasteSettings(drop_uncertain=0.0))
    assert (np.bincount(kept.items, minlength=60) == counts).all()
    assert kept.certainty.mean() > none.certainty.mean()
    # Within an item the rows come most certain first.
    for item in (0, 17, 42):
        certainty = kept.certainty[kept.items == item]
        assert (np.diff(certainty) <= 0).all()


def test_items_with_too_few_users_get_what_there_is() -> None:
    space = planted_space(users=10, items=3)
    choice = draw(space, np.array([4, 20, 0]), owned=(np.array([1, 1]), np.array([0, 1])))
    assert np.bincount(choice.items, minlength=3).tolist() == [4, 8, 0]
    assert choice.stats["rows_missing"] == 12


def test_evidence_counts_the_buyers_of_the_nearest_warm_items() -> None:
    space = planted_space(users=6, items=4, dim=2)
    # Items 0 and 1 bought by users 0 and 1; items 2 and 3 by user 5.
    evidence = Evidence.fit(space, np.array([0, 1, 0, 5, 5]), np.array([0, 0, 1, 2, 3]), neighbours=1)
    scores = evidence.scores(space.item_vectors[[0]])
    nearest = int((torch.nn.functional.normalize(space.item_vectors, dim=1) @
                   torch.nn.functional.normalize(space.item_vectors[0], dim=0)).argmax())
    assert nearest == 0 and scores[0].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    blended = draw(space, np.array([2, 0, 0, 0]), evidence=evidence,
                   settings=TasteSettings(evidence_weight=1.0, temperature=0.05, activity_power=0.0))
    assert sorted(blended.users.tolist()) == [0, 1]


def planted_interactions(users: int = 300, items: int = 120, clusters: int = 6, per_user: int = 12,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Item j is in cluster j % clusters; each user buys items of its own cluster only."""
    rng = np.random.default_rng(seed)
    user_cluster = rng.integers(0, clusters, users)
    rows_user = np.repeat(np.arange(users), per_user)
    choices = rng.integers(0, items // clusters, len(rows_user))
    rows_item = choices * clusters + user_cluster[rows_user]
    return rows_user + 5000, rows_item.astype(str).astype(object)


def test_taste_check_passes_a_planted_structure_and_refuses_noise() -> None:
    users, items = planted_interactions()
    split = validation_split(users, items, dim=8, seed=0)
    assert set(split.sets) == {"pseudo_tail"}  # no content predictor: no pseudo-cold set
    passed = check_taste(split, TasteSettings(), new_items=False, rows_per_item=5, seed=0)
    assert passed.passed and passed.lift > 3 and passed.message is None
    noise_items = np.random.default_rng(1).permutation(items)
    refused = check_taste(validation_split(users, noise_items, dim=8, seed=0), TasteSettings(), new_items=False,
                          rows_per_item=5, seed=0)
    assert not refused.passed and "nothing emitted" in refused.message and refused.plain()["lift"] < 3


def test_taste_check_draws_with_the_calls_prior_offsets() -> None:
    users, items = planted_interactions()
    split = validation_split(users, items, dim=8, seed=0)
    plain = check_taste(split, TasteSettings(), new_items=False, rows_per_item=5, seed=0)
    # Offsets that all but forbid every user with a hidden pair: the same taste, but no pair can hit.
    offsets = np.zeros(len(split.space.user_ids), dtype=np.float32)
    offsets[np.unique(split.sets["pseudo_tail"].heldout[1])] = -30.0
    shifted = check_taste(split, TasteSettings(), new_items=False, rows_per_item=5, seed=0, offsets=offsets)
    assert plain.passed and plain.info["mix_offsets"] is False
    assert shifted.info["mix_offsets"] is True and not shifted.passed and shifted.lift < 0.5


# Lenient fidelity on purpose (as tests/test_augment.py): these tests check who the rows go to.
TEST_GATE = GateConfig(alpha=1e-100, max_auc=1.0, min_holdout_rows=10, max_candidates_factor=50, chunk_rows=2000)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> gen.Bundle:
    config = load_config(REPO / "configs" / "tiny.yaml", ["monitor.enabled=false"])
    return gen.load(fit(replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="taste")), device="cpu")


@pytest.mark.slow
def test_augment_on_the_tiny_bundle_chooses_users_by_taste(bundle: gen.Bundle) -> None:
    # The tiny data's pseudo-tail lift is below 3 and the default gate refuses (checked below);
    # TINY_MIN_LIFT lets the rows through to check who they went to.
    result = gen.augment(bundle, per_item=3, seed=0, gate=TEST_GATE, progress=False, min_lift=TINY_MIN_LIFT,
                         users="taste")
    taste = result.report["taste"]
    assert taste["users"] == "taste" and taste["check"]["passed"]
    rows, train = result.rows, bundle.table("train")
    assert rows is not None and len(rows) > 0
    owned = pd.MultiIndex.from_frame(train[["CustomerID", "StockCode"]].astype(str))
    pairs = pd.MultiIndex.from_frame(rows[["CustomerID", "StockCode"]].astype(str))
    assert not pairs.isin(owned).any() and not pairs.duplicated().any()
    assert result.report["pair_repeats"]["emitted"] == 0
    # The rows' users are the ones the chooser ranks high for their item: above the item's mean user.
    space = bundle.taste
    vectors = bundle.content.vectors_for(bundle.table("items").set_index("StockCode").loc[rows["StockCode"]]
                                         .reset_index(), space.item_counts[space.item_positions(rows["StockCode"])])
    user_vectors = space.user_vectors[torch.as_tensor(space.user_positions(rows["CustomerID"].to_numpy()))]
    score = (user_vectors * vectors).sum(1)
    mean = (vectors @ space.user_vectors.T).mean(1)
    assert (score > mean).float().mean() > 0.8
    again = gen.augment(bundle, per_item=3, seed=0, gate=TEST_GATE, progress=False, min_lift=TINY_MIN_LIFT,
                        users="taste")
    assert again.rows.equals(rows)
    refused = gen.augment(bundle, per_item=3, seed=0, gate=TEST_GATE, progress=False, users="taste")
    assert refused.rows is None and refused.report["failures"][0]["measure"] == "taste"
    demographic = gen.augment(bundle, per_item=3, seed=0, gate=False, progress=False, users="demographic")
    assert demographic.report["taste"]["users"] == "demographic"
    default = gen.augment(bundle, per_item=3, seed=0, gate=False, progress=False)  # taste, like first buyers
    assert default.report["taste"]["users"] == "taste" and default.report["taste"]["note"] is None
    assert default.report["taste"]["like_first_buyers"]["features"]
    settings = default.report["taste"]["settings"]  # the chooser's settings are recorded
    assert settings["like_first_buyers"] and settings["per_user_cap"] == PER_USER_CAP
    assert settings["activity_power"] == ACTIVITY_POWER


@pytest.mark.slow
def test_cold_start_takes_users_by_predicted_taste_and_reports_the_held_out_lift(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    config = load_config(REPO / "configs" / "tiny.yaml", ["data.split.cold_items=5", "monitor.enabled=false"])
    bundle = gen.load(fit(replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="cold")), device="cpu")
    cold_ids = bundle.table("cold_holdout")["StockCode"].unique()
    items = bundle.table("items")
    held = items[items["StockCode"].isin(cold_ids)].reset_index(drop=True)
    result = gen.cold_start(bundle, held, per_item=7, seed=1, gate=False, progress=False)
    assert result.report["taste"]["users"] == "taste" and result.report["taste"]["check"] is None  # ungated
    settings = result.report["taste"]["settings"]  # new items: their own cap, power and first-buyer raking
    assert settings["per_user_cap"] == NEW_ITEMS_PER_USER_CAP != PER_USER_CAP
    assert settings["like_first_buyers"] == NEW_ITEMS_LIKE_FIRST_BUYERS
    assert settings["activity_power"] == NEW_ITEMS_ACTIVITY_POWER != ACTIVITY_POWER
    rows = result.rows
    assert rows.groupby("StockCode").size().to_dict() == dict.fromkeys(held["StockCode"], 7)
    assert not pd.MultiIndex.from_frame(rows[["CustomerID", "StockCode"]].astype(str)).duplicated().any()
    lift = result.report["held_out_items"]["taste"]
    assert lift["pairs"] > 0 and lift["random_rate"] > 0 and lift["lift"] is not None
    no_taste = gen.cold_start(bundle, held, per_item=7, seed=1, gate=False, progress=False, users="demographic")
    assert no_taste.report["taste"]["users"] == "demographic" and "demographics" in no_taste.report["taste"]["summary"]


def test_nearest_of_picks_the_candidate_like_the_rows_generated_features() -> None:
    from tailsynth.gen.items.users import nearest_of

    users = pd.DataFrame({"Country": ["UK", "FR", "UK", "DE"], "frequency": [1, 2, 30, 3]})
    rows = pd.DataFrame({"Country": ["UK", "UK", "DE"], "frequency": [28, 2, 1]})
    candidates = np.array([[0, 2, 1], [0, 2, -1], [1, 3, -1]])
    match = nearest_of(rows, users, candidates, categorical=["Country"], numerical=["frequency"])
    # Row 0: UK and 28 -> user 2; row 1: UK and 2 -> user 0 (user 1 is closer in frequency but French);
    # row 2: DE -> user 3 although user 1 is nearer in frequency.
    assert match.positions.tolist() == [2, 0, 3]
    assert match.stats["exact"] == 3
