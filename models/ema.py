"""Exponential moving average of a network's weights (Polyak averaging), for sampling from a GAN.

A GAN's generator oscillates from step to step around the equilibrium it is chasing; the average of its
recent weights is a better generator than any single iterate (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"). The average is a second copy of the network whose floating
point parameters and buffers (BatchNorm running statistics included) follow the trained one:
`average = decay * average + (1 - decay) * current`, once per generator step.

`torch.optim.swa_utils.AveragedModel` does the same but tests a tensor counter in Python on every update
(`if self.n_averaged == 0`), a host synchronisation in the training step on CUDA; here the step count is
a Python int kept by the caller, so an update is one fused `lerp_` per tensor list and never waits for
the device.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def averaged_copy(network: nn.Module) -> nn.Module:
    """A frozen copy of `network` to hold its average: no gradients, never in an optimiser."""
    average = copy.deepcopy(network)
    average.requires_grad_(False)
    return average


def ema_decay(decay: float, updates: int) -> float:
    """The decay for update number `updates` (0-based): `min(decay, (1 + t) / (10 + t))`.

    The warm-up keeps the first updates from being dominated by the random initial weights (the rule of
    TensorFlow's ExponentialMovingAverage with `num_updates`): the average starts close to the current
    weights and its horizon grows to 1 / (1 - decay) steps.
    """
    return min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def update_average(average: nn.Module, network: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * network, over floating point parameters and buffers.

    Integer buffers (BatchNorm's `num_batches_tracked`) are copied. Both modules must have the same
    architecture; a pure tensor update, no host synchronisation.
    """
    targets = [*average.parameters(), *average.buffers()]
    sources = [*network.parameters(), *network.buffers()]
    floats = [(t, s) for t, s in zip(targets, sources) if t.is_floating_point()]
    if floats:
        torch._foreach_lerp_([t for t, _ in floats], [s.detach() for _, s in floats], 1.0 - decay)
    for target, source in zip(targets, sources):
        if not target.is_floating_point():
            target.copy_(source)
