"""The networks, as plain `nn.Module`s: CTGAN's residual generator and PacGAN critic, TVAE's encoder/decoder.

They know nothing of losses, optimisers, layouts or Lightning; the LightningModules in `ctgan.py` and
`tvae.py` wire them. Outputs are raw (pre-activation); `models.activation` turns them into encoded rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Residual(nn.Module):
    """CTGAN's generator block: Linear -> BatchNorm -> ReLU, concatenated with its input ([b, i] -> [b, i + o])."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([torch.relu(self.norm(self.linear(x))), x], dim=1)


class Generator(nn.Module):
    """noise [b, noise_dim] and condition [b, cond_dim] -> raw encoded row [b, out_dim].

    Each residual block appends its output to its input, so later layers (and the output layer) still see
    the condition vector directly — that is what lets the generator honour it.
    """

    def __init__(self, noise_dim: int, cond_dim: int, hidden: Sequence[int], out_dim: int) -> None:
        super().__init__()
        dim = noise_dim + cond_dim
        blocks: list[nn.Module] = []
        for width in hidden:
            blocks.append(Residual(dim, width))
            dim += width
        self.blocks = nn.Sequential(*blocks)
        self.output = nn.Linear(dim, out_dim)

    def forward(self, noise: Tensor, cond: Tensor) -> Tensor:
        return self.output(self.blocks(torch.cat([noise, cond], dim=1)))


class Critic(nn.Module):
    """PacGAN critic: rows [b, in_dim] are packed `pac` at a time into [b / pac, in_dim * pac] -> score [b / pac].

    Judging packs of rows rather than single rows lets the critic see a lack of diversity (mode collapse).
    Consecutive rows form a pack, so b must be a multiple of `pac`.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], pac: int) -> None:
        super().__init__()
        if pac < 1:
            raise ValueError(f"pac must be a positive integer, got {pac}")
        self.in_dim = in_dim
        self.pac = pac
        dim = in_dim * pac
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(dim, width), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
            dim = width
        layers.append(nn.Linear(dim, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, rows: Tensor) -> Tensor:
        batch = rows.shape[0]
        if batch % self.pac:  # a Python check on the shape: no device synchronisation
            raise ValueError(f"critic: batch of {batch} rows is not a multiple of pac={self.pac}")
        return self.layers(rows.reshape(batch // self.pac, self.in_dim * self.pac)).squeeze(1)


def _mlp(in_dim: int, hidden: Sequence[int]) -> tuple[nn.Sequential, int]:
    """Linear -> ReLU blocks; returns the stack and its output width."""
    layers: list[nn.Module] = []
    dim = in_dim
    for width in hidden:
        layers += [nn.Linear(dim, width), nn.ReLU()]
        dim = width
    return nn.Sequential(*layers), dim


class VAEEncoder(nn.Module):
    """TVAE encoder: input [b, in_dim] -> (mu [b, latent], logvar [b, latent]) of the Gaussian posterior."""

    def __init__(self, in_dim: int, hidden: Sequence[int], latent: int) -> None:
        super().__init__()
        self.body, dim = _mlp(in_dim, hidden)
        self.mu = nn.Linear(dim, latent)
        self.logvar = nn.Linear(dim, latent)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.body(x)
        return self.mu(hidden), self.logvar(hidden)


class VAEDecoder(nn.Module):
    """TVAE decoder: latent [b, latent] -> (raw row [b, out_dim], sigmas [out_dim]).

    `sigma` is a learned per-column standard deviation of the tanh (continuous) outputs, as in TVAE; it
    starts at 0.1 and the training module keeps it in [0.01, 1].
    """

    def __init__(self, latent: int, hidden: Sequence[int], out_dim: int) -> None:
        super().__init__()
        body, dim = _mlp(latent, hidden)
        self.body = nn.Sequential(*body, nn.Linear(dim, out_dim))
        self.sigma = nn.Parameter(torch.full((out_dim,), 0.1))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.body(z), self.sigma
