"""`train.fit(config) -> Path`: build records, encode, train a conditional generator, write the run directory.

A run directory holds:
- `bundle/`: what `gen.load` needs — weights, fitted encoder, condition spec, config, seed, versions, and
  reference tables (the real training and holdout records, bucket table, user and item tables) that the
  gate and cold start compare against and draw users from;
- `tb/`: TensorBoard event files (losses, learning rates as `lr/...` from the modules, epoch time, rows/s,
  fidelity while training);
- `checkpoints/`: Lightning checkpoints, saved every epoch (the newest kept) plus `last.ckpt`, from which
  `resume=True` continues;
- `config.yaml`: the resolved config.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pandas as pd
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.exceptions import SIGTERMException

from tailsynth.models.atomic import write_text
from tailsynth.models.encoder import TableEncoder
from tailsynth.models.errors import ConfigError, TrainingInterrupted
from tailsynth.models.quiet import quiet_third_party
from tailsynth.models.registry import build_module
from tailsynth.train.bundle_writer import write_run_bundle
from tailsynth.train.checkpoint_io import AtomicCheckpointIO, EncoderInCheckpoint, check_checkpoint_matches, encoder_state_from
from tailsynth.train.config import RunConfig, to_dict
from tailsynth.train.datamodule import EncodedTableDataModule
from tailsynth.train.finite_loss import FiniteLossGuard
from tailsynth.train.item_levels import condition_spec, model_rows
from tailsynth.train.monitor import FidelityMonitor
from tailsynth.train.progress import epoch_label, progress_bar
from tailsynth.train.records import Records, build_records
from tailsynth.train.rng_state import RngStateCheckpoint
from tailsynth.train.run_dir import claim_run_directory, remove_model_reports
from tailsynth.train.split import check_batch_fits, split_records
from tailsynth.train.split_features import features_from_training
from tailsynth.train.taste_fit import fit_taste
from tailsynth.train.threads import cpu_threads
from tailsynth.train.timing import EpochTimer


def run_directory(config: RunConfig) -> Path:
    return Path(config.out_dir) / config.name


def fit(config: RunConfig, *, resume: bool = False, overwrite: bool = True,
        on_stage: Callable[[str], None] | None = None) -> Path:
    """Train the configured generator and return its run directory (see module docstring).

    The run directory is locked while training (`train.run_dir`); a fresh run replaces an earlier one
    there only with `overwrite` (the CLI asks for `--overwrite`). Torch runs on `trainer.cpu_threads` CPU
    threads meanwhile (`train.threads`; the previous count is restored on return). `on_stage(name)`, when given, is called as
    each stage begins (`STAGES`, in order) -- the scale benchmark measures time and peak memory per stage.
    """
    run_dir = run_directory(config)
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise ConfigError(f"cannot resume: {last} does not exist (train without --resume first)")
    if not _is_rank_zero():  # DDP workers started by the launcher: rank 0 holds the directory
        with cpu_threads(config.trainer.cpu_threads):
            return _fit(config, run_dir, last, resume, on_stage or _no_stage)
    with claim_run_directory(run_dir, resume=resume, overwrite=overwrite), cpu_threads(config.trainer.cpu_threads):
        return _fit(config, run_dir, last, resume, on_stage or _no_stage)


STAGES = ("records", "split", "encoder_fit", "transform", "train", "bundle")
"""What `fit` does, in order; `on_stage` hears each name as that stage begins."""


def _no_stage(name: str) -> None:
    return None


def _fit(config: RunConfig, run_dir: Path, last: Path, resume: bool, on_stage: Callable[[str], None]) -> Path:
    # Distinct noise per DDP rank (DDP broadcasts rank 0's initial weights, so init need not agree).
    L.seed_everything(config.seed + _global_rank(), workers=True, verbose=False)

    records, train_rows, holdout_rows, columns = prepare_tables(config, say=_say, on_stage=on_stage)
    check_batch_fits(len(train_rows), config.trainer.batch_size)
    cold_rows = _cold_rows(records, config)
    records = records.without_rows()  # the split rows are copies: the whole table need not outlive the split

    on_stage("encoder_fit")

    device = _encoder_device(config)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    saved_state = encoder_state_from(last) if resume else None
    learnt = model_rows(train_rows, config.model.condition, records.column("item_id")[0])
    if saved_state is not None:  # resume with the very encoding the checkpointed weights were trained on
        encoder = TableEncoder.from_state(saved_state, device=device)
    else:
        encoder = TableEncoder(config.model.encoder).fit(learnt, columns, device=device, seed=config.seed)
    timings["encoder_fit_s"] = _synced(started, device)
    _say(f"encoder {'restored from ' + str(last) if saved_state is not None else 'fitted'}: {len(columns)} columns, "
         f"{len(train_rows):,} training rows, {timings['encoder_fit_s']:.1f}s")
    on_stage("transform")
    started = time.perf_counter()
    generator = torch.Generator(device=device).manual_seed(config.seed)
    encoded = encoder.transform(learnt, device=device, generator=generator)
    del learnt
    timings["encoder_transform_s"] = _synced(started, device)
    _say(f"encoded {len(train_rows):,} rows in {timings['encoder_transform_s']:.1f}s; training "
         f"{config.model.kind} for {config.trainer.max_epochs} epoch(s) in batches of {config.trainer.batch_size:,}")

    on_stage("train")
    spec, values = condition_spec(encoder.layout, config.model.condition, train_rows, records.column("item_id")[0])
    codes = spec.codes_from_encoded(encoded)
    module = build_module(config.model, encoder.layout, spec, batch_size=config.trainer.batch_size)
    if resume:
        check_checkpoint_matches(last, module)
    datamodule = EncodedTableDataModule(
        encoded, codes, spec, config.model.condition, batch_size=config.trainer.batch_size, seed=config.seed,
        values=values,
    )
    del encoded  # the datamodule owns the table now (and may move it); keep no second device copy alive
    trainer = _trainer(config, run_dir, encoder, spec, codes, train_rows, holdout_rows, columns, values)
    monitor = next((c for c in trainer.callbacks if isinstance(c, FidelityMonitor)), None)
    if _is_rank_zero():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
    started = time.perf_counter()
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with quiet_third_party():
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)
    except SIGTERMException:
        # Lightning ends a SIGTERMed run with SystemExit(0); a stopped run must not look like a finished one.
        raise TrainingInterrupted(_stopped(trainer, run_dir, last, "SIGTERM"), signal_number=signal.SIGTERM) from None
    except SystemExit:
        # Ctrl-C: Lightning catches the KeyboardInterrupt, shuts down and calls sys.exit(1).
        if not trainer.interrupted:
            raise
        raise TrainingInterrupted(_stopped(trainer, run_dir, last, "Ctrl-C"), signal_number=signal.SIGINT) from None
    finally:
        signal.signal(signal.SIGINT, sigint)  # Lightning ignores further Ctrl-C while shutting down
    timings["train_s"] = time.perf_counter() - started
    timings["epochs"] = trainer.current_epoch
    timer = next((c for c in trainer.callbacks if isinstance(c, EpochTimer)), None)
    if timer is not None:  # batches trained: what a time budget that stops mid-epoch leaves to count rows by
        timings["batches"] = timer.batches
    if trainer.is_global_zero:
        on_stage("bundle")
        stale = remove_model_reports(run_dir)  # they describe the model this bundle replaces (a resumed run)
        if stale:
            _say(f"removed the previous model's {', '.join(stale)} from {run_dir}: run tailsynth evaluate report again")
        taste = fit_taste(config, records, train_rows, device) if config.taste.enabled else None
        if taste is not None:
            _say(f"taste space: {taste.summary['users']:,} users x {taste.summary['items']:,} items, "
                 f"{taste.summary['dim']} factors, predictor {taste.summary['predictor']} in {taste.summary['fit_s']:.1f}s")
        write_run_bundle(
            run_dir / "bundle", config=config, module=module, encoder=encoder, spec=spec,
            records=records, train_rows=train_rows, holdout_rows=holdout_rows, columns=columns, timings=timings,
            monitor_history=monitor.history if monitor is not None else [],
            cold_rows=cold_rows, taste=taste,
        )
    return run_dir


def _stopped(trainer: L.Trainer, run_dir: Path, last: Path, how: str) -> str:
    """What a stopped run tells the user: where it stopped (numbered as the progress bar numbers epochs), that
    no bundle was written, and which checkpoint `--resume` continues from."""
    saved = (f"the checkpoint of the last complete epoch is {last}" if last.is_file()
             else f"no epoch was complete, so there is no checkpoint to resume from ({last} does not exist)")
    return (f"training of {run_dir} was stopped by {how} during {epoch_label(trainer).lower()}; no bundle was "
            f"written; {saved}" + (": continue with --resume" if last.is_file() else ""))


def prepare_tables(
    config: RunConfig, *, say: Callable[[str], None] | None = None, on_stage: Callable[[str], None] | None = None
) -> tuple[Records, pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Records, the training and holdout rows, and the generated columns — exactly what `fit` trains on.

    With `data.split.cold_items > 0`, that many tail items are removed from both splits first (their rows
    are saved as the bundle's `cold_holdout` table), so the model never sees them. `say`, when given, is
    told each stage with its row counts and seconds.
    """
    say = say or (lambda message: None)
    on_stage = on_stage or _no_stage
    on_stage("records")
    started = time.perf_counter()
    say(f"building records from {config.data.interactions.path} ...")
    records = build_records(config.data)
    say(f"records built: {len(records.table):,} interactions in {time.perf_counter() - started:.1f}s")
    on_stage("split")
    started = time.perf_counter()
    timestamp = records.column("timestamp")[0]
    table = records.table
    cold = cold_item_ids(records, config)
    if len(cold):
        table = table[~table[records.column("item_id")[0]].isin(cold)]
    train_rows, holdout_rows = split_records(table, config.data.split, seed=config.seed, timestamp=timestamp,
                                             max_train_rows=config.data.max_train_rows)
    # Built-in features derived from purchases (RFM, price band) from the training split only: the rows left
    # after the cold items and the holdout (those max_train_rows leaves out are training-period rows too).
    records, train_rows, holdout_rows = features_from_training(
        records, config.data, table.index.difference(holdout_rows.index), train_rows, holdout_rows)
    del table
    columns = records.model_columns(include_ids=config.model.encoder.include_ids)
    say(f"split: {len(train_rows):,} training and {len(holdout_rows):,} held-out rows"
        f"{f' ({len(cold)} cold-start items held out)' if len(cold) else ''} in {time.perf_counter() - started:.1f}s")
    return records, train_rows, holdout_rows, columns


def cold_item_ids(records: Records, config: RunConfig) -> pd.Index:
    """The seeded choice of tail items held out of training for cold-start evaluation (may be empty).

    Chosen among tail items that are not themselves cold-start items, so each has real interactions to
    compare generated ones with.
    """
    count = config.data.split.cold_items
    if count <= 0:
        return pd.Index([])
    buckets = records.buckets
    tail = config.data.buckets.names[-1]
    eligible = buckets.loc[(buckets["pop_bucket"] == tail) & ~buckets["cold_start"], "item"]
    if len(eligible) < count:
        raise ConfigError(f"data.split.cold_items: asked for {count} held-out items, only {len(eligible)} tail items qualify")
    return pd.Index(eligible.sample(n=count, random_state=config.seed).sort_values())


def _cold_rows(records: Records, config: RunConfig) -> pd.DataFrame | None:
    cold = cold_item_ids(records, config)
    if not len(cold):
        return None
    return records.table[records.table[records.column("item_id")[0]].isin(cold)]


def _trainer(config: RunConfig, run_dir: Path, encoder, spec, codes, train_rows, holdout_rows, columns,
             values=None) -> L.Trainer:
    tc = config.trainer
    callbacks: list[L.Callback] = [
        # First, so a diverged epoch stops before the monitor samples from it (checkpoints come last anyway).
        FiniteLossGuard(every_n_steps=tc.log_every_n_steps),
        # A checkpoint at the end of every epoch; only the newest is kept (plus last.ckpt, which --resume
        # continues from), so long runs do not fill the disk. save_top_k=0 would skip the per-epoch save.
        ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=1, every_n_epochs=1,
                        filename="epoch{epoch:03d}", auto_insert_metric_name=False),
        RngStateCheckpoint(),
        EncoderInCheckpoint(encoder.state()),
        EpochTimer(),
    ]
    if tc.progress_bar:
        callbacks.append(progress_bar(tc.log_every_n_steps))  # the bar on a terminal, lines in a log
    if config.monitor.enabled:
        callbacks.append(FidelityMonitor(config.monitor, encoder, spec, codes, holdout_rows, columns, seed=config.seed,
                                         pool_values=values))
    try:
        with quiet_third_party():
            return _build_trainer(config, run_dir, callbacks)
    except (MisconfigurationException, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"trainer settings (accelerator={tc.accelerator!r}, devices={tc.devices!r}, strategy={tc.strategy!r}, "
            f"num_nodes={tc.num_nodes}, precision={tc.precision!r}) are not usable here: {exc}"
        ) from None


def _build_trainer(config: RunConfig, run_dir: Path, callbacks: list[L.Callback]) -> L.Trainer:
    tc = config.trainer
    return L.Trainer(
        max_epochs=tc.max_epochs,
        max_time=timedelta(seconds=tc.max_time_s) if tc.max_time_s is not None else None,
        accelerator=tc.accelerator,
        devices=tc.devices,
        strategy=_strategy(config),
        num_nodes=tc.num_nodes,
        precision=tc.precision,
        deterministic=tc.deterministic,
        log_every_n_steps=tc.log_every_n_steps,
        limit_train_batches=tc.limit_train_batches,
        enable_progress_bar=tc.progress_bar,
        logger=TensorBoardLogger(save_dir=str(run_dir), name="tb", version="", default_hp_metric=False),
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,
    )


def _strategy(config: RunConfig) -> str | DDPStrategy:
    """The GAN's two optimisers each use only their own network's parameters in a backward pass, so DDP
    must be told that some parameters go unused per step; the VAE uses all of them and keeps plain DDP.

    That holds for explicit "ddp"/"ddp_spawn" and for "auto" on a host where Lightning would pick DDP over
    several GPUs. (Fork-based DDP cannot work here: the encoder has already initialised CUDA.)
    """
    tc = config.trainer
    if config.model.kind != "ctgan":
        return tc.strategy
    if tc.strategy in ("ddp", "ddp_spawn"):
        return DDPStrategy(find_unused_parameters=True, start_method="spawn" if tc.strategy == "ddp_spawn" else "popen")
    several_gpus = torch.cuda.is_available() and torch.cuda.device_count() > 1 and tc.accelerator in ("auto", "gpu", "cuda")
    if tc.strategy == "auto" and several_gpus and str(tc.devices) not in ("1", "[0]"):
        return DDPStrategy(find_unused_parameters=True)
    return tc.strategy


def _encoder_device(config: RunConfig) -> torch.device:
    """Fit the encoder where the model will train: the GPU when one is used, else the CPU."""
    wants_cpu = config.trainer.accelerator == "cpu"
    if not torch.cuda.is_available() or wants_cpu:
        return torch.device("cpu")
    # Each DDP process encodes on its own GPU (Lightning sets the device only later, inside fit).
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def _say(message: str) -> None:
    """A stage of the run, printed at once (rank 0 only), so a long data build is not silence."""
    if _is_rank_zero() and _global_rank() == 0:
        print(message, flush=True)


def _synced(started: float, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def _global_rank() -> int:
    """This process's rank before the Trainer exists, from the launcher's environment (0 when alone)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def _is_rank_zero() -> bool:
    """Before the Trainer exists, the launcher's environment tells which process this is."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0

