"""Reading input tables (CSV, gzipped CSV, parquet) with errors that name the file and its role.

`read_table` is the only place tailsynth opens a user's data file. It normalises dtypes so that a CSV and
a parquet file holding the same data give the same frame:

- text columns become `object` (pandas' `string`/`str` extension dtypes are converted), missing as NaN;
- whole-number columns stay integers: `int64`, or nullable `Int64` when the column has gaps (CSV is read
  with pandas' nullable backend, so `1, , 3` does not silently become float);
- other numbers become `float64`.

The second half holds the column checks `train.records` runs on every table (required columns, null or
duplicate ids, numbers and dates that do not parse), one small named function per check.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow

from tailsynth.models.errors import BundleError, DataError
from tailsynth.train.csv_checks import check_raw_csv, check_repeated_header

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")

# Everything a corrupt or wrongly typed file can make pandas/pyarrow raise; turned into a DataError.
_READ_ERRORS = (OSError, ValueError, EOFError, UnicodeError, zlib.error, pyarrow.ArrowException)


def read_table(path: str | Path, *, role: str) -> pd.DataFrame:
    """Read one input table; `role` ("interactions", "users", "items") is named in every error.

    Returns a frame with a fresh RangeIndex, so index labels are 0-based data-row numbers (the header is
    not counted), which is what error messages elsewhere quote as "rows".
    Raises DataError when the file is missing, is not a file, has an unknown extension, cannot be parsed,
    or has no rows.
    """
    path = Path(path)
    reader = _reader_for(path, role)
    if not path.exists():
        raise DataError(f"{role} table {path}: file does not exist")
    if not path.is_file():
        raise DataError(f"{role} table {path}: not a regular file")
    try:
        frame = reader(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{role} table {path}: the file is empty (no header, no rows)") from None
    except _READ_ERRORS as exc:
        raise DataError(f"{role} table {path}: cannot be read ({type(exc).__name__}: {exc})") from None
    if len(frame) == 0:
        raise DataError(f"{role} table {path}: the table has no rows")
    if len(frame.columns) == 0:
        raise DataError(f"{role} table {path}: the table has no columns")
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"{role} table {path}: duplicate column name(s) {duplicated}")
    return normalise_dtypes(frame.reset_index(drop=True))


def check_bundle_tables(run: str | Path) -> list[Path]:
    """BundleError naming the first table of a bundle (run directory or `bundle/` folder) whose parquet footer
    cannot be read: a truncated or overwritten file. Reads footers only (milliseconds), so a command can check
    its bundle before any work instead of failing on the table after generation. Returns the tables checked;
    a missing folder is left to the loader to report."""
    import pyarrow.parquet as pq

    folder = Path(run)
    if (folder / "bundle").is_dir():
        folder = folder / "bundle"
    if not folder.is_dir():
        return []
    tables = sorted(folder.glob("*.parquet"))
    for table in tables:
        try:
            pq.ParquetFile(table).metadata  # noqa: B018 - reading the footer is the check
        except _READ_ERRORS as exc:
            raise BundleError(f"bundle table {table}: cannot be read ({type(exc).__name__}: {exc}); the file is "
                              f"truncated or corrupt. Retrain, or restore the bundle from a copy") from None
    return tables


def _reader_for(path: Path, role: str) -> Callable[[Path], pd.DataFrame]:
    """The read function for the file's extension (case-insensitive)."""
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return lambda csv_path: _read_csv(csv_path, role)
    if name.endswith(PARQUET_SUFFIXES):
        return _read_parquet
    allowed = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    raise DataError(f"{role} table {path}: unknown file type; expected one of {allowed}")


def _read_parquet(path: Path) -> pd.DataFrame:
    """`pd.read_parquet`, then Arrow's freed buffers handed back to the system: its allocator keeps them
    otherwise, and with them the whole file's size in resident memory for as long as the run lasts."""
    frame = pd.read_parquet(path)
    pyarrow.default_memory_pool().release_unused()
    return frame


def _read_csv(path: Path, role: str) -> pd.DataFrame:
    """pandas' reader, framed by the structural checks it lacks (`train.csv_checks`)."""
    check_raw_csv(path, role)
    # The nullable backend keeps integer columns with gaps as Int64 instead of float64.
    frame = pd.read_csv(path, dtype_backend="numpy_nullable", low_memory=False)
    check_repeated_header(frame, f"{role} table {path}")
    return frame


def normalise_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Map pandas extension dtypes onto the house dtypes: object text, int64/Int64, float64, bool.

    Only the columns whose dtype changes are replaced, in a shallow copy: the others are not copied (a
    10M-row table would otherwise exist twice while it is read).
    """
    # A loop over columns (a handful), never over rows. Positional access survives duplicate names.
    out = frame.copy(deep=False)
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        normalised = _normalise_column(column)
        if normalised is not column:
            out.isetitem(i, normalised)
    return out


def _normalise_column(column: pd.Series) -> pd.Series:
    dtype = column.dtype
    has_nulls = bool(column.isna().any())
    if pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        if dtype == object:
            return column
        return column.astype(object).where(column.notna(), np.nan)
    if pd.api.types.is_bool_dtype(dtype):
        target: object = bool if not has_nulls else object
    elif pd.api.types.is_integer_dtype(dtype):
        target = "int64" if not has_nulls else "Int64"
    elif pd.api.types.is_float_dtype(dtype):
        target = "float64"
    else:
        return column
    return column if dtype == target else column.astype(target)  # a column already right is not copied


# ---------------------------------------------------------------------------------------------------------
# column checks: each names the table (`source`, e.g. "users table data/users.csv"), the column and
# example rows (0-based data-row numbers, i.e. index labels of a frame from `read_table`)

EXAMPLE_ROWS = 5


def example_rows(values: pd.Series, mask: np.ndarray | pd.Series, limit: int = EXAMPLE_ROWS) -> str:
    """'N row(s), e.g. row 4: 'abc', row 9: nan' for the rows where mask is True."""
    mask = np.asarray(mask, dtype=bool)
    picked = values[mask]
    shown = ", ".join(f"row {label}: {_short(value)}" for label, value in picked.head(limit).items())
    return f"{int(mask.sum())} row(s), e.g. {shown} (data rows counted from 0)"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    """DataError naming every required column absent from the table."""
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        present = [str(name) for name in frame.columns[:20]]
        raise DataError(f"{source}: missing required column(s) {missing}; the table has {present}")


def check_no_nulls(frame: pd.DataFrame, column: str, source: str, what: str) -> None:
    """DataError when a key column (`what`: "user id", "item id", "timestamp", ...) has null values."""
    nulls = frame[column].isna().to_numpy()
    if nulls.any():
        raise DataError(f"{source}: column {column!r} ({what}) has null values in "
                        f"{example_rows(frame[column], nulls)}")


def check_unique(frame: pd.DataFrame, column: str, source: str) -> None:
    """DataError when an id column of a feature table repeats ids (the join would be ambiguous)."""
    duplicated = frame[column].duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise DataError(f"{source}: id column {column!r} has duplicate ids in "
                        f"{example_rows(frame[column], duplicated)}")


def check_not_all_null(frame: pd.DataFrame, column: str, source: str) -> None:
    """DataError when a used column holds no value at all (nothing to learn from it)."""
    if frame[column].isna().all():
        raise DataError(f"{source}: column {column!r} is entirely null")


def parse_numerical(column: pd.Series, source: str) -> pd.Series:
    """Numbers from a column; DataError listing rows whose non-null value is not a finite number.

    Int64 when the source is integer (or boolean), else float64.
    """
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_integer_dtype(column.dtype):
        return column.astype("Int64")
    try:
        parsed = pd.to_numeric(column, errors="coerce")
    except (TypeError, ValueError):  # unhashable/odd objects: fall back to element-wise float()
        parsed = pd.Series(pd.to_numeric(column.astype(str), errors="coerce"), index=column.index)
        parsed[column.isna()] = np.nan
    parsed = parsed.astype("float64")
    bad = (parsed.isna() & column.notna()) | np.isinf(parsed)
    if bad.any():
        raise DataError(f"{source}: numerical column {column.name!r} has values that are not finite "
                        f"numbers in {example_rows(column, bad)}")
    return parsed


def bound_numerical(values: pd.Series, source: str, limit: float, clip: bool) -> tuple[pd.Series, int]:
    """(values, how many were clipped): magnitudes above `limit` refused (DataError naming the column and
    rows) or, with `clip`, clipped to +-limit. See `DataConfig.max_abs_value` for why there is a limit."""
    beyond = values.abs().gt(limit).fillna(False).to_numpy(dtype=bool)
    if not beyond.any():
        return values, 0
    if not clip:
        raise DataError(f"{source}: numerical column {values.name!r} has values beyond +-{limit:g} "
                        f"(data.max_abs_value), too large for the encoder's float64 statistics, in "
                        f"{example_rows(values, beyond)}; fix them, or set data.out_of_range=clip to clip them")
    bound = int(limit) if pd.api.types.is_integer_dtype(values.dtype) else limit
    return values.clip(-bound, bound), int(beyond.sum())


MAX_LABEL_CHARS = 1000
"""Longest category label accepted. Labels are stored in the bundle's manifest (the encoder's state) and in
reports; a multi-megabyte cell is a broken export (an unquoted field swallowing the file), not a category."""


def parse_categorical(column: pd.Series, source: str, max_chars: int = MAX_LABEL_CHARS) -> pd.Series:
    """Category dtype of the column's values; DataError if values cannot be compared (lists, dicts) or a
    label is longer than `max_chars` characters."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        parsed = column
    else:
        try:
            parsed = column.astype("category")
        except TypeError:
            kinds = column.map(type).astype(str)
            unhashable = ~column.map(lambda v: isinstance(v, (str, int, float, bool, np.generic)) or v is None)
            raise DataError(f"{source}: categorical column {column.name!r} holds values that cannot be "
                            f"categories ({sorted(set(kinds[unhashable]))[:3]}) in "
                            f"{example_rows(column, unhashable.to_numpy())}") from None
    lengths = pd.Index(parsed.cat.categories).astype(str).str.len()  # per distinct label, not per row
    if len(lengths) and int(lengths.max()) > max_chars:
        long = parsed.cat.categories[np.asarray(lengths > max_chars)]
        rows = parsed.isin(long).to_numpy(dtype=bool)
        raise DataError(f"{source}: categorical column {column.name!r} has label(s) longer than {max_chars:,} "
                        f"characters (the longest {int(lengths.max()):,}), a broken export rather than a category, "
                        f"in {example_rows(column, rows)}")
    return parsed
