"""Atomic file output: write to a temporary file beside the target, fsync, then rename over it.

A killed run therefore leaves either the old file or the complete new one, never half a file. Every
artefact tailsynth writes (tables, reports, bundles) goes through here. This module lives in `models/`,
the package every other one may import, so there is one implementation. A killed write leaves its
`.<name>.<8 hex>.tmp` behind; `stale_temporaries` finds exactly those names (nothing a user named), and the
next writer of the same target removes them (`gen.outputs`, `train.run_dir`).

The temporary file is created with mode 0666 less the user's umask, as `open()` and every other tool create
files (`tempfile.mkstemp` would make it 0600, and the rename would carry that onto the output).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[0-9a-f]{8}\.tmp$")
"""The names `_create_temporary` gives: `.<target name>.<8 hex digits>.tmp`."""


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


def stale_temporaries(folder: Path, target_name: str | None = None) -> list[Path]:
    """The temporary files our writers left in `folder` (of `target_name` only, when given)."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = TEMPORARY.match(path.name)
        if match and (target_name is None or match["target"] == target_name) and path.is_file():
            found.append(path)
    return sorted(found)


def prepared(target: str | Path, writer: Callable[[Path], Any]) -> Path:
    """`writer(tmp)` into a new temporary beside `target`, fsynced; the caller renames it (or removes it).

    For writers of several files that must appear together (`gen.outputs`): each is prepared first, then
    all are renamed.
    """
    target = Path(target)
    tmp = _create_temporary(target)
    try:
        writer(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def table_writer(target: str | Path, table: pd.DataFrame) -> Callable[[Path], Any]:
    """The function that writes `table` to a path in the format of `target`'s extension."""
    suffix = Path(target).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return lambda tmp: table.to_parquet(tmp, index=False)
    if suffix in (".csv", ".gz") or Path(target).name.endswith(".csv.gz"):
        compression = "gzip" if suffix == ".gz" else None
        return lambda tmp: table.to_csv(tmp, index=False, compression=compression)
    raise ValueError(f"{target}: expected a .parquet or .csv output path")


def json_text(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=False, default=_jsonable) + "\n"


def fsync_directory(folder: str | Path) -> None:
    """Make renames in `folder` durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def write_with(target: str | Path, writer: Callable[[Path], Any]) -> Path:
    """Call `writer(tmp_path)` and move the result onto `target` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    return write_with(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(target: str | Path, payload: Any) -> Path:
    return write_text(target, json_text(payload))


def write_table(target: str | Path, table: pd.DataFrame) -> Path:
    """Parquet or CSV chosen by the target's extension (`.parquet`/`.pq`, else CSV)."""
    return write_with(target, table_writer(target, table))


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays and pandas timestamps in reports become plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
