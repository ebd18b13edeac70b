"""gen/outputs.py: an output is checked before any work, locked, and written with its report as one unit.

No model is needed: these tests drive the helper with small frames (issue 20, cases 1, 2, 6 and 7's paths).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from tailsynth.gen import outputs
from tailsynth.gen.outputs import OutputError, check_output, claim_output, matches, recover, report_path

ROWS = pd.DataFrame({"user": [1, 2, 3], "item": ["a", "b", "c"]})


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_output_that_is_an_input_is_refused_by_path_link_and_inode(tmp_path: Path) -> None:
    items = tmp_path / "ids.csv"
    items.write_text("StockCode\n22457\n")
    (tmp_path / "link.csv").symlink_to(items)
    os.link(items, tmp_path / "hard.csv")
    for out in (items, tmp_path / "link.csv", tmp_path / "hard.csv", tmp_path / "." / "ids.csv"):
        with pytest.raises(OutputError, match=r"is the input .*ids\.csv"):
            check_output(out, inputs=[items])
    config = tmp_path / "x.csv.report.json"  # the report written beside the rows may not be an input either
    config.write_text("{}")
    with pytest.raises(OutputError, match=r"x\.csv\.report\.json is the input"):
        check_output(tmp_path / "x.csv", inputs=[config])
    assert items.read_text() == "StockCode\n22457\n" and config.read_text() == "{}"


def test_an_output_inside_a_bundle_or_a_run_directorys_folders_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "bundle").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "bundle" / "bundle.json").write_text("{}")
    (run / ".tailsynth-run").write_text("")
    for out in (run / "bundle" / "train.parquet", run / "checkpoints" / "rows.parquet"):
        with pytest.raises(OutputError, match="inside the bundle|is a folder of the run directory"):
            check_output(out, bundle=run)
    with pytest.raises(OutputError, match="is a model bundle"):  # any bundle, not only the call's
        check_output(run / "bundle" / "x.csv")
    # The run's top level is allowed: the README's main job writes its rows beside report.md.
    assert check_output(run / "tail_interactions.parquet", bundle=run) == run / "tail_interactions.parquet"


@pytest.mark.parametrize("case", ["missing folder", "folder is a file", "out is a directory", "report is a directory"])
def test_paths_that_cannot_be_written_are_refused_before_any_work(tmp_path: Path, case: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "dir.parquet").mkdir()
    (tmp_path / "r.csv.report.json").mkdir()
    out = {"missing folder": tmp_path / "nope" / "r.csv", "folder is a file": tmp_path / "file.txt" / "r.csv",
           "out is a directory": tmp_path / "dir.parquet", "report is a directory": tmp_path / "r.csv"}[case]
    before = _files(tmp_path)
    with pytest.raises(OutputError, match="does not exist|is a file, not a folder|existing directory"), \
            claim_output(out):
        raise AssertionError("the work must not start")
    assert _files(tmp_path) == before


def test_an_unwritable_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_access = os.access
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False if Path(path) == tmp_path else real_access(path, mode))
    with pytest.raises(OutputError, match="is not writable"):
        check_output(tmp_path / "r.parquet")


def test_rows_and_report_are_written_together_and_describe_each_other(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    with claim_output(out) as output:
        output.write(ROWS, {"verdict": "passed"})
    assert matches(out)
    report = json.loads(report_path(out).read_text())
    assert report["verdict"] == "passed" and report["output"]["rows"] == "rows.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "rows.csv.report.json"]  # no lock, no temp


def test_a_refusal_writes_the_report_alone_and_deletes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "rows.parquet"
    with claim_output(out) as output:
        output.write(ROWS, {"verdict": "passed"})
    earlier = out.read_bytes()
    with claim_output(out) as output:
        output.write(None, {"verdict": "refused"})
    assert out.read_bytes() == earlier  # not created by the refusing call: left alone
    report = json.loads(report_path(out).read_text())
    assert report["verdict"] == "refused" and report["output"]["rows"] is None
    assert not matches(out)  # and a reader can tell the report does not describe it


class Killed(BaseException):
    """Stands for SIGKILL: raised from inside the writer, caught by nothing of ours."""


def _kill_after(monkeypatch: pytest.MonkeyPatch, renames: int) -> None:
    """Make the writer die after `renames` calls of os.replace."""
    real, count = os.replace, {"n": 0}

    def replace(src: object, dst: object) -> None:
        if count["n"] >= renames:
            raise Killed
        count["n"] += 1
        real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace)


@pytest.mark.parametrize("renames", [0, 1, 2])
def test_a_killed_write_leaves_the_previous_pair_or_the_new_one_never_a_mix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renames: int) -> None:
    """Case 6. renames=0: killed before the journal (previous pair); 1: after the journal, before the rows
    are renamed; 2: between the rows and the report (the issue's case: new rows beside the old report)."""
    out = tmp_path / "rows.csv"
    with claim_output(out) as output:
        output.write(ROWS, {"call": "previous"})
    new = ROWS.assign(user=[7, 8, 9])
    _kill_after(monkeypatch, renames)
    with pytest.raises(Killed), claim_output(out) as output:
        output.write(new, {"call": "new"})
    monkeypatch.undo()
    recover(out)  # what the next call on this output does first
    report = json.loads(report_path(out).read_text())
    assert matches(out)
    expected = "previous" if renames == 0 else "new"
    assert report["call"] == expected
    assert pd.read_csv(out)["user"].tolist() == ([1, 2, 3] if expected == "previous" else [7, 8, 9])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "rows.csv.report.json"]


def test_temporaries_of_killed_calls_are_removed_by_the_next_call_and_only_ours(tmp_path: Path) -> None:
    out = tmp_path / "X.parquet"
    stale = [tmp_path / ".X.parquet.0a1b2c3d.tmp", tmp_path / ".X.parquet.report.json.deadbeef.tmp"]
    kept = [tmp_path / ".Y.parquet.0a1b2c3d.tmp", tmp_path / ".X.parquet.mine.tmp", tmp_path / "notes.tmp"]
    for path in stale + kept:
        path.write_bytes(b"733 KB of a killed call")
    with claim_output(out) as output:
        assert not any(path.exists() for path in stale)
        output.write(ROWS, {})
    assert all(path.exists() for path in kept)


def test_two_calls_on_one_output_do_not_both_write(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    with claim_output(out):
        with pytest.raises(OutputError, match=r"another tailsynth call \(process \d+\) is writing this output"), \
                claim_output(out):
            pass
        assert (tmp_path / ".rows.csv.lock").exists()  # the refused call did not remove the holder's lock
    assert not (tmp_path / ".rows.csv.lock").exists()
    with claim_output(out) as output:  # released
        output.write(ROWS, {})
