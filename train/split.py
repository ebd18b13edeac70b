"""Train/holdout split of the behaviour records: seeded random rows, or the latest rows by time.

The holdout is what the fidelity gate compares synthetic rows with, so it never enters training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailsynth.models.errors import ConfigError, DataError
from tailsynth.train.config import SplitConfig


def holdout_size(n_rows: int, fraction: float) -> int:
    """Rows in the holdout: round(n_rows * fraction), kept within [1, n_rows - 1] so neither side is empty."""
    return int(min(max(round(n_rows * fraction), 1), n_rows - 1))


def split_records(table: pd.DataFrame, config: SplitConfig, *, seed: int, timestamp: str,
                  max_train_rows: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (train, holdout).

    method "random": a seeded permutation (`np.random.default_rng(seed)`) picks holdout_fraction of rows.
    method "time": the latest holdout_fraction of rows by `timestamp`; among equal timestamps the later
    row of the table goes to the holdout (stable sort).
    Both parts keep the table's row order and index labels, so `train.index` and `holdout.index` are
    disjoint and together cover `table.index`. Same seed and table, same split.
    With `max_train_rows`, the training part is a seeded sample of at most that many of its rows -- the
    rows `train.sample(n=max_train_rows, random_state=seed).sort_index()` would give on a table with
    increasing labels -- chosen by position, so the rows never trained on are never copied.
    """
    fraction = config.holdout_fraction
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"data.split.holdout_fraction: must be strictly between 0 and 1, got {fraction}")
    if len(table) < 2:
        raise DataError(f"cannot split {len(table)} interaction row(s) into train and holdout; need at least 2")
    n_holdout = holdout_size(len(table), fraction)
    if config.method == "random":
        chosen = np.random.default_rng(seed).permutation(len(table))[:n_holdout]
    elif config.method == "time":
        if timestamp not in table.columns:
            raise DataError(f"time split: timestamp column {timestamp!r} is not in the records table")
        order = np.argsort(table[timestamp].to_numpy(), kind="stable")
        chosen = order[len(table) - n_holdout:]
    else:
        raise ConfigError(f"data.split.method: expected 'random' or 'time', got {config.method!r}")
    in_holdout = np.zeros(len(table), dtype=bool)
    in_holdout[chosen] = True
    train_positions = np.flatnonzero(~in_holdout)
    if max_train_rows is not None and len(train_positions) > max_train_rows:
        # pandas' DataFrame.sample draws exactly these positions (RandomState(seed).choice without
        # replacement), so runs made before this shortcut keep their training rows.
        picked = np.random.RandomState(seed).choice(len(train_positions), size=max_train_rows, replace=False)
        train_positions = train_positions[np.sort(picked)]
    return table.iloc[train_positions], table.iloc[in_holdout]


def capped_rows(table: pd.DataFrame, cap: int | None, *, seed: int) -> pd.DataFrame:
    """At most `cap` rows of `table`: all of them when it has no more (or cap is None), else a seeded
    uniform sample without replacement, in the table's row order. Same table, cap and seed, same rows.

    Drawn from its own stream (`default_rng([seed, 1])`), not the split's, so the sample is not tied to
    where rows fell in the split's permutation.
    """
    if cap is None or len(table) <= cap:
        return table
    chosen = np.sort(np.random.default_rng([seed, 1]).choice(len(table), size=cap, replace=False))
    return table.iloc[chosen]


def check_batch_fits(train_rows: int, batch_size: int) -> None:
    """ConfigError when one batch would need more rows than training has: checked before the encoder is
    fitted or any batch allocated (otherwise the run spends minutes encoding, then draws every batch mostly
    of repeats, or allocates a batch far larger than the data)."""
    if batch_size > train_rows:
        raise ConfigError(f"trainer.batch_size={batch_size} is larger than the {train_rows} training rows; "
                          f"lower trainer.batch_size (or raise data.max_train_rows / give more data)")
