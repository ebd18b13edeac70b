"""The training-time fidelity monitor (train/monitor.py): when it checks, how it judges, what it costs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tailsynth.evaluate.measures import detection
from tailsynth.train.config import MonitorConfig, load_config
from tailsynth.train.fit import fit

REPO = Path(__file__).resolve().parents[1]


def test_defaults_check_every_few_epochs_on_a_small_sample() -> None:
    defaults = MonitorConfig()
    assert defaults.enabled and defaults.every_n_epochs >= 5 and defaults.rows <= 1000


def test_checks_every_k_epochs_and_the_last_with_one_network_per_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fits: list[int] = []
    original = detection.RowDiscriminator.fit

    def counting(self, real, synth):  # noqa: ANN001, ANN202
        fits.append(len(real))
        return original(self, real, synth)

    monkeypatch.setattr(detection.RowDiscriminator, "fit", counting)
    monkeypatch.setattr(detection, "discriminator_auc", lambda *a, **k: pytest.fail("three-fold AUC in the monitor"))
    config = load_config(REPO / "configs" / "tiny.yaml",
                         ["trainer.max_epochs=3", "monitor.every_n_epochs=2", "monitor.rows=150"])
    run = fit(replace(config, out_dir=str(tmp_path), name="monitored"))

    events = EventAccumulator(str(run / "tb")).Reload()
    assert [event.step for event in events.Scalars("fidelity/tail/mean_ks")] == [2, 3]  # epoch 2, and the last
    assert [event.step for event in events.Scalars("fidelity/monitor_seconds")] == [2, 3]
    auc = [event.value for event in events.Scalars("fidelity/tail/auc")]
    assert len(auc) == 2 and all(0.0 <= value <= 1.0 for value in auc)
    buckets = {tag.split("/")[1] for tag in events.Tags()["scalars"] if tag.endswith("/mean_ks")}
    assert len(fits) == 2 * len(buckets)  # one network per bucket and check
    assert all(rows <= 100 for rows in fits)  # two thirds of at most 150 held-out rows
    out = capsys.readouterr().out
    assert "fidelity monitor: 2 check(s) of 3 bucket(s)" in out and "% of the" in out
