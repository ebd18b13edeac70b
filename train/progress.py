"""The training progress bar: Lightning's tqdm bar with epochs numbered from 1 and a few losses beside it.

- Epochs: Lightning's bar says "Epoch 2" during the third epoch, while every message of ours (a stop by
  SIGTERM or Ctrl-C, a diverged loss) says "epoch 3". The bar says "Epoch 3/15", so there is one numbering.
- Losses: the main loss or two of the model (`SHOWN`), as logged by its LightningModule. They are read from
  the step's logged device scalars every `every_n_steps` batches (the Trainer's `log_every_n_steps`, when the
  logger and `FiniteLossGuard` copy them to the host anyway) and at the end of every epoch. Logging them with
  `prog_bar=True` instead would call `.item()` on them after every batch: a host-device sync per step on a GPU.
- Logs: tqdm redraws its bar in place, which only a terminal understands; written to a file or a pipe, every
  redraw is one more line (a 15-epoch run: thousands of lines, megabytes of log). So `progress_bar()` gives
  the bar on a terminal and `EpochLines` elsewhere: one plain line at the end of every epoch, and within a
  long epoch at most one every `interval_s` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf

SHOWN = {"loss/total": "loss", "loss/kl": "kl", "loss/critic": "critic", "loss/generator": "generator"}
"""Logged loss name -> its label in the bar (TVAE: total and KL; CTGAN: critic and generator)."""
INTERVAL_S = 10.0
"""Off a terminal: the most frequent a line within an epoch may be (every epoch's end writes one anyway)."""


def progress_bar(every_n_steps: int, stream: TextIO | None = None) -> ProgressBar:
    """The progress callback for `stream` (default: stdout, where Lightning's bar writes): tqdm's bar on a
    terminal, `EpochLines` when the output goes to a file or a pipe."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return EpochProgressBar(every_n_steps)
    return EpochLines(every_n_steps, stream)


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
        self._losses = read_losses(trainer, suffix)


class EpochLines(ProgressBar):
    """Progress as plain lines, for logs: "Epoch 3/15: 600/600 batches, 12.4 s, loss=0.52, kl=0.11".

    One line when an epoch ends; within an epoch, a line only when `interval_s` seconds have passed since the
    last one (long epochs on big tables), so a log grows by epochs, not by steps; and one for the epoch a stop
    (Ctrl-C, SIGTERM, an error) interrupted, so the log says how far it got. Losses are read as the bar reads
    them (every `every_n_steps` batches and at the epoch's end) and written as the bar writes them. Only rank
    zero writes (Lightning calls `disable()` on the others)."""

    def __init__(self, every_n_steps: int, stream: TextIO | None = None, interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_n_steps = max(1, every_n_steps)
        self.stream = stream
        self.interval_s = interval_s
        self._clock = clock
        self._enabled = True
        self._losses: dict[str, str] = {}
        self._epoch_start = self._last_line = 0.0
        self._batches = 0
        self._in_epoch = False

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = self._last_line = self._clock()
        self._losses = {}
        self._batches = 0
        self._in_epoch = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batches = batch_idx + 1
        if self._batches % self.every_n_steps == 0:
            self._losses = read_losses(trainer, "_step")
        now = self._clock()
        if now - self._last_line >= self.interval_s:
            self._write(trainer, now)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._losses = read_losses(trainer, "_epoch") or self._losses
        self._in_epoch = False
        self._write(trainer, self._clock())

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self._in_epoch and self._batches:  # where the stopped epoch got to, before the stop's own message
            self._in_epoch = False
            self._write(trainer, self._clock())

    def _write(self, trainer: L.Trainer, now: float) -> None:
        self._last_line = now
        if not self._enabled:
            return
        total = convert_inf(self.total_train_batches)
        line = (f"{epoch_label(trainer)}: {self._batches}/{total if total is not None else '?'} batches, "
                f"{now - self._epoch_start:.1f} s")
        line += "".join(f", {label}={value}" for label, value in self._losses.items())
        stream = sys.stdout if self.stream is None else self.stream
        print(line, file=stream, flush=True)


def read_losses(trainer: L.Trainer, suffix: str) -> dict[str, str]:
    """The shown losses (`SHOWN`) as logged with `suffix` ("_step" or "_epoch"), as short text; {} if none."""
    logged = trainer.callback_metrics
    found = {label: logged[name + suffix] for name, label in SHOWN.items() if name + suffix in logged}
    return {label: f"{float(value):.3g}" for label, value in found.items()}


def epoch_label(trainer: L.Trainer) -> str:
    """'Epoch 3/15' during the third of fifteen epochs: the numbering every message of a run uses."""
    total = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else "?"
    return f"Epoch {trainer.current_epoch + 1}/{total}"
