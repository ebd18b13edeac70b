"""Every request bounded before the work: rows asked x bytes per row against a memory bound.

A `gen` call holds its emitted rows in memory (and, while it writes them as interactions, a few working
copies), plus one chunk of candidates at a time when gated. `check_request` estimates that from the rows
asked for and the bundle's own rows (their measured size in memory, and the generator's encoded width) and
stops the call with a `ConfigError` naming the estimate, the limit and the setting that changes it, before
anything is generated. The limit is `--set max_memory_gib=N`; by default half the machine's memory.

The estimate is deliberately generous (`WORKING_COPIES`): refusing a request that would have fitted costs
one flag, while running out of memory after minutes of work costs the machine.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tailsynth.models.errors import ConfigError

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle

GIB = 1 << 30
WORKING_COPIES = 4
"""Copies of a row a call may hold at once: decoded rows, rows written as interactions, the emitted frame,
the file writer's buffer."""
SAMPLED_ROWS = 1000
"""Training rows whose deep memory size gives the bytes per row."""
SETTING = "max_memory_gib"


@dataclass(frozen=True)
class Estimate:
    rows: int
    bytes_per_row: float
    in_flight_rows: int
    """Candidate rows held at once besides the emitted ones (a gated call's chunk)."""

    @property
    def bytes(self) -> float:
        return (self.rows + self.in_flight_rows) * self.bytes_per_row * WORKING_COPIES


def machine_memory() -> int | None:
    """Physical memory in bytes, or None where the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit(max_memory_gib: float | None) -> tuple[float, str]:
    """(bytes, where the figure comes from)."""
    if max_memory_gib is not None:
        return max_memory_gib * GIB, f"{SETTING}={max_memory_gib:g}"
    memory = machine_memory()
    if memory is None:
        return 8 * GIB, f"{SETTING} default 8 GiB (this platform does not report its memory)"
    return memory / 2, f"{SETTING} default: half this machine's {memory / GIB:.0f} GiB"


def bytes_per_row(bundle: Bundle) -> float:
    """Deep size in memory of one training row, plus the generator's encoded row (float32)."""
    train = bundle.table("train").head(SAMPLED_ROWS)
    measured = float(train.memory_usage(deep=True, index=False).sum()) / max(len(train), 1)
    encoded = 4.0 * float(getattr(bundle.encoder, "width", 0) or 0)
    return max(measured, 64.0) + encoded


def check_request(bundle: Bundle, rows: int, *, in_flight_rows: int = 0, max_memory_gib: float | None = None,
                  what: str = "rows") -> Estimate:
    """ConfigError when `rows` (plus `in_flight_rows`) would need more memory than the bound; else the estimate."""
    estimate = Estimate(int(rows), bytes_per_row(bundle), int(in_flight_rows))
    limit, source = memory_limit(max_memory_gib)
    if estimate.bytes > limit:
        raise ConfigError(
            f"{what}: {estimate.rows:,} rows would need about {_gib(estimate.bytes)} of memory (~{estimate.bytes_per_row:,.0f} "
            f"bytes a row x {WORKING_COPIES} working copies), above the limit of {_gib(limit)} ({source}); ask for "
            f"fewer rows, or raise the limit with --set {SETTING}=N")
    return estimate


def _gib(value: float) -> str:
    gib = value / GIB
    return f"{gib:,.0f} GiB" if gib >= 10 or math.isinf(gib) else f"{gib:.2g} GiB"
