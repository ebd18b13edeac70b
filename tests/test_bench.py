"""The benchmark machinery: settings, time-to-reach, the Markdown table, the CLI's errors, and one tiny run.

The end-to-end smoke test trains ONE of our systems and (when SDV is installed) ONE SDV system for one
epoch on 450 rows; it checks that the JSON has its fields and the Markdown its table, not any speed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tailsynth.evaluate.__main__ import main
from tailsynth.evaluate.bench.compare import _reach
from tailsynth.evaluate.bench.markdown import render_markdown
from tailsynth.evaluate.bench.settings import load_bench_config, ours_config, peer_settings
from tailsynth.evaluate.bench.worker import _our_training_times
from tailsynth.evaluate.bench.peers.sdv import sdv_version

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "bench_online_retail.yaml"


def test_equal_setting_gives_every_system_the_same_hyper_parameters(tmp_path: Path) -> None:
    config, bench = load_bench_config(CONFIG)
    ours = ours_config(config, "ours-ctgan", bench, setting="equal", epochs=3, rows=1000, seed=1, device="cpu",
                       out=tmp_path)
    peer = peer_settings("sdv-ctgan", bench, setting="equal", epochs=3, device="cpu")
    assert (ours.trainer.batch_size, ours.trainer.max_epochs) == (peer.batch_size, peer.epochs) == (500, 3)
    assert ours.model.ctgan.generator_dims == peer.hidden_dims == (256, 256)
    assert ours.model.ctgan.critic_dims == peer.critic_dims and ours.model.ctgan.pac == peer.pac == 10
    assert ours.data.max_train_rows == 1000 and ours.trainer.precision == "32-true"
    best = ours_config(config, "ours-tvae", bench, setting="best", epochs=3, rows=None, seed=1, device="cuda",
                       out=tmp_path)
    assert best.model.kind == "tvae" and best.trainer.batch_size == bench.best.ours_batch_size_gpu
    assert best.trainer.precision == bench.gpu_precision and best.data.max_train_rows == 80000


def test_bench_section_rejects_unknown_keys() -> None:
    with pytest.raises(Exception, match="bogus"):
        load_bench_config(CONFIG, ["bench.bogus=1"])


def test_cli_prints_user_errors_and_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "error:" in capsys.readouterr().err


def _history(ks: list[float], auc: list[float]) -> list[dict]:
    rows = []
    for epoch, (k, a) in enumerate(zip(ks, auc), start=1):
        rows.append({"epoch": epoch, "train_seconds": 10.0 * epoch, "bucket": "tail", "mean_ks": k, "auc": a})
        rows.append({"epoch": epoch, "train_seconds": 10.0 * epoch, "bucket": "head", "mean_ks": 0.0, "auc": 0.5})
    return rows


def test_reach_is_the_first_epoch_matching_both_measures() -> None:
    ours = {"history": _history([0.3, 0.2, 0.1, 0.05], [0.9, 0.95, 0.7, 0.6]), "encoder_s": 2.0}
    peer = {"tail_fidelity_monitor": {"mean_ks": 0.2, "auc": 0.8}, "train_s": 120.0, "preprocess_s": 1.0,
            "encoder_s": 9.0}
    entry = _reach(ours, peer)
    # epoch 2 matches KS but not AUC; epoch 3 is the first matching both.
    assert entry["epoch"] == 3 and entry["train_seconds"] == 30.0
    assert entry["speedup_train"] == pytest.approx(4.0)
    assert entry["speedup_total"] == pytest.approx(130.0 / 32.0)
    never = _reach(ours, {**peer, "tail_fidelity_monitor": {"mean_ks": 0.01, "auc": 0.8}})
    assert never["epoch"] is None and never["speedup_train"] is None


def test_training_seconds_come_from_the_monitor_without_monitoring() -> None:
    history = _history([0.3, 0.2], [0.9, 0.8])
    times = _our_training_times({"epochs": 2, "train_s": 99.0, "encoder_fit_s": 1.0}, history)
    assert times["train_s"] == 20.0 and times["epoch_seconds"] == [10.0, 10.0]
    assert times["seconds_per_epoch"] == 10.0
    fallback = _our_training_times({"epochs": 2, "train_s": 99.0}, [])
    assert fallback["train_s"] == 99.0 and "includes monitoring" in fallback["train_s_source"]


def test_markdown_puts_ours_and_sdv_side_by_side_with_ratios() -> None:
    ok = {"status": "ok", "settings": {"batch_size": 500}, "seconds_per_epoch": 2.0, "train_rows_per_s": 400.0}
    report = {
        "setting": "equal", "machine": {"versions": {"sdv": "2.0.0"}}, "data": {},
        "systems": {"ours-ctgan": ok, "sdv-ctgan": {**ok, "seconds_per_epoch": 10.0, "train_rows_per_s": 80.0},
                    "ours-tvae": ok, "sdv-tvae": {"status": "not installed"}},
    }
    text = render_markdown(report)
    assert "| measure | ours-ctgan | sdv-ctgan | SDV/ours | ours-tvae | sdv-tvae | SDV/ours |" in text
    assert "| seconds / epoch (mean) | 2 | 10.0 | 5.00× | 2 | not installed |  |" in text
    assert "| training rows / s | 400.0 | 80.0 | 5.00× |" in text


@pytest.mark.slow
def test_bench_smoke_run_writes_json_and_markdown(tmp_path: Path) -> None:
    from tailsynth.evaluate.bench.compare import run_bench

    config, bench = load_bench_config(CONFIG)
    # 450 rows keep SDV's DataTransformer on its single-process path (it forks workers from 500 rows).
    # No discriminator AUC (seconds per measure; evaluate's own tests cover it) and no training monitor.
    bench = replace(bench, device="cpu", sample_rows=500, tail_rows=200, judge_rows=300, auc=False,
                    equal=replace(bench.equal, batch_size=100))
    config = replace(config, monitor=replace(config.monitor, enabled=False))
    systems = ("ours-ctgan", "sdv-ctgan") if sdv_version() else ("ours-ctgan",)
    run_bench(config, systems=systems, setting="equal", rows=450, epochs=1, encoder_rows=0, out=tmp_path, seed=0,
              bench=bench)
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["setting"] == "equal" and report["machine"]["cpu_count"] >= 1
    assert report["data"]["train_rows"] == 450
    for system in systems:
        result = report["systems"][system]
        assert result["status"] == "ok", result.get("error")
        for key in ("encoder_s", "seconds_per_epoch", "train_rows_per_s", "sample_s", "tail_s", "peak_rss_mib"):
            assert result[key] is not None and result[key] > 0, key
        assert result["tail_rows_returned"] <= 200 and result["settings"]["batch_size"] == 100
        if result["tail_rows_returned"]:
            assert 0.0 <= result["tail_fidelity"]["mean_ks"] <= 1.0 and result["tail_fidelity"].get("auc") is None
    assert report["systems"]["ours-ctgan"]["tail_rows_returned"] == 200
    assert {"tail", "tail_monitor"} <= set(report["floor"])
    markdown = (tmp_path / "bench.md").read_text()
    assert "| seconds / epoch (mean) |" in markdown and "ours-ctgan" in markdown
    if len(systems) == 2:
        assert "ours-ctgan vs sdv-ctgan" in report["pairs"] and "sdv-ctgan" in report["systems"]["ours-ctgan"]["reach"]
        assert "| measure | ours-ctgan | sdv-ctgan | SDV/ours |" in markdown


def test_encoder_bench_builds_a_seeded_table_and_times_our_encoder() -> None:
    from tailsynth.evaluate.bench.encoder import COLUMNS, _time_ours, behaviour_table

    table = behaviour_table(400, seed=1)
    assert list(table.columns) == list(COLUMNS) and len(table) == 400
    assert behaviour_table(400, seed=1).equals(table)  # same seed, same table
    timing = _time_ours(table, COLUMNS, "cpu", seed=0)
    assert timing["fit_rows"] == 400 and timing["width"] > len(COLUMNS) and timing["total_s"] >= 0


def test_gpu_sync_check_says_it_needs_a_cuda_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from tailsynth.evaluate.bench import gpu_sync_check

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the check would run (evaluate/bench/gpu_check.sh runs it)")
    assert gpu_sync_check.main(["--out", str(tmp_path / "sync.json")]) == 2
    assert "needs a CUDA device" in capsys.readouterr().err and not (tmp_path / "sync.json").exists()
