"""The cold-start protocols of the utility benchmark, as per-user Recall@k vectors (the bootstrap resamples them).

Two protocols, both on the evaluation frame's users and relevance (`utility.data`):
- cold-only: each user with at least one held-out interaction with a cold-start item ranks only the cold
  items (none is ever a training item of anyone); Recall@k over their cold items. A random ranking finds
  each cold item with probability k / #cold items, so chance = min(1, k / #cold items) for every user and
  the relative figure is recall / chance.
- full catalogue: every evaluated user ranks every item (warm and cold) minus their training items; cold
  Recall@k over their cold items (users with one) and overall Recall@k over their warm items (users with
  one), so cold items becoming visible can be weighed against what the warm items lose.

A scorer is `score_rows(user_rows) -> float [b, items]` for rows of `data.eval_users`, -inf for an item the
model cannot rank. Per-user vectors hold NaN for users the figure does not cover; `mean` skips them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from tailsynth.evaluate.utility.data import UtilityData
from tailsynth.evaluate.utility.ranking import NO_ITEM, ranked_in_batches, top_k

Scorer = Callable[[np.ndarray], np.ndarray]
PROTOCOL_FIGURES = ("cold_only", "full_cold", "full_overall")
"""cold-only Recall@k; full-catalogue Recall@k on the cold items and on the warm items (overall)."""


def per_user_recall(top: np.ndarray, relevant: sp.csr_matrix, mask: np.ndarray) -> np.ndarray:
    """float [users]: hits in `top` [users, k] among each user's relevant items in bool `mask` [items] / their
    count; NaN for a user without a relevant item in the mask. `top` indexes the same columns as `relevant`."""
    counts = np.asarray(relevant[:, np.flatnonzero(mask)].sum(axis=1)).ravel().astype(np.float64)
    valid = top != NO_ITEM
    in_mask = valid & mask[np.where(valid, top, 0)]
    rows = np.broadcast_to(np.arange(top.shape[0])[:, None], top.shape)[in_mask]
    picked = relevant[rows, top[in_mask]]  # np.matrix [1, n], or a sparse matrix when n is 0
    hit = (picked.toarray() if sp.issparse(picked) else np.asarray(picked)).ravel().astype(np.float64)
    found = np.bincount(rows, weights=hit, minlength=top.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, found / counts, np.nan)


def cold_only_chance(n_cold: int, k: int) -> float:
    """Expected Recall@k of a random ranking of `n_cold` cold items: min(1, k / n_cold)."""
    if n_cold < 1:
        raise ValueError("cold-only chance: there are no cold items")
    return min(1.0, k / n_cold)


def cold_only(data: UtilityData, score_rows: Scorer, k: int) -> np.ndarray:
    """Per-user cold-only Recall@k [eval users] (NaN for users without a held-out cold item)."""
    cold = np.flatnonzero(data.cold)
    if cold.size == 0:
        raise ValueError("cold-only protocol: the frame holds no cold-start items")
    relevant = data.relevant[:, cold]
    users = np.flatnonzero(np.asarray(relevant.sum(axis=1)).ravel() > 0)
    out = np.full(len(data.eval_users), np.nan)
    if users.size == 0:
        return out
    scores = score_rows(users)[:, cold]
    top = top_k(scores, np.zeros(scores.shape, dtype=bool), k)
    out[users] = per_user_recall(top, relevant[users], np.ones(cold.size, dtype=bool))
    return out


def full_catalogue(data: UtilityData, score_rows: Scorer, k: int) -> dict[str, np.ndarray]:
    """{"full_cold", "full_overall"}: per-user Recall@k on cold and warm items, every item ranked."""
    top = ranked_in_batches(score_rows, data.excluded, k)
    return {"full_cold": per_user_recall(top, data.relevant, data.cold),
            "full_overall": per_user_recall(top, data.relevant, ~data.cold)}


def protocols(data: UtilityData, score_rows: Scorer, k: int) -> dict[str, np.ndarray]:
    """Every figure of PROTOCOL_FIGURES as a per-user vector [eval users]."""
    return {"cold_only": cold_only(data, score_rows, k), **full_catalogue(data, score_rows, k)}
