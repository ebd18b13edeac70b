"""Training progress: tqdm's bar on a terminal; in a log (a file or a pipe) a line per epoch, not per step."""

from __future__ import annotations

import io

import lightning as L
import pytest
import torch
from torch import nn

from helpers import Batches
from tailsynth.train.progress import EpochLines, EpochProgressBar, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Tiny(L.LightningModule):
    """One linear layer; logs `loss/total` as the models do, so the lines can show it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.layer(batch).square().mean()
        self.log("loss/total", loss, on_step=True, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _train(progress: EpochLines, epochs: int, batches: int) -> None:
    data = Batches([torch.randn(4, 2, generator=torch.Generator().manual_seed(i)) for i in range(batches)])
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_model_summary=False, callbacks=[progress], log_every_n_steps=5)
    trainer.fit(_Tiny(), train_dataloaders=data)


def test_the_bar_on_a_terminal_and_lines_in_a_log() -> None:
    assert isinstance(progress_bar(5, _Terminal()), EpochProgressBar)
    assert isinstance(progress_bar(5, io.StringIO()), EpochLines)  # a file or a pipe: not a terminal


def test_a_log_gets_one_line_per_epoch_when_epochs_are_short() -> None:
    out = io.StringIO()
    _train(EpochLines(5, out, interval_s=3600.0), epochs=3, batches=40)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all("40/40 batches" in line and ", loss=" in line for line in lines)
    assert "\r" not in out.getvalue()


def test_a_long_epoch_writes_at_most_one_line_per_interval() -> None:
    ticks = iter(range(10_000))  # a clock that advances 1 s every time it is read

    out = io.StringIO()
    _train(EpochLines(5, out, interval_s=10.0, clock=lambda: float(next(ticks))), epochs=2, batches=40)
    lines = out.getvalue().splitlines()
    # 40 batches a clock read each (plus the epoch's start and end): about 4 interval lines and 1 end line per
    # epoch -- bounded by the interval, not by the step count.
    assert 2 <= len(lines) <= 2 * (40 // 10 + 1)
    assert lines[-1].startswith("Epoch 2/2: 40/40 batches")


def test_a_stopped_epoch_still_gets_its_line() -> None:
    class _Stops(_Tiny):
        def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
            if self.current_epoch == 1 and batch_idx == 7:
                raise RuntimeError("stop")
            return super().training_step(batch, batch_idx)

    out = io.StringIO()
    progress = EpochLines(5, out, interval_s=3600.0)
    data = Batches([torch.randn(4, 2, generator=torch.Generator().manual_seed(i)) for i in range(20)])
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_model_summary=False, callbacks=[progress], log_every_n_steps=5)
    with pytest.raises(RuntimeError, match="stop"):
        trainer.fit(_Stops(), train_dataloaders=data)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3"]
    assert lines[1].startswith("Epoch 2/3: 7/20 batches")  # the seven batches done before the stop
