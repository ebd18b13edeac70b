"""tailsynth.train: behaviour records from interaction tables, and `fit(config) -> Path` for the generators.

Attributes are imported lazily so that `from train.config import ...` does not start Lightning.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fit", "load_config", "build_records", "RunConfig"]


def __getattr__(name: str) -> Any:
    if name == "fit":
        from tailsynth.train.fit import fit

        return fit
    if name in ("load_config", "RunConfig"):
        from tailsynth.train import config

        return getattr(config, name)
    if name == "build_records":
        from tailsynth.train.records import build_records

        return build_records
    raise AttributeError(f"module 'train' has no attribute {name!r}")
