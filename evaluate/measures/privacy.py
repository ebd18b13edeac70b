"""Privacy measures: does a synthetic table copy, or sit too close to, the real rows it was trained on?

- `dcr`: distance from each row to its closest record in a reference table (the training rows). Numbers
  are scaled by the reference's interquartile range; each categorical mismatch adds 1 to the squared
  distance, so d = sqrt(sum over numbers of (delta / scale)^2 + number of mismatching categoricals).
  A numerical null is treated as the reference median plus a mismatch of 1 on a null indicator.
- `rare_copy_mask`: rows that exactly reproduce a value combination seen in training fewer than k times —
  such a row could single out a real customer, so the gate drops it.
- `copy_rate`: share of rows with an exact twin in training.

Exact matching normalises values first (numbers and datetimes to float64 seconds, categoricals to objects
with nulls as `NULL_LABEL`), so int vs float storage or a CSV round trip does not hide a copy; nulls match
nulls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from tailsynth.evaluate.measures.detection import torch_device
from tailsynth.evaluate.measures.metrics import ColumnTypes, category_labels, check_columns, numeric_values

COUNT = "__tailsynth_train_count__"


def _scale(values: np.ndarray) -> tuple[float, float]:
    """(centre, scale) of a reference column: median and IQR, else std, else 1 (constant column)."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return 0.0, 1.0
    q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    scale = q75 - q25
    if not scale > 0:
        scale = values.std()
    return float(median), float(scale) if scale > 0 else 1.0


def _dcr_arrays(
    rows: pd.DataFrame, reference: pd.DataFrame, columns: ColumnTypes
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scaled numbers [n, p] and [m, p], and integer codes [n, q] and [m, q] (categoricals, null flags)."""
    numbers_rows, numbers_ref, codes_rows, codes_ref = [], [], [], []
    for column, sdtype in columns.items():
        if sdtype == "categorical":
            labels = np.concatenate([category_labels(rows[column]), category_labels(reference[column])])
            codes = pd.factorize(labels)[0]  # one shared vocabulary, so equal codes mean equal values
            codes_rows.append(codes[: len(rows)])
            codes_ref.append(codes[len(rows):])
            continue
        row_values, ref_values = numeric_values(rows[column]), numeric_values(reference[column])
        centre, scale = _scale(ref_values)
        row_null, ref_null = np.isnan(row_values), np.isnan(ref_values)
        numbers_rows.append(np.where(row_null, 0.0, (row_values - centre) / scale))
        numbers_ref.append(np.where(ref_null, 0.0, (ref_values - centre) / scale))
        if row_null.any() or ref_null.any():  # the null flag only costs a compare where nulls exist
            codes_rows.append(row_null.astype(np.int64))
            codes_ref.append(ref_null.astype(np.int64))

    def stack(parts: list[np.ndarray], size: int, dtype: type) -> np.ndarray:
        return np.stack(parts, axis=1).astype(dtype) if parts else np.zeros((size, 0), dtype=dtype)

    return (
        stack(numbers_rows, len(rows), np.float32),
        stack(numbers_ref, len(reference), np.float32),
        stack(codes_rows, len(rows), np.int64),
        stack(codes_ref, len(reference), np.int64),
    )


def dcr(
    rows: pd.DataFrame,
    reference: pd.DataFrame,
    columns: ColumnTypes,
    *,
    batch: int = 4096,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """[len(rows)] float64: each row's distance to its closest record in `reference` (0 for a copy).

    Computed on `device` (default: CUDA when available) in blocks of `batch` rows x `batch` reference
    records, keeping a running minimum, so memory is O(batch^2) whatever the table sizes.
    """
    check_columns(rows, columns, "rows")
    check_columns(reference, columns, "reference")
    if len(reference) == 0:
        raise ValueError("dcr needs a non-empty reference table")
    if batch < 1:
        raise ValueError(f"dcr batch must be >= 1, got {batch}")
    device = torch_device(device)
    arrays = _dcr_arrays(rows, reference, columns)
    num_rows, num_ref, codes_rows, codes_ref = (torch.from_numpy(a).to(device) for a in arrays)
    vocabulary = _one_hot_offsets(codes_rows, codes_ref)
    best = torch.full((len(rows),), float("inf"), dtype=torch.float32, device=device)
    for start in range(0, len(rows), batch):
        block_num, block_codes = num_rows[start:start + batch], codes_rows[start:start + batch]
        block_hot = None if vocabulary is None else _one_hot(block_codes, *vocabulary)
        for ref_start in range(0, len(reference), batch):
            ref_codes = codes_ref[ref_start:ref_start + batch]
            if block_hot is None:
                squared = _squared_distances(block_num, num_ref[ref_start:ref_start + batch], block_codes, ref_codes)
            else:
                squared = _squared_distances_one_hot(block_num, num_ref[ref_start:ref_start + batch], block_hot,
                                                     _one_hot(ref_codes, *vocabulary), codes_rows.shape[1])
            best[start:start + batch] = torch.minimum(best[start:start + batch], squared.min(dim=1).values)
    return best.sqrt().double().cpu().numpy()


MAX_ONE_HOT = 2048
"""Widest one-hot vocabulary (all code columns together) for which mismatches are counted by a matrix product;
wider ones (an id-like column) are compared column by column."""


def _one_hot_offsets(codes_rows: torch.Tensor, codes_ref: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """(each code column's offset into one shared one-hot vocabulary, its width), or None when there are no
    code columns or the vocabulary is wider than `MAX_ONE_HOT`."""
    if codes_rows.shape[1] == 0 or len(codes_rows) == 0 or min(int(codes_rows.min()), int(codes_ref.min())) < 0:
        return None
    sizes = torch.maximum(codes_rows.max(dim=0).values, codes_ref.max(dim=0).values) + 1
    width = int(sizes.sum())
    if width > MAX_ONE_HOT:
        return None
    return torch.cumsum(sizes, 0) - sizes, width


def _one_hot(codes: torch.Tensor, offsets: torch.Tensor, width: int) -> torch.Tensor:
    """[n, width] float32 with a 1 at each code column's code (its block of the vocabulary)."""
    hot = torch.zeros(len(codes), width, dtype=torch.float32, device=codes.device)
    return hot.scatter_(1, codes + offsets, 1.0)


def _squared_distances_one_hot(
    num_a: torch.Tensor, num_b: torch.Tensor, hot_a: torch.Tensor, hot_b: torch.Tensor, code_columns: int
) -> torch.Tensor:
    """`_squared_distances` with the mismatches counted by one matrix product of the one-hot rows.

    mismatches = code_columns - matches: whole numbers, exact in float32, added to the numeric part as
    before, so a copied row still ends at exactly 0. One matrix product instead of one compare per column:
    the cost no longer grows with a Python loop over the columns.
    """
    if num_a.shape[1]:
        squared = torch.cdist(num_a, num_b, compute_mode="donot_use_mm_for_euclid_dist").square_()
    else:
        squared = torch.zeros(num_a.shape[0], num_b.shape[0], device=num_a.device)
    total = torch.tensor(float(code_columns), device=hot_a.device)
    return squared.add_(torch.addmm(total, hot_a, hot_b.T, alpha=-1.0))


def _squared_distances(
    num_a: torch.Tensor, num_b: torch.Tensor, codes_a: torch.Tensor, codes_b: torch.Tensor
) -> torch.Tensor:
    """[a, b] squared distances: squared Euclidean on the numbers plus the count of mismatching codes."""
    if num_a.shape[1]:
        # The direct (non-matmul) mode is exact: a copied row gets distance 0, not rounding noise.
        squared = torch.cdist(num_a, num_b, compute_mode="donot_use_mm_for_euclid_dist").square_()
    else:
        squared = torch.zeros(num_a.shape[0], num_b.shape[0], device=num_a.device)
    # A loop over columns, each step one vectorised [a, b] compare; cheaper than a one-hot matmul when a
    # column has thousands of categories, and exact.
    for column in range(codes_a.shape[1]):
        squared.add_(codes_a[:, column, None] != codes_b[None, :, column])
    return squared


# ---------------------------------------------------------------------------------------------------------
# exact copies


def _keys(table: pd.DataFrame, columns: ColumnTypes) -> pd.DataFrame:
    """Normalised values of the judged columns under positional names k0, k1, ... (merge keys)."""
    return pd.DataFrame(
        {
            f"k{i}": category_labels(table[column]) if sdtype == "categorical" else numeric_values(table[column])
            for i, (column, sdtype) in enumerate(columns.items())
        },
        index=pd.RangeIndex(len(table)),
    )


class CopyCounts:
    """How many training rows have each value combination of `columns`: counted once, looked up per batch
    (the gate screens every chunk of candidates against the same training rows)."""

    def __init__(self, train: pd.DataFrame, columns: ColumnTypes) -> None:
        check_columns(train, columns, "train")
        if not columns:
            raise ValueError("exact-copy checks need at least one column")
        self.columns = dict(columns)
        train_keys = _keys(train, columns)
        self.names = list(train_keys.columns)
        self.counts = train_keys.groupby(self.names, dropna=False, sort=False).size().rename(COUNT).reset_index()

    def of(self, rows: pd.DataFrame) -> np.ndarray:
        """[len(rows)] int64: how many training rows have exactly each row's value combination (0: none)."""
        check_columns(rows, self.columns, "rows")
        # A left merge keeps the rows' order; NaN keys match NaN keys (a null copied is still a copy). No
        # `validate="many_to_one"`: the counts come from a groupby, so their keys are unique by construction.
        matched = _keys(rows, self.columns).merge(self.counts, how="left", on=self.names)
        return matched[COUNT].fillna(0).to_numpy(dtype=np.int64)

    def rare(self, rows: pd.DataFrame, k: int) -> np.ndarray:
        """[len(rows)] bool: True where the row equals a combination seen in training at least once but < k times."""
        if k < 1:
            raise ValueError(f"rare_copy_mask k must be >= 1, got {k}")
        counts = self.of(rows)
        return (counts >= 1) & (counts < k)


def train_counts(rows: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes) -> np.ndarray:
    """[len(rows)] int64: how many training rows have exactly each row's value combination (0: none)."""
    return CopyCounts(train, columns).of(rows)


def rare_copy_mask(rows: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes, k: int) -> np.ndarray:
    """[len(rows)] bool: True where the row equals a combination seen in `train` at least once but < k times."""
    return CopyCounts(train, columns).rare(rows, k)


def copy_rate(rows: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes) -> float:
    """Share of `rows` that have an exact twin (on all `columns`) in `train`; nan for an empty table."""
    if len(rows) == 0:
        return float("nan")
    return float((train_counts(rows, train, columns) >= 1).mean())


def event_copies(rows: pd.DataFrame, holdout: pd.DataFrame, train: pd.DataFrame, columns: ColumnTypes) -> dict:
    """How often an interaction repeats a real training row's event tuple, next to the real data's own rate.

    columns: the event tuple, e.g. item id, timestamp and the event columns (quantity, price), each
    "categorical" (ids: compared as labels) or "numerical" (numbers and datetimes: compared as float64).
    A generated row whose tuple equals a training row's is a copy of that real event with (at most) another
    user attached; the real held-out rows' own rate says how often real events repeat one seen in training
    (one product, one minute, one quantity and price, bought twice), so a generator is held to that floor.
    Returns {"emitted", "real_holdout": share or None for no rows, "emitted_rows": count, "columns", "note"}.
    """
    counts = CopyCounts(train, columns)
    copied = int((counts.of(rows) >= 1).sum()) if len(rows) else 0
    real = float((counts.of(holdout) >= 1).mean()) if len(holdout) else None
    return {"emitted": copied / len(rows) if len(rows) else None, "emitted_rows": copied, "real_holdout": real,
            "columns": list(columns),
            "note": "share of rows whose event tuple (" + ", ".join(columns) + ") equals a real training row's; "
                    "real_holdout: the same share of the real held-out rows (the floor)"}
