"""Torch's CPU threads: `trainer.cpu_threads` reaches torch in training, gen and evaluate; the default
leaves room for other work (`train.threads`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tailsynth.train import threads
from tailsynth.train.config import load_config
from tailsynth.train.fit import fit

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_default_is_omp_num_threads_or_half_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_cpu_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    for cores, expected in ((1, 1), (2, 1), (4, 2), (16, 8), (64, 8)):
        monkeypatch.setattr(threads, "usable_cores", lambda cores=cores: cores)
        assert threads.default_cpu_threads() == expected, cores
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # not a count: ignored, not an error
    assert threads.default_cpu_threads() == 8
    assert threads.resolve_cpu_threads(5) == 5


def test_training_runs_on_the_configured_threads_and_restores_the_count(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    config = load_config(REPO / "configs" / "tiny.yaml",
                         ["monitor.enabled=false", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                          "trainer.cpu_threads=2"])
    seen: dict[str, int] = {}
    run_dir = fit(replace(config, out_dir=str(tmp_path), name="threads"),
                  on_stage=lambda stage: seen.setdefault(stage, torch.get_num_threads()))
    assert seen["encoder_fit"] == seen["train"] == 2
    assert torch.get_num_threads() == 1  # a library caller's own setting is back
    assert threads.recorded_cpu_threads(run_dir) == 2 == threads.recorded_cpu_threads(run_dir / "bundle")

    from tailsynth.gen.__main__ import main as gen_main

    torch.set_num_threads(1)
    out = tmp_path / "rows.parquet"
    assert gen_main(["sample", "--bundle", str(run_dir), "--rows", "5", "--no-gate", "--out", str(out)]) == 0
    assert torch.get_num_threads() == 2 and out.is_file()  # gen's entry applied the bundle's value

    from tailsynth.evaluate.__main__ import main as evaluate_main

    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert evaluate_main(["report", "--bundle", str(tmp_path / "missing")]) == 2  # no bundle: the default
    assert torch.get_num_threads() == 3


def test_a_bundle_without_the_key_gets_the_default(tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_text(json.dumps({"meta": {"config": {"trainer": {}}}}))
    assert threads.recorded_cpu_threads(tmp_path) is None
    (tmp_path / "bundle.json").write_text("[1, 2]")
    assert threads.recorded_cpu_threads(tmp_path) is None
    assert threads.recorded_cpu_threads(tmp_path / "nowhere") is None
