"""Conditional TVAE as a thin LightningModule (automatic optimisation).

The encoder sees [x, cond] and the decoder [z, cond], so the latent code need not carry the condition and
sampling with a requested condition is just decoding prior noise with that condition attached. Loss, as
in TVAE: loss_factor * reconstruction + KL, with learned per-column sigmas for the continuous outputs,
clamped to [0.01, 1] after every optimiser step.

A batch is (real [b, width], cond [b, cond_width], codes long [b, k], mask bool [b, k]); codes and mask
are unused here (the condition enters through `cond`, whose last entries are the continuous conditions).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from tailsynth.models.activation import SpanPlan, activate
from tailsynth.models.condition import ConditionSpec, layout_width
from tailsynth.models.config import TVAEConfig, hyperparameters
from tailsynth.models.layout import ColumnLayout, all_spans
from tailsynth.models.loss_log import LossLog
from tailsynth.models.losses import vae_loss
from tailsynth.models.networks import VAEDecoder, VAEEncoder
from tailsynth.models.sampling import draw_normal, evaluation_mode

Batch = tuple[Tensor, Tensor, Tensor, Tensor]
SIGMA_RANGE = (0.01, 1.0)
LOSSES = ("loss/reconstruction", "loss/kl", "loss/total")


class TVAEModule(L.LightningModule):
    """Conditional TVAE (Xu et al. 2019) with the condition vector fed to encoder and decoder."""

    def __init__(
        self,
        layout: tuple[ColumnLayout, ...],
        spec: ConditionSpec,
        config: TVAEConfig,
        batch_size: int | None = None,
    ) -> None:
        """`batch_size` is accepted for a constructor shape identical to `CTGANModule`'s; TVAE has no
        constraint on it."""
        super().__init__()
        self.width = layout_width(layout)
        spec.check_layout(layout)
        self.spec = spec
        self.config = config
        self.cond_width = spec.width
        self.save_hyperparameters(hyperparameters(
            "tvae", config, width=self.width, cond_width=spec.width, condition_columns=list(spec.columns),
            continuous_conditions=list(spec.continuous_names),
        ))
        self.plan = SpanPlan(all_spans(layout))
        self.encoder = VAEEncoder(self.width + spec.width, config.compress_dims, config.embedding_dim)
        self.decoder = VAEDecoder(config.embedding_dim + spec.width, config.decompress_dims, self.width)
        self.loss_log = LossLog(LOSSES)

    def training_step(self, batch: Batch, batch_idx: int) -> dict[str, Any]:
        """{"loss": the total to minimise, "losses": the step's detached losses by name (for the NaN guard)}."""
        real, cond, _, _ = batch
        mu, logvar = self.encoder(torch.cat([real, cond], dim=1))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation
        raw, sigmas = self.decoder(torch.cat([z, cond], dim=1))
        reconstruction, kl = vae_loss(raw, real, sigmas, self.plan, mu, logvar, self.config.loss_factor)
        total = reconstruction + kl
        losses = self.loss_log.step(self, dict(zip(LOSSES, (reconstruction, kl, total))), rows=real.shape[0])
        return {"loss": total, "losses": losses}

    def on_train_epoch_start(self) -> None:
        """The learning rate, once per epoch (per step, `self.log` of a float would copy host to device)."""
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True)

    def on_train_epoch_end(self) -> None:
        """The epoch's mean losses, `loss/..._epoch` (the step values went to the logger as `loss/..._step`)."""
        self.loss_log.log_epoch(self)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Keep the learned sigmas in TVAE's range after each step (in place, on device: no sync)."""
        with torch.no_grad():
            self.decoder.sigma.clamp_(*SIGMA_RANGE)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam as in TVAE; torch's fused kernel (one per parameter instead of a dozen small ops) where the
        parameters' device has one. Same update rule; it rounds differently in the last bits."""
        fused = self.device.type in ("cpu", "cuda")
        return torch.optim.Adam(self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay,
                                fused=fused or None)

    @torch.no_grad()
    def generate(self, cond: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Encoded rows [b, width] for conditions cond [b, cond_width]: tanh scalars and exact one-hots.

        z ~ N(0, 1) is decoded with the condition attached; softmax spans become one-hot draws from the
        decoder's categorical (Gumbel-max); continuous outputs get the learned sigma noise as TVAE adds at
        sampling time, clipped to [-1, 1]. All noise comes from `generator` (any device). Runs in eval()
        mode and restores the previous modes.
        """
        self.spec.check_vector(cond)
        cond = cond.to(self.device)
        batch = cond.shape[0]
        with evaluation_mode(self):
            z = draw_normal((batch, self.config.embedding_dim), generator, self.device)
            raw, sigmas = self.decoder(torch.cat([z, cond], dim=1))
            rows = activate(raw, self.plan, tau=1.0, hard=True, generator=generator)
            noise = draw_normal((batch, self.width), generator, self.device) * sigmas
            noisy = (rows + noise).clamp(-1.0, 1.0)
            return torch.where(self.plan.is_tanh, noisy, rows)
