"""Typed configs of the model-side components: the encoder, the condition, the two generators.

Plain frozen dataclasses with `Literal` choices. `train.config` composes them with the data and trainer
configs, loads them from YAML and rejects unknown keys; nothing here reads files.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tailsynth.models.errors import ConfigError

RANGE = "range"
"""Dataclass field metadata key: the `Range` a numeric config key must lie in (each item, for a tuple)."""


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric config key, checked by the config loader with the key's path named."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """True: `low` itself is not allowed (a learning rate > 0)."""
    high_open: bool = False

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed ("must be at least 1"), or None when it is."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None  # a type error, reported by the loader's type check
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number {self.describe()}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return f"must be {self.describe()}" if too_low or too_high else None

    def describe(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"greater than {low}" if self.low_open else f"at least {low}"
        if self.high is not None:
            return f"less than {high}" if self.high_open else f"at most {high}"
        return "a number"


def _number(value: float | None) -> str:
    """2**32 - 1 as 4294967295, 1e150 as 1e+150, 0.5 as 0.5."""
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


def ranged(default: Any, low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Any:
    """A dataclass field with `default` whose value (or each item of it) must lie in the given range."""
    return field(default=default, metadata={RANGE: Range(low, high, low_open, high_open)})


POSITIVE = {"low": 0.0, "low_open": True}
UNIT = {"low": 0.0, "high": 1.0}


@dataclass(frozen=True)
class EncoderConfig:
    """How behaviour records become the model's float matrix (see `models.encoder`)."""

    max_modes: int = ranged(10, 1)
    """Upper bound on Gaussian-mixture modes per continuous column (CTGAN's mode-specific normalisation)."""
    weight_threshold: float = ranged(0.005, 0.0, 1.0, high_open=True)
    """Modes whose mixture weight falls below this are dropped after fitting."""
    gmm_iterations: int = ranged(100, 1)
    """EM iterations of the batched mixture fit."""
    fit_sample_rows: int = ranged(200_000, 1)
    """Columns are fitted on a seeded sample of at most this many rows; transform always sees every row."""
    spike_share: float = ranged(0.0, **UNIT)
    """A continuous value that alone holds at least this share of a column's rows (a quantity of 1, a
    price of 1.25) becomes a mode of its own that decodes to exactly that value (0: off). A trade-off, so
    off by default: it lowers the mean KS (quantities hit their point masses) but can raise the
    discriminator AUC (the exact values expose joints the generator has not learnt yet, e.g. quantity with
    unit price); evaluate/bench/README.md, "What moved the CTGAN's tail fidelity"."""
    max_spikes: int = ranged(32, 0)
    """At most this many spike modes per column, the most frequent values first."""
    spike_columns: tuple[str, ...] | None = None
    """The numerical columns `spike_share` applies to (None: every one). Spikes help a column of pack sizes
    (a quantity of 1, 12, 24) and hurt a smooth one (recency_days), so a config can name the first kind."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.spike_share <= 1.0 or self.max_spikes < 0:
            raise ConfigError(
                f"model.encoder: spike_share must lie in [0, 1] and max_spikes be >= 0, "
                f"got spike_share={self.spike_share}, max_spikes={self.max_spikes}"
            )
    max_categories: int = ranged(200, 1)
    """A discrete column with more categories than this is refused with an error naming it."""
    include_ids: bool = False
    """Generate the user/item id columns too (off: ids are assigned after sampling, never one-hot encoded)."""


@dataclass(frozen=True)
class ConditionConfig:
    """What the generator is conditioned on and how training rows are drawn for a condition."""

    columns: tuple[str, ...] = ()
    """Extra discrete item columns in the condition vector, besides `pop_bucket` (always first)."""
    sampling: Literal["empirical", "log_frequency", "uniform"] = "log_frequency"
    """Rule that draws each training row's bucket: its frequency, log-frequency (CTGAN) or uniform."""
    extra_keep_prob: float = ranged(0.5, **UNIT)
    """During training each extra condition column is shown with this probability and masked otherwise,
    so one model serves both bucket-only sampling and sampling conditioned on item features."""
    continuous: tuple[str, ...] = ()
    """Numerical item-table columns (`data.items.columns`) that enter the condition as continuous values,
    after the one-hot blocks; always shown (`models.condition`)."""
    item_level: dict[str, Literal["median"]] = field(default_factory=dict)
    """Derived item levels as continuous conditions: {interaction column: statistic}, e.g. {UnitPrice:
    median} is each item's median UnitPrice over the TRAINING rows only (its catalogue price), named
    `UnitPrice_item_median` (`train.item_levels`). The timestamp may be one ({InvoiceDate: median}: when the
    item sells, in days since 1970); `gen augment` then writes the generator's dates."""
    relative: tuple[str, ...] = ()
    """Columns of `item_level` the model generates RELATIVE to their item's level: it learns
    slog(x) - slog(level) (slog: signed log1p), and generation adds the row's level back
    (`models.continuous.ContinuousCondition.scales`). An item's price then comes from the generator, held
    to the item's own level, instead of being drawn from the item's real rows."""
    user: tuple[str, ...] = ()
    """User-table columns (`data.users.columns`) whose value for the row's user conditions the generator, so
    a row's events are generated FOR its user (part of the taste design: taste picks the user, the generator
    what that user does): a categorical one joins the one-hot blocks after `columns` (shown or masked in
    training like them), a numerical one the continuous conditions after the item ones (its standardised
    value, always shown). `gen augment` / `gen cold-start` pick each row's user by taste first and pass that
    user's values (`gen.items.pipeline.ItemStream`); without taste users they are drawn with the item's
    other conditions from real training rows."""


@dataclass(frozen=True)
class CTGANConfig:
    """Conditional WGAN-GP with a PacGAN critic (Xu et al. 2019), conditioned on the popularity bucket."""

    embedding_dim: int = ranged(128, 1)
    generator_dims: tuple[int, ...] = ranged((256, 256), 1)
    critic_dims: tuple[int, ...] = ranged((256, 256), 1)
    pac: int = ranged(10, 1)
    generator_lr: float = ranged(2e-4, **POSITIVE)
    critic_lr: float = ranged(2e-4, **POSITIVE)
    generator_decay: float = ranged(1e-6, 0.0)
    critic_decay: float = ranged(1e-6, 0.0)
    critic_steps: int = ranged(1, 1)
    gp_weight: float = ranged(10.0, 0.0)
    cond_loss_weight: float = ranged(1.0, 0.0)
    gumbel_tau: float = ranged(0.2, **POSITIVE)
    ema_decay: float = ranged(0.999, 0.0, 1.0, high_open=True)
    """Sample from an exponential moving average of the generator's weights with this decay (0: off, sample
    from the last iterate as CTGAN does); see `models.ema`. A GAN's generator oscillates around the
    equilibrium it chases, and the average of its recent weights is the better sampler (figures:
    evaluate/bench/README.md, "What moved the CTGAN's tail fidelity")."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"model.ctgan.ema_decay: expected 0 (off) or a decay in (0, 1), got {self.ema_decay}")



@dataclass(frozen=True)
class TVAEConfig:
    """Conditional VAE (TVAE of Xu et al. 2019 with the condition fed to encoder and decoder)."""

    embedding_dim: int = ranged(128, 1)
    compress_dims: tuple[int, ...] = ranged((128, 128), 1)
    decompress_dims: tuple[int, ...] = ranged((128, 128), 1)
    lr: float = ranged(1e-3, **POSITIVE)
    weight_decay: float = ranged(1e-5, 0.0)
    loss_factor: float = ranged(2.0, **POSITIVE)
    """Weight of the reconstruction term against KL (TVAE's default)."""


@dataclass(frozen=True)
class ModelConfig:
    kind: Literal["ctgan", "tvae"] = "ctgan"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    condition: ConditionConfig = field(default_factory=ConditionConfig)
    ctgan: CTGANConfig = field(default_factory=CTGANConfig)
    tvae: TVAEConfig = field(default_factory=TVAEConfig)


def hyperparameters(model: str, config: CTGANConfig | TVAEConfig, **shape: Any) -> dict[str, Any]:
    """What a LightningModule saves as hyperparameters: plain scalars and lists only (TensorBoard/YAML
    friendly), so the layout itself is never pickled into checkpoints."""
    settings = {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}
    return {"model": model, **settings, **shape}
