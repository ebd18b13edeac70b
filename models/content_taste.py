"""The content->taste predictor: a taste vector and a popularity for items with few or no interactions.

`ContentTaste.fit(items, item_column, feature_columns, text_column, space, seed)` learns, from the warm
items of a `TasteSpace`, how an item's content (`ContentFeatures`: categorical columns + TF-IDF/SVD text)
maps to its taste vector. Two methods (`METHODS`), measured by `evaluate/bench/taste_bench.py` on warm
items held out of the predictor's fit:
- "knn" (default): the similarity^4-weighted average of the vectors of the `neighbours` warm items whose
  content is most similar (cosine) -- the probe's strongest; it needs no training and keeps the local
  structure of the space (a niche item's neighbours are niche items);
- "ridge": one linear map from content to vector (closed form), which regresses every prediction towards
  the mean of the space;
- "generator": a conditional generator trained with Lightning (`models.taste_generator`, CVAR's conditional
  VAE with GAR's ranking objective), fitted on the training pairs.
Built-in data, 3 seeds, 15% of the warm items held out, space refitted without their rows: cold-only
Recall@20 (chance 0.042) kNN k=10 0.328 +- 0.017, k=20 0.326, k=50 0.318, ridge 0.281; a BPR-trained MLP
(GAR's ranking objective without its adversary; bench only) 0.323 in 24 s against kNN's 0.15 s. Measured
again after 4e2526c with `--with-generator`: kNN k = 10 0.337 +- 0.019 in 0.1 s, the Lightning generator
0.306 +- 0.015 in 51 s, the mean of the two 0.341 (within kNN's spread): kNN stays the default.
Tail items blend their own vector with the prediction by their count n: (n * own + m * predicted) / (n + m),
m = `blend` -- with n = m interactions the item's own evidence weighs as much as its content's
(`vectors_for`). Items thinned to n = 1 / 3 / 5 buyers: own vector alone 0.100 / 0.154 / 0.188, prediction
alone 0.341 / 0.341 / 0.342, blend m = 5 0.342 / 0.346 / 0.352 (m = 3 within 0.002 of it at every n).
`predicted_counts` gives a new item the popularity of its content neighbours.

Stored without pickle: `state()` holds the featuriser's vocabularies and arrays, the warm items' content
rows and the settings; the vectors themselves come from the `TasteSpace` passed to `from_state`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from tailsynth.models.content_features import ContentFeatures
from tailsynth.models.errors import BundleError, ColdStartError, DataError
from tailsynth.models.taste import TasteSpace
from tailsynth.models.taste_generator import GeneratorSettings, TasteGenerator, fit_taste_generator

Method = Literal["knn", "ridge", "generator"]
METHODS: tuple[Method, ...] = ("knn", "ridge", "generator")
NEIGHBOURS = 10
SHARPNESS = 4.0
"""The kNN weighs a neighbour by its content similarity to this power: the closest neighbours dominate.
Cold-only Recall@20 on the bench's validation items (k = 10, 3 seeds): 0.3145 at power 1, 0.3197 at 2,
0.3276 at 4."""
BLEND = 5.0
RIDGE = 1.0
SIMILARITY_BLOCK = 2**25
"""Entries of the [chunk, I] similarity block of one kNN step (128 MiB of float32): chunk = this // I."""


@dataclass(frozen=True, eq=False)
class ContentTaste:
    """A fitted predictor (see module docstring); `space` is the taste space it predicts into."""

    space: TasteSpace
    features: ContentFeatures
    item_column: str
    warm_content: torch.Tensor
    """[I, d] content rows of `space.item_ids` (zeros for a warm item missing from the fit's items table)."""
    method: Method = "knn"
    neighbours: int = NEIGHBOURS
    blend: float = BLEND
    ridge_weights: torch.Tensor | None = None
    """[d + 1, k]: the ridge map (last row: intercept); None for the other methods."""
    generator: TasteGenerator | None = None
    """The trained generator (method "generator" only)."""

    @classmethod
    def fit(cls, items: pd.DataFrame, item_column: str, feature_columns: list[str], text_column: str | None,
            space: TasteSpace, seed: int, *, method: Method = "knn", neighbours: int = NEIGHBOURS,
            blend: float = BLEND, pairs: tuple[np.ndarray, np.ndarray] | None = None,
            device: str | torch.device = "cpu",
            generator_settings: GeneratorSettings = GeneratorSettings()) -> ContentTaste:
        """Fit on the rows of `items` whose id is a warm item of `space` (other rows are ignored). pairs:
        (user ids, item ids) of the training interactions, which the "generator" method trains on, with
        `generator_settings`."""
        if item_column not in items.columns:
            raise DataError(f"content->taste: items table has no id column {item_column!r}")
        if method not in METHODS or neighbours < 1 or blend < 0:
            raise DataError(f"content->taste: method must be one of {METHODS} (got {method!r}), neighbours >= 1 "
                            f"(got {neighbours}), blend >= 0 (got {blend})")
        positions = space.item_positions(items[item_column])
        warm_items = items[positions >= 0]
        features = ContentFeatures.fit(warm_items, feature_columns, text_column, seed)
        warm_content = torch.zeros(len(space.item_ids), features.dim)
        warm_content[torch.as_tensor(positions[positions >= 0])] = features.transform(warm_items)
        weights = _ridge(warm_content, space.item_vectors) if method == "ridge" else None
        generator = None
        if method == "generator":
            if pairs is None:
                raise DataError("content->taste: method 'generator' trains on the training pairs; none were given")
            users, items_at = space.user_positions(pairs[0]), space.item_positions(pairs[1])
            known = (users >= 0) & (items_at >= 0)
            pairs_at = torch.as_tensor(np.stack([users[known], items_at[known]], axis=1))
            accelerator = "gpu" if torch.device(device).type == "cuda" else "cpu"
            generator = fit_taste_generator(warm_content, space.item_vectors, space.user_vectors, pairs_at, seed,
                                            generator_settings, accelerator=accelerator)
        return cls(space, features, item_column, warm_content, method, int(neighbours), float(blend), weights,
                   generator)

    def predict(self, items: pd.DataFrame) -> torch.Tensor:
        """[n, k] predicted taste vectors of `items` from their content alone (an item is never its own
        neighbour). ColdStartError naming the items that have no usable content."""
        content = self._content(items)
        if self.method == "ridge":
            return torch.cat([content, torch.ones(len(content), 1)], dim=1) @ self.ridge_weights
        if self.method == "generator":
            with torch.no_grad():
                return self.generator(content)
        own = torch.as_tensor(self.space.item_positions(items[self.item_column]))
        return self._knn_chunked(content, own, self.space.item_vectors)

    def vectors_for(self, items: pd.DataFrame, counts: np.ndarray) -> torch.Tensor:
        """[n, k]: a warm item's own vector blended with its prediction by its interaction count n,
        (n * own + m * predicted) / (n + m); the prediction alone for an item without a vector here.

        An item with a vector needs no content (ColdStartError only for items with neither)."""
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != (len(items),):
            raise DataError(f"content->taste: {len(items)} items but counts of shape {counts.shape}")
        positions = self.space.item_positions(items[self.item_column])
        out = torch.zeros(len(items), self.space.dim)
        has_own = positions >= 0
        own = self.space.item_vectors[torch.as_tensor(positions[has_own], dtype=torch.long)]
        usable = self.features_known(items) | ~has_own  # predict() names new items without content
        if usable.any():
            out[torch.as_tensor(usable)] = self.predict(items[usable])
        n = torch.as_tensor(counts[has_own], dtype=torch.float32).unsqueeze(1)
        blend = torch.where(torch.as_tensor(usable[has_own]).unsqueeze(1), torch.tensor(self.blend), torch.tensor(0.0))
        weight = torch.where(n + blend > 0, n / (n + blend), torch.ones_like(n))
        out[torch.as_tensor(has_own)] = weight * own + (1 - weight) * out[torch.as_tensor(has_own)]
        return out

    def predicted_counts(self, items: pd.DataFrame, *, user_base: int | None = None) -> np.ndarray:
        """[n] int64 >= 1: how many interactions each item would have in training, from its content
        neighbours' training counts (the similarity-weighted geometric mean, so one best-seller among the
        neighbours does not decide it). `user_base`: scale from the training's users to that many users."""
        content = self._content(items)
        own = torch.as_tensor(self.space.item_positions(items[self.item_column]))
        log_counts = torch.as_tensor(np.log1p(self.space.item_counts), dtype=torch.float32).unsqueeze(1)
        counts = np.expm1(self._knn_chunked(content, own, log_counts).squeeze(1).double().numpy())
        if user_base is not None:
            counts = counts * user_base / max(len(self.space.user_ids), 1)
        return np.maximum(np.rint(counts), 1).astype(np.int64)

    def features_known(self, items: pd.DataFrame) -> np.ndarray:
        """[n] bool: the item has some content the predictor knows (a known category or a known word)."""
        return (self.features.transform(items).abs().sum(dim=1) > 0).numpy()

    def _content(self, items: pd.DataFrame) -> torch.Tensor:
        if self.item_column not in items.columns:
            raise DataError(f"content->taste: items table has no id column {self.item_column!r}")
        content = self.features.transform(items)
        empty = (content.abs().sum(dim=1) == 0).numpy()
        if empty.any():
            ids = items[self.item_column].to_numpy()[empty]
            raise ColdStartError(
                f"{int(empty.sum())} item(s) have neither interactions nor content the taste predictor knows "
                f"(feature columns {list(self.features.feature_columns)} missing or unseen"
                f"{f', text column {self.features.text_column!r} empty or without a known word' if self.features.text_column else ''}"
                f"): {[str(i) for i in ids[:10]]}{' ...' if len(ids) > 10 else ''}")
        return content

    def _knn_chunked(self, content: torch.Tensor, own: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """`_knn` over row chunks, so the similarity block stays within SIMILARITY_BLOCK entries."""
        chunk = max(1, SIMILARITY_BLOCK // max(len(self.warm_content), 1))
        parts = [self._knn(content[start:start + chunk], own[start:start + chunk], values)
                 for start in range(0, len(content), chunk)]
        return torch.cat(parts) if parts else torch.zeros(0, values.shape[1])

    def _knn(self, content: torch.Tensor, own: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Similarity-weighted mean of `values` [I, c] over each row's `neighbours` most similar warm items."""
        similarity = content @ self.warm_content.T
        mine = own >= 0
        similarity[mine.nonzero().squeeze(1), own[mine]] = float("-inf")  # never its own neighbour
        k = min(self.neighbours, similarity.shape[1] - 1 if mine.any() else similarity.shape[1])
        top, index = similarity.topk(max(k, 1), dim=1)
        weight = top.clamp_min(0).pow(SHARPNESS)
        weight = torch.where(weight.sum(dim=1, keepdim=True) > 0, weight, torch.ones_like(weight))
        return (weight.unsqueeze(2) * values[index]).sum(dim=1) / weight.sum(dim=1, keepdim=True)

    def state(self) -> dict[str, Any]:
        """Tensors, lists, strings and numbers only (safe for `torch.load(weights_only=True)`)."""
        return {"features": self.features.state(), "item_column": self.item_column,
                "warm_content": self.warm_content.clone(), "method": self.method, "neighbours": self.neighbours,
                "blend": self.blend, "ridge_weights": self.ridge_weights,
                "generator": None if self.generator is None else {
                    "settings": asdict(self.generator.settings), "weights": self.generator.state_dict()}}

    @classmethod
    def from_state(cls, state: dict[str, Any], space: TasteSpace) -> ContentTaste:
        """The predictor `state()` described, predicting into `space` (BundleError when malformed)."""
        try:
            features = ContentFeatures.from_state(state["features"])
            generator = None
            if state.get("generator") is not None:
                generator = TasteGenerator(features.dim, space.dim, GeneratorSettings(**state["generator"]["settings"]))
                generator.load_state_dict(state["generator"]["weights"])
                generator.eval()
            content = cls(space, features, str(state["item_column"]), state["warm_content"].float(), state["method"],
                          int(state["neighbours"]), float(state["blend"]), state["ridge_weights"], generator)
        except (KeyError, TypeError, AttributeError, ValueError, RuntimeError) as exc:
            raise BundleError(f"content->taste state is malformed ({type(exc).__name__}: {exc})") from None
        if content.warm_content.shape != (len(space.item_ids), content.features.dim) or content.method not in METHODS \
                or (content.method == "generator") != (content.generator is not None):
            raise BundleError(f"content->taste state is malformed: warm content {tuple(content.warm_content.shape)} "
                              f"for {len(space.item_ids)} items of {content.features.dim} features, method "
                              f"{content.method!r}")
        return content


def _ridge(content: torch.Tensor, vectors: torch.Tensor, penalty: float = RIDGE) -> torch.Tensor:
    """[d + 1, k] closed-form ridge map from content (+ intercept, not penalised) to vectors."""
    design = torch.cat([content, torch.ones(len(content), 1)], dim=1).double()
    gram = design.T @ design + penalty * torch.diag(torch.cat([torch.ones(content.shape[1]), torch.zeros(1)])).double()
    return torch.linalg.solve(gram, design.T @ vectors.double()).float()
