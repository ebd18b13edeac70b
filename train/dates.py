"""Timestamps from a table column, read with one format for the whole column.

pandas guesses a text column's format from its first value and, asked to retry the values that do not fit
(`format="mixed"`), reads each of those on its own: `01/12/2010` (first, so month-first: 12 January) and
`13/12/2010` (13 December) then end up in one column read two ways, silently. Here a column is read with
exactly one format, applied strictly to every value:

- a configured format (`date_formats: {column: "%d/%m/%Y %H:%M"}` on the table's config), or else
- ISO 8601 (year first, so never ambiguous) when every value is ISO 8601, or else
- the one format, among those guessed day-first and month-first from the column's values, that reads
  every value. When two such formats both read every value but give different dates (every day is 12 or
  less), the column is ambiguous; when none reads every value, the column mixes formats (or holds
  non-dates). Both are a `DataError` naming example rows and the key that sets the format.

Numbers are Unix seconds; datetime dtypes are kept. One rule for time zones: a column is either all naive
(read as written) or all offset-carrying (`+05:00`, `Z`, or a zone-aware dtype), and offset-carrying values
are converted to UTC, every one of them, whatever offsets they carry; the result is naive UTC. A text
column mixing naive values and values with an offset is a `DataError` naming example rows of each: there
is no right way to place the naive ones (pandas would read them as UTC and shift only the others, or the
reverse, silently).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from tailsynth.models.errors import DataError
from tailsynth.train.io import example_rows

try:  # public since pandas 2.2
    from pandas.tseries.api import guess_datetime_format
except ImportError:  # pragma: no cover - older pandas
    from pandas._libs.tslibs.parsing import guess_datetime_format

ISO = "ISO8601"
GUESS_FROM = 50
"""Distinct values the candidate formats are guessed from (guessing is per value, in Python)."""
OFFSET = re.compile(r"\d(?:\s*(?:Z|UTC|GMT)|\s*[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
"""A value that ends with a UTC offset after its time: `...10:00+05:00`, `...10:00Z`, `...1000 -0500`."""
TIME = re.compile(r"\d:\d{2}")
UNIX_SECONDS_LIMIT = 9.2e9
"""datetime64[ns] spans about +-292 years around 1970: about +-9.2e9 seconds."""


def parse_datetime(column: pd.Series, source: str, format: str | None = None, key: str = "date_formats") -> pd.Series:
    """Naive datetime64[ns] of a column; `key` is the config key that sets its format, named in errors.

    DataError listing rows whose non-null value is not a date in the column's one format (see module).
    """
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        parsed = column.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_any_dtype(column.dtype):
        parsed = column
    elif pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        seconds = column.astype("float64")
        seconds = seconds.where(seconds.abs() < UNIX_SECONDS_LIMIT)
        parsed = pd.to_datetime(seconds, unit="s", errors="coerce")
    else:
        return _parse_text(column, source, format, key)
    bad = parsed.isna().to_numpy() & column.notna().to_numpy()
    if bad.any():
        raise DataError(f"{source}: datetime column {column.name!r} has values that are not dates in "
                        f"{example_rows(column, bad)}")
    return parsed.astype("datetime64[ns]")


def _parse_text(column: pd.Series, source: str, format: str | None, key: str) -> pd.Series:
    text = column.where(column.isna(), column.astype(str))
    present = text.notna()
    name = column.name
    _one_kind_of_time_zone(column, text, present, source)
    if format:
        parsed = to_naive_datetime(text, format)
        bad = (present & parsed.isna()).to_numpy()
        if bad.any():
            raise DataError(f"{source}: datetime column {name!r} has values that are not dates in the "
                            f"configured format {format!r} ({key}) in {example_rows(column, bad)}")
        return parsed
    complete: tuple[str, pd.Series] | None = None
    best: tuple[str, pd.Series] | None = None  # (format, failure mask) of the format that reads the most
    for candidate in candidate_formats(text[present]):  # a handful of formats, each parsed vectorised
        parsed = to_naive_datetime(text, candidate)
        failed = present & parsed.isna()
        if not failed.any():
            if candidate == ISO:  # year first: no day/month reading to choose between
                return parsed
            if complete is None:
                complete = (candidate, parsed)
                continue
            differs = (present & (parsed != complete[1])).to_numpy()
            if differs.any():
                raise DataError(_ambiguous(column, source, key, complete, (candidate, parsed), differs))
        elif best is None or failed.sum() < best[1].sum():
            best = (candidate, failed)
    if complete is not None:
        return complete[1]
    if best is None or bool(best[1].eq(present).all()):
        raise DataError(f"{source}: datetime column {name!r} has values that are not dates in "
                        f"{example_rows(column, present.to_numpy())}; if they are, set their format in {key}")
    raise DataError(f"{source}: datetime column {name!r} has values that are not dates in the format "
                    f"{best[0]!r} its other values follow (a column is read with one format; set {key} to "
                    f"choose it) in {example_rows(column, best[1].to_numpy())}")


def carries_offset(text: pd.Series) -> np.ndarray:
    """[n] bool: the text value ends with a UTC offset (or Z) after a time of day; False for nulls."""
    values = text.fillna("").astype(str).str.strip()
    return (values.str.contains(TIME) & values.str.contains(OFFSET)).to_numpy(dtype=bool)


def _one_kind_of_time_zone(column: pd.Series, text: pd.Series, present: pd.Series, source: str) -> None:
    """DataError when some values carry a UTC offset and others do not (see module docstring)."""
    offset = carries_offset(text) & present.to_numpy(dtype=bool)
    naive = present.to_numpy(dtype=bool) & ~offset
    if offset.any() and naive.any():
        raise DataError(f"{source}: datetime column {column.name!r} mixes values with a UTC offset and values "
                        f"without one, which cannot be placed on one clock: with an offset "
                        f"{example_rows(column, offset, 3)}; without {example_rows(column, naive, 3)}. Give every "
                        f"value an offset (they are converted to UTC) or none")


def candidate_formats(values: pd.Series) -> list[str]:
    """ISO 8601 first, then the formats guessed month-first and day-first from the first distinct values.

    Year-day-month guesses (`%Y-%d-%m`, which pandas offers for ISO-looking text when asked for day-first)
    are left out: no one writes dates that way, and they would make every ISO column look ambiguous.
    """
    formats = [ISO]
    for value in pd.unique(values)[:GUESS_FROM]:
        for dayfirst in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                guess = guess_datetime_format(str(value), dayfirst=dayfirst)
            if guess and guess not in formats and not _year_day_month(guess):
                formats.append(guess)
    return formats


def _year_day_month(format: str) -> bool:
    positions = [format.find(part) for part in ("%Y", "%d", "%m")]
    return -1 not in positions and positions[0] < positions[1] < positions[2]


def to_naive_datetime(text: pd.Series, format: str) -> pd.Series:
    """Strict parse with one format (NaT where a value does not fit). Values with a UTC offset are converted
    to UTC (all of them, one rule; callers refuse columns mixing them with naive values); naive UTC back."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(text, errors="coerce", format=format, utc=bool(carries_offset(text).any()))
    except (ValueError, TypeError, OverflowError):
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    if not pd.api.types.is_datetime64_any_dtype(parsed.dtype):
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    return _as_nanoseconds(parsed)


def _as_nanoseconds(parsed: pd.Series) -> pd.Series:
    """datetime64[ns]; values beyond its range (pandas 3 parses year 1 or 9999 to microseconds) become NaT,
    so they are reported as not dates instead of failing the conversion."""
    inside = parsed.isna() | ((parsed >= pd.Timestamp.min) & (parsed <= pd.Timestamp.max))
    return parsed.where(inside).astype("datetime64[ns]")


def _ambiguous(column: pd.Series, source: str, key: str, first: tuple[str, pd.Series],
               second: tuple[str, pd.Series], differs: object) -> str:
    row = column.index[differs][0]
    readings = f"{first[1][row]:%Y-%m-%d} or {second[1][row]:%Y-%m-%d}"
    return (f"{source}: datetime column {column.name!r} is ambiguous: formats {first[0]!r} and {second[0]!r} "
            f"both read every value but give different dates (row {row}: {column[row]!r} is {readings}) in "
            f"{example_rows(column, differs)}; set {key} to the column's format")
