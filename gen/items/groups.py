"""Feature groups of the items of one call (`gen.items.pipeline`): items with equal feature values form a group,
generated with one seed of its own and judged together (`gen.items.judge`); and where real rows fall in them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle


@dataclass(frozen=True)
class Group:
    label: str
    conditions: dict[str, Any]
    items: np.ndarray
    """Positions of the group's items in the request's items table."""
    rows: int
    seed: int



def make_groups(bundle: Bundle, items: pd.DataFrame, counts: np.ndarray, bucket: str, seed: int) -> list[Group]:
    """Items with equal feature values form one group (first appearance order); each gets its own seed,
    which depends on the run seed and the group's label only, so a group's rows do not change when other
    items are added."""
    features = list(bundle.item_features)
    keys = items[features].astype(object).where(items[features].notna(), None) if features else None
    index = keys.groupby(features, sort=False, dropna=False).indices if features else {(): np.arange(len(items))}
    groups = []
    # First-appearance order whatever pandas does: with several keys, pandas 2 ignores sort=False here.
    for key, members in sorted(index.items(), key=lambda entry: entry[1].min()):  # combinations (tens), not rows
        key = key if isinstance(key, tuple) else (key,)
        values = {feature: (None if pd.isna(value) else value) for feature, value in zip(features, key)}
        conditions = {bundle.spec.columns[0]: bucket, **values}
        label = ", ".join(f"{name}={value}" for name, value in conditions.items())
        group_seed = int(np.random.SeedSequence([seed, zlib.crc32(label.encode())]).generate_state(1)[0])
        groups.append(Group(label, conditions, np.sort(members), int(counts[members].sum()), group_seed))
    return groups


def group_of(table: pd.DataFrame, groups: list[Group], bundle: Bundle) -> np.ndarray:
    """[n] group index of each real row by its feature values (-1: no group has them)."""
    features = list(bundle.item_features)
    if not features:
        return np.zeros(len(table), dtype=np.int64)
    keys = pd.MultiIndex.from_frame(table[features].astype(object).where(table[features].notna(), None))
    labels = pd.MultiIndex.from_tuples([tuple(g.conditions[f] for f in features) for g in groups], names=features)
    return labels.get_indexer(keys).astype(np.int64)


def item_groups(groups: list[Group], items: int) -> np.ndarray:
    """[items] each requested item's group (the inverse of `Group.items`)."""
    at = np.zeros(items, dtype=np.int64)
    for g, group in enumerate(groups):  # groups (tens)
        at[group.items] = g
    return at


def item_codes(items: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """[len(table)] position of each real row's item in the request's items table (-1: not requested)."""
    item = items.columns[0]
    return pd.Index(items[item]).get_indexer(table[item]).astype(np.int64)


def in_item_order(records: pd.DataFrame) -> pd.DataFrame:
    """The records sorted by their item (stable: each item's rows keep their order)."""
    order = np.argsort(records["_item"].to_numpy(), kind="stable")
    return records.iloc[order].reset_index(drop=True)


def device(bundle: Bundle) -> torch.device:
    """The device the bundle's generator runs on."""
    return next(bundle.module.parameters()).device
