"""The installed layout: one name (`tailsynth`), and imports that point one way (STYLE.md rule 2)."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("gen", "models", "train", "evaluate")


def _modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """Every module name `path` imports, at any depth (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_every_package_folder_is_installed_under_tailsynth() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {str(init.parent.relative_to(REPO)).replace("/", ".") for top in FOLDERS
               for init in (REPO / top).rglob("__init__.py")}
    assert set(config["packages"]) == {f"tailsynth.{folder}" for folder in folders}
    assert config["package-dir"] == {f"tailsynth.{top}": top for top in FOLDERS}


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_top_level_import_of_ours(folder: str) -> None:
    stray = {str(path.relative_to(REPO)): sorted(name for name in _imported(path) if name.split(".")[0] in FOLDERS)
             for path in _modules(folder) + sorted((REPO / "tests").glob("*.py"))}
    assert not {path: names for path, names in stray.items() if names}


def test_measures_import_nothing_of_ours() -> None:
    for path in _modules("evaluate/measures"):
        ours = {name for name in _imported(path) if name.startswith("tailsynth.")}
        assert all(name.startswith("tailsynth.evaluate.measures") for name in ours), (path, ours)


@pytest.mark.parametrize("folder", ("gen", "train", "models"))
def test_lower_layers_use_only_the_measures_of_evaluate(folder: str) -> None:
    for path in _modules(folder):
        wrong = {name for name in _imported(path)
                 if name.startswith("tailsynth.evaluate") and not name.startswith("tailsynth.evaluate.measures")}
        assert not wrong, (path, wrong)


def test_models_import_no_other_package_of_ours() -> None:
    for path in _modules("models"):
        wrong = {name for name in _imported(path) if name.startswith("tailsynth.") and not name.startswith("tailsynth.models")}
        assert not wrong, (path, wrong)


def test_console_script_dispatches_to_each_command(capsys: pytest.CaptureFixture) -> None:
    from tailsynth.evaluate.console import main

    assert main(["--help"]) == 0 and "train" in capsys.readouterr().out
    assert main(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["gen", "--help"])
    assert done.value.code == 0 and "sample" in capsys.readouterr().out


def test_our_folders_are_not_top_level_names_when_installed(tmp_path: Path) -> None:
    """From outside the checkout, `tailsynth.gen` imports and `gen` does not (the editable finder maps only ours)."""
    import subprocess

    code = ("import importlib.util, tailsynth.gen; "
            "print(all(importlib.util.find_spec(n) is None for n in ('gen', 'models', 'train', 'evaluate')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
