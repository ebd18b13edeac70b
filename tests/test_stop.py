"""A run stopped by Ctrl-C says where it stopped (in the progress bar's numbering) and how to resume it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tailsynth.train.finite_loss import FiniteLossGuard

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


def test_ctrl_c_exits_130_naming_the_checkpoint_and_the_resume_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from tailsynth.train.__main__ import main

    original = FiniteLossGuard.on_train_batch_end

    def ctrl_c_in_the_second_epoch(self, trainer, *args):  # noqa: ANN001, ANN002
        if trainer.current_epoch == 1 and args[-1] == 2:
            raise KeyboardInterrupt
        return original(self, trainer, *args)

    monkeypatch.setattr(FiniteLossGuard, "on_train_batch_end", ctrl_c_in_the_second_epoch)
    handler = signal.getsignal(signal.SIGINT)
    out = tmp_path / "stopped"
    argv = ["--config", str(TINY), "--out", str(out), "--overwrite", "--set", "trainer.max_epochs=3",
            "monitor.enabled=false", "data.max_train_rows=640", "trainer.progress_bar=true"]
    assert main(argv) == 130
    printed = capsys.readouterr()
    last = out / "checkpoints" / "last.ckpt"
    assert f"stopped by Ctrl-C during epoch 2/3; no bundle was written; the checkpoint of the last complete " \
           f"epoch is {last}: continue with --resume" in printed.err
    assert f"resume with: tailsynth train --config {TINY} --out {out} --set trainer.max_epochs=3" in printed.err
    assert printed.err.rstrip().endswith("trainer.progress_bar=true --resume")
    bar = printed.out + printed.err
    assert "Epoch 1/3" in bar and "Epoch 2/3" in bar and "Epoch 0" not in bar  # one numbering
    assert "critic=" in bar and "generator=" in bar  # the losses are in the bar
    assert last.is_file() and not (out / "bundle").exists()
    assert signal.getsignal(signal.SIGINT) is handler  # Lightning's SIG_IGN during shutdown is undone
