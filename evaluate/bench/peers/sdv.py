"""The peer: SDV 2.0's CTGAN and TVAE synthesizers, timed stage by stage on the rows our fit trains on.

`run_peer` fits one SDV synthesizer and measures, separately:

- `preprocess_s`: SDV's own data processor (`synthesizer.preprocess`: metadata checks, numerical and
  datetime formatters);
- `encoder_fit_s` / `encoder_transform_s`: ctgan 0.12's `DataTransformer` (rdt `ClusterBasedNormalizer`
  per continuous column + one-hot), the Gaussian-mixture encoder that our `TableEncoder` replaces. SDV 2.0
  calls it inside `CTGAN.fit` / `TVAE.fit` (ctgan/synthesizers/{ctgan,tvae}.py); we time those two methods
  by wrapping them on the class for the duration of the fit;
- `epoch_seconds`: the wall time of each training epoch, read off the epoch loop's iterator (both models
  loop `for i in tqdm(range(epochs))`), so network setup and the encoder are not counted as training;
- `sample_s`: an unconditional `sample(sample_rows)`;
- `tail_s` / `tail_rows_returned`: `sample_from_conditions` for `tail_rows` rows of one bucket. SDV's
  CTGAN and TVAE cannot condition their generator from the public API, so SDV draws unconditional rows and
  rejects the others (up to `max_tries_per_batch` rounds): fewer rows than asked may come back, or none.

SDV is imported lazily: `sdv_version()` is None where it is not installed and the bench says so. The
wrapping is process-global while a fit runs; the bench runs every system in its own subprocess.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal, Union

import pandas as pd

TABLE = "rows"
"""Table name given to SDV's single-table metadata."""


@dataclass(frozen=True)
class PeerSettings:
    """One SDV synthesizer's hyper-parameters (the bench's "equal" or "best" setting)."""

    kind: Literal["ctgan", "tvae"]
    epochs: int
    batch_size: int = 500
    embedding_dim: int = 128
    hidden_dims: tuple[int, ...] = (256, 256)
    """CTGAN: generator_dim; TVAE: compress_dims and decompress_dims."""
    critic_dims: tuple[int, ...] = (256, 256)
    """CTGAN's discriminator_dim (unused by TVAE)."""
    pac: int = 10
    enable_gpu: bool = False
    budget_s: Union[float, None] = None
    """Equal wall-time budget: SDV's epoch loop starts another epoch only while the seconds trained so far
    plus its mean epoch so far stay within it (so it ends at about the budget, at an epoch boundary)."""


@dataclass
class PeerRun:
    """Timings of one SDV fit plus the conditional sample the bench judges (`tail` may have < asked rows)."""

    timings: dict[str, Any] = field(default_factory=dict)
    tail: pd.DataFrame | None = None


def sdv_version() -> str | None:
    """The installed SDV version, or None when SDV (an optional, BSL-licensed extra) is absent."""
    try:
        return metadata.version("sdv")
    except metadata.PackageNotFoundError:
        return None


def run_peer(
    settings: PeerSettings,
    train_rows: pd.DataFrame,
    columns: dict[str, str],
    *,
    condition: dict[str, Any],
    sample_rows: int,
    tail_rows: int,
    progress: Callable[[str], None] = print,
) -> PeerRun:
    """Fit SDV's synthesizer on `train_rows[list(columns)]` and time each stage (see module docstring).

    `columns` maps each column to its sdtype (categorical/numerical/datetime); `condition` is the
    conditional draw, e.g. {"pop_bucket": "tail"}. Seeding is the caller's: SDV/ctgan use numpy's and
    torch's global generators.
    """
    import torch

    table = sdv_table(train_rows, columns)
    clock = _FitClock(sync=_cuda_sync if settings.enable_gpu and torch.cuda.is_available() else None,
                      budget_s=settings.budget_s)
    run = PeerRun()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SDV's "save your metadata" advice and pandas chatter
        synthesizer = _build(settings, _metadata(table, columns))
        progress(f"sdv-{settings.kind}: preprocessing {len(table)} rows")
        started = time.perf_counter()
        processed = synthesizer.preprocess({TABLE: table})
        run.timings["preprocess_s"] = time.perf_counter() - started
        progress(f"sdv-{settings.kind}: encoding and training {settings.epochs} epoch(s)")
        started = time.perf_counter()
        with _instrumented(clock):
            synthesizer.fit_processed_data(processed)
        run.timings["fit_s"] = time.perf_counter() - started
        run.timings.update(clock.summary())
        progress(f"sdv-{settings.kind}: sampling {sample_rows} rows")
        started = time.perf_counter()
        synthesizer.sample(sample_rows)
        run.timings["sample_s"] = time.perf_counter() - started
        progress(f"sdv-{settings.kind}: sampling {tail_rows} rows with {condition} (reject sampling)")
        started = time.perf_counter()
        run.tail = _sample_condition(synthesizer, condition, tail_rows, list(columns))
        run.timings["tail_s"] = time.perf_counter() - started
    run.timings["tail_rows_requested"] = tail_rows
    run.timings["tail_rows_returned"] = len(run.tail)
    return run


def sdv_table(rows: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """`rows[list(columns)]` in the dtypes SDV accepts: its CTGAN/TVAE refuse pandas `category` columns
    ("please cast these columns to an 'object'"), so categorical columns become object (missing: NaN)."""
    table = rows[list(columns)].reset_index(drop=True)
    for name, sdtype in columns.items():
        if sdtype == "categorical" and isinstance(table[name].dtype, pd.CategoricalDtype):
            table[name] = table[name].astype(object)
    return table


def _metadata(table: pd.DataFrame, columns: dict[str, str]) -> Any:
    """Single-table metadata with every sdtype set from `columns`, never SDV's guess (its detector also
    fails on object columns holding integers, e.g. an hour-of-day category)."""
    from sdv.metadata import Metadata

    detected = Metadata.detect_from_dataframes({TABLE: table}, infer_sdtypes=False, infer_keys=None)
    for name, sdtype in columns.items():
        if sdtype not in ("categorical", "numerical", "datetime"):
            raise ValueError(f"column {name!r}: sdtype {sdtype!r} cannot be given to SDV")
        detected.update_column(name, table_name=TABLE, sdtype=sdtype)
    return detected


def _build(settings: PeerSettings, sdv_metadata: Any) -> Any:
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

    if settings.kind == "ctgan":
        return CTGANSynthesizer(
            sdv_metadata, epochs=settings.epochs, batch_size=settings.batch_size,
            embedding_dim=settings.embedding_dim, generator_dim=tuple(settings.hidden_dims),
            discriminator_dim=tuple(settings.critic_dims), pac=settings.pac,
            enable_gpu=settings.enable_gpu, verbose=False,
        )
    return TVAESynthesizer(
        sdv_metadata, epochs=settings.epochs, batch_size=settings.batch_size,
        embedding_dim=settings.embedding_dim, compress_dims=tuple(settings.hidden_dims),
        decompress_dims=tuple(settings.hidden_dims), enable_gpu=settings.enable_gpu, verbose=False,
    )


def _sample_condition(synthesizer: Any, condition: dict[str, Any], rows: int, names: list[str]) -> pd.DataFrame:
    """SDV's conditional draw; its 'could not sample any rows' ValueError becomes an empty frame."""
    from sdv.sampling import Condition

    try:
        result = synthesizer.sample_from_conditions([Condition(num_rows=rows, column_values=condition)])
    except ValueError as exc:
        if "Unable to sample any rows" not in str(exc):
            raise
        return pd.DataFrame(columns=names)
    return result[TABLE] if isinstance(result, dict) else result


# ---------------------------------------------------------------------------------------------------------
# timing SDV's internals


def _cuda_sync() -> None:
    import torch

    torch.cuda.synchronize()


class _FitClock:
    """Accumulates encoder seconds and the wall time of every epoch of one ctgan fit."""

    def __init__(self, sync: Callable[[], None] | None, budget_s: float | None = None) -> None:
        self.sync = sync
        self.budget_s = budget_s
        self.seconds = {"encoder_fit_s": 0.0, "encoder_transform_s": 0.0}
        self.epoch_marks: list[float] = []

    def another_epoch_fits(self) -> bool:
        """Under a budget: whether one more epoch of the mean length so far still ends within it."""
        if self.budget_s is None or len(self.epoch_marks) < 2:
            return True
        spent = self.epoch_marks[-1] - self.epoch_marks[0]
        mean = spent / (len(self.epoch_marks) - 1)
        return spent + mean <= self.budget_s

    def now(self) -> float:
        if self.sync is not None:
            self.sync()
        return time.perf_counter()

    def summary(self) -> dict[str, Any]:
        epochs = [b - a for a, b in zip(self.epoch_marks, self.epoch_marks[1:])]
        train_s = sum(epochs)
        return {
            **self.seconds,
            "epoch_seconds": epochs,
            "epochs": len(epochs),
            "train_s": train_s,
            "seconds_per_epoch": train_s / len(epochs) if epochs else None,
        }


class _ClockedEpochs:
    """Wraps ctgan's epoch `tqdm` iterator: marks the clock as each epoch starts and when the loop ends."""

    def __init__(self, inner: Any, clock: _FitClock) -> None:
        self._inner = inner
        self._clock = clock

    def __iter__(self) -> Iterator[Any]:
        for item in self._inner:
            self._clock.epoch_marks.append(self._clock.now())
            if not self._clock.another_epoch_fits():  # the budget is spent: the epoch loop ends here
                self._clock.epoch_marks.pop()
                break
            yield item
        self._clock.epoch_marks.append(self._clock.now())

    def __getattr__(self, name: str) -> Any:  # set_description etc. go to the real progress bar
        return getattr(self._inner, name)


@contextmanager
def _instrumented(clock: _FitClock) -> Iterator[None]:
    """Time ctgan's DataTransformer.fit/transform and its epoch loop; restore everything afterwards."""
    from ctgan import data_transformer
    from ctgan.synthesizers import ctgan as ctgan_module
    from ctgan.synthesizers import tvae as tvae_module

    transformer = data_transformer.DataTransformer
    saved_methods = {"fit": transformer.fit, "transform": transformer.transform}
    modules = (ctgan_module, tvae_module)
    saved_tqdm = [module.tqdm for module in modules]

    def timed(method: Callable[..., Any], key: str) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = clock.now()
            result = method(self, *args, **kwargs)
            clock.seconds[key] += clock.now() - started
            return result

        return wrapper

    def clocked_tqdm(real: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args, **kwargs: _ClockedEpochs(real(*args, **kwargs), clock)

    transformer.fit = timed(saved_methods["fit"], "encoder_fit_s")
    transformer.transform = timed(saved_methods["transform"], "encoder_transform_s")
    for module, real in zip(modules, saved_tqdm):
        module.tqdm = clocked_tqdm(real)
    try:
        yield
    finally:
        transformer.fit = saved_methods["fit"]
        transformer.transform = saved_methods["transform"]
        for module, real in zip(modules, saved_tqdm):
            module.tqdm = real
