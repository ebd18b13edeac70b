"""`--gate KEY=VALUE ...`: the one way every command (`gen sample`, `evaluate bench-cold-start`, `evaluate
utility`) changes a bundle's gate settings for one call.

    tailsynth gen sample --bundle runs/tiny --rows 500 --out rows.parquet --gate min_holdout_rows=50

Values are numbers when the text is one (YAML alone reads 1e-100 as text), else YAML's reading of it. The
result is the bundle's own gate settings with the overrides on top, validated like a config file (an unknown
key or a value out of range is a `ConfigError` naming the key). Kept light (no torch, no gate code) so a
command's `--help` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yaml

from tailsynth.models.errors import ConfigError

if TYPE_CHECKING:
    from tailsynth.train.config import GateConfig

OPTION = "--gate"


def add_gate_option(parser: argparse.ArgumentParser, applies_to: str = "") -> None:
    """Add `--gate KEY=VALUE ...` to a command; `applies_to` says which of its steps the settings change."""
    where = f" for {applies_to}" if applies_to else ""
    parser.add_argument(OPTION, nargs="*", default=[], metavar="KEY=VALUE",
                        help=f"gate setting overrides{where}, e.g. min_holdout_rows=50 max_auc=0.65 (keys of the "
                             "config's gate: section; the bundle's own settings otherwise)")


def scalar_setting(text: str) -> Any:
    """A KEY=VALUE setting's value: a number when the text is one, else YAML's reading of it."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["alpha=0.001", "max_auc=0.65"]` -> `{"alpha": 0.001, "max_auc": 0.65}`; ConfigError without '='."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{OPTION} {item!r}: expected KEY=VALUE, e.g. min_holdout_rows=50")
        overrides[key] = scalar_setting(value)
    return overrides


def gate_config(bundle_settings: Mapping[str, Any], overrides: Mapping[str, Any], *, where: str) -> GateConfig:
    """The bundle's gate settings (its config's `gate:` section) with `overrides` on top, validated."""
    from tailsynth.train.config import GateConfig, from_dict

    return from_dict(GateConfig, {**bundle_settings, **overrides}, where=f"{where} {OPTION}" if overrides else where)
