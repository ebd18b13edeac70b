"""`gen.load(path) -> Bundle`: rebuild a trained generator from its bundle (config + encoder + weights)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch

from tailsynth.models.bundle import MANIFEST, WEIGHTS, read_manifest, read_weights
from tailsynth.models.condition import ConditionSpec
from tailsynth.models.continuous import continuous_from_state
from tailsynth.models.content_taste import ContentTaste
from tailsynth.models.config import ConditionConfig, ModelConfig
from tailsynth.models.encoder import TableEncoder
from tailsynth.models.errors import BundleError, TailsynthError
from tailsynth.models.registry import build_module
from tailsynth.models.taste import TasteSpace
from tailsynth.train.config import from_dict
from tailsynth.train.item_levels import condition_values, item_level_table

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

    def with_tables(self, tables: dict[str, pd.DataFrame], *, taste: TasteSpace | None = None,
                    content: ContentTaste | None = None) -> Bundle:
        """A view of this bundle with reference tables replaced (a share of the holdout, a validation's training
        rows), and optionally its taste space and predictor: it shares the model, the encoder and every other
        table. Every other saved table is read first, so a table first used after the copy is read once and
        shared (read lazily on each side, it would be two frames)."""
        for path in sorted(self.path.glob("*.parquet")):
            if path.stem not in tables:
                self.table(path.stem)
        view = replace(self, _tables={**self._tables, **tables})
        for name, value in (("taste", taste), ("content", content)):  # the cached_property slots
            if value is not None:
                view.__dict__[name] = value
            elif name in self.__dict__:
                view.__dict__[name] = self.__dict__[name]
        return view

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
    def taste(self) -> TasteSpace:
        """The taste space fitted from the training rows (read from the bundle on first use)."""
        return TasteSpace.from_state(self._taste_state["space"])

    @cached_property
    def content(self) -> ContentTaste:
        """The content->taste predictor into `taste` (BundleError when the items table had no content)."""
        state = self._taste_state.get("content")
        if state is None:
            raise BundleError(f"{self.path}: the bundle has no content->taste predictor (its items table had no "
                              f"categorical feature column and no text column)")
        return ContentTaste.from_state(state, self.taste)

    @cached_property
    def _taste_state(self) -> dict[str, Any]:
        """taste.pt, loaded with weights_only=True: tensors, lists, strings and numbers only."""
        entry = self.manifest.get("taste")
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise BundleError(f"{self.path}: the bundle has no taste space (trained with taste.enabled=false); "
                              f"retrain with taste enabled")
        file = self.path / Path(entry["file"]).name
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for missing, corrupt or non-tensor files
            raise BundleError(f"{file}: cannot load the taste space ({type(exc).__name__}: {exc})") from None
        if not isinstance(state, dict) or not isinstance(state.get("space"), dict):
            raise BundleError(f"{file}: expected a mapping with a 'space' entry")
        return state

    @cached_property
    def pool(self) -> torch.Tensor:
        """Condition codes [n, k] of the training rows: where an unspecified bucket is drawn from."""
        train = self.table("train")
        return torch.stack([self.encoder.codes(c, train[c]).cpu() for c in self.spec.columns], dim=1)

    @cached_property
    def pool_values(self) -> torch.Tensor | None:
        """Raw continuous condition values [n, c] of the training rows, aligned with `pool` (None: the model
        has no continuous condition): where a value left out at generation is drawn from."""
        if not self.spec.continuous_names:
            return None
        user_numerical = [name for name in self.spec.continuous_names if name in self.user_conditions]
        return condition_values(self.table("train"), self.condition, self.role("item_id")[0],
                                user_numerical)

    @cached_property
    def item_levels(self) -> pd.DataFrame | None:
        """Each training item's raw continuous condition values (index: item id; None: no continuous
        condition): what an existing item's rows are conditioned on (`gen.items.pipeline`)."""
        if not self.item_condition_names:
            return None
        return item_level_table(self.table("train"), self.condition, self.role("item_id")[0])

    @cached_property
    def item_features(self) -> tuple[str, ...]:
        """The item columns the model is conditioned on (the categorical conditions after `pop_bucket`, less
        the user's, `user_conditions`): what makes items a feature group and what a new item must give."""
        return tuple(name for name in self.spec.columns[1:] if name not in self.user_conditions)

    @cached_property
    def item_condition_names(self) -> tuple[str, ...]:
        """The continuous conditions that are item-level (`item_levels`' columns); the others are the user's."""
        return tuple(name for name in self.spec.continuous_names if name not in self.user_conditions)

    @cached_property
    def user_conditions(self) -> tuple[str, ...]:
        """`model.condition.user`: the user-table columns a row's user's values condition the generator on
        (categorical and numerical; () for a bundle trained without)."""
        return tuple(self.condition.user)

    @cached_property
    def condition(self) -> ConditionConfig:
        """The recorded `model.condition`, parsed: what the generator is conditioned on."""
        return from_dict(ConditionConfig, self.config["model"]["condition"], where="model.condition")


def load(path: str | Path, *, device: str | torch.device | None = None) -> Bundle:
    """Load a bundle from a run directory (or its `bundle/` folder) onto `device` (default: cuda if any).

    Every problem with a tampered or foreign bundle is a `BundleError` naming the file and the key. The
    manifest's model dimensions are checked against the weights' shapes on the meta device (no memory)
    before any network is built, so a manifest claiming 30000-wide layers cannot allocate gigabytes first.
    """
    path = Path(path)
    if (path / BUNDLE_DIR).is_dir():
        path = path / BUNDLE_DIR
    manifest = read_manifest(path)
    file = path / MANIFEST
    check_manifest(manifest, file)
    model_config = _manifest_part(file, "model", lambda: from_dict(ModelConfig, manifest["model"], where="model"))
    encoder = _manifest_part(file, "encoder", lambda: TableEncoder.from_state(manifest["encoder"]))
    continuous = _manifest_part(file, "condition_continuous", lambda: continuous_from_state(
        manifest.get("condition_continuous", [])))  # absent in bundles written before continuous conditions
    spec = _manifest_part(file, "condition_columns", lambda: ConditionSpec.from_layout(
        encoder.layout, tuple(manifest["condition_columns"][1:]), continuous))
    weights = read_weights(path)
    check_weight_shapes(file, path / WEIGHTS, lambda: build_module(model_config, encoder.layout, spec), weights)
    module = build_module(model_config, encoder.layout, spec)
    try:
        module.load_state_dict(weights)
    except RuntimeError as exc:
        raise BundleError(f"{path}: the weights do not match the recorded model config ({exc})") from None
    target = torch.device(device) if device is not None else _default_device()
    module = module.to(target).eval()
    return Bundle(path=path, manifest=manifest, encoder=encoder, spec=spec, module=module)


_REQUIRED: dict[str, type] = {"kind": str, "model": dict, "encoder": dict, "condition_columns": list,
                              "columns": dict, "schema": list, "meta": dict}
_REQUIRED_META: dict[str, type] = {"seed": int, "config": dict, "versions": dict}


def check_manifest(manifest: Any, file: Path) -> None:
    """BundleError naming `file` and the key when a key the loader reads is missing or of the wrong type."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{file}: the manifest must be a JSON object, got a JSON {type(manifest).__name__}")
    for section, required in (("", manifest), ("meta.", manifest.get("meta"))):
        if not isinstance(required, dict):
            continue  # reported below as the wrong type of 'meta'
        for key, kind in (_REQUIRED if not section else _REQUIRED_META).items():
            if key not in required:
                raise BundleError(f"{file}: key '{section}{key}' is missing; it was not written by a compatible "
                                  f"tailsynth")
            value = required[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise BundleError(f"{file}: key '{section}{key}' must be a JSON {_JSON[kind]}, got {value!r:.60}")
    for index, column in enumerate(manifest["schema"]):
        if not isinstance(column, dict) or not isinstance(column.get("name"), str) or \
                not isinstance(column.get("role"), str):
            raise BundleError(f"{file}: key 'schema[{index}]' must be an object with string 'name' and 'role'")
    if manifest["kind"] != manifest["model"].get("kind", "ctgan"):
        raise BundleError(f"{file}: key 'kind' is {manifest['kind']!r} but 'model.kind' is "
                          f"{manifest['model'].get('kind')!r}")


_JSON = {str: "string", dict: "object", list: "array", int: "integer"}


def _manifest_part(file: Path, key: str, build: Any) -> Any:
    """`build()`, with any error from a malformed (tampered) part of the manifest as a BundleError."""
    try:
        return build()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, TailsynthError) as exc:
        raise BundleError(f"{file}: key {key!r} is malformed ({type(exc).__name__}: {exc})") from None


def check_weight_shapes(file: Path, weights_file: Path, build: Any, weights: dict[str, torch.Tensor]) -> None:
    """BundleError when the network the manifest describes has other parameter names or shapes than the
    saved weights. The network is built on the meta device: shapes only, no memory."""
    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in _manifest_part(file, "model", build).state_dict().items()}
    if not isinstance(weights, dict) or not all(isinstance(t, torch.Tensor) for t in weights.values()):
        raise BundleError(f"{weights_file}: expected a mapping of parameter names to tensors")
    saved = {name: tuple(t.shape) for name, t in weights.items()}
    missing, unexpected = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    wrong = [name for name in expected if name in saved and expected[name] != saved[name]]
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
            ", ".join(f"{name}: manifest {expected[name]} vs weights {saved[name]}" for name in wrong[:3])) if part)
        raise BundleError(f"{file}: key 'model' describes a network that does not match {weights_file.name} "
                          f"({detail})")


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
