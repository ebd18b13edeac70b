"""The generator registry: an explicit dict from config `kind` to LightningModule class."""

from __future__ import annotations

import lightning as L

from tailsynth.models.condition import ConditionSpec
from tailsynth.models.config import ModelConfig
from tailsynth.models.ctgan import CTGANModule
from tailsynth.models.layout import ColumnLayout
from tailsynth.models.tvae import TVAEModule

MODELS: dict[str, type[L.LightningModule]] = {"ctgan": CTGANModule, "tvae": TVAEModule}


def build_module(
    config: ModelConfig, layout: tuple[ColumnLayout, ...], spec: ConditionSpec, batch_size: int | None = None
) -> L.LightningModule:
    """A fresh module of the configured kind; `batch_size` (when training) is checked against pac up front."""
    settings = {"ctgan": config.ctgan, "tvae": config.tvae}[config.kind]
    return MODELS[config.kind](layout, spec, settings, batch_size=batch_size)
