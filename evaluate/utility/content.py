"""What the cold-start baselines read from item content: one embedding, two injections, neighbour transfer.

- `content_matrix`: [items, d] content rows of the frame's items (warm then cold), unit norm where the item
  has content, so a dot product is a cosine. The bundle's content featuriser (`bundle.content.features`:
  one-hot categorical columns + TF-IDF/truncated SVD of the text, fitted on the warm items at training time)
  when it has one; else the same featuriser (`models.content_features`, scikit-learn) fitted here on the
  warm items' rows only. Cold items' content is only transformed, never fitted on.
- `knn_vectors` / `ridge_vectors`: vectors for the cold items from the warm items' vectors (any [warm, f]
  array, e.g. ALS item factors): the similarity^power-weighted mean over the `neighbours` most similar warm
  items, or a ridge map content -> vector. Written into a recommender's item factors they are the
  direct-injection ceilings rows aim at.
- `neighbour_transfer`: the non-generative row baseline: each cold item gets users drawn without replacement
  in proportion to sum over its `neighbours` content-nearest warm items n of similarity(item, n)^power x
  [user bought n] - the buyers of its nearest neighbours, the closest weighing most.
Defaults are fixed, never tuned on the scored split: kNN 10 neighbours, power 4 (the content predictor's
own settings, chosen on its validation items, `models.content_taste`); transfer 20 neighbours, power 2 (the
issue's probe rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailsynth.evaluate.utility.data import UtilityData

INJECT_NEIGHBOURS = 10
INJECT_POWER = 4.0
TRANSFER_NEIGHBOURS = 20
TRANSFER_POWER = 2.0


def content_matrix(items: pd.DataFrame, data: UtilityData, item_column: str, *, featuriser: Any = None,
                   feature_columns: list[str] | None = None, text_column: str | None = None,
                   seed: int = 0) -> np.ndarray:
    """float32 [frame items, d]: content rows in `data.items` order (see module docstring).

    items: a table with `item_column` and the content columns, holding every frame item (others ignored);
    featuriser: a fitted `ContentFeatures` (the bundle's), else one is fitted on the warm items' rows.
    """
    table = items.drop_duplicates(item_column).set_index(item_column)
    missing = data.items[~data.items.isin(table.index)]
    if len(missing):
        raise ValueError(f"content: the items table lacks {len(missing)} frame item(s), e.g. {list(missing[:5])}")
    frame = table.reindex(data.items).reset_index()
    if featuriser is None:
        from tailsynth.models.content_features import ContentFeatures

        featuriser = ContentFeatures.fit(frame.iloc[:data.n_warm], list(feature_columns or []), text_column, seed)
    return featuriser.transform(frame).numpy().astype(np.float32)


def nearest_warm(content: np.ndarray, data: UtilityData, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """(warm positions [cold, m], similarities [cold, m] clipped at 0) of each cold item's m nearest warm items."""
    similarity = content[data.cold] @ content[:data.n_warm].T
    m = min(neighbours, data.n_warm)
    index = np.argpartition(-similarity, m - 1, axis=1)[:, :m]
    return index, np.clip(np.take_along_axis(similarity, index, axis=1), 0.0, None)


def knn_vectors(content: np.ndarray, data: UtilityData, warm_vectors: np.ndarray, usable: np.ndarray,
                neighbours: int = INJECT_NEIGHBOURS, power: float = INJECT_POWER) -> np.ndarray:
    """[cold, f]: similarity^power-weighted mean of the nearest usable warm items' vectors.

    warm_vectors [warm, f]; usable bool [warm]: items with a trained vector (others are never neighbours)."""
    masked = content.copy()
    masked[:data.n_warm][~usable] = 0.0
    index, similarity = nearest_warm(masked, data, neighbours)
    weight = similarity ** power
    weight = np.where(weight.sum(axis=1, keepdims=True) > 0, weight, 1.0)
    return (weight[:, :, None] * warm_vectors[index]).sum(axis=1) / weight.sum(axis=1, keepdims=True)


def ridge_vectors(content: np.ndarray, data: UtilityData, warm_vectors: np.ndarray, usable: np.ndarray,
                  penalty: float = 1.0) -> np.ndarray:
    """[cold, f]: a ridge map content -> vector fitted on the usable warm items (centred: no penalised intercept)."""
    x = content[:data.n_warm][usable].astype(np.float64)
    y = warm_vectors[usable].astype(np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    weights = np.linalg.solve((x - x_mean).T @ (x - x_mean) + penalty * np.eye(x.shape[1]), (x - x_mean).T @ (y - y_mean))
    return (content[data.cold] - x_mean) @ weights + y_mean


def neighbour_transfer(content: np.ndarray, data: UtilityData, counts: np.ndarray, rng: np.random.Generator,
                       neighbours: int = TRANSFER_NEIGHBOURS,
                       power: float = TRANSFER_POWER) -> tuple[np.ndarray, np.ndarray]:
    """(user positions, item positions) of `counts[c]` rows for each cold item c (see module docstring).

    Drawn without replacement by the Gumbel-top-k trick (keys log score + Gumbel noise, each item taking its
    highest keys); an item whose neighbours have fewer buyers than its count gets them all. Only training
    rows are read."""
    counts = np.asarray(counts, dtype=np.int64)
    cold = np.flatnonzero(data.cold)
    if counts.shape != (cold.size,):
        raise ValueError(f"neighbour transfer: {cold.size} cold items but counts of shape {counts.shape}")
    index, similarity = nearest_warm(content, data, neighbours)
    rows = np.repeat(np.arange(cold.size), index.shape[1])
    weights = sp.csr_matrix((similarity.ravel() ** power, (rows, index.ravel())), shape=(cold.size, data.n_warm))
    buyers = sp.csr_matrix((np.ones(data.train_items.size), (data.train_items, data.train_users)),
                           shape=(data.n_warm, len(data.users)))
    buyers.data[:] = 1.0  # a user counts once per neighbour, however often they bought it
    score = np.asarray((weights @ buyers).todense())
    with np.errstate(divide="ignore"):
        keys = np.log(score) + rng.gumbel(size=score.shape)
    order = np.argsort(-keys, axis=1, kind="stable")
    ranks = np.arange(order.shape[1])[None, :]
    take = (ranks < counts[:, None]) & np.isfinite(np.take_along_axis(keys, order, axis=1))
    item_rows, rank_cols = np.nonzero(take)
    return order[item_rows, rank_cols].astype(np.int64), cold[item_rows].astype(np.int64)
