"""The bundle's reference tables: the holdout is capped at data.split.bundle_holdout_rows, a seeded sample
recorded in the manifest, and the gate and augmentation still run on a capped bundle."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from tailsynth.train.config import GateConfig, load_config
from tailsynth.train.fit import fit, prepare_tables
from tailsynth.train.split import capped_rows

REPO = Path(__file__).resolve().parents[1]
CAP = 120


@pytest.fixture(scope="module")
def capped_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    config = load_config(REPO / "configs" / "tiny.yaml",
                         ["monitor.enabled=false", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                          f"data.split.bundle_holdout_rows={CAP}"])
    config = replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="capped")
    return fit(config), config


def test_a_bundle_stores_exactly_the_cap_of_its_holdout_as_a_seeded_sample(capped_run) -> None:
    run_dir, config = capped_run
    _, _, holdout, _ = prepare_tables(config)
    assert len(holdout) > CAP  # the tiny data has more held-out rows than the cap
    stored = pd.read_parquet(run_dir / "bundle" / "holdout.parquet")
    assert len(stored) == CAP
    expected = io.BytesIO()  # through parquet too, so dtypes compare as the bundle stores them
    capped_rows(holdout, CAP, seed=config.seed).to_parquet(expected, index=False)
    pd.testing.assert_frame_equal(stored, pd.read_parquet(expected))
    rows = json.loads((run_dir / "bundle" / "bundle.json").read_text())["meta"]["rows"]
    assert rows == {"train": rows["train"], "holdout": len(holdout), "holdout_stored": CAP, "bundle_holdout_rows": CAP}


def test_the_sample_is_deterministic_for_a_seed_and_keeps_row_order() -> None:
    table = pd.DataFrame({"x": range(1000)}, index=range(5000, 6000))
    first, again, other = (capped_rows(table, 100, seed=s) for s in (7, 7, 8))
    assert first.equals(again) and not first.equals(other)
    assert len(first) == 100 and first.index.is_monotonic_increasing and first.index.isin(table.index).all()
    assert capped_rows(table, 1000, seed=7) is table and capped_rows(table, None, seed=7) is table


@pytest.mark.slow
def test_the_gate_and_augmentation_run_on_a_capped_bundle(capped_run) -> None:
    from tailsynth import gen

    run_dir, _ = capped_run
    bundle = gen.load(run_dir, device="cpu")
    assert len(bundle.table("holdout")) == CAP
    gate = GateConfig(min_holdout_rows=10, max_candidates_factor=3.0)
    result = gen.sample_gated(bundle, 30, {"pop_bucket": "head"}, gate=gate, progress=False)
    assert result.passed in (True, False) and result.report
    assert (result.rows is not None) == result.passed
    tail = gen.augment(bundle, "tail", per_item=1, gate=gate, progress=False)
    assert tail.report and (tail.rows is None or len(tail.rows) >= 1)
