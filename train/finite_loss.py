"""Stop a diverged run: a non-finite loss ends training with an error instead of a bundle of NaN weights.

A learning rate of 1e6, or a value that overflows the encoder, trains to NaN or infinite losses and then to
NaN weights; Lightning would still finish the epochs and `fit` would write a bundle whose samples are NaN.
`FiniteLossGuard` watches every step's losses — those a LightningModule returns under `"losses"` in its
`training_step` output (ours do: `models.loss_log`), else those it logs on step (`loss/...`) — and raises
`TrainingDiverged`, naming the epoch, the batch and the loss values. Because it checks at the latest at the
end of each epoch, and Lightning runs checkpoint callbacks after every other callback's epoch-end hook, the
checkpoint of a diverged epoch is never written: `checkpoints/last.ckpt` stays the last good epoch's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from tailsynth.models.errors import TailsynthError

LOSS_PREFIX = "loss"
STEP_SUFFIX = "_step"


class TrainingDiverged(TailsynthError):
    """A loss (or, at an epoch's end, a weight) became NaN or infinite; no bundle was written."""


class FiniteLossGuard(L.Callback):
    """Raises `TrainingDiverged` at the first check after a non-finite step loss or weight.

    Why not `.item()` every step: on CUDA that waits for the step to finish and stalls the pipeline. The
    step losses (detached device scalars that Lightning already holds) are only collected per step; they
    are copied to the host once every `every_n_steps` batches (the Trainer's `log_every_n_steps`, where
    the logger copies its scalars anyway) and at the end of every epoch, before any checkpoint is saved.
    The weights are checked at the end of each epoch too: an optimiser step fed NaN gradients can leave
    NaN weights behind a last loss that was still finite.
    """

    def __init__(self, every_n_steps: int) -> None:
        if every_n_steps < 1:
            raise ValueError("every_n_steps must be at least 1")
        self.every_n_steps = every_n_steps
        self._window: list[tuple[int, dict[str, torch.Tensor]]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._window = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        losses = returned_losses(outputs)
        if not losses:  # reading callback_metrics makes Lightning recompute every logged value: only if needed
            # callback_metrics hands back the logged device tensors as they are (only metrics logged with
            # prog_bar=True are turned into Python numbers, which our modules do not use).
            losses = step_losses(trainer.callback_metrics, outputs)
        if losses:
            self._window.append((batch_idx, losses))
        if len(self._window) >= self.every_n_steps:
            self._check(trainer, pl_module, weights=False)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, pl_module, weights=True)

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule, *, weights: bool) -> None:
        window, self._window = self._window, []
        bad = first_non_finite(window)
        bad_weights = [] if bad is not None or not weights else non_finite_parameters(pl_module)
        local = bad is not None or bool(bad_weights)
        # Every rank decides together, so no rank is left waiting in an all-reduce for one that stopped.
        if not trainer.strategy.reduce_boolean_decision(local, all=False):
            return
        raise TrainingDiverged(_message(trainer, bad, bad_weights))


def returned_losses(outputs: Any) -> dict[str, torch.Tensor]:
    """The step's losses a module returned as `{"losses": {name: scalar tensor}}` (empty if none)."""
    losses = outputs.get("losses") if isinstance(outputs, dict) else None
    if not isinstance(losses, dict):
        return {}
    return {name: value for name, value in losses.items() if isinstance(value, torch.Tensor)}


def step_losses(metrics: dict[str, Any], outputs: Any) -> dict[str, torch.Tensor]:
    """This step's logged losses: `loss/...` metrics logged with on_step (Lightning names them `..._step`),
    or the returned loss of an automatically optimised module that logs none."""
    losses = {name[: -len(STEP_SUFFIX)]: value for name, value in metrics.items()
              if name.startswith(LOSS_PREFIX) and name.endswith(STEP_SUFFIX) and isinstance(value, torch.Tensor)}
    if not losses and isinstance(outputs, dict) and isinstance(outputs.get("loss"), torch.Tensor):
        losses = {"loss": outputs["loss"].detach()}
    return losses


def first_non_finite(window: list[tuple[int, dict[str, torch.Tensor]]]) -> tuple[int, dict[str, float]] | None:
    """(batch index, {loss name: value}) of the first step with a non-finite loss, or None.

    One host copy for the whole window: the step losses are stacked on their device first.
    """
    if not window:
        return None
    names = list(window[0][1])
    rows = [torch.stack([losses[name].detach().float().reshape(()) for name in names]) for _, losses in window
            if list(losses) == names]
    if len(rows) != len(window):  # the set of logged losses changed within the window: check step by step
        for batch_idx, losses in window:
            found = first_non_finite([(batch_idx, losses)])
            if found is not None:
                return found
        return None
    values = torch.stack(rows).cpu()  # [steps, losses]: the one synchronisation of this check
    finite = torch.isfinite(values).all(dim=1)
    if bool(finite.all()):
        return None
    step = int((~finite).nonzero()[0, 0])
    return window[step][0], dict(zip(names, values[step].tolist()))


def non_finite_parameters(module: torch.nn.Module, limit: int = 5) -> list[str]:
    """Names of (at most `limit`) parameters holding a NaN or infinite value; one host copy in all."""
    named = [(name, parameter) for name, parameter in module.named_parameters() if parameter.numel()]
    if not named:
        return []
    finite = torch.stack([torch.isfinite(parameter.detach()).all() for _, parameter in named]).cpu()
    return [name for (name, _), ok in zip(named, finite.tolist()) if not ok][:limit]


def _message(trainer: L.Trainer, bad: tuple[int, dict[str, float]] | None, bad_weights: list[str]) -> str:
    epoch = trainer.current_epoch + 1
    if bad is not None:
        batch_idx, values = bad
        shown = ", ".join(f"{name}={value:.6g}" for name, value in values.items())
        what = f"a non-finite loss at epoch {epoch}, batch {batch_idx + 1} of the epoch ({shown})"
    elif bad_weights:
        what = f"non-finite weights at the end of epoch {epoch} ({', '.join(bad_weights)})"
    else:
        what = f"a non-finite loss on another process during epoch {epoch}"
    last = _last_checkpoint(trainer)
    kept = (f"the last good checkpoint, from before epoch {epoch}, is {last}" if last
            else "no checkpoint was kept (training diverged in its first epoch)")
    return (f"training diverged: {what}; training stopped and no bundle was written; {kept}. Lower the "
            f"learning rates (model.ctgan.generator_lr/critic_lr, model.tvae.lr) or check the data for extreme "
            f"values")


def _last_checkpoint(trainer: L.Trainer) -> str:
    """The newest checkpoint on disk: saved by this run, or the one a resumed run started from."""
    callback = trainer.checkpoint_callback
    last = getattr(callback, "last_model_path", "") or ""
    if not last and getattr(callback, "dirpath", None):
        candidate = Path(callback.dirpath) / "last.ckpt"
        last = str(candidate) if candidate.is_file() else ""
    return last
