"""The run config: typed dataclasses, loaded from YAML with unknown keys and wrong types rejected.

One YAML file in `configs/` maps 1:1 onto `RunConfig`. `load_config(path, overrides)` reads it, applies
`key.path=value` overrides from the command line (values parsed as YAML scalars) and validates every key
against the dataclass types. The resolved config is saved beside every run (`to_dict`).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from tailsynth.models.config import RANGE, UNIT, ModelConfig, Range, ranged
from tailsynth.models.errors import ConfigError

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
    date_formats: dict[str, str] = field(default_factory=dict)
    """Datetime column -> its strftime format (e.g. `"%d/%m/%Y %H:%M"`), applied strictly to every value;
    without one the format is inferred from the column's values (see `train.dates`)."""
    text: str = ""
    """Items table only: a free-text column (product descriptions) that the content->taste predictor reads
    (TF-IDF); kept in the bundle's items table, never modelled. Empty: none."""

    def __post_init__(self) -> None:
        _check_date_formats(self.date_formats, [n for n, t in self.columns.items() if t == "datetime"])
        if self.text and self.text in self.columns:
            raise ConfigError(f"text: {self.text!r} is also listed under columns; a text column is not modelled")


@dataclass(frozen=True)
class InteractionsConfig:
    path: str
    user_id: str
    item_id: str
    timestamp: str
    columns: dict[str, SdType] = field(default_factory=dict)
    """Event/value columns (quantity, price, rating, ...) and their sdtype."""
    date_formats: dict[str, str] = field(default_factory=dict)
    """Timestamp or datetime column -> its strftime format, as for `TableConfig.date_formats`."""

    def __post_init__(self) -> None:
        _check_date_formats(self.date_formats,
                            [self.timestamp, *(n for n, t in self.columns.items() if t == "datetime")])


def _check_date_formats(formats: dict[str, str], datetime_columns: list[str]) -> None:
    for name, text in formats.items():
        if name not in datetime_columns:
            raise ConfigError(f"date_formats: {name!r} is not a datetime column of this table; "
                              f"datetime columns are {datetime_columns}")
        if "%" not in text:
            raise ConfigError(f"date_formats.{name}: {text!r} is not a strftime format (e.g. '%d/%m/%Y')")


@dataclass(frozen=True)
class BucketConfig:
    """How items get a popularity bucket from their interaction counts (see `train.buckets`)."""

    method: Literal["share", "count", "quantile"] = "share"
    names: tuple[str, ...] = ("head", "torso", "tail")
    shares: tuple[float, ...] = ranged((0.5, 0.3, 0.2), 0.0, 1.0, low_open=True)
    """method=share: items sorted by count; each bucket holds the next share of all interactions."""
    thresholds: tuple[int, ...] = ranged((), 1)
    """method=count: descending minimum counts, one fewer than names (e.g. (100, 10): >=100 head, >=10 torso)."""
    min_interactions: int = ranged(5, 0)
    """Items with fewer interactions than this (none included) are cold-start items."""


@dataclass(frozen=True)
class SplitConfig:
    method: Literal["random", "time"] = "random"
    holdout_fraction: float = ranged(0.2, 0.0, 1.0, low_open=True, high_open=True)
    cold_items: int = ranged(0, 0)
    """Hold this many tail items out of training entirely (all their interactions), seeded, so cold start
    can be judged against their real interactions (`cold_holdout` table of the bundle)."""
    bundle_holdout_rows: Union[int, None] = ranged(200_000, 1)
    """At most this many held-out rows are stored in the bundle (a seeded uniform sample, so every bucket
    keeps its share; null stores all), for the gate, the report, augmentation and the utility benchmark to
    judge against. 200k keeps a large run's bundle small and is above the built-in data's whole holdout,
    which is stored complete. Training's monitor
    still sees every held-out row. The manifest records the cap and both counts (`meta.rows`)."""


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
    max_train_rows: Union[int, None] = ranged(None, 1)
    """Train on a seeded sample of at most this many training-split rows (quick runs, benchmarks);
    buckets are still computed from all interactions."""
    max_abs_value: float = ranged(1e15, 0.0, 1e150, low_open=True)
    """Numerical values must lie within +-this. The encoder standardises every column in float64 (sums of
    values and of squared deviations): 1e308 is finite in a CSV but its square is not, and a lone 1e20 among
    prices squeezes every other value into one mode. 1e15 keeps whole numbers exact in float64 (< 2**53)."""
    out_of_range: Literal["error", "clip"] = "error"
    """A numerical value beyond max_abs_value: refuse the table (naming column and rows), or clip it to
    +-max_abs_value and report how many were clipped (a warning and a `Records.cleaning` step)."""


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int = ranged(5, 1)
    batch_size: int = ranged(500, 1)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: Union[int, str] = ranged("auto", -1)
    """A number of devices (-1: all), or Lightning's device string ("auto", "0,1")."""
    strategy: str = "auto"
    num_nodes: int = ranged(1, 1)
    precision: Literal["32-true", "bf16-mixed"] = "32-true"
    """bf16-mixed is recommended on GPUs; 32-true keeps CPU runs exactly reproducible. (16-bit "true"
    precisions would feed float32 conditions to half-precision layers, and fp16 mixed precision risks an
    underflowing gradient penalty, so they are not offered.)"""
    deterministic: bool = True
    log_every_n_steps: int = ranged(50, 1)
    """Also how often (in batches) the losses are checked for NaN/inf (`train.finite_loss`)."""
    limit_train_batches: Union[int, float, None] = None
    """Batches per epoch: a count (>= 1) or a fraction of the epoch in (0, 1]; 0 would train nothing."""
    progress_bar: bool = True
    cpu_threads: Union[int, None] = ranged(None, 1, 1024)
    """Torch's CPU threads (`torch.set_num_threads`) for training, and for `gen` / `evaluate` on the bundle.
    None: `OMP_NUM_THREADS` if set, else half the usable cores, at most 8 (`train.threads` says why torch's
    own default, one per core, is not used)."""
    max_time_s: Union[float, None] = ranged(None, 0.0, low_open=True)
    """Stop training once this many seconds of training have passed (Lightning's `max_time`, checked after
    every batch), even before `max_epochs`: the benchmark's equal-wall-time budget. None: no limit."""

    def __post_init__(self) -> None:
        limit = self.limit_train_batches
        if limit is not None and not isinstance(limit, bool):
            fraction_ok = isinstance(limit, float) and 0.0 < limit <= 1.0
            count_ok = isinstance(limit, int) and limit >= 1
            if not (fraction_ok or count_ok):
                raise ConfigError(f"trainer.limit_train_batches: expected a number of batches >= 1 or a fraction "
                                  f"in (0, 1], got {limit!r} (0 would write an untrained bundle)")


@dataclass(frozen=True)
class MonitorConfig:
    """Fidelity scalars logged to TensorBoard while training (a cheap sample, every few epochs).

    Defaults keep monitoring a small fraction of training (train/monitor.py says how it is cheap)."""

    every_n_epochs: int = ranged(5, 1)
    """Check after every n-th epoch, and always after the last."""
    rows: int = ranged(1000, 1)
    """Held-out rows per bucket compared with as many generated ones (fewer when a bucket has fewer)."""
    enabled: bool = True


@dataclass(frozen=True)
class GateConfig:
    """The fidelity gate's defaults are strict on purpose; README says why. Never loosen them for a demo."""

    alpha: float = ranged(0.01, 0.0, 1.0, low_open=True, high_open=True)
    """Family-wise significance level of the per-column KS / chi-square tests (Holm-corrected)."""
    max_auc: float = ranged(0.60, **UNIT)
    """Largest cross-validated discriminator AUC of accepted vs real holdout rows that passes."""
    fake_threshold: float = ranged(0.5, 0.0, 1.0, low_open=True, high_open=True)
    """Discriminator filter: a row whose calibrated probability of being fake p exceeds t is dropped with
    probability 1 - min(1, (1-p)t / (p(1-t))) — a rejection rule that moves the accepted rows towards the
    real distribution; a hard cut at t would carve a hole that a fresh discriminator then detects."""
    selection: Literal["threshold", "ratio"] = "ratio"
    """Discriminator filter rule: "threshold" thins only rows above fake_threshold (as above); "ratio" is
    discriminator rejection sampling (Azadi et al. 2019): every row is kept with probability
    min(1, r(x) / r_q), r_q the `ratio_quantile` of r over the calibration candidates, so under-produced
    regions are restored as well as over-produced ones thinned, at a lower acceptance rate."""
    ratio_quantile: float = ranged(0.9, 0.0, 1.0, low_open=True)
    new_items_ratio_quantile: float = ranged(0.9, 0.0, 1.0, low_open=True)
    """The `ratio_quantile` of cold-start calls (new items; `ratio_quantile` is augment's). 0.9 was chosen on
    validation items by a rule set before the runs: as many rows of the same value as the main config's 0.97
    (pseudo-cold Recall@20, item-kNN +0.015 / +0.045, ALS +0.004 / +0.002, the tests lifted, nine seeds) and
    fewer refusals (the new-items call at 50 rows per item emitted 92% against 69%, at auto 99% against 98%):
    evaluate/bench/README.md, "The gentler filter for new items, adopted as a reliability change"."""
    filter_stages: int = ranged(2, 1, 5)
    """Item interactions: discriminator filters fitted in turn, each on real rows vs the candidates the
    previous ones kept, so each removes what the last one left detectable (a row must pass every stage)."""
    range_margin: float = ranged(0.05, 0.0)
    """Numbers may exceed the observed [min, max] by this fraction of the range."""
    rare_k: int = ranged(5, 1)
    """Privacy: a synthetic row that exactly copies a value combination seen fewer than k times in training
    (so could single a customer out) is dropped."""
    chunk_rows: int = ranged(20_000, 1)
    max_candidates_factor: float = ranged(20.0, 1.0)
    """Candidate budget: at most this many times the requested rows are drawn before giving up."""
    min_holdout_rows: int = ranged(200, 1)


@dataclass(frozen=True)
class TasteConfig:
    """The taste space and the content->taste predictor fitted from the training rows at the end of training
    and stored in the bundle (`models.taste`, `models.content_taste`)."""

    enabled: bool = True
    dim: int = ranged(64, 1)
    """Factors of the taste space (fewer when there are fewer users or items)."""
    method: Literal["knn", "ridge", "generator"] = "knn"
    """Content->taste predictor: content-kNN over warm items (measured best), ridge regression, or the
    Lightning generator (`models.taste_generator`)."""
    neighbours: int = ranged(10, 1)
    """Warm items averaged by the content-kNN."""
    blend: float = ranged(5.0, 0.0)
    """m of the tail blend (n * own + m * predicted) / (n + m), n the item's interaction count."""


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    taste: TasteConfig = field(default_factory=TasteConfig)
    seed: int = ranged(0, 0, 2**32 - 1)
    """numpy and pandas accept 32-bit seeds only."""
    out_dir: str = "runs"
    name: str = "run"
    """The run directory's name inside out_dir: one plain folder name (no path separators, not `..`)."""

    def __post_init__(self) -> None:
        name = self.name
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise ConfigError(f"name: {name!r} must be a plain folder name inside out_dir ({self.out_dir!r}), "
                              f"without '/', '\\' or '..'")
        _check_condition_columns(self)
        if self.model.kind == "ctgan" and self.trainer.batch_size % self.model.ctgan.pac:
            raise ConfigError(f"trainer.batch_size={self.trainer.batch_size} is not a multiple of "
                              f"model.ctgan.pac={self.model.ctgan.pac}; the PacGAN critic judges rows in packs of pac")


def _check_condition_columns(config: RunConfig) -> None:
    """model.condition.columns must name categorical columns of the records: checked here, from the data
    config alone, so a typo fails at load (and `--summary`) instead of after the data build and encoder fit."""
    from tailsynth.train.records import schema  # train.records imports this module

    records = schema(config.data)
    _check_continuous_conditions(config, records)
    _check_spike_columns(config, records)
    wanted = config.model.condition.columns
    if not wanted:
        return
    ids = ("user_id", "item_id")
    columns = [c for c in records if config.model.encoder.include_ids or c.role not in ids]
    categorical = [c.name for c in columns if c.sdtype == "categorical" or c.role in ids]
    for name in wanted:
        if name == "pop_bucket":
            raise ConfigError("model.condition.columns: 'pop_bucket' is always the first condition; do not list it")
        if list(wanted).count(name) > 1:
            raise ConfigError(f"model.condition.columns: {name!r} is listed twice")
        if name not in categorical:
            kind = next((f"a {c.sdtype} column" for c in columns if c.name == name), "not a column of the records")
            raise ConfigError(f"model.condition.columns: {name!r} is {kind}; a condition must be one of the "
                              f"categorical columns {[n for n in categorical if n != 'pop_bucket']}")


def _check_continuous_conditions(config: RunConfig, columns: typing.Sequence[Any]) -> None:
    """model.condition.continuous must name numerical item-table columns, model.condition.item_level
    numerical interaction columns or the timestamp (`train.item_levels`), model.condition.user user-table
    columns: checked at load, from the data config alone."""
    condition = config.model.condition
    kinds = {column.name: (column.role, column.sdtype) for column in columns}
    for key, names, accepted, where in (
        ("continuous", condition.continuous, {("item_feature", "numerical")}, "data.items.columns"),
        ("item_level", tuple(condition.item_level), {("event", "numerical"), ("timestamp", "datetime")},
         "data.interactions.columns and the timestamp"),
    ):
        allowed = [name for name, kind in kinds.items() if kind in accepted]
        for name in names:
            if list(names).count(name) > 1:
                raise ConfigError(f"model.condition.{key}: {name!r} is listed twice")
            if kinds.get(name) not in accepted:
                found = f"a {kinds[name][1]} {kinds[name][0]} column" if name in kinds else "not a column of the records"
                raise ConfigError(f"model.condition.{key}: {name!r} is {found}; expected one of the numerical "
                                  f"columns of {where} {allowed}")
    users = [name for name, (role, _) in kinds.items() if role == "user_feature"]
    for name in condition.user:
        if list(condition.user).count(name) > 1:
            raise ConfigError(f"model.condition.user: {name!r} is listed twice")
        if name not in users:
            found = f"not a user-table column (its role is {kinds[name][0]})" if name in kinds else \
                "not a column of the records"
            raise ConfigError(f"model.condition.user: {name!r} is {found}; expected one of the user-table columns "
                              f"of data.users.columns {users}")
        if name in condition.columns:
            raise ConfigError(f"model.condition.user: {name!r} is also in model.condition.columns; list it once")
    for name in condition.relative:
        if name not in condition.item_level or list(condition.relative).count(name) > 1:
            raise ConfigError(f"model.condition.relative: {name!r} must be listed once and be a key of "
                              f"model.condition.item_level {list(condition.item_level)} (its level)")
        if kinds.get(name, ("", ""))[1] != "numerical":
            raise ConfigError(f"model.condition.relative: {name!r} is a timestamp; only a number can be generated "
                              "relative to its item's level")


def _check_spike_columns(config: RunConfig, columns: typing.Sequence[Any]) -> None:
    """model.encoder.spike_columns must name numerical columns of the records: checked at load."""
    numerical = [column.name for column in columns if column.sdtype == "numerical"]
    for name in config.model.encoder.spike_columns or ():
        if name not in numerical:
            raise ConfigError(f"model.encoder.spike_columns: {name!r} is not a numerical column of the records; "
                              f"expected one of {numerical}")


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
        raw = parse_yaml(path.read_text()) or {}
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
    try:
        node[parts[-1]] = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: the value is not valid YAML: {exc}") from None


class _StrictLoader(yaml.SafeLoader):
    """YAML as a config file needs it: `2e-4` is a number and a repeated key is an error.

    PyYAML implements YAML 1.1, where a float needs a dot (`2.0e-4`), so `2e-4` -- how Python, JSON and
    YAML 1.2 write the default learning rate -- would be the string "2e-4"; and it lets a repeated key
    silently replace the first. The class is our own, so `yaml.safe_load` elsewhere is unchanged.
    """


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _unique_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A mapping whose keys are all distinct (keys merged in with `<<` may still be overridden)."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {line}; first given on line {seen[key]})",
                    key_node.start_mark)
            seen[key] = line
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def parse_yaml(text: str) -> Any:
    """The one YAML rule of config files and of every `--set KEY=VALUE`: `yaml.safe_load`, except that `2e-4`
    is a number and a duplicate key is an error (`_StrictLoader`)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader subclass


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
            path = f"{key}.{name}" if key else name
            kwargs[name] = _convert(hints[name], value[name], path)
            _check_range(f.metadata.get(RANGE), kwargs[name], path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key or 'top level'}: required key {name!r} is missing")
    return cls(**kwargs)


def _check_range(allowed: Range | None, value: Any, key: str) -> None:
    """ConfigError naming the key when a number (or an item of a list of numbers) is out of its range."""
    if allowed is None:
        return
    items = list(enumerate(value)) if isinstance(value, tuple) else [(None, value)]
    for index, item in items:
        problem = allowed.problem(item)
        if problem is not None:
            where = key if index is None else f"{key}[{index}]"
            raise ConfigError(f"{where} {problem}, got {item!r}")


def to_dict(config: Any) -> Any:
    """Plain, YAML/JSON-serialisable form of a config (tuples become lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config
