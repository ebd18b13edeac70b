"""A diverged run stops with TrainingDiverged naming epoch, batch and loss; the last good checkpoint stays."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from helpers import Batches
from tailsynth.train.finite_loss import FiniteLossGuard, TrainingDiverged, first_non_finite

REPO = Path(__file__).resolve().parents[1]


class _Toy(L.LightningModule):
    """A one-weight regression whose loss turns NaN at (epoch, batch) `poison` (0-based)."""

    def __init__(self, poison: tuple[int, int], poison_weight: bool = False) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.poison = poison
        self.poison_weight = poison_weight

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = ((self.weight * batch - 1.0) ** 2).mean()
        if (self.current_epoch, batch_idx) == self.poison:
            if self.poison_weight:  # a finite loss, but the weight itself goes bad
                with torch.no_grad():
                    self.weight.fill_(float("inf"))
            else:
                loss = loss * float("nan")
        self.log("loss/total", loss, on_step=True, on_epoch=True, batch_size=batch.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _train(tmp_path: Path, module: L.LightningModule, every_n_steps: int, epochs: int = 3) -> ModelCheckpoint:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True, save_top_k=1, every_n_epochs=1,
                                 filename="epoch{epoch:03d}", auto_insert_metric_name=False)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[FiniteLossGuard(every_n_steps), checkpoint],
                        log_every_n_steps=1)
    batches = Batches([torch.full((4, 1), 0.5 + i) for i in range(6)])
    trainer.fit(module, train_dataloaders=batches)
    return checkpoint


@pytest.mark.parametrize("every_n_steps", [1, 4, 100])
def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path: Path, every_n_steps: int) -> None:
    with pytest.raises(TrainingDiverged) as caught:
        _train(tmp_path, _Toy(poison=(1, 2)), every_n_steps)
    message = str(caught.value)
    # Whether found mid-epoch or at the epoch's end, the error names the step the loss went bad.
    assert "epoch 2, batch 3 of the epoch" in message and "loss/total=nan" in message
    assert "no bundle was written" in message and "last.ckpt" in message
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 0  # epoch 1's checkpoint: the diverged epoch 2 saved none
    assert torch.isfinite(checkpoint["state_dict"]["weight"]).all()


def test_divergence_in_first_epoch_says_no_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(TrainingDiverged, match=r"epoch 1, batch 1 of the epoch.*no checkpoint was kept"):
        _train(tmp_path, _Toy(poison=(0, 0)), every_n_steps=50)
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_non_finite_weights_are_caught_at_epoch_end(tmp_path: Path) -> None:
    with pytest.raises(TrainingDiverged, match=r"epoch 1.*(weight|loss/total=(inf|nan))"):
        _train(tmp_path, _Toy(poison=(0, 5), poison_weight=True), every_n_steps=50)
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_finite_window_passes_and_first_bad_step_is_reported() -> None:
    good = {"loss/a": torch.tensor(1.0), "loss/b": torch.tensor(2.0)}
    bad = {"loss/a": torch.tensor(float("inf")), "loss/b": torch.tensor(2.0)}
    assert first_non_finite([(0, good), (1, good)]) is None
    assert first_non_finite([(0, good), (1, bad), (2, bad)]) == (1, {"loss/a": float("inf"), "loss/b": 2.0})


@pytest.mark.slow
def test_huge_learning_rate_raises_and_writes_no_bundle(tmp_path: Path) -> None:
    from tailsynth.train.config import load_config
    from tailsynth.train.fit import fit

    config = load_config(REPO / "configs" / "tiny.yaml", [
        "model.ctgan.generator_lr=1e6", "model.ctgan.critic_lr=1e6", "trainer.max_epochs=3",
        "data.max_train_rows=640", "monitor.enabled=false"])
    config = replace(config, out_dir=str(tmp_path), name="diverged")
    with pytest.raises(TrainingDiverged, match=r"training diverged: .*epoch \d+"):
        fit(config)
    assert not (tmp_path / "diverged" / "bundle").exists()
