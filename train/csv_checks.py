"""Structural checks of a CSV file that pandas lets through silently, each a DataError naming file and row.

- a NUL byte: pandas' parser ends the cell there (`x\\0y` becomes `x`);
- a duplicated column name: pandas renames the second `Quantity` to `Quantity.1`, so a check of the
  frame's names can never fire; the raw header line is read instead;
- a truncated last line (a file cut off mid-row): pandas pads the missing cells with nulls;
- the header line repeated inside the file (files concatenated with their headers): pandas reads it as a
  data row, an item named "StockCode".

The raw file is streamed once in large chunks (searching and counting bytes in C), never parsed row by row
in Python; only the header line and the last line are parsed with the `csv` module. Lines end as the file's
first line does: `\n` or `\r\n`, or a bare `\r` (old Mac exports, which pandas reads too).
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from tailsynth.models.errors import DataError

CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class RawScan:
    """What one pass over the raw bytes found."""

    lines: int
    """Line ends in the file."""
    nul_line: int | None
    """1-based line of the first NUL byte, or None."""
    nul_prefix: bytes
    """That line's bytes before the NUL."""
    last_line: bytes
    """Bytes after the last newline: empty when the file ends with a newline."""


def check_raw_csv(path: Path, role: str) -> list[str]:
    """DataError for a NUL byte, a duplicated column name or a truncated last line; returns the header."""
    source = f"{role} table {path}"
    header = raw_header(path)
    scan = scan_bytes(path, line_end(path))
    if scan.nul_line is not None:
        column = _field_index(scan.nul_prefix)
        name = repr(header[column]) if column < len(header) else f"number {column + 1}"
        row = "the header" if scan.nul_line == 1 else f"data row {scan.nul_line - 2} (counted from 0)"
        raise DataError(f"{source}: NUL byte at line {scan.nul_line} ({row}), column {name}; the file is corrupt "
                        f"or not UTF-8 text (a UTF-16 export?)")
    duplicated = pd.Index(header)[pd.Index(header).duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"{source}: duplicate column name(s) {duplicated} in the header line (pandas would "
                        f"silently rename the second to {duplicated[0] + '.1'!r} and use only the first)")
    if scan.last_line.strip() and scan.lines >= 1:
        fields = _fields(scan.last_line)
        if len(fields) < len(header):
            raise DataError(f"{source}: the last line (line {scan.lines + 1}) has {len(fields)} of the header's "
                            f"{len(header)} fields and no line end: the file looks truncated "
                            f"(last line starts {scan.last_line[:40]!r})")
    return header


def check_repeated_header(frame: pd.DataFrame, source: str) -> None:
    """DataError naming the data rows that repeat the header line (every cell equal to its column's name)."""
    if frame.empty or frame.shape[1] == 0:
        return
    names = [str(name) for name in frame.columns]
    # Text columns only can hold a header's text; start with one and compare the rest on its hits alone.
    first = next((i for i in range(frame.shape[1]) if not pd.api.types.is_numeric_dtype(frame.iloc[:, i])), None)
    if first is None:
        return
    hits = frame.iloc[:, first].astype(object).eq(names[first]).to_numpy(dtype=bool)
    if not hits.any():
        return
    candidates = frame[hits]
    repeated = candidates.astype(str).eq(names).all(axis=1)
    rows = candidates.index[repeated.to_numpy()]
    if len(rows):
        shown = ", ".join(str(row) for row in rows[:5])
        raise DataError(f"{source}: {len(rows)} data row(s) repeat the header line (rows {shown}, counted from 0): "
                        f"were files concatenated with their headers? Remove the repeated header lines")


def line_end(path: Path) -> bytes:
    """The byte that ends the file's lines: `\n` (also for `\r\n`), or `\r` when the first line ends with a
    bare carriage return."""
    with _open(path) as handle:
        start = handle.read(1 << 20)
    newline, carriage = start.find(b"\n"), start.find(b"\r")
    if carriage >= 0 and (newline < 0 or carriage + 1 < newline):
        return b"\r"
    return b"\n"


def raw_header(path: Path) -> list[str]:
    """The header line's fields, parsed with `csv` (quotes respected), BOM removed."""
    with _open(path) as handle:
        start = handle.read(1 << 20)
    first = start.split(line_end(path), 1)[0]
    return _fields(first)


def scan_bytes(path: Path, end: bytes = b"\n") -> RawScan:
    """One streaming pass: line-end count, the first NUL byte's line, and the bytes after the last line end."""
    lines = 0
    tail = b""  # bytes since the last line end seen
    for chunk in _chunks(path):
        nul = chunk.find(b"\x00")
        if nul >= 0:
            before = chunk[:nul]
            line_start = before.rfind(end)
            prefix = before[line_start + 1:] if line_start >= 0 else tail + before
            return RawScan(lines + before.count(end), lines + before.count(end) + 1, prefix, b"")
        newline = chunk.rfind(end)
        if newline >= 0:
            lines += chunk.count(end)
            tail = chunk[newline + 1:]
        else:
            tail += chunk
            tail = tail[-(1 << 20):]  # a line is shown, not kept whole
    return RawScan(lines, None, b"", tail)


def _chunks(path: Path) -> Iterator[bytes]:
    with _open(path) as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def _open(path: Path) -> BinaryIO:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _fields(line: bytes) -> list[str]:
    text = line.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    try:
        return next(csv.reader([text]), [])
    except csv.Error:  # a line end inside the line (an unusual file): fields as commas split them
        return text.split(",")


def _field_index(prefix: bytes) -> int:
    """0-based column of the character right after `prefix` (the start of its line)."""
    return max(len(_fields(prefix + b"x")) - 1, 0)
