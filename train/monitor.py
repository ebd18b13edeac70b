"""Fidelity while training: every k epochs, sample a little per bucket and log `evaluate/` measures.

The LightningModules never import `evaluate/`; this callback is where training and judging meet. It runs on
rank 0 only, so a user watching TensorBoard sees the tail's KS and discriminator AUC improve or collapse as
the model trains. It must cost a small fraction of training, so it is cheap on every axis: a small sample
(MonitorConfig.rows per bucket), a check every `every_n_epochs` epochs (and after the last), and a cheap
judge: the column tests plus ONE discriminator network on a held-out split (`evaluate.holdout_auc`, an
estimate of the same AUC as the three-fold `discriminator_auc`, at a third of the cost). Its own time is
logged (`fidelity/monitor_seconds`) and printed against the training time when training ends.
"""

from __future__ import annotations

import time

import lightning as L
import pandas as pd
import torch

from tailsynth.evaluate.measures.fidelity import measure
from tailsynth.evaluate.measures.holdout_auc import holdout_auc
from tailsynth.evaluate.measures.scalars import log_measures
from tailsynth.models.condition import ConditionSpec
from tailsynth.models.encoder import TableEncoder
from tailsynth.models.synthesize import synthesize
from tailsynth.train.config import MonitorConfig

BUCKET = "pop_bucket"


class FidelityMonitor(L.Callback):
    def __init__(
        self,
        config: MonitorConfig,
        encoder: TableEncoder,
        spec: ConditionSpec,
        pool: torch.Tensor,
        holdout: pd.DataFrame,
        columns: dict[str, str],
        *,
        seed: int,
        pool_values: torch.Tensor | None = None,
    ) -> None:
        self.config = config
        self.encoder = encoder
        self.spec = spec
        self.pool = pool.cpu()
        self.pool_values = pool_values.cpu() if pool_values is not None else None
        """The training rows' raw continuous condition values [n, c]: drawn with the pool's rows."""
        self.columns = {name: kind for name, kind in columns.items() if name != BUCKET}
        self.seed = seed
        self.history: list[dict] = []
        """Per monitored epoch and bucket: seconds since training began, mean KS, AUC (for benchmarks)."""
        self._started = 0.0
        self._monitor_seconds = 0.0
        self._checks = 0
        self.references = {
            str(bucket): rows.sample(min(len(rows), config.rows), random_state=seed)
            for bucket, rows in holdout.groupby(BUCKET, observed=True)
        }

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if not trainer.is_global_zero or epoch % self.config.every_n_epochs and epoch != trainer.max_epochs:
            return
        writer = getattr(trainer.logger, "experiment", None)
        if writer is None:
            return
        # Training time so far, excluding earlier monitoring: what a benchmark's "time to reach" needs.
        elapsed = time.perf_counter() - self._started - self._monitor_seconds
        began = time.perf_counter()
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed + epoch)
        for bucket, real in self.references.items():
            synth, adherence = synthesize(
                pl_module, self.encoder, self.spec, len(real), {BUCKET: bucket}, generator=generator, pool=self.pool,
                pool_values=self.pool_values,
            )
            measures = measure(real, synth, self.columns, seed=self.seed, auc=False)
            measures["auc"] = holdout_auc(real, synth, self.columns, seed=self.seed, device=pl_module.device)
            log_measures(writer, f"fidelity/{bucket}", measures, step=epoch)
            writer.add_scalar(f"fidelity/{bucket}/condition_adherence", adherence.get(BUCKET, float("nan")), epoch)
            self.history.append({
                "epoch": epoch, "train_seconds": elapsed, "bucket": bucket,
                "mean_ks": measures.get("mean_ks"), "mean_tvd": measures.get("mean_tvd"), "auc": measures.get("auc"),
            })
        seconds = time.perf_counter() - began
        self._monitor_seconds += seconds
        self._checks += 1
        writer.add_scalar("fidelity/monitor_seconds", seconds, epoch)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self._checks:
            print(self.cost_line(time.perf_counter() - self._started), flush=True)

    def cost_line(self, total_seconds: float) -> str:
        """'fidelity monitor: N checks took X s, P% of the T s of training' (T: training without them)."""
        training = max(total_seconds - self._monitor_seconds, 1e-9)
        return (f"fidelity monitor: {self._checks} check(s) of {len(self.references)} bucket(s) x <= {self.config.rows:,} "
                f"rows took {self._monitor_seconds:.1f}s, {100 * self._monitor_seconds / training:.0f}% of the "
                f"{training:.1f}s of training (monitor.every_n_epochs={self.config.every_n_epochs}, "
                f"monitor.rows={self.config.rows})")

    @property
    def monitor_seconds(self) -> float:
        """Seconds spent in checks so far."""
        return self._monitor_seconds
