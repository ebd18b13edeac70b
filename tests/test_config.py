"""The YAML run-config loader: strict keys and types, overrides, and messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tailsynth.models.errors import ConfigError
from tailsynth.train.config import DataConfig, RunConfig, load_config, to_dict

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

MINIMAL = {
    "data": {
        "interactions": {"path": "x.csv", "user_id": "u", "item_id": "i", "timestamp": "t"},
    },
}


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _with(path: list[str], value: object) -> dict:
    """MINIMAL with the nested key `path` set to `value` (a fresh copy)."""
    raw = yaml.safe_load(yaml.safe_dump(MINIMAL))
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return raw


@pytest.mark.parametrize("name", ["online_retail_ctgan.yaml", "online_retail_tvae.yaml"])
def test_shipped_configs_load(name: str) -> None:
    config = load_config(CONFIGS / name)
    assert isinstance(config, RunConfig)
    assert config.data.interactions.path == "builtin:online_retail"
    assert config.data.buckets.shares == (0.5, 0.3, 0.2)
    assert to_dict(config)["data"]["time_parts"] == ["hour", "dayofweek"]


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, MINIMAL))
    assert config.data.users is None and config.data.missing_keys == "error"
    assert config.data.buckets.method == "share" and config.data.split.holdout_fraction == 0.2


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level.*'epochs'"):
        load_config(_write(tmp_path, {**MINIMAL, "epochs": 3}))


def test_unknown_nested_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.buckets.*'share_list'"):
        load_config(_write(tmp_path, _with(["data", "buckets", "share_list"], [1.0])))


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs.*integer"):
        load_config(_write(tmp_path, _with(["trainer", "max_epochs"], "three")))
    with pytest.raises(ConfigError, match=r"data\.buckets\.shares\[1\].*number"):
        load_config(_write(tmp_path, _with(["data", "buckets", "shares"], [0.5, "x", 0.2])))


def test_literal_violation_names_the_key_and_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.split\.method.*'random'.*'sideways'"):
        load_config(_write(tmp_path, _with(["data", "split", "method"], "sideways")))
    with pytest.raises(ConfigError, match=r"data\.interactions\.columns\.qty"):
        load_config(_write(tmp_path, _with(["data", "interactions", "columns"], {"qty": "number"})))


def test_missing_required_key(tmp_path: Path) -> None:
    raw = _with(["data", "interactions", "user_id"], "u")
    del raw["data"]["interactions"]["user_id"]
    with pytest.raises(ConfigError, match=r"data\.interactions.*'user_id'.*missing"):
        load_config(_write(tmp_path, raw))
    with pytest.raises(ConfigError, match="'data'.*missing"):
        load_config(_write(tmp_path, {"seed": 1}))


def test_overrides_are_parsed_as_yaml(tmp_path: Path) -> None:
    overrides = ["trainer.max_epochs=7", "data.buckets.shares=[0.6, 0.3, 0.1]", "data.missing_keys=drop",
                 "data.users.path=users.csv", "data.users.id=u"]
    config = load_config(_write(tmp_path, MINIMAL), overrides)
    assert config.trainer.max_epochs == 7
    assert config.data.buckets.shares == (0.6, 0.3, 0.1)
    assert config.data.missing_keys == "drop"
    assert config.data.users is not None and config.data.users.id == "u"


def test_bad_overrides_name_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match="trainer.max_epochs"):
        load_config(path, ["trainer.max_epochs"])  # no '='
    with pytest.raises(ConfigError, match=r"data\.split\.holdout_fraction.*number"):
        load_config(path, ["data.split.holdout_fraction=lots"])
    with pytest.raises(ConfigError, match="'seed' is not a section"):
        load_config(path, ["seed=1", "seed.value=2"])


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_data_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, MINIMAL))
    assert isinstance(config.data, DataConfig)
    with pytest.raises(AttributeError):
        config.data.missing_keys = "drop"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------------
# traps: repeated --set, YAML 1.1 numbers, duplicate keys, ranges, run names


def test_repeated_set_keeps_every_override() -> None:
    from tailsynth.train.__main__ import build_parser

    args = build_parser().parse_args(["--config", "c.yaml", "--set", "seed=1", "--set", "trainer.max_epochs=2",
                                      "data.missing_keys=drop"])
    assert args.set == ["seed=1", "trainer.max_epochs=2", "data.missing_keys=drop"]


def test_exponent_notation_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "model:\n  ctgan: {generator_lr: 2e-4, critic_lr: 1E-3}\n")
    config = load_config(path, ["model.tvae.lr=5e-4"])
    assert config.model.ctgan.generator_lr == 2e-4 and config.model.ctgan.critic_lr == 1e-3
    assert config.model.tvae.lr == 5e-4


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=r"run\.yaml.*duplicate key 'seed'.*first given on line"):
        load_config(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text(yaml.safe_dump(MINIMAL) + "trainer: {batch_size: 8, batch_size: 16}\n")
    with pytest.raises(ConfigError, match="duplicate key 'batch_size'"):
        load_config(nested)


@pytest.mark.parametrize(("override", "key"), [
    ("data.max_train_rows=-1", "data.max_train_rows"),
    ("model.ctgan.generator_lr=-1", "model.ctgan.generator_lr"),
    ("model.ctgan.critic_lr=.nan", "model.ctgan.critic_lr"),
    ("model.tvae.lr=.inf", "model.tvae.lr"),
    ("seed=-1", "seed"),
    (f"seed={2**40}", "seed"),
    ("model.encoder.max_modes=0", "model.encoder.max_modes"),
    ("model.encoder.fit_sample_rows=0", "model.encoder.fit_sample_rows"),
    ("model.encoder.gmm_iterations=0", "model.encoder.gmm_iterations"),
    ("model.encoder.weight_threshold=1.5", "model.encoder.weight_threshold"),
    ("model.ctgan.embedding_dim=0", "model.ctgan.embedding_dim"),
    ("model.ctgan.generator_dims=[16, 0]", r"model.ctgan.generator_dims\[1\]"),
    ("model.tvae.embedding_dim=0", "model.tvae.embedding_dim"),
    ("trainer.limit_train_batches=0", "trainer.limit_train_batches"),
    ("trainer.limit_train_batches=0.0", "trainer.limit_train_batches"),
    ("trainer.limit_train_batches=1.5", "trainer.limit_train_batches"),
    ("trainer.batch_size=0", "trainer.batch_size"),
    ("gate.alpha=7", "gate.alpha"),
    ("gate.rare_k=-3", "gate.rare_k"),
    ("gate.max_auc=1.2", "gate.max_auc"),
    ("data.split.holdout_fraction=1", "data.split.holdout_fraction"),
    ("data.buckets.shares=[0.5, -0.3, 0.2]", r"data.buckets.shares\[1\]"),
    ("data.max_abs_value=0", "data.max_abs_value"),
    ("monitor.rows=0", "monitor.rows"),
    ("trainer.cpu_threads=0", "trainer.cpu_threads"),
    ("trainer.cpu_threads=-2", "trainer.cpu_threads"),
    ("data.split.bundle_holdout_rows=0", "data.split.bundle_holdout_rows"),
])
def test_out_of_range_values_are_refused_at_load(tmp_path: Path, override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"run\.yaml: {key}"):
        load_config(_write(tmp_path, MINIMAL), [override])


@pytest.mark.parametrize("limit", ["1", "3", "0.5", "1.0"])
def test_usable_batch_limits_load(tmp_path: Path, limit: str) -> None:
    config = load_config(_write(tmp_path, MINIMAL), [f"trainer.limit_train_batches={limit}"])
    assert config.trainer.limit_train_batches == yaml.safe_load(limit)


def _numeric_fields(cls: type, prefix: str = "") -> list[tuple[str, object]]:
    """(key path, field) of every field of the config tree whose type mentions int or float."""
    import dataclasses
    import typing

    found = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        inner = [hint, *typing.get_args(hint)]
        for candidate in list(inner):
            inner += list(typing.get_args(candidate))
        if any(dataclasses.is_dataclass(t) for t in inner):
            found += _numeric_fields(next(t for t in inner if dataclasses.is_dataclass(t)), f"{prefix}{f.name}.")
        elif any(t in (int, float) for t in inner):
            found.append((prefix + f.name, f))
    return found


def test_every_numeric_key_has_a_range() -> None:
    from tailsynth.models.config import RANGE

    fields = _numeric_fields(RunConfig)
    assert len(fields) > 40  # the walk really reaches every section
    # limit_train_batches is an int count or a float fraction: checked in TrainerConfig.__post_init__.
    unranged = [key for key, f in fields if RANGE not in f.metadata and key != "trainer.limit_train_batches"]
    assert unranged == []


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", ".", "", "back\\slash"])
def test_run_name_must_stay_inside_out_dir(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"name: .*plain folder name"):
        load_config(_write(tmp_path, {**MINIMAL, "name": name}))


def test_ctgan_batch_size_must_be_a_multiple_of_pac(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"batch_size=30 is not a multiple of model\.ctgan\.pac=4"):
        load_config(_write(tmp_path, MINIMAL), ["trainer.batch_size=30", "model.ctgan.pac=4"])
    assert load_config(_write(tmp_path, MINIMAL), ["trainer.batch_size=30", "model.kind=tvae",
                                                   "model.ctgan.pac=4"]).trainer.batch_size == 30


def test_batch_larger_than_the_training_rows_fails_before_encoding(tmp_path: Path, monkeypatch) -> None:
    from dataclasses import replace

    from tailsynth.models.encoder import TableEncoder
    from tailsynth.train.fit import fit

    def never(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the encoder was fitted before the batch size was checked")

    monkeypatch.setattr(TableEncoder, "fit", never)
    config = load_config(CONFIGS / "tiny.yaml", ["trainer.batch_size=100000"])
    with pytest.raises(ConfigError, match=r"trainer\.batch_size=100000 is larger than the \d+ training rows"):
        fit(replace(config, out_dir=str(tmp_path), name="big"))


@pytest.mark.parametrize(("columns", "message"), [
    ("[categroy]", r"'categroy' is not a column of the records; a condition must be one of the categorical columns "
                   r"\['Country', 'price_band', 'category', 'hour', 'dayofweek'\]"),
    ("[category, UnitPrice]", r"'UnitPrice' is a numerical column"),
    ("[category, category]", r"'category' is listed twice"),
    ("[pop_bucket]", r"'pop_bucket' is always the first condition"),
])
def test_condition_column_typo_fails_at_load_naming_the_key(columns: str, message: str, monkeypatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    """Before any table is read: the --summary path must not build records for a config that cannot train."""
    import tailsynth.train.records as train_records
    from tailsynth.train.__main__ import main

    def never(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the records were built before the condition columns were checked")

    monkeypatch.setattr(train_records, "build_records", never)
    with pytest.raises(ConfigError, match=r"model\.condition\.columns: " + message):
        load_config(CONFIGS / "online_retail_tvae.yaml", [f"model.condition.columns={columns}"])
    assert main(["--config", str(CONFIGS / "online_retail_tvae.yaml"), "--summary", "--set",
                 f"model.condition.columns={columns}"]) == 2
    assert "model.condition.columns" in capsys.readouterr().err
