"""The model bundle: config, encoder state and weights as plain data — never a pickled object.

A bundle is a folder:
- `bundle.json`: format version, model kind, model config, condition spec, fitted encoder state, and the
  run's metadata (resolved run config, seed, package versions, timings);
- `weights.pt`: the LightningModule's `state_dict` (tensors only; loaded with `weights_only=True`);
- any tables the caller adds (reference rows, bucket table) as parquet files beside them, and the taste
  space with its content->taste predictor (`taste.pt`: tensors and lists, loaded with `weights_only=True`).

Whole-object pickles break across versions (CTGAN #358, SDV #1970); this format is read back by building
the networks from the recorded config and loading tensors into them. A bundle whose `format_version`
differs from this code's is refused with a message naming both versions.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tailsynth.models.errors import BundleError

FORMAT_VERSION = 3
"""2: CTGAN weights include the averaged generator (`generator_ema`).
3: the taste space and the content->taste predictor (`taste.pt`, manifest key `taste`)."""
MANIFEST = "bundle.json"
WEIGHTS = "weights.pt"


def save_bundle(
    directory: str | Path,
    manifest: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    extra_files: Callable[[Path], None] | None = None,
) -> Path:
    """Write a bundle into `directory` atomically: build it in a temporary sibling folder, then rename.

    `extra_files(tmp_dir)` may add further files (tables) before the rename. An existing bundle at
    `directory` is replaced only once the new one is complete.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_folder(directory)
    try:
        payload = {"format_version": FORMAT_VERSION, **manifest}
        (tmp / MANIFEST).write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        tensors = {key: value.detach().cpu() for key, value in state_dict.items()}
        torch.save(tensors, tmp / WEIGHTS)
        if extra_files is not None:
            extra_files(tmp)
        for path in tmp.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _create_folder(directory: Path) -> Path:
    """A new `.<name>.<random>` folder beside `directory`, made with the umask's mode (as `mkdir` does;
    `tempfile.mkdtemp` makes it 0700, and the rename would carry that onto the bundle)."""
    while True:
        tmp = directory.with_name(f".{directory.name}.{secrets.token_hex(4)}")
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return tmp


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The bundle's manifest, after checking that it exists and that its format version is ours."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{directory}: no model bundle here (expected {MANIFEST}); pass a run directory or its bundle/ folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: the manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: the manifest must be a JSON object, got a JSON {type(manifest).__name__}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format version {version!r} is not supported by this tailsynth "
            f"(it reads version {FORMAT_VERSION}); retrain the model or use the tailsynth version that wrote it "
            f"({_written_by(manifest)})"
        )
    return manifest


def _written_by(manifest: dict[str, Any]) -> str:
    """The tailsynth version recorded in a manifest, or 'unknown' (however the manifest is damaged)."""
    meta = manifest.get("meta")
    versions = meta.get("versions") if isinstance(meta, dict) else None
    return str(versions.get("tailsynth", "unknown")) if isinstance(versions, dict) else "unknown"


def read_weights(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    path = Path(directory) / WEIGHTS
    if not path.is_file():
        raise BundleError(f"{directory}: the bundle has no {WEIGHTS}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or non-tensor files
        raise BundleError(f"{path}: cannot load the weights ({type(exc).__name__}: {exc})") from None
