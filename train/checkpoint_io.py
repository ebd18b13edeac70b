"""Checkpoints written atomically: a run killed while saving keeps its previous complete checkpoint.

Lightning's `TorchCheckpointIO` writes the file in place, so a kill mid-write leaves a truncated
`last.ckpt` that `--resume` would then fail on. Here the checkpoint goes to a temporary file beside the
target and is renamed over it only once complete (`evaluate.atomic`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from evaluate.atomic import atomic_path
from models.errors import ConfigError


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


ENCODER_KEY = "tailsynth_encoder"


class EncoderInCheckpoint(L.Callback):
    """Stores the fitted encoder's (JSON-like) state in every checkpoint, so `--resume` reuses the exact
    encoding the weights were trained on instead of refitting it (a refit on another device, or after a data
    change, could change the number of modes and silently shift what each output unit means)."""

    def __init__(self, encoder_state: dict[str, Any]) -> None:
        self.encoder_state = encoder_state

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[ENCODER_KEY] = self.encoder_state


def encoder_state_from(checkpoint_path: Path) -> dict[str, Any] | None:
    """The encoder state saved in a checkpoint, or None for a checkpoint written before it was stored."""
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise ConfigError(f"cannot resume: {checkpoint_path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    return checkpoint.get(ENCODER_KEY)
