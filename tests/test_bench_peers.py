"""The three-way bench's machinery: the equal wall-time budget for every system, rows trained, the ARGN
worker's output mapping, the step-loss log, and (only where the peers' venv is ready) one tiny ARGN run.

mostlyai-engine is never needed: the ARGN run skips itself unless `.venv-peers` (or $TAILSYNTH_PEER_VENV)
holds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch

from tailsynth.evaluate.bench.peers.argn_worker import _like_training
from tailsynth.evaluate.bench.compare import _derived
from tailsynth.evaluate.bench.settings import BUDGET_MAX_EPOCHS, load_bench_config, ours_config, peer_settings
from tailsynth.evaluate.bench.peers.sdv import _FitClock
from tailsynth.evaluate.bench.peers.venv import engine_ready, peer_venv_dir

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "bench_online_retail.yaml"
TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


def test_budget_stops_ours_by_time_with_the_monitor_off_and_sdv_by_its_clock(tmp_path: Path) -> None:
    config, bench = load_bench_config(CONFIG)
    ours = ours_config(config, "ours-tvae", bench, setting="equal", epochs=3, rows=1000, seed=0, device="cpu",
                       out=tmp_path, budget_s=30.0)
    assert ours.trainer.max_time_s == 30.0 and ours.trainer.max_epochs == BUDGET_MAX_EPOCHS
    assert not ours.monitor.enabled
    plain = ours_config(config, "ours-tvae", bench, setting="equal", epochs=3, rows=1000, seed=0, device="cpu",
                        out=tmp_path)
    assert plain.trainer.max_time_s is None and plain.trainer.max_epochs == 3 and plain.monitor.enabled
    peer = peer_settings("sdv-tvae", bench, setting="equal", epochs=3, device="cpu", budget_s=30.0)
    assert peer.budget_s == 30.0 and peer.epochs == BUDGET_MAX_EPOCHS


def test_sdv_clock_starts_an_epoch_only_while_one_more_fits_the_budget() -> None:
    clock = _FitClock(sync=None, budget_s=10.0)
    clock.epoch_marks = [0.0, 3.0, 6.0]  # two epochs of 3 s: a third ends at 9 s
    assert clock.another_epoch_fits()
    clock.epoch_marks.append(9.0)  # a fourth would end at 12 s
    assert not clock.another_epoch_fits()
    unbounded = _FitClock(sync=None)
    unbounded.epoch_marks = [0.0, 100.0, 200.0]
    assert unbounded.another_epoch_fits()


def test_rows_trained_give_seconds_per_thousand_rows() -> None:
    stopped = _derived({"train_rows": 1000, "epochs": 2, "rows_trained": 2500, "train_s": 5.0})
    assert stopped["epochs_trained"] == 2.5 and stopped["s_per_1k_rows_trained"] == 2.0
    by_epochs = _derived({"train_rows": 1000, "epochs": 3, "train_s": 6.0})
    assert by_epochs["rows_trained"] == 3000 and by_epochs["train_rows_per_s"] == 500.0


def test_argn_rows_take_the_training_values_and_dtypes() -> None:
    train = pd.DataFrame({"hour": [9, 10, 11], "band": pd.Categorical(["<1", "1-2", "<1"]),
                          "qty": pd.array([1, 2, 3], dtype="Int64")})
    generated = pd.DataFrame({"hour": ["10", "9", None], "band": ["1-2", "<1", "<1"], "qty": ["2", "1", "3"]})
    rows = _like_training(generated, train, {"hour": "categorical", "band": "categorical", "qty": "numerical"})
    assert rows["hour"].tolist()[:2] == [10, 9] and pd.isna(rows["hour"].iloc[2])
    assert isinstance(rows["band"].dtype, pd.CategoricalDtype) and rows["band"].tolist() == ["1-2", "<1", "<1"]
    assert rows["qty"].dtype == train["qty"].dtype and rows["qty"].tolist() == [2, 1, 3]


def test_max_time_stops_training_before_max_epochs(tmp_path: Path) -> None:
    from tailsynth.train.config import load_config
    from tailsynth.train.fit import fit

    config = load_config(TINY, ["trainer.max_epochs=10000", "trainer.max_time_s=1.5", "monitor.enabled=false",
                                f"out_dir={tmp_path}"])
    run_dir = fit(config)
    timings = json.loads((run_dir / "bundle" / "bundle.json").read_text())["meta"]["timings"]
    assert 0 < timings["epochs"] < 10000 and timings["batches"] >= timings["epochs"]


class _Collect(L.Callback):
    def __init__(self) -> None:
        self.totals: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.totals.append(float(outputs["losses"]["loss/total"]))


def test_loss_log_logs_step_values_on_logging_steps_and_the_epoch_mean() -> None:
    from helpers import Batches
    from test_tvae import TINY as TINY_TVAE, build, make_batches

    module, collect = build(TINY_TVAE), _Collect()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=2,
                        callbacks=[collect])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        trainer.fit(module, train_dataloaders=Batches(make_batches(5)))
    metrics = trainer.callback_metrics
    assert len(collect.totals) == 5
    # equal batch sizes: the row-weighted epoch mean is the plain mean of the five step totals
    assert float(metrics["loss/total_epoch"]) == pytest.approx(sum(collect.totals) / 5, rel=1e-6)
    # logged on steps 2 and 4 (every 2nd); the last logged value is step 4's
    assert float(metrics["loss/total_step"]) == pytest.approx(collect.totals[3], rel=1e-6)


@pytest.mark.skipif(not engine_ready(peer_venv_dir()), reason="the peers' venv with mostlyai-engine is absent")
def test_argn_runs_from_the_peers_venv(tmp_path: Path) -> None:
    from tailsynth.evaluate.bench.compare import run_bench

    config, bench = load_bench_config(CONFIG, ["bench.sample_rows=200", "bench.tail_rows=100",
                                               "bench.judge_rows=100", "bench.auc=false"])
    report = run_bench(config, systems=("argn",), rows=600, epochs=1, encoder_rows=0, out=tmp_path, bench=bench)
    argn = report["systems"]["argn"]
    assert argn["status"] == "ok", argn.get("error")
    assert argn["tail_rows_returned"] == 100 and argn["settings"]["value_protection"] is False
    tail = pd.read_parquet(argn["tail_sample"])
    assert set(tail["pop_bucket"].astype(str)) == {"tail"}
