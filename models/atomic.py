"""Atomic file output: write to a temporary file beside the target, fsync, then rename over it.

A killed run therefore leaves either the old file or the complete new one, never half a file. Every
artefact tailsynth writes (tables, reports, bundles) goes through here. This module lives in `evaluate/`,
the package every other one may import, so there is one implementation.

The temporary file is created with mode 0666 less the user's umask, as `open()` and every other tool create
files (`tempfile.mkstemp` would make it 0600, and the rename would carry that onto the output).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it is renamed onto `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(target)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _create_temporary(target: Path) -> Path:
    """A new, empty `.<name>.<random>.tmp` beside `target`, created exclusively with the umask's mode."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the kernel applies the umask
        except FileExistsError:  # another writer drew the same name: draw again
            continue
        return tmp


def write_with(target: str | Path, writer: Callable[[Path], Any]) -> Path:
    """Call `writer(tmp_path)` and move the result onto `target` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    return write_with(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(target: str | Path, payload: Any) -> Path:
    return write_text(target, json.dumps(payload, indent=2, sort_keys=False, default=_jsonable) + "\n")


def write_table(target: str | Path, table: pd.DataFrame) -> Path:
    """Parquet or CSV chosen by the target's extension (`.parquet`/`.pq`, else CSV)."""
    suffix = Path(target).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return write_with(target, lambda tmp: table.to_parquet(tmp, index=False))
    if suffix in (".csv", ".gz") or Path(target).name.endswith(".csv.gz"):
        compression = "gzip" if suffix == ".gz" else None
        return write_with(target, lambda tmp: table.to_csv(tmp, index=False, compression=compression))
    raise ValueError(f"{target}: expected a .parquet or .csv output path")


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays and pandas timestamps in reports become plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
