"""Epoch wall time and training throughput, logged next to the losses."""

from __future__ import annotations

import time

import lightning as L
import torch


class EpochTimer(L.Callback):
    """Logs `time/epoch_s` and `throughput/rows_per_s` (rows drawn per second, all ranks together); counts
    the training batches."""

    def __init__(self) -> None:
        self._started = 0.0
        self.batches = 0
        """Training batches completed in this process (a resumed run counts from its resume)."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object,
                           batch_idx: int) -> None:
        self.batches += 1

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":  # once per epoch, outside the step: honest wall time
            torch.cuda.synchronize(pl_module.device)
        seconds = time.perf_counter() - self._started
        batch_size = getattr(trainer.datamodule, "batch_size", 0)
        rows = batch_size * int(trainer.num_training_batches) * trainer.world_size
        pl_module.log("time/epoch_s", seconds, on_epoch=True, sync_dist=False, rank_zero_only=True)
        pl_module.log("throughput/rows_per_s", rows / max(seconds, 1e-9), on_epoch=True, rank_zero_only=True)
