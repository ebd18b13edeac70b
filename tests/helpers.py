"""Small helpers shared by test modules (imported as `helpers`; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import lightning as L
import torch

HANG_GUARD_S = 3600
"""Timeout of every subprocess a test runs. It guards against a hang, not a slow machine: a command that
takes 2 minutes alone took over 10 while other work shared the 2 cores, so the guard sits far above the
whole suite's own CI budget (about 15 minutes). Speed is measured by benchmarks, never by a test."""


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
