"""The scale benchmark's machinery on a tiny table: the synthetic tables, one worker process, the JSON and
Markdown it writes, and per-stage figures in pipeline order. It checks fields, never speed or memory."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tailsynth.evaluate.bench.scale import STAGE_ORDER, StageMeter, scale_benchmark
from tailsynth.evaluate.bench.scale_data import read_back, table_sizes, write_scale_tables
from tailsynth.train.fit import STAGES


def test_tables_scale_users_and_items_with_rows_and_read_as_csv_text(tmp_path: Path) -> None:
    assert table_sizes(10_000_000) == (200_000, 50_000) and table_sizes(1_000_000) == (20_000, 5_000)
    frames = read_back(write_scale_tables(5_000, tmp_path, seed=1))
    interactions, users, items = frames["interactions"], frames["users"], frames["items"]
    assert (len(interactions), len(users), len(items)) == (5_000, 100, 25)
    # Read as text: object under pandas 2, the string dtype under pandas 3 (the core install's).
    assert pd.api.types.is_string_dtype(interactions["StockCode"]) and items["StockCode"].is_unique
    assert interactions["StockCode"].map(type).eq(str).all()
    assert interactions["StockCode"].isin(items["StockCode"]).all()
    assert interactions["CustomerID"].isin(users["CustomerID"]).all()
    assert pd.api.types.is_datetime64_any_dtype(interactions["InvoiceDate"])
    again = read_back(write_scale_tables(5_000, tmp_path / "again", seed=1))["interactions"]
    pd.testing.assert_frame_equal(interactions, again)  # seeded


def test_stage_meter_gives_each_stage_its_seconds_and_peak() -> None:
    ticks = iter(range(100))
    meter = StageMeter(clock=lambda: float(next(ticks)))
    for name in ("records", "split", "done"):
        meter.begin(name)
    assert [s["stage"] for s in meter.stages] == ["records", "split"]
    assert all(s["seconds"] > 0 and s["peak_rss_mib"] > 0 for s in meter.stages)


@pytest.mark.slow
def test_one_tiny_size_end_to_end(tmp_path: Path) -> None:
    summary = scale_benchmark([2_000], tmp_path, train_rows=600, overrides=["monitor.enabled=false"])
    size = summary["sizes"][0]
    assert size["status"] == "ok", size.get("error")
    assert [s["stage"] for s in size["stages"]] == list(STAGES) == list(STAGE_ORDER)
    assert size["stored_rows"]["train"] == 600 and size["peak_rss_mib"] >= max(s["peak_rss_mib"] for s in size["stages"])
    assert json.loads((tmp_path / "bench_scale.json").read_text())["sizes"][0]["rows"] == 2_000
    markdown = (tmp_path / "bench_scale.md").read_text()
    assert "| 2,000 | 50 | 20 |" in markdown and "peak (GiB)" in markdown
    assert not (tmp_path / "data_2000").exists()  # the input tables are removed unless --keep-data
