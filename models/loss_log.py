"""Training losses for TensorBoard without a per-step logging cost.

`LightningModule.log(..., on_step=True, on_epoch=True)` of a few scalars costs milliseconds of Python per
step (Lightning's result collection copies, reduces and re-reads every logged value each step, and the NaN
guard's read of `callback_metrics` makes it do so again): with small networks a large share of the step,
a fixed cost that SDV's plain loop does not pay. `LossLog` keeps the step's losses on the device instead:

- per step, one `stack` and one in-place weighted add into an epoch sum — no host copy, no Lightning call;
- on the steps where Lightning's logger writes anyway (every `trainer.log_every_n_steps` batches), the
  step values are handed to `self.log` as `<name>_step`;
- at the epoch's end, the row-weighted epoch means are logged as `<name>_epoch`: the same TensorBoard tags
  and `trainer.callback_metrics` keys as `on_step=True, on_epoch=True` gave.

The step's losses are also returned to the module, which puts them in its `training_step` output under
`"losses"`, where `train.finite_loss.FiniteLossGuard` reads every step's values (it checks every step).
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
from torch import Tensor


class LossLog:
    """Accumulates named scalar losses of one epoch on their device (see the module docstring)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._sum: Tensor | None = None
        self._rows = 0

    def step(self, module: L.LightningModule, losses: Mapping[str, Tensor], rows: int) -> dict[str, Tensor]:
        """Record this step's losses (scalars, in `self.names` order) for a batch of `rows` rows.

        Returns them detached, {name: scalar tensor}, for the step output.
        """
        if tuple(losses) != self.names:
            raise ValueError(f"LossLog: expected losses {list(self.names)}, got {list(losses)}")
        values = torch.stack([loss.detach().float().reshape(()) for loss in losses.values()])
        weighted = values * rows
        self._sum = weighted if self._sum is None else self._sum.add_(weighted)
        self._rows += rows
        if _logger_writes_now(module):
            module.log_dict({f"{name}_step": value for name, value in zip(self.names, values)},
                            on_step=True, on_epoch=False, batch_size=rows)
        return dict(zip(self.names, values.unbind()))

    def log_epoch(self, module: L.LightningModule) -> None:
        """Log the epoch's row-weighted means as `<name>_epoch` and start the next epoch's sums."""
        if self._sum is None:
            return
        means = self._sum / self._rows
        module.log_dict({f"{name}_epoch": value for name, value in zip(self.names, means)},
                        on_step=False, on_epoch=True)
        self._sum, self._rows = None, 0


def _logger_writes_now(module: L.LightningModule) -> bool:
    """Whether Lightning's logger writes this step's logged values (its `log_every_n_steps` rule).

    Lightning keeps that rule on its private logger connector; without one (a module driven by hand, or a
    Lightning without the attribute) every step counts as a logging step.
    """
    trainer = module._trainer
    if trainer is None:
        return False
    connector = getattr(trainer, "_logger_connector", None)
    return bool(getattr(connector, "should_update_logs", True))
