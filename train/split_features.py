"""Features derived from interactions, recomputed from the training split once it is known (no leak).

The built-in dataset's users table (recency, frequency, monetary) and items table (price band, and the
description and category read from the most frequent description) are derived from purchases. Derived from
all of them, every training row would carry a summary of the held-out period -- the test period of a time
split. `features_from_training` re-derives them from the training rows only (`train.retail.training_tables`)
and joins them again onto every row of the records, so training rows, held-out rows and the bundle's users
and items tables all carry the training-period values.

Tables the user supplies are taken as given: we cannot know how their columns were made. Item popularity
buckets still count every row (they define the tail, and which items are held out as cold).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from tailsynth.models.errors import DataError
from tailsynth.train.config import DataConfig
from tailsynth.train.records import Records, _Table, join_features, prepare_features
from tailsynth.train.retail import BUILTIN_NAME, BUILTIN_PREFIX, load_online_retail, training_tables

BUILTIN = BUILTIN_PREFIX + BUILTIN_NAME


def features_from_training(records: Records, config: DataConfig, training: pd.Index,
                           *parts: pd.DataFrame) -> tuple[Records, ...]:
    """`records` with the built-in users/items features re-derived from the rows labelled `training` (labels
    of `records.table`), and each of `parts` (row subsets of `records.table`, e.g. train and holdout) taken
    again from the updated table. Unchanged when no built-in feature table is derived from these records."""
    roles = [role for role in ("users", "items")
             if getattr(config, role) is not None and getattr(config, role).path == BUILTIN]
    if not roles or config.interactions.path != BUILTIN:
        return (records, *parts)
    retail = load_online_retail()
    purchases = retail.purchases
    item_key, user_key = config.interactions.item_id, config.interactions.user_id
    if len(records.table) != len(purchases) or not np.array_equal(
            records.table[item_key].to_numpy(), purchases["StockCode"].to_numpy()):
        raise DataError(f"{BUILTIN}: the records no longer line up with the built-in purchases (rows were dropped "
                        f"while joining a feature table that is not built in); use the built-in tables for all "
                        f"three roles or your own for all three")
    mask = np.zeros(len(purchases), dtype=bool)
    mask[np.asarray(training, dtype=np.int64)] = True
    derived = dict(zip(("users", "items"), training_tables(purchases, mask)))
    table = records.table.copy(deep=False)
    kept = {}
    for role in roles:  # at most two tables
        cfg, key = getattr(config, role), (user_key if role == "users" else item_key)
        source = f"{role} table {cfg.path} (derived from the training rows)"
        frame = prepare_features(_Table(derived[role], source), cfg, role, config, []).frame
        frame = frame.set_index(cfg.id).loc[getattr(records, role)[cfg.id]].reset_index()
        joined = join_features(table[key], frame, cfg)
        for column in cfg.columns:  # the declared feature columns of this table
            table[column] = joined[column].set_axis(table.index)
        kept[role] = frame[getattr(records, role).columns]
    updated = replace(records, table=table, **kept)
    return (updated, *(table.loc[part.index] for part in parts))
