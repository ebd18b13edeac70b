"""Item-level continuous conditions: the number each training row carries for its item (its catalogue price).

`model.condition` names them from two sources, in this order in the condition vector:
- `continuous: [weight, ...]`: numerical columns of the items table, already joined onto every row;
- `item_level: {UnitPrice: median}`: a level derived from a numerical interaction column, the item's
  median over the TRAINING rows only (held-out rows never enter it, so nothing leaks from the test period),
  named `UnitPrice_item_median`; the timestamp's level (`{InvoiceDate: median}`, when an item sells) is
  counted in days since 1970.

Both are item-level: every row of an item carries the same value. `item_level_table` gives the values per
item (what the generation side passes for an existing item); `condition_values` the per-row values the
standardisation is fitted on and the sampler draws. The model side (`models.condition`) standardises them.

`user: [Country, frequency, ...]` conditions on the row's USER (`ConditionConfig.user`): its categorical
columns join the one-hot blocks after `columns`, its numerical ones follow the item-level numbers here, each
row carrying its own user's value (the users table's features are computed from the training split only,
`train.split_features`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from tailsynth.models.condition import ConditionSpec
from tailsynth.models.continuous import fit_continuous, relative_to_level
from tailsynth.models.encoder_columns import datetime_seconds, value_decimals
from tailsynth.models.config import ConditionConfig
from tailsynth.models.errors import DataError
from tailsynth.models.layout import ColumnLayout

SECONDS_PER_DAY = 86_400.0


def condition_names(condition: ConditionConfig) -> tuple[str, ...]:
    """The continuous conditions' names, in vector order: item-table columns, then derived levels."""
    derived = (f"{column}_item_{statistic}" for column, statistic in condition.item_level.items())
    return (*condition.continuous, *derived)


def item_level_table(train_rows: pd.DataFrame, condition: ConditionConfig, item_column: str) -> pd.DataFrame:
    """Raw values per item seen in `train_rows` (index: item id; one column per `condition_names`).

    Item-table columns take the item's value (constant per item: the first one); derived levels apply their
    statistic to the item's training rows. Items absent from `train_rows` are absent here.
    """
    missing = [column for column in (*condition.continuous, *condition.item_level) if column not in train_rows]
    if missing:
        raise DataError(f"model.condition: column(s) {missing} are not in the training rows; they hold "
                        f"{list(train_rows.columns)}")
    groups = train_rows.groupby(item_column, observed=True, sort=True)
    parts = [groups[list(condition.continuous)].first()] if condition.continuous else []
    for column, statistic in condition.item_level.items():  # a handful of configured columns
        values = train_rows[column]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):  # the timestamp: in days since 1970 (UTC)
            values = pd.Series(datetime_seconds(values) / SECONDS_PER_DAY, index=values.index)
        level = values.groupby(train_rows[item_column], observed=True, sort=True).agg(statistic)
        parts.append(level.rename(f"{column}_item_{statistic}").to_frame())
    table = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=groups.size().index)
    return table.astype("float64")


def condition_values(train_rows: pd.DataFrame, condition: ConditionConfig, item_column: str,
                     user_numerical: Sequence[str] = ()) -> torch.Tensor | None:
    """The training rows' raw continuous condition values float64 [n, c] in row order (None when none are
    configured): each row carries its item's value from `item_level_table`, then its own user's value of
    each `user_numerical` column (`model.condition.user`'s numerical columns)."""
    if not condition.continuous and not condition.item_level and not user_numerical:
        return None
    rows = item_level_table(train_rows, condition, item_column).reindex(train_rows[item_column].to_numpy())
    parts = [rows.to_numpy(dtype="float64", na_value=float("nan"))]
    if user_numerical:  # the row's user's own values, joined onto every record
        parts.append(train_rows[list(user_numerical)].apply(pd.to_numeric, errors="coerce")
                     .to_numpy(dtype="float64", na_value=float("nan")))
    return torch.from_numpy(np.concatenate(parts, axis=1))


def condition_spec(
    layout: Sequence[ColumnLayout], condition: ConditionConfig, train_rows: pd.DataFrame, item_column: str
) -> tuple[ConditionSpec, torch.Tensor | None]:
    """The run's condition spec (continuous conditions standardised on the training rows) and the training
    rows' raw continuous values [n, c] (None without continuous conditions)."""
    # `model.condition.user`: a categorical column joins the one-hot blocks, a numerical one the continuous values
    discrete = {column.name for column in layout if column.is_discrete}
    user_categorical = tuple(name for name in condition.user if name in discrete)
    user_numerical = tuple(name for name in condition.user if name not in discrete)
    values = condition_values(train_rows, condition, item_column, user_numerical)
    names = (*condition_names(condition), *user_numerical)
    if values is not None and not bool(torch.isfinite(values).all()):
        j = int((~torch.isfinite(values)).any(dim=0).nonzero()[0])
        missing = ~torch.isfinite(values[:, j]).numpy()
        if names[j] in user_numerical:  # a user's value: counted in rows
            count, what = int(missing.sum()), "row"
        else:
            count, what = train_rows.loc[missing, item_column].nunique(), "item"
        raise DataError(f"model.condition: continuous condition {names[j]!r} has no value for {count} training "
                        f"{what}(s); fill the column or leave it out of the condition")
    scales = [None] * len(condition.continuous) + [column if column in condition.relative else None
                                                   for column in condition.item_level] + [None] * len(user_numerical)
    decimals = [None if column is None else value_decimals(
        pd.to_numeric(train_rows[column], errors="coerce").to_numpy(dtype="float64", na_value=float("nan")))
        for column in scales]
    continuous = fit_continuous(names, values, scales, decimals) if values is not None else ()
    return ConditionSpec.from_layout(layout, (*condition.columns, *user_categorical), continuous), values


def model_rows(train_rows: pd.DataFrame, condition: ConditionConfig, item_column: str) -> pd.DataFrame:
    """The training rows as the model learns them: each `model.condition.relative` column relative to its
    item's level (`models.continuous.relative_to_level`); the rows themselves when there is none. The
    reference tables (gate, reports) keep the real values; generation puts the level back
    (`models.synthesize.synthesize`)."""
    if not condition.relative:
        return train_rows
    levels = item_level_table(train_rows, condition, item_column).reindex(train_rows[item_column].to_numpy())
    rows = train_rows.copy()
    for column in condition.relative:  # a handful of configured columns
        level = levels[f"{column}_item_{condition.item_level[column]}"].to_numpy(dtype="float64")
        values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype="float64", na_value=float("nan"))
        rows[column] = relative_to_level(values, level)
    return rows
