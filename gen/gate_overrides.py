"""Settings of one `gen` (or `evaluate`) call on top of the bundle's: `--set KEY=VALUE`, repeatable.

    tailsynth gen sample --bundle runs/tiny --rows 500 --out rows.parquet --set gate.min_holdout_rows=50 \\
        --set condition.category=bags --set max_memory_gib=8

Keys of `tailsynth gen --set`:
- `gate.KEY`: a key of the config's `gate:` section (the bundle's own settings otherwise), validated like a
  config file (an unknown key or a value out of range is a `ConfigError` naming the key);
- `condition.COLUMN` (`gen sample` only): a further item condition; the value is taken as the label's
  text, as it is written in the data;
- `max_memory_gib`: the memory a call may plan to use (default: half the machine's memory); a request
  estimated beyond it stops before any work (`gen.limits`).

Values are read by the YAML scalar rule of `tailsynth train --set` (`train.config.parse_yaml`: `1e-100` is
a number, `true` a boolean), so both commands read a value the same way. `add_gate_option` /
`parse_overrides` are the older `--gate KEY=VALUE ...` form for callers not yet on `--set`, read by the
same rule. Kept light (no torch, no gate code) so a command's `--help` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from tailsynth.models.errors import ConfigError

if TYPE_CHECKING:
    from tailsynth.train.config import GateConfig

OPTION = "--gate"
SET_OPTION = "--set"
SECTIONS = ("gate", "condition")
TOP_LEVEL = ("max_memory_gib",)


@dataclass(frozen=True)
class CallSettings:
    """What `--set` gave one gen call."""

    gate: dict[str, Any] = field(default_factory=dict)
    condition: dict[str, str] = field(default_factory=dict)
    max_memory_gib: float | None = None


def add_set_option(parser: argparse.ArgumentParser, conditions: bool) -> None:
    """Add `--set KEY=VALUE` (repeatable) to a gen command; `conditions`: whether `condition.COLUMN` is a key."""
    keys = "gate.KEY (a key of the config's gate: section, e.g. gate.min_holdout_rows=50)"
    if conditions:
        keys += ", condition.COLUMN (a further item condition, its value the label's text, e.g. condition.category=bags)"
    # action="extend": `--set a=1 --set b=2` keeps both, as `tailsynth train --set` does.
    parser.add_argument(SET_OPTION, nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help=f"settings of this call, repeatable; keys: {keys}, max_memory_gib (the memory a request "
                             "may plan to use; default half the machine's). Values are read as YAML scalars, like "
                             "tailsynth train --set. Replaces --gate k=v (now --set gate.k=v) and --condition C=V "
                             "(now --set condition.C=V)")


def parse_settings(items: Sequence[str], *, conditions: bool) -> CallSettings:
    """`["gate.alpha=0.01", "condition.category=bags"]` -> CallSettings; ConfigError naming a bad item."""
    gate: dict[str, Any] = {}
    condition: dict[str, str] = {}
    top: dict[str, Any] = {}
    allowed = ("gate.KEY, condition.COLUMN" if conditions else "gate.KEY") + ", " + ", ".join(TOP_LEVEL)
    for item in items:
        key, sep, text = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not key or (dot and not name):
            raise ConfigError(f"{SET_OPTION} {item!r}: expected KEY=VALUE, e.g. gate.min_holdout_rows=50")
        if dot and section == "gate":
            gate[name] = scalar_setting(text, item)
        elif dot and section == "condition" and conditions:
            condition[name] = text
        elif not dot and key in TOP_LEVEL:
            top[key] = scalar_setting(text, item)
        else:
            raise ConfigError(f"{SET_OPTION} {item!r}: unknown key {key!r}; expected one of {allowed}")
    memory = top.get("max_memory_gib")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, (int, float)) or not memory > 0):
        raise ConfigError(f"{SET_OPTION} max_memory_gib={memory!r}: expected a number of GiB above 0")
    return CallSettings(gate, condition, None if memory is None else float(memory))


def add_gate_option(parser: argparse.ArgumentParser, applies_to: str = "") -> None:
    """Add `--gate KEY=VALUE ...` to an evaluate command; `applies_to` says which of its steps it changes."""
    where = f" for {applies_to}" if applies_to else ""
    parser.add_argument(OPTION, nargs="*", default=[], metavar="KEY=VALUE",
                        help=f"gate setting overrides{where}, e.g. min_holdout_rows=50 max_auc=0.65 (keys of the "
                             "config's gate: section; the bundle's own settings otherwise)")


def scalar_setting(text: str, item: str | None = None) -> Any:
    """A KEY=VALUE setting's value, by the YAML scalar rule of `tailsynth train --set`."""
    from tailsynth.train.config import parse_yaml

    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{item or text!r}: the value is not valid YAML: {exc}") from None


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["alpha=0.001", "max_auc=0.65"]` -> `{"alpha": 0.001, "max_auc": 0.65}`; ConfigError without '='."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{OPTION} {item!r}: expected KEY=VALUE, e.g. min_holdout_rows=50")
        overrides[key] = scalar_setting(value, item)
    return overrides


def gate_config(bundle_settings: Mapping[str, Any], overrides: Mapping[str, Any], *, where: str,
                option: str = OPTION) -> GateConfig:
    """The bundle's gate settings (its config's `gate:` section) with `overrides` on top, validated."""
    from tailsynth.train.config import GateConfig, from_dict

    return from_dict(GateConfig, {**bundle_settings, **overrides}, where=f"{where} {option}" if overrides else where)


def bundle_gate(bundle: Any, overrides: Mapping[str, Any], *, where: str) -> GateConfig | None:
    """None (the bundle's own gate settings, a gen call's default) without overrides, else a GateConfig of the
    bundle's settings (its config's `gate:` section) with `overrides` on top, validated (`gate_config`)."""
    if not overrides:
        return None
    return gate_config(bundle.config.get("gate", {}), overrides, where=where)
