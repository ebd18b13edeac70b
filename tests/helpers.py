"""Small helpers shared by test modules (imported as `helpers`; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import lightning as L
import torch

HANG_GUARD_S = 3600
"""Timeout of every subprocess a test runs. It guards against a hang, not a slow machine: a command that
takes 2 minutes alone took over 10 while other work shared the 2 cores, so the guard sits far above the
whole suite's own CI budget (about 15 minutes). Speed is measured by benchmarks, never by a test."""

TINY_MIN_LIFT = 0.0
"""The gate's taste test asks for 3x activity-weighted random users. On the tiny data (3.5k interactions, 26
validation items per set; its users buy 1.8 items on average) the lift of a call's own chooser swings between
1.0x and 3.3x with the seed and the rows per item, so tests of what is emitted, to whom and how it is counted
set the threshold aside (any measurable lift passes). The 3x refusal itself: tests/test_taste_users.py."""


class Batches:
    """An iterable of ready batches (a bare list would be read by Lightning as a list of dataloaders)."""

    def __init__(self, batches: list) -> None:
        self.batches = batches

    def __iter__(self):  # noqa: ANN204
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def fit_batches(module: L.LightningModule, batches: list, seed: int = 0) -> L.Trainer:
    """One CPU epoch over `batches`, no logger or checkpoints; the global RNG the training noise draws from
    is seeded and restored, so it neither depends on nor disturbs other tests."""
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=len(batches),
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        trainer.fit(module, train_dataloaders=Batches(batches))
    return trainer


def real_counts(bundle, bucket: str = "tail"):  # noqa: ANN001, ANN201 (a gen.Bundle -> pd.Series)
    """The interaction counts of the bundle's real items of `bucket` that have any (what `auto` keeps to)."""
    buckets = bundle.table("buckets")
    return buckets.loc[(buckets["pop_bucket"] == bucket) & (buckets["count"] >= 1), "count"]
