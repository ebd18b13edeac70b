"""gen.gate / gen.gate.report: the fidelity gate with hand-made draw functions (no trained model).

The real table comes from a small seeded generative process (5 columns: 3 numerical, 2 categorical);
"good" candidates are drawn from the very same process with another seed, so at the strict default
GateConfig they pass by construction; the bad draws below break exactly one thing each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailsynth.evaluate.measures.privacy import rare_copy_mask
from tailsynth.gen.gate.core import GateResult, run_gate
from tailsynth.gen.gate.report import Progress, format_refusal, report_path, write_gate_output
from tailsynth.models.errors import DataError, GateError
from tailsynth.train.config import GateConfig

COLUMNS = {"price": "numerical", "quantity": "numerical", "hour": "numerical",
           "country": "categorical", "channel": "categorical"}
COUNTRIES = np.array(["UK", "FR", "DE", "NL", "ES"])
CHANNELS = np.array(["web", "app", "store"])
N = 1000
CONFIG = GateConfig()  # the strict defaults: alpha 0.01, max_auc 0.60, fake_threshold 0.5, rare_k 5


def population(rng: np.random.Generator, k: int) -> pd.DataFrame:
    """k rows of the one generative process every real and "good" synthetic row comes from."""
    country = rng.choice(COUNTRIES, size=k, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    channel = rng.choice(CHANNELS, size=k, p=[0.5, 0.3, 0.2])
    price = rng.lognormal(mean=1.0 + 0.4 * (country == "UK"), sigma=0.5, size=k)  # continuous: rows are unique
    quantity = 1 + rng.poisson(np.where(channel == "store", 3.0, 1.0))
    hour = rng.integers(8, 22, size=k)
    return pd.DataFrame({"price": price, "quantity": quantity, "hour": hour, "country": country,
                         "channel": channel, "item_id": rng.integers(0, 50, size=k)})


def sampler(seed: int, spoil: Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame] | None = None
            ) -> Callable[[int], pd.DataFrame]:
    """A deterministic draw(k): fresh rows of the population, optionally spoilt; records every call's size."""
    rng = np.random.default_rng(seed)

    def draw(k: int) -> pd.DataFrame:
        draw.calls.append(k)
        rows = population(rng, k)
        return spoil(rows, rng) if spoil else rows

    draw.calls = []
    return draw



@pytest.fixture(scope="module")
def real() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(2024)
    return population(rng, 3000), population(rng, 2000)  # (train, holdout)


def gate(draw: Callable[[int], pd.DataFrame], real: tuple[pd.DataFrame, pd.DataFrame], n: int = N,
         config: GateConfig = CONFIG, seed: int = 0) -> GateResult:
    train, holdout = real
    return run_gate(draw, n, train=train, holdout=holdout, columns=COLUMNS, config=config, seed=seed,
                    device="cpu", progress=False, label="test")


@pytest.fixture(scope="module")
def good(real: tuple[pd.DataFrame, pd.DataFrame]) -> GateResult:
    return gate(sampler(7), real)


def assert_accounting(report: dict) -> None:
    """candidates = calibration + accepted + rejected (every reason) + unused, exactly."""
    total = report["calibration_rows"] + report["accepted"] + sum(report["rejected"].values()) + report["unused"]
    assert report["candidates"] == total
    assert set(report["rejected"]) == {"support", "discriminator", "privacy"}
    assert report["candidates"] <= report["budget"]


def test_same_distribution_passes_with_exactly_n_rows(good: GateResult) -> None:
    report = good.report
    assert good.passed, format_refusal(report)
    assert len(good.rows) == N and report["accepted"] == N
    assert list(good.rows.columns) == ["price", "quantity", "hour", "country", "channel", "item_id"]
    assert_accounting(report)
    assert report["calibration_rows"] > 0 and report["discriminator_filter"]["fitted"]
    # A faithful generator: the calibrated filter has (next to) nothing to thin.
    assert report["rejected"]["discriminator"] <= 0.05 * (report["candidates"] - report["calibration_rows"])
    assert {entry["column"] for entry in report["tests"]} == set(COLUMNS)
    assert not any(entry["holm_rejected"] for entry in report["tests"])
    assert report["auc"]["value"] <= report["auc"]["max"] == CONFIG.max_auc
    assert report["config"]["alpha"] == CONFIG.alpha and report["seed"] == 0
    for key in ("before", "after", "floor"):
        assert set(report[key]) >= {"mean_ks", "mean_tvd", "auc"}
    assert report["failures"] == [] and report["verdict"] == "passed"
    json.dumps(report, allow_nan=False)  # plain JSON, no numpy scalars or NaN


def test_discriminator_thins_an_over_produced_region(real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    def some_garbage(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        # Every 7th candidate gets 6 extra units: still inside the support, but a region real rows rarely reach.
        bad = np.arange(len(rows)) % 7 == 0
        return rows.assign(quantity=rows["quantity"] + 6 * bad, item_id=np.where(bad, -1, rows["item_id"]))

    result = gate(sampler(29, some_garbage), real)
    report = result.report
    raw_quantity = next(c for c in report["before"]["columns"] if c["column"] == "quantity")
    assert raw_quantity["pvalue"] < 1e-6  # the raw candidates would fail on quantity
    assert result.passed, format_refusal(report)
    assert report["rejected"]["discriminator"] > 0.1 * (report["candidates"] - report["calibration_rows"])
    assert (result.rows["item_id"] == -1).mean() < 0.05  # 1/7 = 0.14 of the raw candidates
    assert_accounting(report)


def test_same_seed_gives_identical_rows(good: GateResult, real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    again = gate(sampler(7), real)
    pd.testing.assert_frame_equal(again.rows, good.rows)
    for key in ("candidates", "accepted", "rejected", "unused", "auc", "tests"):
        assert again.report[key] == good.report[key]


def test_rare_copies_are_stopped_by_privacy(real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, _ = real

    def copy_some(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        # Every 4th candidate is an exact copy of a training row; each is unique in train, so "rare" (< k).
        copies = train.iloc[rng.integers(0, len(train), size=len(rows))].reset_index(drop=True)
        every_fourth = np.arange(len(rows)) % 4 == 0
        return pd.concat([rows[~every_fourth], copies[every_fourth]]).sort_index()

    result = gate(sampler(11, copy_some), real)
    assert result.report["rejected"]["privacy"] > 0
    assert_accounting(result.report)
    assert result.passed, format_refusal(result.report)
    assert not rare_copy_mask(result.rows, train, COLUMNS, CONFIG.rare_k).any()
    assert result.rows.merge(train[list(COLUMNS)], how="inner").empty  # no emitted row copies a training row


def test_impossible_values_are_dropped_by_support(real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    spoilt: list[int] = []

    def impossible(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        rows = rows.copy()
        pick = np.arange(len(rows)) % 10
        rows.loc[pick == 0, "country"] = "Atlantis"  # a label training never had
        rows.loc[pick == 5, "price"] = 1e6  # far outside [min, max] of training prices
        spoilt.append(int(np.isin(pick, (0, 5)).sum()))
        return rows

    result = gate(sampler(13, impossible), real)
    report = result.report
    screened_spoilt = sum(spoilt[1:])  # the first call is the calibration chunk, which is never screened
    assert report["rejected"]["support"] >= screened_spoilt > 0
    assert report["support_violations"]["country"] >= screened_spoilt // 2
    assert report["support_violations"]["price"] >= screened_spoilt // 2
    assert_accounting(report)
    assert result.passed, format_refusal(report)
    assert not (result.rows["country"] == "Atlantis").any()
    assert result.rows["price"].max() < 1e6


def test_shifted_column_fails_and_names_it(real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, _ = real
    shift = 4 * train["price"].std()

    def shifted(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return rows.assign(price=rows["price"] + shift)

    result = gate(sampler(17, shifted), real)
    assert not result.passed and result.rows is None
    assert result.report["verdict"] == "failed" and result.report["failures"]
    messages = [failure["message"] for failure in result.report["failures"]]
    assert any("price" in message for message in messages), messages
    assert_accounting(result.report)


def test_too_small_holdout_refuses_without_drawing(real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, holdout = real
    draw = sampler(19)
    small = holdout.iloc[: CONFIG.min_holdout_rows - 1]
    result = gate(draw, (train, small))
    assert not result.passed and result.rows is None and draw.calls == []
    assert result.report["verdict"] == "cannot_judge" and result.report["candidates"] == 0
    assert_accounting(result.report)
    assert "holdout has 199 rows, fewer than min_holdout_rows 200" in format_refusal(result.report)


def test_holdout_rows_the_privacy_rule_would_drop_are_set_aside(real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, holdout = real
    # 250 held-out rows, 100 of them exact copies of (unique, so rare) training rows: 150 left to judge by.
    mixed = pd.concat([holdout.iloc[:150], train.iloc[:100]], ignore_index=True)
    draw = sampler(37)
    result = gate(draw, (train, mixed))
    assert result.report["holdout_privacy_trim"]["rows"] == 100 and draw.calls == []
    assert result.report["verdict"] == "cannot_judge"
    assert "100 of which repeat a rare training combination" in format_refusal(result.report)


def test_too_few_requested_rows_cannot_be_judged(real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    draw = sampler(41)
    result = gate(draw, real, n=5)
    assert result.rows is None and result.report["verdict"] == "cannot_judge" and draw.calls == []
    assert "5 rows are too few to judge" in format_refusal(result.report)


def test_progress_line_is_throttled(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress("tail", 100, enabled=True)
    bar.update(10, 50)  # within the first 0.5 s: silent
    bar.close(10, 50)  # nothing was shown, so nothing to finish
    assert capsys.readouterr().err == ""
    bar.last -= 1.0  # pretend a second went by
    bar.update(40, 200)
    bar.close(40, 200)  # same figures: not repeated
    assert capsys.readouterr().err.splitlines() == ["gate tail: 40/100 rows accepted (40%), 200 candidates, 0s"]


def test_bad_arguments_raise_errors_naming_the_problem(real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, holdout = real
    with pytest.raises(GateError, match="n=0"):
        gate(sampler(31), real, n=0)
    with pytest.raises(DataError, match="hour"):
        gate(sampler(31), (train, holdout.drop(columns=["hour"])))
    with pytest.raises(GateError, match=r"without column\(s\) \['channel'\]"):
        gate(lambda k: population(np.random.default_rng(0), k).drop(columns=["channel"]), real)


def test_write_gate_output_on_success_and_refusal(
    good: GateResult, real: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    out = tmp_path / "tail.parquet"
    assert write_gate_output(good, out) == out
    pd.testing.assert_frame_equal(pd.read_parquet(out), good.rows)
    assert json.loads(report_path(out).read_text())["accepted"] == N
    assert report_path(out).name == "tail.parquet.report.json"

    train, holdout = real
    refused = gate(sampler(23), (train, holdout.iloc[:50]))
    other = tmp_path / "keep.txt"
    other.write_text("unrelated")
    csv_out = tmp_path / "refused.csv"
    assert write_gate_output(refused, csv_out) is None
    assert not csv_out.exists()
    assert json.loads(report_path(csv_out).read_text())["passed"] is False
    assert other.read_text() == "unrelated"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "keep.txt", "refused.csv.report.json", "tail.parquet", "tail.parquet.report.json"]
