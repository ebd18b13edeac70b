"""The downstream recommender of the utility benchmark (`implicit`'s ALS or BPR) and its item scores.

`fit_factors` trains one model on an arm's matrix and returns plain numpy factors; `content_factors` is
the cold-start content baseline: a ridge regression from item features to the warm items' factors
(van den Oord et al. 2013, "Deep content-based music recommendation", with a linear map), applied to
the cold-start items; `ranked` turns factors into every evaluated user's top-k list.

Items without any training row in an arm get no score (ranked never): a pure CF model has nothing to rank
them by, so (f) reports the zero. implicit is an optional dependency (`tailsynth[utility]`), imported here
only when a model is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailsynth.evaluate.utility.data import UtilityData
from tailsynth.evaluate.utility.ranking import ranked_in_batches

INSTALL_HINT = "the utility benchmark needs the optional extra: pip install 'tailsynth[utility]' (implicit)"


@dataclass(frozen=True)
class RecommenderConfig:
    """The recommender every arm trains (library defaults except the small factor count and iterations)."""

    model: Literal["als", "bpr"] = "als"
    factors: int = 32
    iterations: int = 10
    regularization: float = 0.01
    alpha: float | Literal["auto"] = "auto"
    """ALS confidence per interaction. "auto": (cells - nonzeros) / interactions of the real training matrix,
    so observed and unobserved cells weigh the same in total (the heuristic of implicit's author, issue #74);
    computed once from the training rows, never from held-out data, and used for every arm."""
    learning_rate: float = 0.01
    """BPR only. BPR ignores confidence values (implicit issue #197): arm (e) then equals (a)."""
    ridge: float = 1.0
    """L2 strength of the content baseline's feature -> factor map."""
    threads: int = 0
    """implicit's worker threads (0: all cores)."""
    k: int = 20


@dataclass(frozen=True, eq=False)
class Factors:
    users: np.ndarray
    """float32 [users, f]"""
    items: np.ndarray
    """float32 [items, f]"""
    scored: np.ndarray
    """bool [items]: items the model can rank (training rows, or mapped factors)."""


def auto_alpha(matrix: sp.csr_matrix) -> float:
    """(cells - nonzeros) / sum of values: observed and unobserved cells weigh the same in total."""
    cells = matrix.shape[0] * matrix.shape[1]
    return float((cells - matrix.nnz) / max(float(matrix.sum()), 1.0))


def fit_factors(matrix: sp.csr_matrix, config: RecommenderConfig, alpha: float, seed: int) -> Factors:
    """Train the configured model on `matrix` [users, items] (summed row weights) with seed `seed`."""
    try:
        from implicit.bpr import BayesianPersonalizedRanking
        from implicit.als import AlternatingLeastSquares
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    if config.model == "als":
        model = AlternatingLeastSquares(factors=config.factors, regularization=config.regularization, alpha=alpha,
                                        iterations=config.iterations, random_state=seed,
                                        num_threads=config.threads, use_gpu=False)
    elif config.model == "bpr":
        model = BayesianPersonalizedRanking(factors=config.factors, learning_rate=config.learning_rate,
                                            regularization=config.regularization, iterations=config.iterations,
                                            random_state=seed, num_threads=config.threads, use_gpu=False)
    else:
        raise ValueError(f"recommender model: expected 'als' or 'bpr', got {config.model!r}")
    model.fit(matrix.tocsr(), show_progress=False)
    scored = np.asarray(matrix.getnnz(axis=0)).ravel() > 0
    return Factors(np.asarray(model.user_factors, dtype=np.float32), np.asarray(model.item_factors, dtype=np.float32),
                   scored)


def content_factors(data: UtilityData, factors: Factors, ridge: float) -> Factors:
    """`factors` with the cold-start items' factors predicted from their features by ridge regression.

    Fitted on the warm items the model scores: one-hot categorical features and standardised numerical
    ones, centred (so the intercept is not penalised); W = (X'X + ridge I)^-1 X'Y.
    """
    features = _design(data.item_features)
    if features.shape[1] == 0:
        raise ValueError("content baseline: the bundle's items table has no item feature columns")
    fit_rows = factors.scored & ~data.cold
    x_mean, y_mean = features[fit_rows].mean(axis=0), factors.items[fit_rows].mean(axis=0)
    x, y = features[fit_rows] - x_mean, factors.items[fit_rows] - y_mean
    weights = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
    items = factors.items.copy()
    items[data.cold] = (features[data.cold] - x_mean) @ weights + y_mean
    return Factors(factors.users, items.astype(np.float32), factors.scored | data.cold)


def ranked(data: UtilityData, factors: Factors, k: int) -> np.ndarray:
    """Top-k item positions [eval users, k] (utility_metrics.NO_ITEM where fewer can be ranked)."""
    users = factors.users[data.eval_users]
    unscored = ~factors.scored

    def scores(rows: np.ndarray) -> np.ndarray:
        block = users[rows] @ factors.items.T
        block[:, unscored] = -np.inf
        return block

    return ranked_in_batches(scores, data.excluded, k)


def popularity_ranked(data: UtilityData, k: int) -> np.ndarray:
    """Top-k by real training popularity (a reference row: no personalisation, no cold items)."""
    counts = np.bincount(data.train_items, minlength=len(data.items)).astype(np.float32)
    counts[counts == 0] = -np.inf
    return ranked_in_batches(lambda rows: np.broadcast_to(counts, (len(rows), counts.size)).copy(), data.excluded, k)


def _design(frame: pd.DataFrame) -> np.ndarray:
    """float64 [items, features]: one-hot columns for categorical features, z-scores for numerical ones."""
    parts = []
    for name in frame.columns:  # a handful of feature columns
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object or column.dtype == bool:
            parts.append(pd.get_dummies(column.astype(object), dummy_na=column.isna().any()).to_numpy(np.float64))
        else:
            values = pd.to_numeric(column, errors="coerce").astype(np.float64).to_numpy()
            values = np.where(np.isnan(values), np.nanmean(values), values)
            parts.append(((values - values.mean()) / (values.std() or 1.0))[:, None])
    return np.concatenate(parts, axis=1) if parts else np.empty((len(frame), 0))
