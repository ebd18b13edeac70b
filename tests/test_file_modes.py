"""Outputs get the user's umask, as files and folders made by any other tool do (not tempfile's 0600/0700)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch

from tailsynth.models.atomic import write_table, write_text
from tailsynth.models.bundle import save_bundle


@pytest.fixture(params=[0o022, 0o027])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_files_and_bundle_folders_follow_the_umask(tmp_path: Path, umask: int) -> None:
    text = write_text(tmp_path / "report.md", "# report\n")
    table = write_table(tmp_path / "rows.parquet", pd.DataFrame({"a": [1, 2]}))
    bundle = save_bundle(tmp_path / "bundle", {"kind": "test"}, {"w": torch.zeros(2)})
    assert _mode(text) == _mode(table) == 0o666 & ~umask  # 0644 under umask 022
    assert _mode(bundle) == 0o777 & ~umask  # 0755 under umask 022
    assert all(_mode(path) == 0o666 & ~umask for path in bundle.iterdir())
    again = save_bundle(tmp_path / "bundle", {"kind": "test"}, {"w": torch.ones(2)})  # replacing keeps the mode
    assert _mode(again) == 0o777 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "report.md", "rows.parquet"]  # no temporaries
