"""Run directories: locked while training, never silently overwritten, cleared of a killed run's temporaries."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tailsynth.models.errors import ConfigError
from tailsynth.train.config import load_config
from tailsynth.train.run_dir import MARKER, claim_run_directory

REPO = Path(__file__).resolve().parents[1]


def _tiny(tmp_path: Path, name: str, *overrides: str):
    config = load_config(REPO / "configs" / "tiny.yaml", ["trainer.max_epochs=1", "data.max_train_rows=640",
                                                          "monitor.enabled=false", *overrides])
    return replace(config, out_dir=str(tmp_path), name=name)


def test_second_run_on_a_locked_directory_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with claim_run_directory(run_dir, resume=False, overwrite=False):
        with pytest.raises(ConfigError, match=r"run directory .*run is in use by another training \(process \d+"):
            with claim_run_directory(run_dir, resume=True, overwrite=True):
                pass
    with claim_run_directory(run_dir, resume=False, overwrite=False):  # released once the first run ended
        pass


def test_existing_run_is_kept_unless_overwrite_or_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "bundle").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("seed: 1\n")
    (run_dir / MARKER).write_text("")  # as a fresh run leaves it
    with pytest.raises(ConfigError, match=r"already holds a run \(config\.yaml, bundle\); pass --overwrite"):
        with claim_run_directory(run_dir, resume=False, overwrite=False):
            pass
    with claim_run_directory(run_dir, resume=True, overwrite=False):
        assert (run_dir / "bundle").is_dir() and (run_dir / "config.yaml").is_file()
    with claim_run_directory(run_dir, resume=False, overwrite=True):
        assert not (run_dir / "bundle").exists() and not (run_dir / "config.yaml").exists()


def test_temporaries_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    stale = [run_dir / "checkpoints" / ".last.ckpt.0a1b2c3d.tmp", run_dir / ".config.yaml.9f8e7d6c.tmp"]
    for path in stale:
        path.write_bytes(b"")
    (run_dir / ".bundle.abc123").mkdir()
    (run_dir / ".bundle.old").mkdir()
    kept = [run_dir / "checkpoints" / "last.ckpt", run_dir / "notes.tmp", run_dir / ".draft.tmp",
            run_dir / ".notes.txt.mine.tmp"]  # temporaries of the user's, not named as our writers name theirs
    for path in kept:
        path.write_bytes(b"x")
    with claim_run_directory(run_dir, resume=True, overwrite=False):
        assert not any(path.exists() for path in stale)
        assert not (run_dir / ".bundle.abc123").exists() and not (run_dir / ".bundle.old").exists()
        assert all(path.exists() for path in kept)


def test_cli_refuses_an_existing_run_without_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tailsynth.train.__main__ import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("seed: 0\n")
    assert main(["--config", str(REPO / "configs" / "tiny.yaml"), "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err and (out / "config.yaml").read_text() == "seed: 0\n"


def test_resume_with_other_model_dimensions_is_a_config_error(tmp_path: Path) -> None:
    from tailsynth.train.fit import fit

    fit(_tiny(tmp_path, "dims"))
    wider = _tiny(tmp_path, "dims", "model.ctgan.generator_dims=[32, 32]")
    with pytest.raises(ConfigError, match=r"cannot resume: .*last\.ckpt was trained with other model dimensions.*"
                                          r"generator\.blocks\.0\.linear\.weight: checkpoint \(16, \d+\) vs "
                                          r"config \(32, \d+\)"):
        fit(wider, resume=True)


def _fake_reports(run_dir: Path) -> list[Path]:
    """What `evaluate report` / `evaluate utility` leave beside a model (contents do not matter here)."""
    (run_dir / "report_figures").mkdir(parents=True, exist_ok=True)
    (run_dir / "utility").mkdir(exist_ok=True)
    paths = [run_dir / "report.md", run_dir / "report.json", run_dir / "report_figures" / "a.png",
             run_dir / "utility" / "utility.md"]
    for path in paths:
        path.write_text("describes the previous model\n")
    return paths


def test_overwrite_removes_the_previous_models_reports(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "bundle").mkdir(parents=True)
    (run_dir / MARKER).write_text("")
    _fake_reports(run_dir)
    notes = run_dir / "notes.txt"  # not ours: kept
    notes.write_text("mine\n")
    with claim_run_directory(run_dir, resume=True, overwrite=False):  # resuming alone keeps them (for now)
        assert (run_dir / "report.md").is_file()
    with claim_run_directory(run_dir, resume=False, overwrite=True):
        assert not any((run_dir / name).exists() for name in ("report.md", "report.json", "report_figures", "utility"))
    assert notes.read_text() == "mine\n"


def test_a_new_bundle_never_sits_beside_an_old_report(tmp_path: Path) -> None:
    """Resumed (more epochs) or trained where only reports were left: the reports go before the bundle is written."""
    from tailsynth.train.fit import fit

    run_dir = Path(fit(_tiny(tmp_path, "resumed")))
    reports = _fake_reports(run_dir)
    fit(_tiny(tmp_path, "resumed", "trainer.max_epochs=2"), resume=True)
    assert (run_dir / "bundle").is_dir() and not any(path.exists() for path in reports)
    leftover = tmp_path / "leftover"
    reports = _fake_reports(leftover)  # a directory holding reports but no run
    fit(_tiny(tmp_path, "leftover"), overwrite=False)
    assert (leftover / "bundle").is_dir() and not any(path.exists() for path in reports)


def test_overwrite_refuses_a_folder_that_was_never_a_run_and_names_what_it_would_delete(tmp_path: Path) -> None:
    """Issue 20 case 3: --overwrite on a user's folder holding config.yaml, bundle/, reports and a temp file
    deleted them all; now it deletes nothing and lists them."""
    folder = tmp_path / "mine"
    (folder / "bundle").mkdir(parents=True)
    (folder / "utility").mkdir()
    files = {folder / "config.yaml": "mine", folder / "report.md": "mine", folder / "bundle" / "keep.txt": "mine",
             folder / "utility" / "u.md": "mine", folder / ".draft.0a1b2c3d.tmp": "mine"}
    for path, text in files.items():
        path.write_text(text)
    with pytest.raises(ConfigError, match=r"no \.tailsynth-run marker.*would have deleted config\.yaml, bundle, "
                                          r"report\.md, utility"):
        with claim_run_directory(folder, resume=False, overwrite=True):
            pass
    assert all(path.read_text() == text for path, text in files.items())


def test_a_run_from_before_the_marker_is_recognised_by_its_manifest(tmp_path: Path) -> None:
    run_dir = tmp_path / "old"
    (run_dir / "bundle").mkdir(parents=True)
    (run_dir / "bundle" / "bundle.json").write_text('{"kind": "ctgan", "meta": {}, "encoder": {}}')
    with claim_run_directory(run_dir, resume=False, overwrite=True):
        assert not (run_dir / "bundle").exists()


def test_a_fresh_run_leaves_its_marker_and_can_then_be_overwritten(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with claim_run_directory(run_dir, resume=False, overwrite=False):
        (run_dir / "config.yaml").write_text("seed: 0\n")
    assert (run_dir / MARKER).is_file()
    with claim_run_directory(run_dir, resume=False, overwrite=True):
        assert not (run_dir / "config.yaml").exists() and (run_dir / MARKER).is_file()
