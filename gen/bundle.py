"""`gen.load(path) -> Bundle`: rebuild a trained generator from its bundle (config + encoder + weights)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch

from models.bundle import read_manifest, read_weights
from models.condition import ConditionSpec
from models.config import ModelConfig
from models.encoder import TableEncoder
from models.errors import BundleError
from models.registry import build_module
from train.config import from_dict

BUNDLE_DIR = "bundle"


@dataclass
class Bundle:
    """A loaded model: networks in eval mode on `device`, its encoder, condition spec and reference tables."""

    path: Path
    manifest: dict[str, Any]
    encoder: TableEncoder
    spec: ConditionSpec
    module: L.LightningModule
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def columns(self) -> dict[str, str]:
        """Generated columns and their sdtypes."""
        return dict(self.manifest["columns"])

    @property
    def seed(self) -> int:
        return int(self.manifest["meta"]["seed"])

    @property
    def config(self) -> dict[str, Any]:
        """The resolved run config the model was trained with (plain dict)."""
        return self.manifest["meta"]["config"]

    def provenance(self) -> dict[str, Any]:
        """What a report needs to say where its rows came from: bundle path, model kind, training seed,
        the resolved training config and package versions."""
        meta = self.manifest["meta"]
        return {"bundle": str(self.path), "kind": self.manifest["kind"], "training_seed": meta["seed"],
                "training_config": meta["config"], "versions": meta["versions"]}

    def role(self, role: str) -> list[str]:
        """Names of the record columns that have `role` (user_id, item_id, timestamp, event, ...)."""
        return [column["name"] for column in self.manifest["schema"] if column["role"] == role]

    def table(self, name: str) -> pd.DataFrame:
        """A reference table saved with the run: train, holdout, buckets, users or items."""
        if name not in self._tables:
            path = self.path / f"{name}.parquet"
            if not path.is_file():
                raise BundleError(f"{self.path}: the bundle has no {name} table ({path.name})")
            self._tables[name] = pd.read_parquet(path)
        return self._tables[name]

    @cached_property
    def pool(self) -> torch.Tensor:
        """Condition codes [n, k] of the training rows: where an unspecified bucket is drawn from."""
        train = self.table("train")
        return torch.stack([self.encoder.codes(c, train[c]).cpu() for c in self.spec.columns], dim=1)


def load(path: str | Path, *, device: str | torch.device | None = None) -> Bundle:
    """Load a bundle from a run directory (or its `bundle/` folder) onto `device` (default: cuda if any)."""
    path = Path(path)
    if (path / BUNDLE_DIR).is_dir():
        path = path / BUNDLE_DIR
    manifest = read_manifest(path)
    try:
        model_config = from_dict(ModelConfig, manifest["model"], where=f"{path}/bundle.json model")
        encoder = TableEncoder.from_state(manifest["encoder"])
        spec = ConditionSpec.from_layout(encoder.layout, tuple(manifest["condition_columns"][1:]))
    except KeyError as exc:
        raise BundleError(f"{path}: the manifest lacks {exc}; it was not written by a compatible tailsynth") from None
    module = build_module(model_config, encoder.layout, spec)
    weights = read_weights(path)
    try:
        module.load_state_dict(weights)
    except RuntimeError as exc:
        raise BundleError(f"{path}: the weights do not match the recorded model config ({exc})") from None
    target = torch.device(device) if device is not None else _default_device()
    module = module.to(target).eval()
    return Bundle(path=path, manifest=manifest, encoder=encoder, spec=spec, module=module)


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
