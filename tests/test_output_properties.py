"""Property (hypothesis): for any output path and count, a `gen` call changes no input or bundle file and
leaves no file it did not report (issue 20). Trains a one-epoch tiny model once; slow."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from tailsynth.gen.__main__ import main as gen_main

REPO = Path(__file__).resolve().parents[1]
# As tests/test_properties.py: caches outside the working tree, seeded, no example database.
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "tailsynth-hypothesis"))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tailsynth.train.config import load_config
    from tailsynth.train.fit import fit

    config = load_config(REPO / "configs" / "tiny.yaml", ["monitor.enabled=false", "trainer.max_epochs=1",
                                                          "data.max_train_rows=640"])
    return Path(fit(replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="tiny")))


@pytest.fixture(scope="module")
def new_items_csv(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Items of the items table with no interaction whose features the model knows."""
    from tailsynth import gen

    bundle = gen.load(run, device="cpu")
    items = bundle.table("items")
    known = set(bundle.table("train")["StockCode"]) | set(bundle.table("holdout")["StockCode"])
    keep = ~items["StockCode"].isin(known)
    for column in ("category", "price_band"):
        keep &= items[column].isin(bundle.encoder.column(column).categories)
    path = tmp_path_factory.mktemp("items") / "new_items.csv"
    items[keep].head(4).assign(StockCode=lambda t: "NEW" + t["StockCode"].astype(str)).to_csv(path, index=False)
    return path


# Writable outputs listed more than once, so about half the calls generate rows.
OUT_CHOICES = ["fresh.csv", "fresh.parquet", "earlier.csv", "fresh.csv", "fresh.parquet", "earlier.csv", "items.csv",
               "run/bundle/train.parquet", "run/rows.csv", "dir.parquet", "file.txt/x.csv", "missing/x.csv", "rows.txt"]


@pytest.mark.slow
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["sample", "augment", "cold-start"]), out=st.sampled_from(OUT_CHOICES),
       count=st.sampled_from([1, 2, 3, -1, 0, 10**12]))
def test_no_call_changes_an_input_or_leaves_a_file_it_did_not_report(
        run: Path, new_items_csv: Path, tmp_path_factory: pytest.TempPathFactory, command: str, out: str,
        count: int) -> None:
    """Property: for any output path and count, every input and bundle file is unchanged, and the only new
    files are the rows and report the call reported (exit 0 or 1), or none (exit 2)."""
    work = tmp_path_factory.mktemp("calls")
    (work / "dir.parquet").mkdir()
    (work / "file.txt").write_text("x")
    (work / "earlier.csv").write_text("an,earlier\n1,2\n")
    items = work / "items.csv"
    items.write_bytes(new_items_csv.read_bytes())
    link = work / "run"
    link.symlink_to(run)  # so "run/..." paths point into the real bundle
    before_work, before_run = _snapshot(work), _snapshot(run)
    amount = ["--rows", str(count)] if command == "sample" else ["--per-item", str(count)]
    inputs = ["--items", str(items)] if command == "cold-start" else []
    argv = [command, "--bundle", str(run), *inputs, *amount, "--no-gate", "--out", str(work / out)]
    try:
        code = gen_main(argv)
    except SystemExit as exc:  # argparse: a usage error
        code = exc.code
    hypothesis.event(f"exit {code}")  # --hypothesis-show-statistics: how many calls wrote rows
    assert _snapshot(run) == before_run
    after = _snapshot(work)
    for name, content in before_work.items():
        if name != out:
            assert after.get(name) == content, f"{name} changed by {argv}"
    new = set(after) - set(before_work)
    if code == 0:
        assert new <= {out, out + ".report.json"} and out + ".report.json" in after
        assert json.loads((work / (out + ".report.json")).read_text())["output"]["rows"] == Path(out).name
    else:
        assert code == 2, argv
        assert new == set() and after == before_work
