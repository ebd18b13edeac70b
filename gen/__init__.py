"""tailsynth.gen: load a trained bundle, sample conditioned rows through the fidelity gate, cold start.

    bundle = gen.load("runs/online_retail_ctgan")
    result = gen.augment(bundle, bucket="tail", per_item=3)     # gated interactions for existing tail items
    if result.rows is not None:
        interactions = pd.concat([interactions, result.rows])
"""

from __future__ import annotations

from typing import Any

__all__ = ["load", "sample", "sample_gated", "augment", "cold_start", "Bundle"]


def __getattr__(name: str) -> Any:
    if name in ("load", "Bundle"):
        from tailsynth.gen import bundle

        return getattr(bundle, name)
    if name in ("sample", "sample_gated"):
        from tailsynth.gen import sampling

        return getattr(sampling, name)
    if name == "cold_start":
        from tailsynth.gen.items.cold_start import cold_start

        return cold_start
    if name == "augment":
        from tailsynth.gen.items.augment import augment

        return augment
    raise AttributeError(f"module 'gen' has no attribute {name!r}")
