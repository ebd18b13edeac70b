"""Per-column codecs of the table encoder: pandas column <-> numbers, with the column's dtype kept.

`models.encoder.TableEncoder` does the batched tensor work across columns; this module owns what is
specific to one column's pandas representation:

* continuous columns (numerical, datetime): the float64 values the mixture sees (datetimes as seconds
  since the Unix epoch, UTC) and the way back to the original dtype (ints rounded, datetimes to their
  unit and time zone, nulls restored);
* categorical columns: the category list fitted on the data, integer codes for a column's values
  (hash lookup through `pd.Index.get_indexer`, never a per-row dict), and labels back in the original
  dtype (pandas category dtype with its full category list, object, string, ints, bools, ...).

Both column records are plain dataclasses of JSON types, so the encoder's state needs no pickles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tailsynth.models.errors import EncodingError

_UNIT_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_LABEL_TYPES = (str, bool, int, float)


@dataclass
class ContinuousColumn:
    """A numerical or datetime column: dtype, null handling and its active mixture modes.

    means/stds/weights are in the column's float units (seconds since epoch for datetimes), one entry per
    active mode in span order; center/scale standardise values for the mode posterior. `spikes` are
    values that alone hold a large share of the rows (a quantity of 1, a price of 1.25): each is a mode of
    its own after the Gaussian ones, with no width, so it decodes to exactly that value. minimum/maximum
    are the range seen at fit and `decimals` the precision of its values (None: finer than 6 digits or a
    datetime); decoded values are clipped to the range and rounded to the precision, as SDV does.
    """

    name: str
    sdtype: str
    dtype: str
    has_nulls: bool
    fill: float
    center: float
    scale: float
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    spikes: list[float] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    decimals: int | None = None

    @property
    def n_modes(self) -> int:
        """Gaussian modes (the first entries of the mode span)."""
        return len(self.means)

    @property
    def n_slots(self) -> int:
        """Width of the mode span: the Gaussian modes, then one slot per spike."""
        return len(self.means) + len(self.spikes)


@dataclass
class CategoricalColumn:
    """A categorical column: its categories in span order and what its dtype needs to be rebuilt.

    labels: the non-null categories seen at fit, most frequent first (ties by label, see
    `fit_categorical`); a null, when seen, is one more category after them. category_values/ordered:
    the full pandas category dtype (unseen categories included) when the column had one.
    """

    name: str
    dtype: str
    labels: list = field(default_factory=list)
    has_null: bool = False
    null_is_none: bool = False
    category_values: list | None = None
    category_dtype: str = ""
    ordered: bool = False

    @property
    def categories(self) -> tuple:
        return tuple(self.labels) + ((None,) if self.has_null else ())


def continuous_dtype(name: str, sdtype: str, series: pd.Series) -> str:
    """The dtype string to decode to; EncodingError if the dtype does not fit the sdtype."""
    dtype = series.dtype
    is_datetime = pd.api.types.is_datetime64_any_dtype(dtype)
    if sdtype == "datetime" and not is_datetime:
        raise EncodingError(
            f"column {name!r} is marked datetime but has dtype {dtype}; parse it first "
            f"(pd.to_datetime) or mark it numerical"
        )
    if sdtype == "numerical":
        if is_datetime:
            raise EncodingError(f"column {name!r} has dtype {dtype}; mark it datetime, not numerical")
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            raise EncodingError(
                f"column {name!r} is marked numerical but has dtype {dtype}; expected ints or floats "
                f"(mark booleans and labels categorical)"
            )
    return str(dtype)


def continuous_values(column: ContinuousColumn, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """float64 values [n] (nulls replaced by the column's fill value) and the null mask [n].

    Any dtype that fits the sdtype is accepted (float32 for a float64 column, another datetime unit):
    values go through float64 either way. EncodingError for nulls in a column that had none at fit.
    """
    values = raw_values(column.name, column.sdtype, series)
    null = np.isnan(values)
    if not column.has_nulls and null.any():
        raise EncodingError(
            f"column {column.name!r} has {int(null.sum())} null(s) but had none at fit; "
            f"refit the encoder on data that includes them"
        )
    return np.where(null, column.fill, values), null


def raw_values(name: str, sdtype: str, series: pd.Series) -> np.ndarray:
    """float64 [n] of a continuous column, NaN for nulls (datetimes in seconds since the epoch, UTC)."""
    continuous_dtype(name, sdtype, series)
    if sdtype == "datetime":
        return datetime_seconds(series)
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        raise EncodingError(
            f"column {name!r} has {int(infinite.sum())} infinite value(s), e.g. at row "
            f"{int(np.flatnonzero(infinite)[0])}; replace them with nulls or finite numbers"
        )
    return values


def datetime_seconds(series: pd.Series) -> np.ndarray:
    """Seconds since the Unix epoch (UTC) as float64 [n]; NaT becomes NaN."""
    unit = series.dt.unit
    ticks = series.array.asi8  # int64 in `unit` since the epoch, UTC for tz-aware data
    seconds = ticks / _UNIT_PER_SECOND[unit]
    return np.where(series.isna().to_numpy(), np.nan, seconds)


def spike_values(values: np.ndarray, min_share: float, limit: int) -> np.ndarray:
    """The at most `limit` values that each hold at least `min_share` of the non-null `values` [n],
    most frequent first (ties by value); empty when `min_share` is 0 or nothing qualifies."""
    values = values[~np.isnan(values)]
    if min_share <= 0 or limit < 1 or values.size == 0:
        return np.zeros(0)
    unique, counts = np.unique(values, return_counts=True)
    keep = counts >= min_share * values.size
    unique, counts = unique[keep], counts[keep]
    order = np.lexsort((unique, -counts))[:limit]
    return unique[order]


def value_decimals(values: np.ndarray, most: int = 6) -> int | None:
    """The fewest decimal digits (0..most) that represent every non-null value [n], or None."""
    values = values[~np.isnan(values)]
    tolerance = 1e-9 * np.maximum(1.0, np.abs(values))
    for digits in range(most + 1):
        if np.all(np.abs(np.round(values, digits) - values) <= tolerance):
            return digits
    return None


def value_range(values: np.ndarray) -> tuple[float | None, float | None]:
    """(min, max) of the non-null values [n], or (None, None) if all are null."""
    values = values[~np.isnan(values)]
    return (float(values.min()), float(values.max())) if values.size else (None, None)


def decode_continuous(column: ContinuousColumn, values: np.ndarray, null: np.ndarray) -> pd.Series:
    """float64 values [n] and null mask [n] -> a Series of the column's original dtype, clipped to the
    range seen at fit and rounded to its precision."""
    if column.minimum is not None and column.maximum is not None:
        values = np.clip(values, column.minimum, column.maximum)
    if column.decimals is not None:
        values = np.round(values, column.decimals)
    dtype = pd.api.types.pandas_dtype(column.dtype)
    if column.sdtype == "datetime":
        return _seconds_to_datetime(values, null, dtype, column.name)
    if pd.api.types.is_integer_dtype(dtype):
        info = np.iinfo(dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else dtype)
        # Clip before the cast: generated values can leave the dtype's range and would wrap around.
        values = np.clip(np.rint(values), info.min, info.max)
        out = pd.Series(values.astype(info.dtype), name=column.name).astype(dtype)
    else:
        out = pd.Series(values, name=column.name).astype(dtype)
    return out.mask(null) if null.any() else out


def _seconds_to_datetime(values: np.ndarray, null: np.ndarray, dtype: object, name: str) -> pd.Series:
    tz = getattr(dtype, "tz", None)
    unit = dtype.unit if tz is not None else np.datetime_data(dtype)[0]
    ticks = np.rint(np.where(null, 0.0, values) * _UNIT_PER_SECOND[unit])
    ticks = np.clip(ticks, -(2.0**62), 2.0**62).astype(np.int64)
    out = pd.Series(ticks.view(f"datetime64[{unit}]"), name=name)
    if tz is not None:
        out = out.dt.tz_localize("UTC").dt.tz_convert(tz)
    return out.mask(null) if null.any() else out


def fit_categorical(name: str, series: pd.Series, max_categories: int) -> CategoricalColumn:
    """Categories seen in `series`, most frequent first, ties broken by label order.

    Frequency order makes category 0 the mode and is stable under row shuffles; labels that do not sort
    together (mixed types) break ties by their string form. EncodingError when there are more than
    `max_categories` (a null counts as one) or a label is not a str/int/float/bool.
    """
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]  # a category dtype lists unseen categories with count 0
    has_null = bool(series.isna().any())
    total = len(counts) + int(has_null)
    if total > max_categories:
        raise EncodingError(
            f"column {name!r} has {total} categories, more than max_categories={max_categories}; "
            f"mark it as an id (sdtype 'id') or raise encoder.max_categories"
        )
    labels = _json_labels(name, counts.index)
    order = np.lexsort((_label_rank(counts.index), -counts.to_numpy()))
    column = CategoricalColumn(
        name=name, dtype=str(series.dtype), labels=[labels[i] for i in order], has_null=has_null
    )
    if isinstance(series.dtype, pd.CategoricalDtype):
        column.category_values = _json_labels(name, series.dtype.categories)
        column.category_dtype = str(series.dtype.categories.dtype)
        column.ordered = bool(series.dtype.ordered)
    elif has_null and series.dtype == object:
        column.null_is_none = series[series.isna()].iloc[0] is None
    return column


def _json_labels(name: str, index: pd.Index) -> list:
    """Labels as Python str/int/float/bool (numpy scalars unwrapped); EncodingError for anything else."""
    labels = [label.item() if isinstance(label, np.generic) else label for label in index.tolist()]
    bad = [label for label in labels if not isinstance(label, _LABEL_TYPES)]
    if bad:
        raise EncodingError(
            f"column {name!r} has categories that are not str/int/float/bool, e.g. {bad[:3]!r}; "
            f"convert them to strings first"
        )
    return labels


def _label_rank(index: pd.Index) -> np.ndarray:
    """Rank of each label in sorted order (by str() when the labels do not compare)."""
    try:
        order = np.argsort(index.to_numpy(), kind="stable")
    except TypeError:
        order = np.argsort(index.astype(str).to_numpy(), kind="stable")
    rank = np.empty(len(index), dtype=np.int64)
    rank[order] = np.arange(len(index))
    return rank


def category_codes(column: CategoricalColumn, values: pd.Series | object) -> np.ndarray:
    """Span index of each value (int64 [n]; null -> the null category); EncodingError for unseen labels."""
    if isinstance(values, pd.Series):
        series = values
    elif isinstance(values, (np.ndarray, pd.Index, pd.api.extensions.ExtensionArray)):
        series = pd.Series(values)
    else:  # a short list of labels (e.g. one condition value)
        series = pd.Series(list(values), dtype=object)
    index = pd.Index(column.labels, dtype=object if not column.labels else None)
    codes = index.get_indexer(series)
    null = series.isna().to_numpy()
    unseen = (codes < 0) & ~null
    if unseen.any():
        found = pd.unique(series[unseen])
        raise EncodingError(
            f"column {column.name!r} has {len(found)} label(s) not seen at fit, e.g. "
            f"{list(found[:5])!r}; refit the encoder on data that includes them"
        )
    if null.any() and not column.has_null:
        raise EncodingError(f"column {column.name!r} has nulls but had none at fit")
    return np.where(null, len(column.labels), codes).astype(np.int64)


def decode_categorical(column: CategoricalColumn, index: np.ndarray) -> pd.Series:
    """Span indices [n] -> labels in the column's original dtype (index len(labels) = null)."""
    null = index >= len(column.labels)
    if column.category_values is not None:
        categories = pd.Index(column.category_values, dtype=column.category_dtype or None)
        dtype = pd.CategoricalDtype(categories, ordered=column.ordered)
        to_dtype_code = np.append(categories.get_indexer(pd.Index(column.labels, dtype=object)), -1)
        codes = to_dtype_code[np.minimum(index, len(column.labels))]
        return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), name=column.name)
    labels = np.empty(len(column.labels) + 1, dtype=object)
    labels[: len(column.labels)] = column.labels
    labels[-1] = None if column.null_is_none else np.nan
    picked = labels[np.minimum(index, len(column.labels))]
    dtype = pd.api.types.pandas_dtype(column.dtype)
    if dtype == object:
        return pd.Series(picked, dtype=object, name=column.name)
    if null.any():
        return pd.Series(pd.array(picked, dtype=dtype), name=column.name)
    return pd.Series(picked, name=column.name).astype(dtype)
