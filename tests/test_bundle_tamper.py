"""Tampered bundles: every failure is a BundleError naming the file and the key, before any network exists."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tailsynth import gen
import tailsynth.gen.bundle  # noqa: F401 (binds gen.bundle)
from tailsynth.models.bundle import MANIFEST
from tailsynth.models.errors import BundleError
from tailsynth.train.config import load_config
from tailsynth.train.fit import fit

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny CTGAN run: 640 training rows, one epoch, no monitor (a few seconds)."""
    config = load_config(REPO / "configs" / "tiny.yaml",
                         ["trainer.max_epochs=1", "data.max_train_rows=640", "monitor.enabled=false"])
    run = fit(replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="tamper"))
    return run / "bundle"


def _tampered(bundle_dir: Path, tmp_path: Path, edit: Callable[[dict], object]) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps(edit(manifest)))
    return copy


def _without(key: str) -> Callable[[dict], dict]:
    def edit(manifest: dict) -> dict:
        section, _, name = key.rpartition(".")
        (manifest[section] if section else manifest).pop(name)
        return manifest

    return edit


def test_untampered_bundle_loads(bundle_dir: Path) -> None:
    assert gen.load(bundle_dir, device="cpu").manifest["kind"] == "ctgan"


@pytest.mark.parametrize("key", ["meta", "columns", "schema", "encoder", "model", "meta.seed", "meta.config"])
def test_missing_key_names_file_and_key(bundle_dir: Path, tmp_path: Path, key: str) -> None:
    copy = _tampered(bundle_dir, tmp_path, _without(key))
    with pytest.raises(BundleError, match=rf"bundle\.json: key '{key}' is missing"):
        gen.load(copy, device="cpu")


@pytest.mark.parametrize(("edit", "pattern"), [
    (lambda m: [m], r"bundle\.json: the manifest must be a JSON object, got a JSON list"),
    (lambda m: {**m, "meta": "x"}, r"bundle\.json: key 'meta' must be a JSON object"),
    (lambda m: {**m, "schema": [1]}, r"bundle\.json: key 'schema\[0\]'"),
    (lambda m: {**m, "encoder": {**m["encoder"], "columns": 7}}, r"bundle\.json: key 'encoder' is malformed"),
    (lambda m: {**m, "model": {**m["model"], "ctgan": {**m["model"]["ctgan"], "pac": -2}}},
     r"bundle\.json: key 'model' is malformed .*pac"),
])
def test_malformed_manifest_is_a_bundle_error(bundle_dir: Path, tmp_path: Path, edit: Callable, pattern: str) -> None:
    with pytest.raises(BundleError, match=pattern):
        gen.load(_tampered(bundle_dir, tmp_path, edit), device="cpu")


def test_huge_claimed_layers_fail_before_any_real_network(bundle_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(manifest: dict) -> dict:
        manifest["model"]["ctgan"]["generator_dims"] = [30000, 30000]
        return manifest

    real_build = gen.bundle.build_module
    devices = []

    def recording_build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        devices.append(torch.empty(0).device.type)  # the default device the layers are built on
        return real_build(*args, **kwargs)

    monkeypatch.setattr(gen.bundle, "build_module", recording_build)
    with pytest.raises(BundleError, match=r"bundle\.json: key 'model' describes a network that does not match "
                                          r"weights\.pt .*manifest \(30000, \d+\) vs weights \(16, \d+\)"):
        gen.load(_tampered(bundle_dir, tmp_path, edit), device="cpu")
    assert devices == ["meta"]
