"""A measure dict as scalars: finite floats by path, and the same logged to any `add_scalar` writer.

What the training monitor, the TensorBoard report and the Markdown report all read. No I/O here: the caller
hands in the writer (TensorBoard's `SummaryWriter`, or a recorder in tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np


def number(value: Any) -> float | None:
    """A finite float for int/float-like values (bools count as 0/1), else None."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(float(value)):
        return float(value)
    return None


def numeric_leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, float]]:
    """("a/b/0/c", value) for every numeric leaf of nested dicts/lists (bools as 0/1; NaN/None skipped)."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield from numeric_leaves(child, (*path, str(key)))
    elif isinstance(node, (list, tuple)):
        for index, child in enumerate(node):
            yield from numeric_leaves(child, (*path, str(index)))
    else:
        value = number(node)
        if value is not None and path:
            yield "/".join(path), value


class ScalarWriter(Protocol):
    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = None) -> Any: ...


def log_measures(writer: ScalarWriter, prefix: str, measures: dict[str, Any], step: int) -> None:
    """Log a `fidelity.measure` dict as scalars under `prefix` (see the module docstring for tags)."""
    for key, value in measures.items():
        scalar = None if isinstance(value, (bool, np.bool_)) else number(value)
        if scalar is not None:
            writer.add_scalar(f"{prefix}/{key}", scalar, step)
    for row in measures.get("columns", ()):
        kind = "tvd" if row.get("sdtype") == "categorical" else "ks"
        for tag, value in ((f"{prefix}/{kind}/{row['column']}", row.get("distance")),
                           (f"{prefix}/pvalue/{row['column']}", row.get("pvalue"))):
            scalar = number(value)
            if scalar is not None:
                writer.add_scalar(tag, scalar, step)


