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

from tailsynth.models.atomic import atomic_path
from tailsynth.models.errors import ConfigError


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
    return _load(checkpoint_path).get(ENCODER_KEY)


def check_checkpoint_matches(checkpoint_path: Path, module: torch.nn.Module) -> None:
    """ConfigError naming the differing parameters when a checkpoint's weights do not fit `module` (the
    config's model dimensions changed since the run started), instead of torch's size-mismatch traceback."""
    saved = _load(checkpoint_path).get("state_dict")
    if not isinstance(saved, dict):
        raise ConfigError(f"cannot resume: {checkpoint_path} holds no model weights ('state_dict')")
    expected = {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}
    found = {name: tuple(tensor.shape) for name, tensor in saved.items() if isinstance(tensor, torch.Tensor)}
    differ = [f"{name}: checkpoint {found.get(name, 'absent')} vs config {shape}"
              for name, shape in expected.items() if found.get(name) != shape]
    differ += [f"{name}: in the checkpoint only" for name in found if name not in expected]
    if differ:
        raise ConfigError(f"cannot resume: {checkpoint_path} was trained with other model dimensions than the "
                          f"config gives ({'; '.join(differ[:3])}{'; ...' if len(differ) > 3 else ''}); resume with "
                          f"the run's own config.yaml, or start a new run")


def _load(checkpoint_path: Path) -> dict[str, Any]:
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise ConfigError(f"cannot resume: {checkpoint_path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"cannot resume: {checkpoint_path} is not a Lightning checkpoint (not a mapping)")
    return checkpoint
