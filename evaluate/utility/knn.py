"""The second downstream recommender: item-item cosine kNN (`implicit.nearest_neighbours.CosineRecommender`).

No vector can be written into it: an item is reached only through the users the training rows give it, so a
cold item with no rows is never ranked, and rows are the only way to carry content knowledge into it.

Scores are implicit's own (`NearestNeighboursScorer`): score(u, j) = sum over u's items i of x_ui sim(i, j),
where sim keeps each item's K nearest items (the fitted `similarity`, rows by item) - here as one sparse
product per batch of users so every item gets a score and the shared protocols rank them. A user's profile
is their *real* training items, weight 1: synthetic rows shape the similarities but are not part of anyone's
history (in implicit's recommend they would be filtered as already liked). An item's similarity to itself
is dropped, as implicit's scorer does for the user's own items. K is implicit's default (20), not tuned.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tailsynth.evaluate.utility.data import UtilityData
from tailsynth.evaluate.utility.recommenders import INSTALL_HINT

NEIGHBOURS = 20


@dataclass(frozen=True, eq=False)
class ItemKNN:
    similarity: sp.csr_matrix
    """float32 [items, items]: row i holds item i's K nearest items and their cosine, diagonal dropped."""
    profile: sp.csr_matrix
    """float32 [eval users, items]: each evaluated user's real training items (1 each)."""
    scored: np.ndarray
    """bool [items]: items that are some item's neighbour (reachable at all)."""

    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        """float [b, items] for rows of `data.eval_users`; -inf where an item is reachable by nobody."""
        block = np.asarray((self.profile[rows] @ self.similarity).todense(), dtype=np.float64)
        block[:, ~self.scored] = -np.inf
        return block


def fit_item_knn(data: UtilityData, matrix: sp.csr_matrix, neighbours: int = NEIGHBOURS,
                 threads: int = 0) -> ItemKNN:
    """Cosine kNN fitted on an arm's matrix [users, items] (summed row weights)."""
    try:
        from implicit.nearest_neighbours import CosineRecommender
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    model = CosineRecommender(K=neighbours, num_threads=threads)
    with warnings.catch_warnings():
        # CosineRecommender.fit normalises the transpose itself and hands its own kernel a COO matrix, which
        # then warns "expects CSR input" on every fit: implicit's internals, not our input (a CSR matrix).
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        model.fit(matrix.tocsr().astype(np.float32), show_progress=False)
    similarity = sp.csr_matrix(model.similarity, dtype=np.float32)
    similarity.setdiag(0.0)
    similarity.eliminate_zeros()
    scored = np.asarray(similarity.getnnz(axis=0)).ravel() > 0
    return ItemKNN(similarity, data.excluded.astype(np.float32).tocsr(), scored)
