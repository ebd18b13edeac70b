"""The evaluation frame every utility arm shares: id indexes, real training rows, held-out relevance.

Built once from a bundle's tables (`from_bundle`) or from plain frames (`build_data`, for tests):
- users: every user id the bundle knows (users table, training, holdout and cold-start rows), so rows
  generated for any real user have a place; items: the warm items (at least one real training row) in
  sorted id order, then the cold-start items (`cold_holdout`), sorted. Every arm ranks this catalogue.
- train: the real training rows as (user, item) positions, in the training table's row order.
- item groups: head / torso / tail for warm items from the bundle's buckets table; "cold" for the
  cold-start items (they are tail items, kept out of "tail" so that it means warm tail items).
- evaluated users: users with at least one real training row and at least one relevant held-out item.
  relevant [eval users, items]: their held-out pairs (holdout rows of warm items, and cold_holdout rows),
  minus pairs they also have in training (those are excluded from their ranking, so cannot be found).
  excluded [eval users, items]: their real training items, the same for every arm.
Held-out rows that cannot be evaluated (unknown user, item without training rows) are counted in `stats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle

COLD = "cold"


@dataclass(frozen=True, eq=False)
class UtilityData:
    users: pd.Index
    """All known user ids; a user's position is its index here."""
    items: pd.Index
    """Warm item ids (sorted), then cold-start item ids (sorted)."""
    n_warm: int
    train_users: np.ndarray
    """int64 [train rows]: position of each real training row's user."""
    train_items: np.ndarray
    """int64 [train rows]: position of each real training row's item (always < n_warm)."""
    item_group: np.ndarray
    """object [items]: head / torso / tail / cold."""
    group_names: tuple[str, ...]
    """Bucket names in config order, then "cold"."""
    item_features: pd.DataFrame
    """[items] the item feature columns, rows in `items` order (the content baseline reads them)."""
    eval_users: np.ndarray
    """int64 [eval users]: positions of the evaluated users."""
    relevant: sp.csr_matrix
    """bool [eval users, items]: held-out pairs not in training."""
    excluded: sp.csr_matrix
    """bool [eval users, items]: real training pairs."""
    stats: dict[str, Any]

    @property
    def tail(self) -> str:
        """The last bucket's name (the one augmentation and cold start generate for)."""
        return self.group_names[-2]

    @property
    def cold(self) -> np.ndarray:
        """bool [items]: the cold-start items."""
        return np.arange(len(self.items)) >= self.n_warm

    def group_masks(self) -> dict[str, np.ndarray]:
        """name -> bool [items]: "overall" (warm items), each bucket, "cold"."""
        masks = {"overall": ~self.cold}
        masks.update({name: self.item_group == name for name in self.group_names})
        return masks

    def positions(self, users: pd.Series, items: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """(user positions, item positions) of id columns; -1 where an id is not indexed."""
        return self.users.get_indexer(users), self.items.get_indexer(items)


GATE_SHARE = 0.5
"""The utility benchmark's default share of the holdout the gate reads (`UtilitySettings.gate_holdout`); the
validation and pass-rate benchmarks generate through the same view."""


def gate_view(bundle: Bundle, share: float, seed: int = 0) -> tuple[Bundle, pd.DataFrame, dict[str, Any]]:
    """(the bundle as generation sees it, the held-out rows the arms are scored on, their counts).

    The gate judges generated rows against the bundle's holdout, so gated rows are chosen with holdout
    information. To keep the scored rows out of that, a seeded `share` of the holdout rows goes to the gate
    (the returned bundle's "holdout" table) and the rest is scored. share 0: the gate sees every held-out
    row and the same rows are scored (reported as an overlap).
    """
    holdout = bundle.table("holdout")
    if not 0.0 <= share < 1.0:
        raise ValueError(f"gate holdout share: expected 0 <= share < 1, got {share}")
    if share == 0.0:
        return bundle, holdout, {"gate_share": 0.0, "gate_rows": len(holdout), "scored_rows": len(holdout),
                                 "overlap": True}
    order = np.random.default_rng(seed).permutation(len(holdout))
    cut = int(round(share * len(holdout)))
    gate_rows = holdout.iloc[np.sort(order[:cut])].reset_index(drop=True)  # indexed like a loaded table
    scored = holdout.iloc[np.sort(order[cut:])]
    view = bundle.with_tables({"holdout": gate_rows})  # shares the model, encoder and every other table
    return view, scored, {"gate_share": share, "gate_rows": len(gate_rows), "scored_rows": len(scored),
                          "overlap": False}


def from_bundle(bundle: Bundle, holdout: pd.DataFrame | None = None) -> UtilityData:
    """The evaluation frame of a bundle trained with `data.split.cold_items` (cold_holdout may be absent).

    holdout: the held-out rows to score on (default: the bundle's whole holdout table).
    """
    user_id, item_id = bundle.role("user_id")[0], bundle.role("item_id")[0]
    train = bundle.table("train")
    # Optional tables, looked up by file as evaluate.bench_cold_start does (evaluate never imports models/).
    cold = bundle.table("cold_holdout") if (bundle.path / "cold_holdout.parquet").is_file() else train.iloc[:0]
    known_users = bundle.table("users")[user_id] if (bundle.path / "users.parquet").is_file() else None
    items = bundle.table("items") if (bundle.path / "items.parquet").is_file() else None
    if items is not None:
        items = items[[item_id, *[name for name in bundle.role("item_feature") if name in items.columns]]]
    return build_data(
        train, bundle.table("holdout") if holdout is None else holdout, cold, bundle.table("buckets"),
        user_id=user_id, item_id=item_id, known_users=known_users,
        bucket_names=tuple(bundle.config["data"]["buckets"]["names"]),
        items=items,
    )


def build_data(
    train: pd.DataFrame, holdout: pd.DataFrame, cold: pd.DataFrame, buckets: pd.DataFrame, *,
    user_id: str, item_id: str, bucket_names: tuple[str, ...], known_users: pd.Series | None = None,
    items: pd.DataFrame | None = None, cold_items: pd.Series | None = None,
) -> UtilityData:
    """The frame from plain tables (see module docstring). buckets: item, pop_bucket (the bundle's table).
    cold_items: more cold-start item ids, ranked like the others but without held-out rows (a frame that
    measures what rows for new items cost the warm items, never reading the new items' own held-out rows)."""
    warm = np.sort(pd.unique(train[item_id]))
    named = cold[item_id] if cold_items is None else pd.concat([cold[item_id], pd.Series(cold_items)],
                                                                ignore_index=True)
    cold_ids = np.sort(pd.unique(named[~named.isin(warm)]))
    # pd.Index takes the column's dtype as is: numpy's astype cannot read pandas 3's string dtype.
    item_index = pd.Index(np.concatenate([warm, cold_ids]), dtype=train[item_id].dtype)
    id_parts = [train[user_id], holdout[user_id], cold[user_id]] + ([known_users] if known_users is not None else [])
    user_index = pd.Index(pd.unique(pd.concat(id_parts, ignore_index=True)))
    group = pd.Series(buckets["pop_bucket"].astype(object).to_numpy(), index=buckets["item"]).reindex(item_index)
    item_group = group.to_numpy(dtype=object)
    item_group[len(warm):] = COLD
    train_users, train_items = user_index.get_indexer(train[user_id]), item_index.get_indexer(train[item_id])
    trained = np.unique(train_users)
    excluded_all = _pairs(train_users, train_items, len(user_index), len(item_index))
    held = pd.concat([holdout[[user_id, item_id]].assign(_cold=False), cold[[user_id, item_id]].assign(_cold=True)],
                     ignore_index=True)
    held_users, held_items = user_index.get_indexer(held[user_id]), item_index.get_indexer(held[item_id])
    warm_rows = ~held["_cold"].to_numpy()
    usable = (held_items >= 0) & np.isin(held_users, trained) & (warm_rows == (held_items < len(warm)))
    relevant_all = _pairs(held_users[usable], held_items[usable], len(user_index), len(item_index))
    in_training = relevant_all.multiply(excluded_all).tocsr()
    relevant_all = _as_bool(relevant_all - in_training)
    eval_users = np.flatnonzero(np.asarray(relevant_all.sum(axis=1)).ravel() > 0)
    stats = {
        "train_rows": len(train), "users": len(user_index), "warm_items": len(warm), "cold_items": len(cold_ids),
        "evaluated_users": len(eval_users), "relevant_pairs": int(relevant_all.nnz),
        "held_out_rows": int(len(holdout)), "cold_rows": int(len(cold)),
        "held_out_rows_unusable": {
            "item_without_training_rows": int(((held_items < 0) | (warm_rows & (held_items >= len(warm)))).sum()),
            "user_without_training_rows": int(((held_items >= 0) & ~np.isin(held_users, trained)).sum()),
        },
        "held_out_pairs_also_in_training": int(in_training.nnz),
    }
    item_features = (items.set_index(item_id).reindex(item_index).reset_index(drop=True) if items is not None
                     else pd.DataFrame(index=range(len(item_index))))
    return UtilityData(
        users=user_index, items=item_index, n_warm=len(warm), train_users=train_users.astype(np.int64),
        train_items=train_items.astype(np.int64), item_group=item_group, group_names=(*bucket_names, COLD),
        item_features=item_features, eval_users=eval_users.astype(np.int64),
        relevant=_as_bool(relevant_all[eval_users]), excluded=_as_bool(excluded_all[eval_users]), stats=stats,
    )


def _pairs(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """float32 0/1 [n_users, n_items] with 1 at each (user, item) pair (duplicates collapse)."""
    matrix = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _as_bool(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Nonzero entries as True, explicit zeros dropped."""
    matrix = sp.csr_matrix(matrix)
    matrix.eliminate_zeros()
    return matrix.astype(bool)
