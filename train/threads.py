"""Torch's CPU thread count: `trainer.cpu_threads`, or a default that leaves room for other work.

Torch starts one intra-op thread per physical core. The networks here are small (a few hundred units), so
extra threads buy little, and when anything else runs on the machine they spin against it, making a
run several times slower than with one thread (evaluate/bench/README.md has the figure). The default is therefore `OMP_NUM_THREADS` when the environment sets it, else half the
cores this process may use, at most 8 (at least 1).

`tailsynth train` (through `train.fit`), `tailsynth gen` and `tailsynth evaluate` apply it at entry: the
training run's own config, or for a bundle the value recorded in it. `train.fit` restores the previous
count when it returns, so a library caller's setting survives.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

MAX_DEFAULT_THREADS = 8


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_cpu_threads() -> int:
    """`OMP_NUM_THREADS` when set to a positive integer, else half the usable cores (1..8)."""
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return max(1, min(MAX_DEFAULT_THREADS, usable_cores() // 2))


def resolve_cpu_threads(requested: int | None) -> int:
    """The configured count, or `default_cpu_threads()` for None."""
    return default_cpu_threads() if requested is None else int(requested)


def apply_cpu_threads(requested: int | None) -> int:
    """Set torch's intra-op thread count (for the rest of the process); returns the count set."""
    count = resolve_cpu_threads(requested)
    torch.set_num_threads(count)
    return count


@contextmanager
def cpu_threads(requested: int | None) -> Iterator[int]:
    """`apply_cpu_threads` for the duration of the block, then the previous count again."""
    previous = torch.get_num_threads()
    try:
        yield apply_cpu_threads(requested)
    finally:
        torch.set_num_threads(previous)


def recorded_cpu_threads(run: str | Path) -> int | None:
    """`trainer.cpu_threads` recorded in a run directory's (or bundle folder's) bundle.json; None when the
    bundle does not record one or cannot be read here (loading it later reports the real problem)."""
    path = Path(run)
    manifest = path / "bundle" / "bundle.json" if (path / "bundle").is_dir() else path / "bundle.json"
    try:
        value = json.loads(manifest.read_text(encoding="utf-8"))["meta"]["config"]["trainer"].get("cpu_threads")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None
