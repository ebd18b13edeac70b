"""The taste space and the content->taste predictor (issue 19, parts 1-3): deterministic, stored without
pickle, recovering a planted structure, blending tail items, clear errors, and carried by the bundle."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from tailsynth import gen
from tailsynth.models.bundle import MANIFEST, read_manifest
from tailsynth.models.content_features import ContentFeatures
from tailsynth.models.content_taste import ContentTaste
from tailsynth.models.errors import BundleError, ColdStartError, ConfigError, DataError
from tailsynth.models.taste import TasteSpace, fit_taste_space
from tailsynth.models.taste_generator import GeneratorSettings
from tailsynth.train.config import load_config
from tailsynth.train.fit import fit

REPO = Path(__file__).resolve().parents[1]


def planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Two tastes: users 0-29 buy the "red heart" items R0-R9, users 30-59 the "blue garden" items B0-B9
    (each user 6 random items of their side; R0 and B0 are best-sellers). Ids are text for the items,
    integers for the users."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for user in range(60):
        side = "R" if user < 30 else "B"
        chosen = rng.choice(10, size=6, replace=False)
        users += [user] * 7
        items += [f"{side}{i}" for i in chosen] + [f"{side}0"]
    catalogue = pd.DataFrame({
        "item": [f"R{i}" for i in range(10)] + [f"B{i}" for i in range(10)],
        "category": ["decor"] * 10 + ["garden"] * 10,
        "text": [f"red heart lace {word}" for word in "abcdefghij"] + [f"blue garden tin {word}" for word in "abcdefghij"],
    })
    return np.asarray(users, dtype=np.int64), np.asarray(items, dtype=object), catalogue


@pytest.fixture(scope="module")
def space() -> TasteSpace:
    users, items, _ = planted()
    return fit_taste_space(users, items, dim=8, seed=3)


@pytest.fixture(scope="module")
def content(space: TasteSpace) -> ContentTaste:
    return ContentTaste.fit(planted()[2], "item", ["category"], "text", space, seed=0, neighbours=3)


def reloaded(state: dict) -> dict:
    """`state` through torch.save / torch.load(weights_only=True): no pickle of our objects."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_same_seed_same_vectors() -> None:
    users, items, _ = planted()
    first, second = (fit_taste_space(users, items, dim=8, seed=7) for _ in range(2))
    assert torch.equal(first.user_vectors, second.user_vectors)
    assert torch.equal(first.item_vectors, second.item_vectors)
    assert first.user_vectors.dtype == torch.float32 and first.user_vectors.shape == (60, 8)
    pairs = pd.DataFrame({"user": users, "item": items}).drop_duplicates()
    assert list(first.item_counts[first.item_positions(np.array(["R0", "B3"], dtype=object))]) == \
        [int((pairs["item"] == "R0").sum()), int((pairs["item"] == "B3").sum())]
    assert first.user_activity.sum() == len(pairs) and first.user_ids.dtype == np.int64


def test_activity_counts_distinct_items_not_repeat_rows() -> None:
    """A user who buys one item ten times has activity 1, as in the binarised matrix and the validation split."""
    users = np.array([1] * 10 + [2, 2, 3])
    items = np.array(["a"] * 10 + ["a", "b", "b"], dtype=object)
    space = fit_taste_space(users, items, dim=2, seed=0)
    assert space.user_activity.tolist() == [1, 2, 1]
    assert space.item_counts.tolist() == [2, 2]


def test_fit_leaves_the_global_random_state_alone() -> None:
    users, items, _ = planted()
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    fit_taste_space(users, items, dim=8, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_space_tells_the_two_tastes_apart(space: TasteSpace) -> None:
    scores = space.user_vectors @ space.item_vectors.T
    red = torch.as_tensor(space.item_positions(np.array([f"R{i}" for i in range(10)], dtype=object)))
    red_fit = scores[:, red].mean(dim=1) > scores[:, ~torch.isin(torch.arange(20), red)].mean(dim=1)
    assert red_fit[:30].all() and not red_fit[30:].any()


@pytest.mark.parametrize("ids", [np.array([5, 3, 5, 9]), np.array(["u5", "u3", "u5", "u9"], dtype=object),
                                 np.array([5.5, 3.0, 5.5, 9.25])])
def test_state_round_trip_without_pickle(ids: np.ndarray) -> None:
    space = fit_taste_space(ids, np.array(["a", "b", "b", "c"], dtype=object), dim=2, seed=0)
    back = TasteSpace.from_state(reloaded(space.state()))
    assert np.array_equal(back.user_ids, space.user_ids) and back.user_ids.dtype.kind == space.user_ids.dtype.kind
    assert np.array_equal(back.item_ids, space.item_ids)
    assert torch.equal(back.user_vectors, space.user_vectors) and torch.equal(back.item_vectors, space.item_vectors)
    assert np.array_equal(back.user_activity, space.user_activity)
    assert np.array_equal(back.item_counts, space.item_counts)


def test_predictor_round_trip_without_pickle(content: ContentTaste, space: TasteSpace) -> None:
    back = ContentTaste.from_state(reloaded(content.state()), TasteSpace.from_state(reloaded(space.state())))
    items = planted()[2]
    assert torch.equal(back.predict(items), content.predict(items))
    ridge = ContentTaste.fit(items, "item", ["category"], "text", space, seed=0, method="ridge")
    assert torch.allclose(ContentTaste.from_state(reloaded(ridge.state()), space).predict(items), ridge.predict(items))


def test_generator_method_is_seeded_stored_without_pickle_and_finds_the_taste(space: TasteSpace) -> None:
    """The Lightning generator (models.taste_generator): same seed, same vectors; through torch.save/load
    (weights_only) it predicts the same; a new item's vector ranks its side's users above the other's."""
    users, items, catalogue = planted()
    quick = GeneratorSettings(hidden=32, latent=4, steps=150, batch=128, learning_rate=1e-2)
    first, second = (ContentTaste.fit(catalogue, "item", ["category"], "text", space, seed=5, method="generator",
                                      pairs=(users, items), generator_settings=quick) for _ in range(2))
    new = pd.DataFrame({"item": ["N1", "N2"], "category": ["decor", "garden"],
                        "text": ["red heart lace lantern", "blue garden tin bucket"]})
    assert torch.equal(first.predict(new), second.predict(new))
    back = ContentTaste.from_state(reloaded(first.state()), space)
    assert back.method == "generator" and torch.equal(back.predict(new), first.predict(new))
    scores = space.user_vectors @ first.predict(new).T
    assert (scores[:30, 0] > scores[:30, 1]).float().mean() > 0.9
    assert (scores[30:, 1] > scores[30:, 0]).float().mean() > 0.9
    with pytest.raises(DataError, match="training pairs"):
        ContentTaste.fit(catalogue, "item", ["category"], "text", space, seed=5, method="generator")


def test_text_features_match_scikit_learn() -> None:
    """The stored TF-IDF (vocabulary + idf) reproduces TfidfVectorizer's transform before the SVD."""
    texts = pd.DataFrame({"item": list("abcd"), "text": ["red heart", "red red lace", "blue tin", None]})
    features = ContentFeatures.fit(texts, [], "text", seed=0)
    expected = TfidfVectorizer(sublinear_tf=True).fit(texts["text"].fillna("")).transform(texts["text"].fillna(""))
    expected = torch.nn.functional.normalize(torch.as_tensor(expected.toarray() @ features.components.numpy().T,
                                                             dtype=torch.float32), dim=1)
    assert torch.allclose(features.transform(texts), expected, atol=1e-6)


def test_predictor_recovers_the_planted_structure(content: ContentTaste, space: TasteSpace) -> None:
    new = pd.DataFrame({"item": ["N1", "N2"], "category": ["decor", "garden"],
                        "text": ["red heart lace lantern", "blue garden tin bucket"]})
    predicted = content.predict(new)
    scores = space.user_vectors @ predicted.T  # [users, 2]
    assert (scores[:30, 0] > scores[:30, 1]).all() and (scores[30:, 1] > scores[30:, 0]).all()
    # Text alone (no category) still finds the side.
    text_only = ContentTaste.fit(planted()[2], "item", [], "text", space, seed=0, neighbours=3)
    again = space.user_vectors @ text_only.predict(new).T
    assert (again[:30, 0] > again[:30, 1]).all()


def test_predicted_counts_follow_the_neighbours(content: ContentTaste) -> None:
    """An item whose text matches the best-seller R0 only gets more than one matching a 6-buyer item."""
    new = pd.DataFrame({"item": ["N1"], "category": [None], "text": ["red heart lace a"]})
    counts = content.predicted_counts(new)
    assert counts.dtype == np.int64 and counts[0] >= 1
    assert content.predicted_counts(new, user_base=600)[0] >= 9 * counts[0]


def test_blend_weighs_own_vector_by_interaction_count(content: ContentTaste, space: TasteSpace) -> None:
    items = pd.DataFrame({"item": ["R3", "R3", "R3", "N1"], "category": ["decor"] * 4,
                          "text": ["red heart lace d"] * 3 + ["red heart lace"]})
    counts = np.array([0, 5, 20, 0])
    vectors = content.vectors_for(items, counts)
    own = space.item_vectors[space.item_positions(np.array(["R3"], dtype=object))[0]]
    predicted = content.predict(items)
    m = content.blend
    assert torch.allclose(vectors[0], predicted[0])
    assert torch.allclose(vectors[1], (5 * own + m * predicted[1]) / (5 + m), atol=1e-6)
    assert torch.allclose(vectors[2], (20 * own + m * predicted[2]) / (20 + m), atol=1e-6)
    assert torch.allclose(vectors[3], predicted[3])  # a new item: the prediction alone


def test_an_item_is_never_its_own_neighbour(content: ContentTaste, space: TasteSpace) -> None:
    item = planted()[2].iloc[[3]]
    alone = replace(content, neighbours=1).predict(item)
    own = space.item_vectors[space.item_positions(item["item"])[0]]
    assert not torch.allclose(alone[0], own)


def test_item_with_neither_content_nor_interactions_is_named(content: ContentTaste) -> None:
    items = pd.DataFrame({"item": ["R1", "X9", "X8"], "category": ["decor", None, "unknown"],
                          "text": ["red", "", "zzz qqq"]})
    with pytest.raises(ColdStartError, match=r"neither interactions nor content.*\['X9', 'X8'\]"):
        content.predict(items)
    with pytest.raises(ColdStartError, match=r"\['X9', 'X8'\]"):
        content.vectors_for(items, np.array([4, 0, 0]))
    # A warm item without usable content keeps its own vector.
    warm = pd.DataFrame({"item": ["R1"], "category": [None], "text": [""]})
    assert torch.equal(content.vectors_for(warm, np.array([4]))[0], content.space.item_vectors[
        content.space.item_positions(warm["item"])[0]])


def test_bad_inputs_are_data_errors(space: TasteSpace, content: ContentTaste) -> None:
    with pytest.raises(DataError, match="one of each per row"):
        fit_taste_space(np.array([1, 2]), np.array(["a"]), seed=0)
    with pytest.raises(DataError, match="no training interactions"):
        fit_taste_space(np.array([]), np.array([]), seed=0)
    with pytest.raises(DataError, match=r"no column\(s\) \['colour'\]"):
        ContentTaste.fit(planted()[2], "item", ["colour"], "text", space, seed=0)
    with pytest.raises(DataError, match="counts of shape"):
        content.vectors_for(planted()[2], np.array([1, 2]))


def test_previous_bundle_format_gets_the_retrain_message(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text(json.dumps({"format_version": 2, "meta": {"versions": {"tailsynth": "0.1.0"}}}))
    with pytest.raises(BundleError, match=r"format version 2 is not supported.*reads version 3\); retrain the model"):
        read_manifest(tmp_path)


def test_text_column_may_not_be_modelled() -> None:
    with pytest.raises(ConfigError, match="text: 'category' is also listed under columns"):
        load_config(REPO / "configs" / "tiny.yaml", ["data.items.text=category"])


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> gen.Bundle:
    """One tiny CTGAN run: 640 training rows, one epoch, no monitor (about a second)."""
    config = load_config(REPO / "configs" / "tiny.yaml",
                         ["trainer.max_epochs=1", "data.max_train_rows=640", "monitor.enabled=false"])
    return gen.load(fit(replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="taste")), device="cpu")


def test_bundle_carries_the_space_of_its_training_rows(tiny_bundle: gen.Bundle) -> None:
    train = tiny_bundle.table("train")
    space = tiny_bundle.taste
    assert np.array_equal(space.user_ids, np.unique(train["CustomerID"].to_numpy("int64")))
    assert np.array_equal(space.item_ids, np.unique(train["StockCode"].astype(str)))
    assert space.item_counts.sum() == len(train[["CustomerID", "StockCode"]].drop_duplicates()) < len(train)
    state = torch.load(tiny_bundle.path / "taste.pt", weights_only=True)
    assert torch.equal(TasteSpace.from_state(state["space"]).user_vectors, space.user_vectors)


def test_bundle_predicts_new_items(tiny_bundle: gen.Bundle) -> None:
    items = tiny_bundle.table("items")
    assert "description" in items.columns  # data.items.text is kept for the predictor
    new = items[~items["StockCode"].isin(tiny_bundle.taste.item_ids)]
    vectors = tiny_bundle.content.vectors_for(new, np.zeros(len(new)))
    assert vectors.shape == (len(new), tiny_bundle.taste.dim) and torch.isfinite(vectors).all()
    assert (tiny_bundle.content.predicted_counts(new) >= 1).all()


def test_bundle_without_taste_says_retrain(tiny_bundle: gen.Bundle, tmp_path: Path) -> None:
    manifest = {key: value for key, value in tiny_bundle.manifest.items() if key != "taste"}
    bare = replace(tiny_bundle, manifest=manifest)
    with pytest.raises(BundleError, match="no taste space .*retrain"):
        bare.taste  # noqa: B018
