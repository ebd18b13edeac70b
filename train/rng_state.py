"""Random-number state in checkpoints, so a resumed run continues exactly as an uninterrupted one would.

Lightning checkpoints hold weights, optimiser and loop state, but not the global RNGs that draw the
generator's noise, Gumbel samples and dropout masks. This callback adds them (torch CPU and CUDA, numpy,
Python) to each checkpoint and restores them on resume. The DataModule carries its own sampler generator.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


class RngStateCheckpoint(L.Callback):
    """States are stored as tensors and plain numbers: checkpoints load with `weights_only=True`.

    Only rank 0 writes checkpoints, so under DDP restoring would hand every rank rank 0's stream; there each
    rank keeps the stream it was seeded with (seed + rank) instead, and only single-process resume is exact.
    """

    def __init__(self) -> None:
        self._world_size = 1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._world_size = trainer.world_size

    def state_dict(self) -> dict[str, Any]:
        _, keys, position, has_gauss, gauss = np.random.get_state()
        version, python_state, python_gauss = random.getstate()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": [torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)],
            "python": [int(version), torch.tensor(python_state, dtype=torch.int64), python_gauss],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self._world_size > 1:
            return
        torch.set_rng_state(state_dict["torch"])
        keys, position, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        version, python_state, python_gauss = state_dict["python"]
        random.setstate((version, tuple(int(v) for v in python_state.tolist()), python_gauss))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
