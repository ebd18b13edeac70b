"""What `tailsynth train` shows a user: each stage with row counts and seconds, no third-party noise, progress
as lines (not a redrawn bar) when its output is a pipe, and one set of learning-rate tags in TensorBoard."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import HANG_GUARD_S

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_stages_are_printed_and_library_noise_is_not(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "tailsynth.train", "--config", "configs/tiny.yaml", "--out", str(run),
         "--set", "monitor.enabled=false", "trainer.max_epochs=1", "trainer.progress_bar=true"],
        cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    built = re.search(r"records built: ([\d,]+) interactions in \d+\.\ds", out)
    split = re.search(r"split: ([\d,]+) training and ([\d,]+) held-out rows in \d+\.\ds", out)
    assert built and split, out
    count = lambda text: int(text.replace(",", ""))  # noqa: E731
    assert count(split[1]) + count(split[2]) == count(built[1])  # no row lost or invented by the split
    assert re.search(rf"encoder fitted: \d+ columns, {split[1]} training rows, \d+\.\ds", out), out
    assert re.search(rf"encoded {split[1]} rows in \d+\.\ds; training ctgan for 1 epoch", out), out
    stages = [out.index(text) for text in ("building records", "records built", "split:", "encoder fitted", "encoded")]
    assert stages == sorted(stages)
    # stdout is a pipe here: the progress is one line for the epoch, not a bar redrawn at every step.
    progress = [line for line in out.splitlines() if line.startswith("Epoch 1/1")]
    assert len(progress) == 1 and re.match(r"Epoch 1/1: (\d+)/\1 batches", progress[0]), out
    assert "\r" not in out and len(out.splitlines()) < 40, out[-2000:]
    both = out + done.stderr
    assert "litlogger" not in both and "deprecated" not in both, both[-2000:]

    tags = set(EventAccumulator(str(run / "tb")).Reload().Tags()["scalars"])
    assert {"lr/generator", "lr/critic"} <= tags
    assert not [tag for tag in tags if tag.startswith("lr-")], sorted(tags)
