"""Training data for the generators: the encoded table, resident on the training device, sampled by condition.

CTGAN's training-by-sampling draws a condition first and then a real row that matches it. Here both happen
on the device from index tensors (`models.condition.TrainingSampler`), so a training step never waits for
the host: the "dataloader" is an iterable that yields ready-made device batches. Under DDP every rank holds
its own copy of the table and draws from its own generator (seed + rank), so ranks see different batches and
an epoch is `rows / (batch_size * world_size)` steps, as with a distributed sampler.
"""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import torch

from tailsynth.models.condition import ConditionSpec, TrainingSampler
from tailsynth.models.config import ConditionConfig

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

DEVICE_MEMORY_SHARE = 0.5
"""Keep the table on an accelerator only while it takes at most this share of the device's memory."""


class EncodedTableDataModule(L.LightningDataModule):
    """Holds the encoded rows [n, width], their condition codes [n, k] and (with continuous conditions) their
    raw continuous condition values [n, c]; yields (real, cond, codes, mask)."""

    def __init__(
        self,
        encoded: torch.Tensor,
        codes: torch.Tensor,
        spec: ConditionSpec,
        condition: ConditionConfig,
        *,
        batch_size: int,
        seed: int,
        values: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.encoded = encoded
        self.codes = codes
        self.values = values
        self.spec = spec
        self.condition = condition
        self.batch_size = batch_size
        self.seed = seed
        self.generator: torch.Generator | None = None
        self.sampler: TrainingSampler | None = None
        self._pending_state: dict | None = None

    def setup(self, stage: str) -> None:
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if _fits_on(device, self.encoded):
            self.encoded = self.encoded.to(device, non_blocking=True)
            self.codes = self.codes.to(device)
            self.values = self.values.to(device) if self.values is not None else None
        else:  # too big for the accelerator: rows stay on the host and each batch is copied over
            device = torch.device("cpu")
            self.encoded, self.codes = self.encoded.cpu(), self.codes.cpu()
            self.values = self.values.cpu() if self.values is not None else None
        self.generator = torch.Generator(device=device).manual_seed(self.seed + 1009 * self._rank())
        if self._pending_state is not None:
            self._restore(self._pending_state)
            self._pending_state = None
        self.sampler = TrainingSampler(
            self.codes, self.spec, self.condition.sampling, self.condition.extra_keep_prob, self.values
        )

    def steps_per_epoch(self) -> int:
        world = self.trainer.world_size if self.trainer is not None else 1
        return max(1, self.encoded.shape[0] // (self.batch_size * world))

    def train_dataloader(self) -> "SampledBatches":
        if self.sampler is None or self.generator is None:
            raise RuntimeError("setup() must run before train_dataloader()")
        return SampledBatches(self, self.steps_per_epoch())

    def draw(self) -> Batch:
        """One training batch: rows drawn by the condition rule, with their condition vectors."""
        assert self.sampler is not None and self.generator is not None
        rows, cond, codes, mask = self.sampler.draw(self.batch_size, self.generator)
        real = self.encoded[rows.to(self.encoded.device)]
        return real, cond, codes, mask

    # The sampler's random state travels in Lightning checkpoints, so a resumed single-process run draws
    # exactly the batches an uninterrupted one would. Only rank 0 writes checkpoints, so under DDP each
    # rank instead reseeds from (seed, rank, epoch): distinct streams per rank, not rank 0's copied.
    def state_dict(self) -> dict:
        state = self.generator.get_state() if self.generator is not None else None
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return {} if state is None else {"generator_state": state, "epoch": epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        if "generator_state" not in state_dict:
            return
        if self.generator is not None:
            self._restore(state_dict)
        else:
            self._pending_state = state_dict

    def _restore(self, state: dict) -> None:
        assert self.generator is not None
        world = self.trainer.world_size if self.trainer is not None else 1
        saved = state["generator_state"]
        if world == 1 and saved.numel() == self.generator.get_state().numel():
            self.generator.set_state(saved)
        else:  # several ranks, or a CUDA generator's state resumed on the host (or back)
            self.generator.manual_seed(self.seed + 1009 * self._rank() + 104_729 * (int(state.get("epoch", 0)) + 1))

    def _rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0


class SampledBatches:
    """A sized iterable of `steps` freshly drawn batches (what Lightning iterates as an epoch)."""

    def __init__(self, source: EncodedTableDataModule, steps: int) -> None:
        self.source = source
        self.steps = steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Batch]:
        for _ in range(self.steps):
            yield self.source.draw()


def _fits_on(device: torch.device, tensor: torch.Tensor) -> bool:
    if device.type != "cuda" or tensor.device == device:  # already there: its memory is spent either way
        return True
    free, total = torch.cuda.mem_get_info(device)
    return tensor.element_size() * tensor.nelement() <= DEVICE_MEMORY_SHARE * min(free, total)
