"""Behaviour records: interactions joined with user and item features, time parts and popularity buckets.

`build_records(config)` reads the tables named in a `DataConfig`, validates them (every failure a
`DataError` naming the file, the column and example rows), joins each interaction with its user's and
item's features, derives time parts and each item's popularity bucket, and returns a `Records`.

Dtypes of `Records.table` (documented contract for the encoder):
- user/item ids keep their source dtype, except that when an interactions key and its feature table's id
  differ in type (numbers on one side, text on the other) both become text; the timestamp and datetime
  columns are naive datetime64[ns], each text column read with one format (`train.dates`);
- numerical columns are Int64 when the source column was integer, float64 otherwise;
- every categorical column -- declared ones, time parts and `pop_bucket` -- has pandas "category" dtype.
  Time parts list their full range as categories (hour 0-23, dayofweek 0=Monday..6, month 1-12,
  dayofmonth 1-31); `pop_bucket` lists the bucket names in config order. So the vocabulary is known even
  when a value never occurs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from tailsynth.models.errors import DataError
from tailsynth.train import io
from tailsynth.train.buckets import assign_buckets, bucket_summary
from tailsynth.train.config import DataConfig, InteractionsConfig, TableConfig
from tailsynth.train.dates import parse_datetime
from tailsynth.train.retail import BUILTIN_NAME, BUILTIN_PREFIX, RetailTables, load_online_retail

Role = Literal["user_id", "item_id", "timestamp", "event", "user_feature", "item_feature", "time_part",
               "bucket"]
SdType = Literal["categorical", "numerical", "datetime", "id"]

TIME_PARTS: dict[str, tuple[str, range]] = {
    "hour": ("hour", range(0, 24)),
    "dayofweek": ("dayofweek", range(0, 7)),
    "month": ("month", range(1, 13)),
    "dayofmonth": ("day", range(1, 32)),
}
"""Derived column -> (pandas .dt attribute, all its values)."""
BUCKET_COLUMN = "pop_bucket"


@dataclass(frozen=True)
class Column:
    """One column of `Records.table`: its name, what it is, and the sdtype the generator learns."""

    name: str
    role: Role
    sdtype: SdType


@dataclass(frozen=True, eq=False)
class Records:
    """One row per interaction, ready for the encoder; see the module docstring for dtypes."""

    table: pd.DataFrame
    """user id, item id, timestamp, event columns, user features, item features, time parts, pop_bucket."""
    columns: tuple[Column, ...]
    """Schema of `table`, in table column order."""
    buckets: pd.DataFrame
    """`assign_buckets` output: item, count, pop_bucket, cold_start (one row per known item)."""
    users: pd.DataFrame | None
    """The user feature table: id + declared feature columns, parsed to the dtypes of `table`."""
    items: pd.DataFrame | None
    """The item feature table: id + declared feature columns, parsed to the dtypes of `table` (+ the
    `text` column as read, when the config names one)."""
    cleaning: tuple[dict, ...]
    """{"step", "dropped", "remaining"}: built-in dataset cleaning, then missing-key drops."""
    written_as: dict[str, str] = field(default_factory=dict)
    """Interaction columns read as numbers and parsed as Unix seconds -> their dtype in the file ("int64"),
    so emitted interactions can be written back the same way (`gen.items.written`)."""
    file_dtypes: dict[str, str] = field(default_factory=dict)
    """The interactions file's modelled columns (ids, timestamp, events) in the file's order -> their dtype as
    read, so emitted interactions keep the file's column order and dtypes (`gen.items.written`)."""

    def column(self, role: Role) -> list[str]:
        """Names of the columns with this role, in table order."""
        return [column.name for column in self.columns if column.role == role]

    def model_columns(self, include_ids: bool = False) -> dict[str, str]:
        """Column name -> sdtype for the generator: every column except the user/item ids (unless asked).

        Asked-for ids are modelled as categories, so the encoder's `max_categories` limit decides whether
        they fit (a clear error names the column and its number of categories when they do not).
        """
        ids = ("user_id", "item_id")
        return {
            column.name: "categorical" if column.role in ids else column.sdtype
            for column in self.columns
            if include_ids or column.role not in ids
        }

    def without_rows(self) -> Records:
        """These records with an empty `table` (same columns and dtypes), buckets and feature tables kept:
        what a run holds on to once it has split the rows (a 10M-row table is about a gigabyte)."""
        return replace(self, table=self.table.iloc[:0])

    def summary(self) -> pd.DataFrame:
        """Per-bucket counts and shares (`train.buckets.bucket_summary`)."""
        return bucket_summary(self.buckets)


@dataclass(frozen=True)
class _Table:
    """A table being validated, with the label its errors use ("users table data/users.csv")."""

    frame: pd.DataFrame
    source: str
    written_as: dict[str, str] = field(default_factory=dict)
    """Datetime columns that were numbers (Unix seconds) in the file -> their dtype there."""
    file_dtypes: dict[str, str] = field(default_factory=dict)
    """Modelled columns in the file's order -> their dtype as read (interactions only)."""


def build_records(config: DataConfig) -> Records:
    """Read, validate and join the configured tables into `Records` (see module docstring)."""
    check_column_names(config)
    tables, cleaning = read_tables(config)
    inter_cfg = config.interactions
    # Popped, so the raw interactions (every column of the file) are freed as soon as they are prepared.
    interactions = prepare_interactions(tables.pop("interactions"), inter_cfg, config, cleaning)
    features = {role: prepare_features(tables[role], cfg, role, config, cleaning)
                for role, cfg, _ in _feature_tables(config)}
    for role, cfg, key in _feature_tables(config):
        interactions, features[role] = same_key_type(interactions, key, features[role], cfg.id)
        interactions, step = apply_missing_keys(interactions, key, features[role], cfg.id, config.missing_keys)
        cleaning.extend(step)
    written_as, file_dtypes = dict(interactions.written_as), dict(interactions.file_dtypes)
    frame = interactions.frame.copy(deep=False)  # a fresh 0..n-1 index without copying the data
    frame.index = pd.RangeIndex(len(frame))
    del interactions
    parts = [frame[[inter_cfg.user_id, inter_cfg.item_id, inter_cfg.timestamp, *inter_cfg.columns]]]
    parts += [join_features(frame[key], features[role].frame, cfg) for role, cfg, key in _feature_tables(config)]
    parts.append(time_parts(frame[inter_cfg.timestamp], config.time_parts))
    known_items = features["items"].frame[config.items.id] if "items" in features else None
    buckets = assign_buckets(item_counts(frame[inter_cfg.item_id], known_items), config.buckets)
    parts.append(bucket_column(frame[inter_cfg.item_id], buckets))
    kept = {role: features[role].frame[[cfg.id, *cfg.columns, *([cfg.text] if cfg.text else [])]].reset_index(drop=True)
            for role, cfg, _ in _feature_tables(config)}
    del frame
    return Records(
        table=pd.concat(parts, axis=1, copy=False),  # the parts are fresh copies already: no third one
        columns=schema(config),
        buckets=buckets,
        users=kept.get("users"),
        items=kept.get("items"),
        cleaning=tuple(cleaning),
        written_as=written_as,
        file_dtypes=file_dtypes,
    )


def _feature_tables(config: DataConfig) -> list[tuple[str, TableConfig, str]]:
    """(role, table config, interactions key column) for each configured feature table."""
    pairs = (("users", config.users, config.interactions.user_id),
             ("items", config.items, config.interactions.item_id))
    return [(role, cfg, key) for role, cfg, key in pairs if cfg is not None]


def read_tables(config: DataConfig) -> tuple[dict[str, _Table], list[dict]]:
    """Each configured table, read once, and the built-in cleaning steps if the built-in data is used.

    `builtin:online_retail` loads the built-in dataset (once per call) and takes its table of that role.
    """
    paths = {"interactions": config.interactions.path}
    paths.update({role: cfg.path for role, cfg, _ in _feature_tables(config)})
    builtin: RetailTables | None = None
    tables: dict[str, _Table] = {}
    for role, path in paths.items():  # at most three tables
        source = f"{role} table {path}"
        if not path.startswith(BUILTIN_PREFIX):
            tables[role] = _Table(io.read_table(path, role=role), source)
            continue
        if path != BUILTIN_PREFIX + BUILTIN_NAME:
            raise DataError(f"{source}: unknown built-in dataset; the only one is {BUILTIN_PREFIX}{BUILTIN_NAME}")
        builtin = builtin or load_online_retail()
        tables[role] = _Table(builtin.table(role), source)
    return tables, list(builtin.cleaning) if builtin else []


# ---------------------------------------------------------------------------------------------------------
# validation: one small function per check, each raising DataError with file, column and example rows


def check_column_names(config: DataConfig) -> None:
    """Every output column name must be unique: inputs may not collide with each other or derived names."""
    inter = config.interactions
    owners: dict[str, str] = {}
    named = [(inter.user_id, f"interactions table {inter.path}"), (inter.item_id, f"interactions table {inter.path}"),
             (inter.timestamp, f"interactions table {inter.path}")]
    named += [(name, f"interactions table {inter.path}") for name in inter.columns]
    named += [(name, f"{role} table {cfg.path}") for role, cfg, _ in _feature_tables(config) for name in cfg.columns]
    named += [(name, "derived time part (data.time_parts)") for name in dict.fromkeys(config.time_parts)]
    named.append((BUCKET_COLUMN, "derived popularity bucket"))
    for name, owner in named:  # a few dozen names at most
        if name in owners:
            raise DataError(f"{owner}: column {name!r} collides with the column of that name from "
                            f"{owners[name]}; rename one of them")
        owners[name] = owner


def prepare_interactions(table: _Table, cfg: InteractionsConfig, config: DataConfig,
                         cleaning: list[dict]) -> _Table:
    """Required columns, non-null ids and timestamps, declared columns parsed to their dtypes."""
    frame, source = table.frame, table.source
    io.require_columns(frame, [cfg.user_id, cfg.item_id, cfg.timestamp, *cfg.columns], source)
    io.check_no_nulls(frame, cfg.user_id, source, "user id")
    io.check_no_nulls(frame, cfg.item_id, source, "item id")
    io.check_no_nulls(frame, cfg.timestamp, source, "timestamp")
    key = "data.interactions.date_formats"
    parsed = {cfg.timestamp: parse_datetime(frame[cfg.timestamp], source, cfg.date_formats.get(cfg.timestamp),
                                            f"{key}.{cfg.timestamp}")}
    parsed.update(_parse_declared(frame, cfg.columns, cfg.date_formats, source, key, config, cleaning))
    written_as = {name: str(frame[name].dtype) for name, column in parsed.items()
                  if pd.api.types.is_datetime64_any_dtype(column.dtype) and _is_number(frame[name])}
    modelled = {cfg.user_id, cfg.item_id, cfg.timestamp, *cfg.columns}
    file_dtypes = {name: str(frame[name].dtype) for name in frame.columns if name in modelled}
    return _Table(with_columns(frame, parsed), source, written_as, file_dtypes)


def prepare_features(table: _Table, cfg: TableConfig, role: str, config: DataConfig,
                     cleaning: list[dict]) -> _Table:
    """Id column present, non-null and unique; declared columns present, not all null, parsed."""
    frame, source = table.frame, table.source
    if not cfg.id:
        raise DataError(f"{source}: the config gives no id column (key 'id') for this feature table")
    io.require_columns(frame, [cfg.id, *cfg.columns, *([cfg.text] if cfg.text else [])], source)
    io.check_no_nulls(frame, cfg.id, source, "id")
    io.check_unique(frame, cfg.id, source)
    parsed = _parse_declared(frame, cfg.columns, cfg.date_formats, source, f"data.{role}.date_formats", config,
                             cleaning)
    return _Table(with_columns(frame, parsed), source)


def with_columns(frame: pd.DataFrame, columns: dict[str, pd.Series]) -> pd.DataFrame:
    """`frame.assign(**columns)` without copying the columns that stay: a shallow copy whose named columns
    are replaced (`assign` copies every column first, twice the memory of a large table)."""
    out = frame.copy(deep=False)
    for name, values in columns.items():  # a handful of declared columns
        if values is not frame[name]:
            out[name] = values
    return out


def _parse_declared(frame: pd.DataFrame, columns: dict[str, str], formats: dict[str, str], source: str,
                    format_key: str, config: DataConfig, cleaning: list[dict]) -> dict[str, pd.Series]:
    """Declared columns parsed to their dtypes; numbers beyond data.max_abs_value refused or clipped (each
    clipped column is reported as a cleaning step and a warning)."""
    parsed = {}
    for name, sdtype in columns.items():  # loop over declared columns, not rows
        io.check_not_all_null(frame, name, source)
        if sdtype == "numerical":
            values = io.parse_numerical(frame[name], source)
            values, clipped = io.bound_numerical(values, source, config.max_abs_value,
                                                 clip=config.out_of_range == "clip")
            if clipped:
                step = f"{source}: values of {name!r} clipped to +-{config.max_abs_value:g} (data.out_of_range=clip)"
                warnings.warn(f"{step}: {clipped} value(s)", stacklevel=3)
                cleaning.append({"step": step, "dropped": 0, "clipped": clipped, "remaining": len(frame)})
            parsed[name] = values
        elif sdtype == "datetime":
            parsed[name] = parse_datetime(frame[name], source, formats.get(name), f"{format_key}.{name}")
        elif sdtype == "categorical":
            parsed[name] = io.parse_categorical(frame[name], source)
    return parsed


def same_key_type(interactions: _Table, key: str, features: _Table, feature_id: str) -> tuple[_Table, _Table]:
    """Both sides of a join with ids of one type: when one holds numbers and the other text (a CSV whose
    item ids all look numeric, against an items file where some do not), both become text.

    Whole numbers are written without a decimal part (101, not 101.0), as they appear in a CSV file.
    """
    left, right = interactions.frame[key], features.frame[feature_id]
    if _is_number(left.dtype) == _is_number(right.dtype) and not (_mixed(left) or _mixed(right)):
        return interactions, features
    return (_Table(with_columns(interactions.frame, {key: id_text(left)}), interactions.source),
            _Table(with_columns(features.frame, {feature_id: id_text(right)}), features.source))


def id_text(ids: pd.Series) -> pd.Series:
    """Ids as Python strings (object dtype); numbers written as a CSV would hold them."""
    if _is_number(ids.dtype):
        numbers = ids.astype("float64")
        if pd.api.types.is_integer_dtype(ids.dtype) or bool((numbers % 1 == 0).all()):
            return ids.astype("Int64").astype(str).astype(object)
        return ids.astype(str).astype(object)
    return ids.astype(str).astype(object)


def _mixed(ids: pd.Series) -> bool:
    """An object column holding more than strings (a parquet column of ints and strs); inferred in C."""
    return ids.dtype == object and pd.api.types.infer_dtype(ids, skipna=True) not in ("string", "empty")


def _is_number(dtype: object) -> bool:
    """A numeric, non-boolean dtype (or a column, whose dtype is read)."""
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def apply_missing_keys(interactions: _Table, key: str, features: _Table, feature_id: str,
                       policy: Literal["error", "drop"]) -> tuple[_Table, list[dict]]:
    """Interactions whose key is absent from the feature table: DataError, or dropped with a warning."""
    frame = interactions.frame
    missing = ~frame[key].isin(features.frame[feature_id]).to_numpy()
    if not missing.any():
        return interactions, []
    what = (f"{interactions.source}: {int(missing.sum())} of {len(frame)} interactions have a {key!r} that is "
            f"not in {features.source} (id column {feature_id!r})")
    if policy == "error":
        raise DataError(f"{what}: {io.example_rows(frame[key], missing)}; set data.missing_keys=drop to "
                        f"drop them")
    if missing.all():
        raise DataError(f"{what}: none is left after dropping them; {io.example_rows(frame[key], missing)}")
    warnings.warn(f"{what}; dropped them (data.missing_keys=drop)", stacklevel=3)
    step = {"step": f"interactions with {key} not in {features.source}", "dropped": int(missing.sum()),
            "remaining": int((~missing).sum())}
    return _Table(frame[~missing], interactions.source), [step]


# ---------------------------------------------------------------------------------------------------------
# assembly


def join_features(keys: pd.Series, features: pd.DataFrame, cfg: TableConfig) -> pd.DataFrame:
    """Each interaction's row of the feature table (ids are unique and all present, checked above)."""
    positions = pd.Index(features[cfg.id]).get_indexer(keys)
    joined = features[list(cfg.columns)].iloc[positions]
    joined.index = pd.RangeIndex(len(joined))  # in place: reset_index would copy every joined column again
    return joined


def time_parts(timestamps: pd.Series, parts: tuple[str, ...]) -> pd.DataFrame:
    """Categorical small-int time parts of each timestamp, with their full range as categories."""
    columns = {}
    for part in dict.fromkeys(parts):
        attribute, values = TIME_PARTS[part]
        codes = getattr(timestamps.dt, attribute).to_numpy().astype(np.int64) - values.start
        columns[part] = pd.Categorical.from_codes(codes, categories=list(values))
    return pd.DataFrame(columns, index=timestamps.index)


def item_counts(item_ids: pd.Series, known_items: pd.Series | None) -> pd.Series:
    """Interactions per item, including items of the item table that have none (count 0)."""
    counts = item_ids.value_counts(sort=False)
    if known_items is not None:
        counts = counts.reindex(pd.Index(known_items).union(counts.index, sort=False), fill_value=0)
    return counts.astype("int64")


def bucket_column(item_ids: pd.Series, buckets: pd.DataFrame) -> pd.DataFrame:
    """Each interaction's item bucket, as a categorical `pop_bucket` column."""
    positions = pd.Index(buckets["item"]).get_indexer(item_ids)
    codes = buckets["pop_bucket"].cat.codes.to_numpy()[positions]
    categories = buckets["pop_bucket"].cat.categories
    return pd.DataFrame({BUCKET_COLUMN: pd.Categorical.from_codes(codes, categories=categories)},
                        index=item_ids.index)


def schema(config: DataConfig) -> tuple[Column, ...]:
    """The `Column` list of the records table, in table order."""
    inter = config.interactions
    columns = [Column(inter.user_id, "user_id", "id"), Column(inter.item_id, "item_id", "id"),
               Column(inter.timestamp, "timestamp", "datetime")]
    columns += [Column(name, "event", sdtype) for name, sdtype in inter.columns.items()]
    roles = {"users": "user_feature", "items": "item_feature"}
    columns += [Column(name, roles[role], sdtype) for role, cfg, _ in _feature_tables(config)
                for name, sdtype in cfg.columns.items()]
    columns += [Column(part, "time_part", "categorical") for part in dict.fromkeys(config.time_parts)]
    columns.append(Column(BUCKET_COLUMN, "bucket", "categorical"))
    return tuple(columns)
