"""The YAML run-config loader: strict keys and types, overrides, and messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.errors import ConfigError
from train.config import DataConfig, RunConfig, load_config, to_dict

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
