"""`tailsynth evaluate report` on a trained tiny run: JSON, Markdown and TensorBoard, gate included."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tailsynth.train.config import load_config
from tailsynth.train.fit import fit
from helpers import HANG_GUARD_S

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = load_config(REPO / "configs" / "tiny.yaml", ["monitor.enabled=false"])
    return fit(replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="report"))


@pytest.mark.slow
def test_report_writes_json_markdown_and_tensorboard(run_dir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    done = subprocess.run([sys.executable, "-m", "tailsynth.evaluate", "report", "--bundle", str(run_dir), "--rows", "150"],
                          cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert set(report["gate"]) == {"head", "torso", "tail"}
    for bucket, gate in report["gate"].items():
        assert gate["passed"] in (True, False) and gate["requested_rows"] == 150, bucket
        assert set(gate["after"]) == set(gate["before"]) == set(gate["floor"]) and "mean_ks" in gate["floor"]
        assert gate["passed"] or gate["failures"], f"{bucket}: a refusal must say why"
    assert report["floor"]["overall"]["mean_ks"] < report["overall"]["mean_ks"]  # a 2-epoch model is far from real
    assert "head" in report["by_bucket"]
    # pop_bucket is sampled at equal sizes by construction: no test of it anywhere in the report.
    assert "pop_bucket" not in {row["column"] for row in report["overall"]["columns"]}
    assert report["bucket_order"] == ["head", "torso", "tail"]
    assert 0.5 < report["overall"]["auc"] <= 1.0 and report["floor"]["overall"]["auc"] < 0.7
    markdown = (run_dir / "report.md").read_text()
    assert "real-vs-real floor" in markdown and "Bucket head" in markdown
    assert "| pop_bucket |" not in markdown
    sections = [markdown.index(f"### Bucket {b}") for b in report["bucket_order"] if b in report["by_bucket"]]
    assert len(sections) >= 2 and sections == sorted(sections)
    assert markdown.index("## Ungated") < markdown.index("## Gated") < markdown.index("## Figures")

    links = re.findall(r"!\[[^]]*\]\((report_figures/[^)]+\.png)\)", markdown)
    columns = [name for name in report["overall"]["columns"]]
    assert len(links) == len(columns) + 1, links  # one figure per judged column, and the heatmap
    for link in links:
        assert (run_dir / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0, "tensors": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert any(tag.startswith("gate/") for tag in scalars), sorted(scalars)[:20]
    images = set(events.Tags()["images"])
    assert "corr_diff" in images and {f"hist/{row['column']}" for row in report["overall"]["columns"]} <= images
    assert sorted(path.name for path in (run_dir / "report_figures").glob("*.png")) == sorted(
        Path(link).name for link in links)


def test_report_on_a_missing_bundle_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # In-process (the command's own `main`), so the fast tier covers the report command without a subprocess.
    import torch

    from tailsynth.evaluate.__main__ import main

    threads = torch.get_num_threads()
    try:
        code = main(["report", "--bundle", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)  # the command applies a bundle's thread count to its process
    assert code == 2
    assert "no model bundle" in capsys.readouterr().err
