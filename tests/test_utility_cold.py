"""The utility benchmark's cold-start study on hand-made data: protocols, intervals, neighbour transfer,
item-kNN, injection, the tail arm (i) and the report's sections. Fast (no generator, no bundle)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailsynth.evaluate.utility.arms import REAL, real_only, rows_and_weights, tail_rows, with_rows, COLD_SYNTHETIC
from tailsynth.evaluate.utility.cold_report import cold_markdown, cold_summary, cold_targets, tail_intervals
from tailsynth.evaluate.utility.content import content_matrix, knn_vectors, neighbour_transfer, ridge_vectors
from tailsynth.evaluate.utility.data import UtilityData, build_data
from tailsynth.evaluate.utility.intervals import paired_bootstrap, seed_mean
from tailsynth.evaluate.utility.protocols import cold_only, cold_only_chance, full_catalogue, per_user_recall

# Warm items W1-W4 (W1, W2 "mugs"; W3, W4 "lamps"), cold items C1 (a mug) and C2 (a lamp).
# Mug buyers u1-u3, lamp buyers u4-u6; held out: C1 bought by u1, u2; C2 by u4; W2 by u3 (warm).
TRAIN = [("u1", "W1"), ("u2", "W1"), ("u3", "W1"), ("u1", "W2"), ("u2", "W2"),
         ("u4", "W3"), ("u5", "W3"), ("u6", "W3"), ("u4", "W4"), ("u5", "W4"), ("u6", "W4")]
HOLDOUT = [("u3", "W2")]
COLD = [("u1", "C1"), ("u2", "C1"), ("u4", "C2")]
ITEMS = pd.DataFrame({"item": ["W1", "W2", "W3", "W4", "C1", "C2"],
                      "kind": ["mug", "mug", "lamp", "lamp", "mug", "lamp"],
                      "text": ["white mug", "blue mug", "desk lamp", "floor lamp", "red mug", "table lamp"]})


def _table(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["user", "item"])


@pytest.fixture
def frame() -> UtilityData:
    buckets = pd.DataFrame({"item": ITEMS["item"], "pop_bucket": ["head", "tail", "head", "tail", "tail", "tail"]})
    return build_data(_table(TRAIN), _table(HOLDOUT), _table(COLD), buckets, user_id="user", item_id="item",
                      bucket_names=("head", "tail"), items=ITEMS[["item", "kind"]])


def test_named_cold_items_are_ranked_without_relevance() -> None:
    buckets = pd.DataFrame({"item": ITEMS["item"], "pop_bucket": ["head", "tail", "head", "tail", "tail", "tail"]})
    frame = build_data(_table(TRAIN), _table(HOLDOUT), _table(COLD).iloc[:0], buckets, user_id="user",
                       item_id="item", bucket_names=("head", "tail"), cold_items=pd.Series(["C2", "W1", "C1"]))
    assert list(frame.items[frame.n_warm:]) == ["C1", "C2"]  # a warm item named is not made cold
    assert frame.relevant[:, frame.cold].nnz == 0 and frame.relevant.nnz == 1  # (u3, W2) only


@pytest.fixture
def content(frame: UtilityData) -> np.ndarray:
    return content_matrix(ITEMS, frame, "item", feature_columns=["kind"], text_column="text")


def _user_rows(frame: UtilityData, *names: str) -> np.ndarray:
    return np.searchsorted(frame.eval_users, frame.users.get_indexer(list(names)))


# ---------------------------------------------------------------------------------------------------------
# intervals


def test_bootstrap_covers_a_known_difference_and_excludes_zero_for_a_large_effect() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.0, 1.0, size=2000)
    shifted = base + 0.2 + rng.normal(0.0, 0.05, size=2000)
    difference = paired_bootstrap(shifted, base, np.random.default_rng(1), resamples=1000)
    assert difference.low < 0.2 < difference.high and difference.excludes_zero
    assert difference.difference == pytest.approx(0.2, abs=0.01) and difference.users == 2000
    same = paired_bootstrap(base + rng.normal(0.0, 0.05, size=2000), base, np.random.default_rng(2))
    assert same.low < 0.0 < same.high and not same.excludes_zero


def test_bootstrap_pairs_users_and_skips_missing_ones() -> None:
    first, second = np.array([1.0, np.nan, 0.5, 0.0]), np.array([0.0, 1.0, np.nan, 0.0])
    difference = paired_bootstrap(first, second, np.random.default_rng(0), resamples=200)
    assert difference.users == 2 and difference.difference == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes"):
        paired_bootstrap(first, second[:3], np.random.default_rng(0))
    assert np.allclose(seed_mean([np.array([1.0, np.nan]), np.array([0.0, np.nan])]), [0.5, np.nan], equal_nan=True)


# ---------------------------------------------------------------------------------------------------------
# protocols


def test_cold_only_chance_and_a_perfect_and_a_blind_scorer(frame: UtilityData) -> None:
    assert cold_only_chance(150, 20) == pytest.approx(20 / 150) and cold_only_chance(10, 20) == 1.0
    with pytest.raises(ValueError):
        cold_only_chance(0, 20)
    truth = frame.relevant.toarray().astype(float)
    perfect = cold_only(frame, lambda rows: truth[rows], k=1)
    covered = ~np.isnan(perfect)
    assert covered.sum() == 3 and np.all(perfect[covered] == 1.0)  # u1, u2, u4 hold cold items
    # k = 2 ranks both cold items: any scorer finds every one (chance is 1 too).
    assert np.all(cold_only(frame, lambda rows: np.zeros((len(rows), 6)), k=2)[covered] == 1.0)
    blind = cold_only(frame, lambda rows: np.full((len(rows), 6), -np.inf), k=1)
    assert np.all(blind[covered] == 0.0)


def test_full_catalogue_scores_cold_and_warm_users_apart(frame: UtilityData) -> None:
    truth = frame.relevant.toarray().astype(float)
    figures = full_catalogue(frame, lambda rows: truth[rows], k=1)
    assert np.nansum(~np.isnan(figures["full_cold"])) == 3 and np.nanmean(figures["full_cold"]) == 1.0
    assert (~np.isnan(figures["full_overall"])).sum() == 1  # only u3 has a held-out warm item
    top = np.array([[4, 5], [0, 1]])
    relevant = frame.relevant[:2]
    mask = np.zeros(6, dtype=bool)
    mask[[4, 5]] = True
    recall = per_user_recall(top, relevant, mask)
    expected = relevant[:, [4, 5]].sum(axis=1)
    assert recall.shape == (2,) and np.all(np.isnan(recall) == (np.asarray(expected).ravel() == 0))


# ---------------------------------------------------------------------------------------------------------
# neighbour transfer, injection, item-kNN


def test_neighbour_transfer_gives_a_cold_item_the_buyers_of_its_nearest_neighbours(frame: UtilityData,
                                                                                  content: np.ndarray) -> None:
    users, items = neighbour_transfer(content, frame, np.array([3, 3]), np.random.default_rng(0), neighbours=2)
    given = {(frame.items[i], frame.users[u]) for u, i in zip(users, items)}
    assert {u for i, u in given if i == "C1"} == {"u1", "u2", "u3"}  # the mug buyers
    assert {u for i, u in given if i == "C2"} == {"u4", "u5", "u6"}  # the lamp buyers
    # fewer rows than buyers: drawn without replacement, only from the neighbours' buyers
    users, items = neighbour_transfer(content, frame, np.array([2, 0]), np.random.default_rng(1), neighbours=2)
    assert len(users) == 2 and len(set(users)) == 2 and set(frame.users[users]) <= {"u1", "u2", "u3"}
    with pytest.raises(ValueError, match="counts"):
        neighbour_transfer(content, frame, np.array([1]), np.random.default_rng(0))


def test_injected_vectors_come_from_the_content_neighbours(frame: UtilityData, content: np.ndarray) -> None:
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    usable = np.ones(4, dtype=bool)
    knn = knn_vectors(content, frame, vectors, usable, neighbours=2)
    assert np.allclose(knn, [[1.0, 0.0], [0.0, 1.0]], atol=1e-6)
    ridge = ridge_vectors(content, frame, vectors, usable, penalty=0.01)
    assert ridge[0, 0] > ridge[0, 1] and ridge[1, 1] > ridge[1, 0]


def test_item_knn_ranks_a_cold_item_given_injected_rows(frame: UtilityData) -> None:
    pytest.importorskip("implicit")
    from tailsynth.evaluate.utility.knn import fit_item_knn

    empty = fit_item_knn(frame, real_only(frame).matrix(len(frame.users), len(frame.items)))
    assert not empty.scored[frame.cold].any()  # no rows: nobody can reach a cold item
    rows = _table([("u1", "C1"), ("u3", "C1"), ("u5", "C2"), ("u6", "C2")])
    training, stats = with_rows(frame, rows, COLD_SYNTHETIC, frame.cold, ("user", "item"))
    assert stats["added"] == 4
    model = fit_item_knn(frame, training.matrix(len(frame.users), len(frame.items)))
    assert model.scored[frame.cold].all()
    recall = cold_only(frame, model.score_rows, k=1)
    # u1, u2 bought mugs, which now share buyers with C1; u4 bought lamps, which share buyers with C2
    assert np.nanmean(recall) == 1.0
    scores = model.score_rows(_user_rows(frame, "u2"))
    assert scores[0, frame.items.get_loc("C1")] > scores[0, frame.items.get_loc("C2")]


# ---------------------------------------------------------------------------------------------------------
# tail arm (i) and the report


def test_rows_and_weights_adds_the_weights_of_e_to_the_rows_of_b(frame: UtilityData) -> None:
    rows = _table([("u3", "W2"), ("u5", "W4")])
    gated, _ = with_rows(frame, rows, 2, np.ones(len(frame.items), dtype=bool), ("user", "item"))
    both = rows_and_weights(frame, gated, added=2)
    tail = tail_rows(frame)
    real = both.origin == REAL
    assert np.allclose(both.weights[real], np.where(tail, 1.0 + 2 / tail.sum(), 1.0))
    assert np.all(both.weights[~real] == 1.0) and len(both.users) == len(gated.users)


def _outcome(rng: np.random.Generator, level: float, users: int = 400) -> dict:
    def vector() -> np.ndarray:
        return (rng.uniform(size=users) < level).astype(float)
    figures = {"cold_only": vector(), "full_cold": vector() / 5, "full_overall": np.full(users, 0.15)}
    return {"status": "ok", "rows": {"added": 10, "hits": {"activity_lift": 3.0}},
            "per_user": {"als": dict(figures), "item_knn": dict(figures)}}


def test_cold_summary_targets_and_markdown_end_with_the_recommendation() -> None:
    rng = np.random.default_rng(0)
    levels = {"none": 0.0, "demographic": 0.14, "transfer": 0.35, "ours": 0.45, "inject_knn": 0.46,
              "inject_ridge": 0.40}
    per_seed = {arm: [_outcome(rng, level) for _ in range(2)] for arm, level in levels.items()}
    per_seed["inject_knn"][0]["per_user"].pop("item_knn")
    per_seed["inject_knn"][1]["per_user"].pop("item_knn")
    cold = cold_summary(per_seed, 20 / 150, np.random.default_rng(1), resamples=200)
    cold["targets"] = cold_targets(cold)
    met = {t["claim"]: t["met"] for t in cold["targets"]}
    assert met["ours: ALS cold-only >= 90% of content-kNN injection"] is True
    assert met["ours: item_knn cold-only vs demographic (interval above 0)"] is True
    assert met["ours: above neighbour transfer on at least one recommender (interval excludes 0)"] is True
    assert not any(c["recommender"] == "item_knn" and "inject_knn" in (c["first"], c["second"])
                   for c in cold["comparisons"])
    payload = {"cold": cold, "tail": "tail", "arms": {}, "settings": {"recommender": {"k": 20}, "resamples": 200},
               "tail_intervals": tail_intervals({"a": [{"tail": np.zeros(50), "overall": np.zeros(50)}],
                                                 "e": [{"tail": np.ones(50), "overall": np.zeros(50)}]},
                                                "tail", np.random.default_rng(2), resamples=100)}
    text = "\n".join(cold_markdown(payload))
    assert "## Cold start" in text and "ours - transfer" in text and "(e) - (a)" in text
    tail_lines = text[text.index("## Recommendation"):]
    assert "- Cold items, our rows (users chosen by taste): cold-only Recall@20 0.4" in tail_lines
    assert "- Cold lever on item_knn: ours" in tail_lines
    assert text.index("## Recommendation") > text.index("## Cold targets")


def test_arms_are_compared_on_their_common_seeds_only() -> None:
    ones, zeros = np.ones(30), np.zeros(30)
    per_user = {"b": [None, {"tail": ones, "overall": ones}], "e": [{"tail": ones, "overall": ones},
                                                                   {"tail": zeros, "overall": ones}]}
    entries = tail_intervals(per_user, "tail", np.random.default_rng(0), resamples=50)
    tail = next(e for e in entries if e["group"] == "tail" and (e["first"], e["second"]) == ("b", "e"))
    assert tail["seeds"] == [1] and tail["difference"] == 1.0  # seed 0's e (all ones) is not mixed in
    assert tail_intervals({"b": [None], "e": [{"tail": ones, "overall": ones}]}, "tail",
                          np.random.default_rng(0)) == []


def test_the_overall_target_compares_our_rows_and_no_rows_on_the_same_seeds() -> None:
    rng = np.random.default_rng(0)
    per_seed = {arm: [_outcome(rng, level) for _ in range(2)] for arm, level in
                (("none", 0.0), ("demographic", 0.14), ("transfer", 0.35), ("ours", 0.45), ("inject_knn", 0.46))}
    for outcome, overall in zip(per_seed["none"], (0.20, 0.15)):  # no rows: seed 0 high, seed 1 low
        outcome["per_user"]["als"]["full_overall"] = np.full(400, overall)
    per_seed["ours"][0] = {"status": "refused", "reason": "gen.cold_start emitted no rows"}
    per_seed["ours"][1]["per_user"]["als"]["full_overall"] = np.full(400, 0.149)  # -0.7% on seed 1
    cold = cold_summary(per_seed, 20 / 150, np.random.default_rng(1), resamples=50)
    target = next(t for t in cold_targets(cold) if "overall Recall within 2%" in t["claim"])
    assert target["met"] is True and "seeds 1" in target["detail"]  # against both seeds' mean (0.175): -15%


def _plain_and_half(frame: UtilityData):  # noqa: ANN202
    from tailsynth.evaluate.utility.cold_study import weighted

    rows = _table([("u1", "C1"), ("u2", "C1"), ("u3", "C1"), ("u4", "C2"), ("u5", "C2")])
    plain, _ = with_rows(frame, rows, COLD_SYNTHETIC, frame.cold, ("user", "item"))
    return plain, weighted(plain, COLD_SYNTHETIC, 0.5)


def test_weighted_rows_add_less_confidence(frame: UtilityData) -> None:
    """`weighted` scales only the generated rows: ALS sees half the confidence in their cells."""
    plain, half = _plain_and_half(frame)
    generated = plain.origin == COLD_SYNTHETIC
    assert np.all(half.weights[generated] == 0.5) and np.all(half.weights[~generated] == plain.weights[~generated])
    assert np.all(plain.weights == 1.0)  # the input is not changed in place
    assert half.matrix(len(frame.users), len(frame.items))[:, frame.cold].sum() == pytest.approx(2.5)


def test_item_knn_is_blind_to_the_weight_of_a_cold_items_rows(frame: UtilityData) -> None:
    """A cold item's column is scaled as a whole, so item-kNN's cosine similarities do not change."""
    pytest.importorskip("implicit")
    from tailsynth.evaluate.utility.knn import fit_item_knn

    n_users, n_items = len(frame.users), len(frame.items)
    same = [fit_item_knn(frame, training.matrix(n_users, n_items), neighbours=3).similarity.toarray()
            for training in _plain_and_half(frame)]
    assert np.allclose(same[0], same[1], atol=1e-6) and same[0][:, frame.cold].any()
