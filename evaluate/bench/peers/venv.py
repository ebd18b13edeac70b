"""The peers' virtual environment: mostlyai-engine kept out of our core and dev installs.

mostlyai-engine 2.7.3 (TabularARGN, Apache-2.0) pulls in transformers, datasets, accelerate, peft and
more. The bench runs it from a separate virtual environment that it creates on first use and reuses after:
`--peer-venv` (default: `$TAILSYNTH_PEER_VENV`, else `.venv-peers` in the working directory). The install
steps, in order:

1. `python -m venv DIR`;
2. `pip install torch==2.13.0` first — our torch pin, and on a machine without a GPU it keeps pip from
   resolving a multi-GB CUDA build;
3. `pip install mostlyai-engine==2.7.3`;
4. `pip uninstall -y torchvision torchaudio`: the builds it pulls in do not match that torch, and
   transformers' import then fails ("operator torchvision::nms does not exist"); the engine needs neither.

A venv counts as ready when its interpreter imports `mostlyai.engine` at that version.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ENGINE = "mostlyai-engine"
ENGINE_VERSION = "2.7.3"
TORCH = "torch==2.13.0"
ENV_VAR = "TAILSYNTH_PEER_VENV"
DEFAULT_DIR = ".venv-peers"


def peer_venv_dir(path: str | Path | None = None) -> Path:
    """The peers' venv folder: `path`, else $TAILSYNTH_PEER_VENV, else ./.venv-peers."""
    return Path(path or os.environ.get(ENV_VAR) or DEFAULT_DIR).absolute()


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def engine_ready(venv: Path) -> bool:
    """Whether the venv's interpreter imports mostlyai.engine at the pinned version."""
    python = venv_python(venv)
    if not python.is_file():
        return False
    check = f"import mostlyai.engine as e; raise SystemExit(0 if e.__version__ == {ENGINE_VERSION!r} else 3)"
    completed = subprocess.run([str(python), "-c", check], capture_output=True, text=True, check=False,
                               env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    return completed.returncode == 0


def ensure_peer_venv(venv: Path, progress: Callable[[str], None] = print) -> Path:
    """Create (or complete) the peers' venv at `venv` and return its interpreter; reuse it when ready.

    Raises RuntimeError naming the step and pip's last lines when a step fails.
    """
    if engine_ready(venv):
        return venv_python(venv)
    progress(f"peers' venv {venv}: installing {ENGINE}=={ENGINE_VERSION} (once; reused by later runs)")
    python = venv_python(venv)
    if not python.is_file():
        _step([sys.executable, "-m", "venv", str(venv)], "create the venv")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    _step([*pip, TORCH], f"pip install {TORCH}")
    _step([*pip, f"{ENGINE}=={ENGINE_VERSION}"], f"pip install {ENGINE}=={ENGINE_VERSION}")
    _step([str(python), "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio"],
          "pip uninstall torchvision torchaudio")
    if not engine_ready(venv):
        raise RuntimeError(f"peers' venv {venv}: mostlyai.engine {ENGINE_VERSION} still does not import after "
                           f"the install; remove the folder and run the bench again")
    return python


def _step(command: list[str], what: str) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"peers' venv: could not {what} (exit {completed.returncode}):\n{tail}")
