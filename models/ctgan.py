"""Conditional CTGAN as a thin LightningModule: WGAN-GP with a PacGAN critic, conditioned on the condition vector.

Wiring only: the networks are in `networks.py`, the losses in `losses.py`, the output activation in
`activation.py`. Manual optimisation (two optimisers). Because Lightning's `global_step` counts both
optimisers' steps (Lightning #17958), bound GAN runs by epochs, not steps.

A batch is (real [b, width], cond [b, cond_width], codes long [b, k], mask bool [b, k]): real rows drawn by
`TrainingSampler` for the conditions they carry. The critic judges rows concatenated with their condition;
fake rows are G(z, cond) activated with Gumbel-softmax, so real and fake packs carry the same conditions.
cond ends with the continuous conditions (an item's standardised level), if any: the generator and the
critic see them like the one-hots, so the critic can tell a row whose values do not fit its item's level;
the condition loss covers the categorical blocks only.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from tailsynth.models.activation import SpanPlan, activate
from tailsynth.models.condition import ConditionSpec, layout_width
from tailsynth.models.config import CTGANConfig, hyperparameters
from tailsynth.models.ema import averaged_copy, ema_decay, update_average
from tailsynth.models.errors import ConfigError
from tailsynth.models.layout import ColumnLayout, all_spans
from tailsynth.models.losses import condition_loss, gradient_penalty
from tailsynth.models.networks import Critic, Generator
from tailsynth.models.sampling import draw_normal, evaluation_mode

Batch = tuple[Tensor, Tensor, Tensor, Tensor]


class CTGANModule(L.LightningModule):
    """Conditional CTGAN (Xu et al. 2019): generator, PacGAN critic, gradient penalty and condition loss."""

    def __init__(
        self,
        layout: tuple[ColumnLayout, ...],
        spec: ConditionSpec,
        config: CTGANConfig,
        batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.width = layout_width(layout)
        spec.check_layout(layout)
        if config.pac < 1 or config.critic_steps < 1:
            raise ConfigError(
                "model.ctgan: pac and critic_steps must be >= 1, "
                f"got pac={config.pac}, critic_steps={config.critic_steps}"
            )
        if batch_size is not None:
            check_batch_size(batch_size, config.pac)
        self.spec = spec
        self.config = config
        self.cond_width = spec.width
        self.save_hyperparameters(hyperparameters(
            "ctgan", config, width=self.width, cond_width=spec.width, condition_columns=list(spec.columns),
            continuous_conditions=list(spec.continuous_names),
        ))
        self.plan = SpanPlan(all_spans(layout))
        self.generator = Generator(config.embedding_dim, spec.width, config.generator_dims, self.width)
        self.critic = Critic(self.width + spec.width, config.critic_dims, config.pac)
        # The averaged generator (when enabled) is what `generate` samples from; it is in the state_dict,
        # so bundles and checkpoints carry it. `_ema_updates` is a Python int: no device sync to read it.
        self.generator_ema = averaged_copy(self.generator) if config.ema_decay > 0 else None
        self._ema_updates = 0

    def fake_rows(
        self,
        cond: Tensor,
        hard: bool = False,
        generator: torch.Generator | None = None,
        averaged: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """(activated rows [b, width], raw logits [b, width]) generated for conditions cond [b, cond_width],
        by the trained generator or, with `averaged` and averaging enabled, by its moving average."""
        noise = draw_normal((cond.shape[0], self.config.embedding_dim), generator, cond.device).to(cond.dtype)
        network = self.generator_ema if averaged and self.generator_ema is not None else self.generator
        raw = network(noise, cond)
        return activate(raw, self.plan, tau=self.config.gumbel_tau, hard=hard, generator=generator), raw

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        real, cond, codes, mask = batch
        check_batch_size(real.shape[0], self.config.pac)
        critic_loss, penalty = self._critic_step(real, cond)
        generator_loss, cond_loss = self._generator_step(cond, codes, mask)
        size = real.shape[0]
        self.log_dict(
            {
                "loss/critic": critic_loss,
                "loss/gradient_penalty": penalty,
                "loss/generator": generator_loss,
                "loss/condition": cond_loss,
            },
            on_step=True,
            on_epoch=True,
            batch_size=size,
        )

    def on_train_epoch_start(self) -> None:
        """Learning rates, once per epoch: `self.log` turns a Python float into a device tensor, a host-to-device
        copy that would synchronise every step on CUDA (and the rates are constant without a scheduler)."""
        opt_generator, opt_critic = self.optimizers()
        self.log_dict(
            {"lr/generator": opt_generator.param_groups[0]["lr"], "lr/critic": opt_critic.param_groups[0]["lr"]},
            on_step=False,
            on_epoch=True,
        )

    def _critic_step(self, real: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        """`critic_steps` updates of the critic on this batch, each with fresh noise; returns the last
        (Wasserstein loss mean(critic(fake)) - mean(critic(real)), gradient penalty), detached."""
        _, optimizer = self.optimizers()
        self.toggle_optimizer(optimizer)
        real_in = torch.cat([real, cond], dim=1)
        for _ in range(self.config.critic_steps):  # a config int, not a tensor value
            with torch.no_grad():  # the critic step needs no graph through the generator
                fake, _ = self.fake_rows(cond)
            fake_in = torch.cat([fake, cond], dim=1)
            loss = self.critic(fake_in).mean() - self.critic(real_in).mean()
            penalty = gradient_penalty(self.critic, real_in, fake_in, self.config.pac, self.config.gp_weight)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss + penalty)
            optimizer.step()
        self.untoggle_optimizer(optimizer)
        return loss.detach(), penalty.detach()

    def _generator_step(self, cond: Tensor, codes: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """One generator update: -mean(critic(fake)) + cond_loss_weight * condition loss (both returned)."""
        optimizer, _ = self.optimizers()
        self.toggle_optimizer(optimizer)
        fake, raw = self.fake_rows(cond)
        adversarial = -self.critic(torch.cat([fake, cond], dim=1)).mean()
        cond_loss = condition_loss(raw, self.spec, codes, mask)
        loss = adversarial + self.config.cond_loss_weight * cond_loss
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        self.untoggle_optimizer(optimizer)
        if self.generator_ema is not None:
            update_average(self.generator_ema, self.generator, ema_decay(self.config.ema_decay, self._ema_updates))
            self._ema_updates += 1
        return loss.detach(), cond_loss.detach()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ema_updates"] = self._ema_updates

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._ema_updates = int(checkpoint.get("ema_updates", 0))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """[generator Adam, critic Adam], betas (0.5, 0.9) as in CTGAN."""
        config = self.config
        return [
            torch.optim.Adam(
                self.generator.parameters(),
                lr=config.generator_lr,
                betas=(0.5, 0.9),
                weight_decay=config.generator_decay,
            ),
            torch.optim.Adam(
                self.critic.parameters(), lr=config.critic_lr, betas=(0.5, 0.9), weight_decay=config.critic_decay
            ),
        ]

    @torch.no_grad()
    def generate(self, cond: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Encoded rows [b, width] for conditions cond [b, cond_width]: tanh scalars and exact one-hots.

        Uses the moving average of the generator when `ema_decay` > 0. Runs in eval() mode (BatchNorm
        running statistics) and restores the previous modes. Noise comes from `generator` (any device), so a
        seeded generator gives the same rows.
        """
        self.spec.check_vector(cond)
        with evaluation_mode(self):
            rows, _ = self.fake_rows(cond.to(self.device), hard=True, generator=generator, averaged=True)
        return rows


def check_batch_size(batch_size: int, pac: int) -> None:
    """PacGAN packs consecutive rows, so the batch size must be a multiple of pac (a Python int check)."""
    if batch_size % pac:
        raise ConfigError(
            f"trainer.batch_size={batch_size} is not a multiple of model.ctgan.pac={pac}; "
            "the PacGAN critic judges rows in packs of pac"
        )
