"""Checkpoints written atomically: a run killed while saving keeps its previous complete checkpoint.

Lightning's `TorchCheckpointIO` writes the file in place, so a kill mid-write leaves a truncated
`last.ckpt` that `--resume` would then fail on. Here the checkpoint goes to a temporary file beside the
target and is renamed over it only once complete (`evaluate.atomic`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from evaluate.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)
