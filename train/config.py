"""The run config: typed dataclasses, loaded from YAML with unknown keys and wrong types rejected.

One YAML file in `configs/` maps 1:1 onto `RunConfig`. `load_config(path, overrides)` reads it, applies
`key.path=value` overrides from the command line (values parsed as YAML scalars) and validates every key
against the dataclass types. The resolved config is saved beside every run (`to_dict`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from models.config import ModelConfig
from models.errors import ConfigError

SdType = Literal["categorical", "numerical", "datetime", "id"]


@dataclass(frozen=True)
class TableConfig:
    """One input file and the sdtype of each column we use from it (others are ignored)."""

    path: str
    """CSV or parquet path, or `builtin:online_retail` for the shipped dataset's table of that role."""
    id: str = ""
    """Key column of a user or item feature table (unused for interactions)."""
    columns: dict[str, SdType] = field(default_factory=dict)
    """Feature or event columns and their SDV sdtype."""


@dataclass(frozen=True)
class InteractionsConfig:
    path: str
    user_id: str
    item_id: str
    timestamp: str
    columns: dict[str, SdType] = field(default_factory=dict)
    """Event/value columns (quantity, price, rating, ...) and their sdtype."""


@dataclass(frozen=True)
class BucketConfig:
    """How items get a popularity bucket from their interaction counts (see `train.buckets`)."""

    method: Literal["share", "count", "quantile"] = "share"
    names: tuple[str, ...] = ("head", "torso", "tail")
    shares: tuple[float, ...] = (0.5, 0.3, 0.2)
    """method=share: items sorted by count; each bucket holds the next share of all interactions."""
    thresholds: tuple[int, ...] = ()
    """method=count: descending minimum counts, one fewer than names (e.g. (100, 10): >=100 head, >=10 torso)."""
    min_interactions: int = 5
    """Items with fewer interactions than this (none included) are cold-start items."""


@dataclass(frozen=True)
class SplitConfig:
    method: Literal["random", "time"] = "random"
    holdout_fraction: float = 0.2
    cold_items: int = 0
    """Hold this many tail items out of training entirely (all their interactions), seeded, so cold start
    can be judged against their real interactions (`cold_holdout` table of the bundle)."""


@dataclass(frozen=True)
class DataConfig:
    interactions: InteractionsConfig
    users: TableConfig | None = None
    items: TableConfig | None = None
    missing_keys: Literal["error", "drop"] = "error"
    """Interactions whose user/item is absent from a feature table: fail, or drop them and report counts."""
    time_parts: tuple[Literal["hour", "dayofweek", "month", "dayofmonth"], ...] = ("hour", "dayofweek")
    buckets: BucketConfig = field(default_factory=BucketConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    max_train_rows: Union[int, None] = None
    """Train on a seeded sample of at most this many training-split rows (quick runs, benchmarks);
    buckets are still computed from all interactions."""


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int = 5
    batch_size: int = 500
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: Union[int, str] = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: Literal["32-true", "bf16-mixed"] = "32-true"
    """bf16-mixed is recommended on GPUs; 32-true keeps CPU runs exactly reproducible. (16-bit "true"
    precisions would feed float32 conditions to half-precision layers, and fp16 mixed precision risks an
    underflowing gradient penalty, so they are not offered.)"""
    deterministic: bool = True
    log_every_n_steps: int = 50
    limit_train_batches: Union[int, float, None] = None
    progress_bar: bool = True

    def __post_init__(self) -> None:
        _at_least("trainer", {"max_epochs": self.max_epochs, "batch_size": self.batch_size,
                              "num_nodes": self.num_nodes, "log_every_n_steps": self.log_every_n_steps}, 1)


@dataclass(frozen=True)
class MonitorConfig:
    """Fidelity scalars logged to TensorBoard while training (a cheap sample, every few epochs)."""

    every_n_epochs: int = 1
    rows: int = 2000
    enabled: bool = True

    def __post_init__(self) -> None:
        _at_least("monitor", {"every_n_epochs": self.every_n_epochs, "rows": self.rows}, 1)


def _at_least(section: str, values: dict[str, int], minimum: int) -> None:
    """Range checks at load time, so a bad value fails before any data work, naming its key."""
    for key, value in values.items():
        if value < minimum:
            raise ConfigError(f"{section}.{key} must be at least {minimum}, got {value}")


@dataclass(frozen=True)
class GateConfig:
    """The fidelity gate's defaults are strict on purpose; README says why. Never loosen them for a demo."""

    alpha: float = 0.01
    """Family-wise significance level of the per-column KS / chi-square tests (Holm-corrected)."""
    max_auc: float = 0.60
    """Largest cross-validated discriminator AUC of accepted vs real holdout rows that passes."""
    fake_threshold: float = 0.5
    """Discriminator filter: a row whose calibrated probability of being fake p exceeds t is dropped with
    probability 1 - min(1, (1-p)t / (p(1-t))) — a rejection rule that moves the accepted rows towards the
    real distribution; a hard cut at t would carve a hole that a fresh discriminator then detects."""
    range_margin: float = 0.05
    """Numbers may exceed the observed [min, max] by this fraction of the range."""
    rare_k: int = 5
    """Privacy: a synthetic row that exactly copies a value combination seen fewer than k times in training
    (so could single a customer out) is dropped."""
    chunk_rows: int = 20_000
    max_candidates_factor: float = 20.0
    """Candidate budget: at most this many times the requested rows are drawn before giving up."""
    min_holdout_rows: int = 200


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    seed: int = 0
    out_dir: str = "runs"
    name: str = "run"


# ---------------------------------------------------------------------------------------------------------
# loading and validation


def load_config(path: str | Path, overrides: typing.Sequence[str] = ()) -> RunConfig:
    """Read a YAML config, apply `a.b.c=value` overrides, validate and return a `RunConfig`."""
    return from_dict(RunConfig, read_raw_config(path, overrides), where=str(path))


def read_raw_config(path: str | Path, overrides: typing.Sequence[str] = ()) -> dict[str, Any]:
    """The YAML mapping with overrides applied and table paths resolved, not yet validated."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level, got {type(raw).__name__}")
    for item in overrides:
        apply_override(raw, item)
    _resolve_paths(raw, path.parent)
    return raw


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Relative table paths are relative to the config file's folder, so a config works from any cwd."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for role in ("interactions", "users", "items"):
        table = data.get(role)
        if isinstance(table, dict) and isinstance(table.get("path"), str):
            location = table["path"]
            if not location.startswith("builtin:") and not Path(location).is_absolute():
                table["path"] = str((base / location).resolve())


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set `a.b.c=value` in a nested dict; the value is parsed as a YAML scalar/list."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected KEY.PATH=VALUE")
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = yaml.safe_load(text)


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass `cls` from plain data, checking every key and type; errors name the key path."""
    try:
        return _convert(cls, data, "")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} matches none of the allowed types ({'; '.join(errors)})")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        return tuple(_convert(item_type, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        key_type, value_type = args
        return {_convert(key_type, k, key): _convert(value_type, v, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported config type {tp!r}")  # a bug in a dataclass, not user input


def _convert_dataclass(cls: type, value: Any, key: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{key or 'top level'}: expected a mapping for {cls.__name__}, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfigError(f"{key or 'top level'}: unknown key(s) {unknown}; allowed keys are {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], f"{key}.{name}" if key else name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key or 'top level'}: required key {name!r} is missing")
    return cls(**kwargs)


def to_dict(config: Any) -> Any:
    """Plain, YAML/JSON-serialisable form of a config (tuples become lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config
