"""Losses as pure functions: WGAN-GP gradient penalty, the generator's condition loss, the TVAE loss.

None of them synchronises with the host (no `.item()`, no branching on tensor values), so they are safe in
a training step on any device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from tailsynth.models.activation import SpanPlan
from tailsynth.models.condition import ConditionSpec
from tailsynth.models.layout import SpanInfo
from tailsynth.models.sampling import draw_uniform


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    pac: int,
    weight: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP: weight * mean over packs of (||d critic / d pack|| - 1)^2 at random real/fake interpolates.

    real, fake: [b, d] critic inputs (rows with their condition), b a multiple of `pac`. One interpolation
    weight is drawn per pack of `pac` consecutive rows, matching how the PacGAN critic packs them, and the
    gradient norm is taken over the whole packed vector [pac * d]. `create_graph=True` so the penalty
    itself can be backpropagated into the critic's parameters. Returns a scalar.
    """
    batch, dim = real.shape
    packs = batch // pac
    alpha = draw_uniform((packs, 1, 1), generator, real.device).to(real.dtype)
    alpha = alpha.expand(packs, pac, dim).reshape(batch, dim)
    # Detached: the penalty trains the critic only; the generator must not receive its gradient.
    interpolates = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates)
    (gradients,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    norms = gradients.reshape(packs, pac * dim).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()


def condition_loss(raw: Tensor, spec: ConditionSpec, codes: Tensor, mask: Tensor) -> Tensor:
    """Cross-entropy of the generator's raw logits on each shown condition column against its target code.

    raw: [b, width of X] pre-activation generator output; codes long [b, k]; mask bool [b, k]. Averaged
    over shown (row, column) entries; masked columns contribute nothing. This is what makes the generated
    row agree with the condition it was asked for. Returns a scalar.
    """
    per_column = [
        F.cross_entropy(raw[:, start : start + size].float(), codes[:, j], reduction="none")
        for j, (start, size) in enumerate(zip(spec.starts, spec.sizes))
    ]  # k is a handful of columns, so a loop over them is a handful of kernels
    losses = torch.stack(per_column, dim=1)
    shown = mask.to(losses.dtype)
    return (losses * shown).sum() / shown.sum().clamp_min(1.0)


def vae_loss(
    raw: Tensor,
    x: Tensor,
    sigmas: Tensor,
    spans: Sequence[SpanInfo] | SpanPlan,
    mu: Tensor,
    logvar: Tensor,
    loss_factor: float,
) -> tuple[Tensor, Tensor]:
    """TVAE's loss terms, each a scalar averaged over the batch: (loss_factor * reconstruction, KL).

    raw: decoder output [b, width]; x: the encoded real rows [b, width]; sigmas: learned std [width] (only
    tanh positions are used); mu, logvar: posterior [b, latent]. Reconstruction = Gaussian negative
    log-likelihood of tanh(raw) for tanh spans, (x - tanh(raw))^2 / (2 sigma^2) + log sigma, plus the
    cross-entropy of each softmax span against its one-hot in x. KL is that of N(mu, exp(logvar)) from
    N(0, 1). The training loss is their sum.
    """
    plan = spans if isinstance(spans, SpanPlan) else SpanPlan(spans).to(raw.device)
    batch = raw.shape[0]
    # One column gather each into the grouped order [tanh | width d1 spans | width d2 spans ...]: every
    # piece below is then a contiguous slice (a view, whose backward is free) instead of a gather per group.
    grouped = raw.float().index_select(1, plan.order)
    target = x.index_select(1, plan.order)
    tanh_count = plan.tanh_index.numel()
    sigma = sigmas[plan.tanh_index]
    error = target[:, :tanh_count] - torch.tanh(grouped[:, :tanh_count])
    recon = (error**2 / (2 * sigma**2)).sum() + batch * torch.log(sigma).sum()
    offset = tanh_count
    for dim in plan.group_dims:  # one iteration per distinct span width
        count = plan.group(dim).numel()
        logits = grouped[:, offset : offset + count].reshape(-1, dim)
        targets = target[:, offset : offset + count].reshape(-1, dim).argmax(dim=1)
        recon = recon + F.cross_entropy(logits, targets, reduction="sum")
        offset += count
    kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())
    return recon * loss_factor / batch, kl / batch
