"""The training progress bar: Lightning's tqdm bar with epochs numbered from 1 and a few losses beside it.

- Epochs: Lightning's bar says "Epoch 2" during the third epoch, while every message of ours (a stop by
  SIGTERM or Ctrl-C, a diverged loss) says "epoch 3". The bar says "Epoch 3/15", so there is one numbering.
- Losses: the main loss or two of the model (`SHOWN`), as logged by its LightningModule. They are read from
  the step's logged device scalars every `every_n_steps` batches (the Trainer's `log_every_n_steps`, when the
  logger and `FiniteLossGuard` copy them to the host anyway) and at the end of every epoch. Logging them with
  `prog_bar=True` instead would call `.item()` on them after every batch: a host-device sync per step on a GPU.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf

SHOWN = {"loss/total": "loss", "loss/kl": "kl", "loss/critic": "critic", "loss/generator": "generator"}
"""Logged loss name -> its label in the bar (TVAE: total and KL; CTGAN: critic and generator)."""


class EpochProgressBar(TQDMProgressBar):
    def __init__(self, every_n_steps: int) -> None:
        super().__init__()
        self.every_n_steps = max(1, every_n_steps)
        self._losses: dict[str, str] = {}

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        # TQDMProgressBar's own, but for the label: it draws "Epoch 2" before a later relabel could replace it.
        if self._leave:
            self.train_progress_bar = self.init_train_tqdm()
        self.train_progress_bar.set_description(epoch_label(trainer), refresh=False)
        self.train_progress_bar.reset(total=convert_inf(self.total_train_batches))
        self.train_progress_bar.initial = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if (batch_idx + 1) % self.every_n_steps == 0:
            self._read_losses(trainer, "_step")
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._read_losses(trainer, "_epoch")  # the epoch's means, left on the finished bar
        super().on_train_epoch_end(trainer, pl_module)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # the logger's version: always "" here, the run directory names the run
        return {**metrics, **self._losses}

    def _read_losses(self, trainer: L.Trainer, suffix: str) -> None:
        logged = trainer.callback_metrics
        found = {label: logged[name + suffix] for name, label in SHOWN.items() if name + suffix in logged}
        self._losses = {label: f"{float(value):.3g}" for label, value in found.items()}


def epoch_label(trainer: L.Trainer) -> str:
    """'Epoch 3/15' during the third of fifteen epochs: the numbering every message of a run uses."""
    total = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else "?"
    return f"Epoch {trainer.current_epoch + 1}/{total}"
