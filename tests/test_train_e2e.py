"""End to end on the tiny config: train both generators on CPU, bundle, load, sample, resume, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from tailsynth import gen
from tailsynth.models.bundle import MANIFEST
from tailsynth.models.errors import BundleError, ConfigError, EncodingError
from tailsynth.train.config import ModelConfig, load_config
from tailsynth.train.fit import fit
from helpers import HANG_GUARD_S

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.yaml"


def tiny_config(tmp_path: Path, name: str, *overrides: str):
    config = load_config(TINY, list(overrides))
    return replace(config, out_dir=str(tmp_path), name=name)


@pytest.fixture(scope="module")
def ctgan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit(tiny_config(tmp_path_factory.mktemp("runs"), "ctgan"))


def test_run_directory_holds_bundle_logs_and_checkpoints(ctgan_run: Path) -> None:
    manifest = json.loads((ctgan_run / "bundle" / MANIFEST).read_text())
    assert manifest["kind"] == "ctgan"
    assert manifest["meta"]["seed"] == 0
    assert manifest["meta"]["config"]["trainer"]["max_epochs"] == 2
    assert {"torch", "lightning", "pandas", "tailsynth"} <= set(manifest["meta"]["versions"])
    assert manifest["meta"]["timings"]["epochs"] == 2
    assert (ctgan_run / "checkpoints" / "last.ckpt").is_file()
    assert (ctgan_run / "config.yaml").is_file()
    assert list((ctgan_run / "tb").glob("events.out.tfevents.*"))
    for table in ("train", "holdout", "buckets", "users", "items"):
        assert (ctgan_run / "bundle" / f"{table}.parquet").is_file()


def test_tensorboard_has_losses_throughput_and_fidelity(ctgan_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(ctgan_run / "tb")).Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("loss/generator_epoch", "loss/critic_epoch", "loss/gradient_penalty_epoch",
                "time/epoch_s", "throughput/rows_per_s", "fidelity/tail/mean_ks", "fidelity/tail/auc"):
        assert tag in tags, f"{tag} missing from {sorted(tags)}"
    assert len(events.Scalars("fidelity/tail/mean_ks")) == 2  # every epoch (every_n_epochs: 1)


def test_conditional_sampling_returns_exactly_the_requested_bucket(ctgan_run: Path) -> None:
    bundle = gen.load(ctgan_run, device="cpu")
    rows = gen.sample(bundle, 257, conditions={"pop_bucket": "tail"}, seed=3)
    assert len(rows) == 257
    assert (rows["pop_bucket"] == "tail").all()
    train = bundle.table("train")
    for column, sdtype in bundle.columns.items():
        if sdtype == "categorical":
            assert set(rows[column].dropna()) <= set(train[column].dropna()), column
    assert list(rows.columns) == list(bundle.columns)


def test_item_feature_conditions_are_honoured(ctgan_run: Path) -> None:
    bundle = gen.load(ctgan_run, device="cpu")
    category = str(bundle.table("train")["category"].mode()[0])
    rows = gen.sample(bundle, 64, conditions={"pop_bucket": "torso", "category": category}, seed=1)
    assert (rows["category"] == category).all() and (rows["pop_bucket"] == "torso").all()


def test_same_seed_same_rows(ctgan_run: Path) -> None:
    bundle = gen.load(ctgan_run, device="cpu")
    first = gen.sample(bundle, 100, {"pop_bucket": "tail"}, seed=11)
    again = gen.sample(bundle, 100, {"pop_bucket": "tail"}, seed=11)
    other = gen.sample(bundle, 100, {"pop_bucket": "tail"}, seed=12)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


@pytest.mark.slow
def test_gen_cli_refusal_exits_1_writes_only_the_report_and_exit_zero_opts_out(ctgan_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "tail.parquet"
    command = [sys.executable, "-m", "tailsynth.gen", "sample", "--bundle", str(ctgan_run), "--bucket", "tail",
               "--rows", "50", "--out", str(out)]
    refused = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert "refused" in refused.stderr or "cannot judge" in refused.stderr
    assert not out.exists() and (tmp_path / "tail.parquet.report.json").is_file()
    report = json.loads((tmp_path / "tail.parquet.report.json").read_text())
    assert report["provenance"]["training_seed"] == 0 and "torch" in report["provenance"]["versions"]
    assert report["seed"] == 0 and report["config"]["alpha"] == 0.01
    demo = subprocess.run([*command, "--exit-zero"], cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert demo.returncode == 0 and "nothing emitted" in demo.stderr and not out.exists()


@pytest.mark.slow
def test_gen_sample_takes_gate_overrides_and_conditions_as_set(ctgan_run: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    from tailsynth.gen.__main__ import main

    out = tmp_path / "tail.parquet"
    argv = ["sample", "--bundle", str(ctgan_run), "--rows", "50", "--out", str(out), "--exit-zero"]
    assert main([*argv, "--set", "gate.alpha=0.02", "--set", "gate.min_holdout_rows=10"]) == 0
    report = json.loads((tmp_path / "tail.parquet.report.json").read_text())
    assert report["config"]["alpha"] == 0.02 and report["config"]["min_holdout_rows"] == 10
    assert main([*argv, "--set", "gate.max_aucc=0.7"]) == 2
    assert "gen sample --set gate.*" in capsys.readouterr().err
    assert main([*argv, "--no-gate", "--set", "gate.alpha=0.02"]) == 2
    with pytest.raises(SystemExit, match="2"):  # the old option is gone: argparse's usage error
        main([*argv, "--gate", "alpha=0.02"])
    assert main([*argv[:-1], "--no-gate", "--set", "condition.category=no-such-label"]) == 2
    assert "no-such-label" in capsys.readouterr().err


def test_unknown_condition_value_is_a_clear_error(ctgan_run: Path) -> None:
    bundle = gen.load(ctgan_run, device="cpu")
    with pytest.raises(EncodingError, match=r"'pop_bucket': unknown bucket 'mega-head'; the model knows head, torso, tail"):
        gen.sample(bundle, 10, {"pop_bucket": "mega-head"})
    with pytest.raises(EncodingError, match="colour"):
        gen.sample(bundle, 10, {"pop_bucket": "tail", "colour": "red"})


def test_bundle_from_another_format_version_is_refused(ctgan_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    copy.mkdir()
    for file in (ctgan_run / "bundle").iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["format_version"] = 999
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 999"):
        gen.load(copy)
    with pytest.raises(BundleError, match="no model bundle"):
        gen.load(tmp_path / "nowhere")


def test_tvae_trains_and_samples(tmp_path: Path) -> None:
    run = fit(tiny_config(tmp_path, "tvae", "model.kind=tvae", "monitor.enabled=false"))
    bundle = gen.load(run, device="cpu")
    rows = gen.sample(bundle, 40, {"pop_bucket": "head"}, seed=0)
    assert len(rows) == 40 and (rows["pop_bucket"] == "head").all()
    assert bundle.manifest["kind"] == "tvae"


@pytest.mark.slow
def test_resumed_run_continues_from_its_checkpoint(tmp_path: Path) -> None:
    """One epoch, then resume to two, gives the same weights as two epochs straight (CPU, fixed seeds)."""
    straight = fit(tiny_config(tmp_path, "straight", "monitor.enabled=false"))
    split_config = tiny_config(tmp_path, "split", "monitor.enabled=false")
    fit(replace(split_config, trainer=replace(split_config.trainer, max_epochs=1)))
    first_half = torch.load(tmp_path / "split" / "checkpoints" / "last.ckpt", weights_only=False)
    assert first_half["epoch"] == 0
    resumed = fit(split_config, resume=True)
    final = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=False)
    assert final["epoch"] == 1 and final["global_step"] > first_half["global_step"]
    a = gen.load(straight, device="cpu").module.state_dict()
    b = gen.load(resumed, device="cpu").module.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=lambda m: f"{key}: {m}")


@pytest.mark.slow
def test_a_killed_run_exits_nonzero_writes_no_bundle_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "tailsynth.train", "--config", str(TINY), "--out", str(out), "--set",
               "trainer.max_epochs=100000", "monitor.enabled=false"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + HANG_GUARD_S
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert last.is_file(), "no checkpoint appeared"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=HANG_GUARD_S)
    assert process.returncode == 143, stderr[-2000:]
    assert "stopped by SIGTERM" in stderr and "--resume" in stderr
    assert not (out / "bundle").exists()
    checkpoint = torch.load(last, weights_only=False)  # complete and loadable: written atomically
    resumed = fit(replace(load_config(TINY, ["monitor.enabled=false"]), out_dir=str(tmp_path), name="killed",
                          trainer=replace(load_config(TINY).trainer, max_epochs=checkpoint["epoch"] + 2)), resume=True)
    assert gen.load(resumed, device="cpu").manifest["meta"]["timings"]["epochs"] == checkpoint["epoch"] + 2


@pytest.mark.slow
def test_resume_reuses_the_checkpointed_encoder(tmp_path: Path) -> None:
    """A refit with other encoder settings would change the layout; resume keeps the trained-on encoding."""
    first = tiny_config(tmp_path, "enc", "monitor.enabled=false", "trainer.max_epochs=1")
    fit(first)
    layout = gen.load(tmp_path / "enc", device="cpu").encoder.layout
    changed = tiny_config(tmp_path, "enc", "monitor.enabled=false", "model.encoder.max_modes=1")
    resumed = gen.load(fit(changed, resume=True), device="cpu")
    assert resumed.encoder.layout == layout
    assert resumed.manifest["meta"]["timings"]["epochs"] == 2


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot resume"):
        fit(tiny_config(tmp_path, "fresh"), resume=True)


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_trains(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tailsynth.train", "--config", str(TINY), "--out", str(out), "--set",
               "trainer.strategy=ddp", "trainer.devices=2", "monitor.enabled=false", "trainer.max_epochs=1"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "bundle" / MANIFEST).read_text())
    assert manifest["meta"]["config"]["trainer"]["strategy"] == "ddp"
    bundle = gen.load(out, device="cpu")
    assert len(gen.sample(bundle, 20, {"pop_bucket": "tail"})) == 20


def test_ids_are_kept_out_unless_asked_and_then_limited_by_width(tmp_path: Path) -> None:
    with pytest.raises(EncodingError, match=r"StockCode.*273 categories|CustomerID.*categories"):
        fit(tiny_config(tmp_path, "ids", "model.encoder.include_ids=true", "monitor.enabled=false"))


@pytest.mark.parametrize("override, key", [
    ("trainer.batch_size=0", "trainer.batch_size"),
    ("monitor.every_n_epochs=0", "monitor.every_n_epochs"),
    ("trainer.precision=16-true", "trainer.precision"),
    ("trainer.accelerator=tpu9", "trainer.accelerator"),
])
def test_bad_trainer_values_fail_at_load_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(TINY, [override])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a host without a GPU")
def test_asking_for_a_gpu_on_a_cpu_host_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="accelerator='gpu'"):
        fit(tiny_config(tmp_path, "gpu", "trainer.accelerator=gpu", "monitor.enabled=false"))


def test_model_config_rejects_unknown_kind() -> None:
    from tailsynth.train.config import from_dict

    with pytest.raises(ConfigError, match="kind"):
        from_dict(ModelConfig, {"kind": "diffusion"})
