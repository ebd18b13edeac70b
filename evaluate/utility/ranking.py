"""Top-k ranking metrics of a recommender, vectorised over users: Recall@k, NDCG@k and catalogue coverage.

Pure functions on arrays; no model code. The conventions are those of `torchmetrics.retrieval` (a test
checks them against it on a fixed case), which is not used here because it is a dev-only dependency (neither
the core install nor the `utility` extra has it) and it scores one flat (query, item) list per call, where
these work on a users x items block at a time with the users' held-out items as a sparse matrix:
- Recall@k of a user: relevant items in the top k / all relevant items of the user;
- NDCG@k: binary gains, DCG = sum over the top k of hit / log2(rank + 1), divided by the DCG of an ideal
  list (min(relevant, k) hits first);
- both averaged over the users with at least one relevant item (users without one are skipped);
- per item group (head / torso / tail / cold): the same, with relevance restricted to the group's items,
  so a user counts for a group only when one of their held-out items is in it.
Coverage: the share of the group's items that appear in at least one user's top k.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
import scipy.sparse as sp

NO_ITEM = -1
"""Marks a top-k slot left empty (fewer than k rankable items for that user)."""


def top_k(scores: np.ndarray, excluded: np.ndarray, k: int) -> np.ndarray:
    """Indices [users, k] of each row's k best items, best first; excluded or -inf items never appear.

    scores: float [users, items]; excluded: bool [users, items] (a user's training items). A slot with no
    rankable item left holds NO_ITEM. Ties are broken by the lower item index (stable), so a result does
    not depend on the platform's partition order.
    """
    scores = np.where(excluded, -np.inf, scores)
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(scores, order, axis=1)
    return np.where(np.isfinite(best), order, NO_ITEM)


def ranked_in_batches(
    score_rows: Callable[[np.ndarray], np.ndarray], excluded: sp.csr_matrix, k: int, batch: int = 1024
) -> np.ndarray:
    """top_k for every user, `batch` users at a time: `score_rows(user_positions) -> scores [b, items]`."""
    n_users = excluded.shape[0]
    parts = [np.empty((0, min(k, excluded.shape[1])), dtype=np.int64)]
    for start in _starts(n_users, batch):  # batches of users, not users
        users = np.arange(start, min(start + batch, n_users))
        parts.append(top_k(score_rows(users), excluded[users].toarray().astype(bool), k))
    return np.concatenate(parts)


def ranking_metrics(
    top: np.ndarray, relevant: sp.csr_matrix, groups: Mapping[str, np.ndarray], k: int
) -> dict[str, dict[str, float | int | None]]:
    """Per group: {"recall", "ndcg", "users"}; `top` [users, k] from `top_k`, `relevant` bool [users, items].

    groups: name -> bool mask [items]. A group no user has a relevant item in gets None metrics, 0 users.
    """
    top = top[:, :k]
    valid = top != NO_ITEM
    discount = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    totals = {name: {"recall": 0.0, "ndcg": 0.0, "users": 0} for name in groups}
    for start in _starts(top.shape[0], 2048):  # batches of users
        rows = slice(start, start + 2048)
        dense = relevant[rows].toarray().astype(bool)
        hit_items = np.where(valid[rows], top[rows], 0)
        hits = np.take_along_axis(dense, hit_items, axis=1) & valid[rows]
        for name, mask in groups.items():  # a handful of groups
            in_group = hits & mask[hit_items]
            counts = (dense & mask).sum(axis=1)
            users = counts > 0
            if not users.any():
                continue
            found = in_group[users].sum(axis=1)
            ideal = np.cumsum(discount)[np.minimum(counts[users], top.shape[1]) - 1]
            totals[name]["recall"] += float((found / counts[users]).sum())
            totals[name]["ndcg"] += float(((in_group[users] * discount).sum(axis=1) / ideal).sum())
            totals[name]["users"] += int(users.sum())
    return {name: {"recall": t["recall"] / t["users"] if t["users"] else None,
                   "ndcg": t["ndcg"] / t["users"] if t["users"] else None, "users": t["users"]}
            for name, t in totals.items()}


def coverage(top: np.ndarray, groups: Mapping[str, np.ndarray]) -> dict[str, float | None]:
    """Per group: share of its items in at least one top-k list (None for an empty group)."""
    shown = np.zeros(next(iter(groups.values())).shape[0], dtype=bool)
    shown[top[top != NO_ITEM]] = True
    return {name: float(shown[mask].mean()) if mask.any() else None for name, mask in groups.items()}


def chance_recall(relevant: sp.csr_matrix, excluded: sp.csr_matrix, groups: Mapping[str, np.ndarray],
                  k: int) -> dict[str, float | None]:
    """Expected Recall@k of a ranking drawn uniformly at random over each user's candidates, per group.

    A user's candidates are the items not excluded for them; a random top k holds each with probability
    k / candidates, so the expected recall is min(1, k / candidates), averaged as `ranking_metrics` does.
    """
    candidates = excluded.shape[1] - np.asarray(excluded.sum(axis=1)).ravel()
    expected = np.minimum(1.0, k / np.maximum(candidates, 1))
    result = {}
    for name, mask in groups.items():
        users = np.asarray(relevant[:, np.flatnonzero(mask)].sum(axis=1)).ravel() > 0
        result[name] = float(expected[users].mean()) if users.any() else None
    return result


def _starts(n: int, batch: int) -> Iterator[int]:
    return iter(range(0, n, batch))
