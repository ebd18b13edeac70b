"""Sampling helpers shared by both generators: seeded noise, eval mode, and batched conditional generation.

Noise is drawn on the *generator's* device and then moved to the model's device (as diffusers does), so a
CPU `torch.Generator` gives the same rows whether the model runs on CPU or GPU, and a CUDA generator avoids
the copy. `generate_rows` is what `gen.sample` calls: it conditions the generator directly (never by
rejection), so exactly n rows come back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
from torch import Tensor, nn

from tailsynth.models.condition import ConditionSpec


class ConditionalGenerator(Protocol):
    """What `generate_rows` needs of a model: its output width, its device and a conditional `generate`."""

    width: int
    device: torch.device

    def generate(self, cond: Tensor, generator: torch.Generator | None = None) -> Tensor: ...


def draw_uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """U[0, 1) float32 of `shape` on `device`, drawn with `generator` on the generator's own device."""
    source = device if generator is None else generator.device
    return torch.rand(shape, generator=generator, device=source).to(device)


def draw_normal(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """N(0, 1) float32 of `shape` on `device`, drawn with `generator` on the generator's own device."""
    source = device if generator is None else generator.device
    return torch.randn(shape, generator=generator, device=source).to(device)


@contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[None]:
    """Run the block with `module` in eval() mode (BatchNorm running stats, no dropout), then restore the
    train/eval flag of every submodule as it was (a blanket `train(True)` would unfreeze frozen parts)."""
    modes = [(child, child.training) for child in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for child, training in modes:
            child.training = training


@torch.no_grad()
def generate_rows(
    module: ConditionalGenerator,
    spec: ConditionSpec,
    codes: Tensor,
    mask: Tensor,
    *,
    batch_size: int = 10_000,
    generator: torch.Generator | None = None,
    continuous: Tensor | None = None,
) -> Tensor:
    """Activated encoded rows [n, module.width] for conditions codes long [n, k] and mask bool [n, k].

    Row i is generated conditioned on codes[i] with the columns where mask[i] is False left out, and on
    continuous[i] float [n, c]: the RAW values of the spec's continuous conditions (an item's catalogue
    price as it is; standardised here by `spec.standardise`), required when the spec has any. Rows are
    produced `batch_size` at a time on the module's device into one pre-allocated output tensor there.
    """
    n = codes.shape[0]
    if codes.ndim != 2 or codes.shape[1] != len(spec.columns) or mask.shape != codes.shape:
        raise ValueError(
            f"expected codes and mask of shape [n, {len(spec.columns)}] for condition columns "
            f"{list(spec.columns)}, got {tuple(codes.shape)} and {tuple(mask.shape)}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = module.device
    codes, mask = codes.to(device), mask.to(device, dtype=torch.bool)
    _check_code_range(codes, spec)
    values = _standardised(spec, continuous, n, device)
    out = torch.empty((n, module.width), device=device)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        cond = spec.vector(codes[start:stop], mask[start:stop], None if values is None else values[start:stop])
        out[start:stop] = module.generate(cond, generator=generator)
    return out


def _standardised(spec: ConditionSpec, continuous: Tensor | None, n: int, device: torch.device) -> Tensor | None:
    """The raw continuous condition values [n, c] standardised on `device` (None without continuous
    conditions); ValueError naming the conditions when they are missing, mis-shaped or not finite."""
    if not spec.continuous:
        if continuous is not None and continuous.numel():
            raise ValueError(f"continuous condition values given, but the model has none (shape {tuple(continuous.shape)})")
        return None
    names = list(spec.continuous_names)
    if continuous is None or continuous.shape != (n, len(names)):
        got = None if continuous is None else tuple(continuous.shape)
        raise ValueError(f"continuous conditions {names}: expected raw values of shape [{n}, {len(names)}] (an "
                         f"item's catalogue value per row), got {got}")
    if not bool(torch.isfinite(continuous).all()):
        raise ValueError(f"continuous conditions {names}: every value must be a finite number")
    return spec.standardise(continuous.to(device))


def _check_code_range(codes: Tensor, spec: ConditionSpec) -> None:
    """One host sync per call: an out-of-range code would otherwise be a device-side assert on CUDA."""
    if codes.numel() == 0:
        return
    sizes = torch.tensor(spec.sizes, device=codes.device)
    bad = ((codes < 0) | (codes >= sizes)).any(dim=0)
    if bool(bad.any()):
        j = int(bad.nonzero()[0])
        raise ValueError(f"condition column {spec.columns[j]!r}: codes must lie in [0, {spec.sizes[j]})")
