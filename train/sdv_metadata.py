"""SDV metadata in, tailsynth data config out: a user who has described their tables for SDV need not repeat it.

SDV's multi-table metadata (the `Metadata` object, its `to_dict()` form, or the JSON file SDV saves)
already says each column's sdtype, each table's primary key and the foreign keys between tables. The
interactions table is the child of both feature tables; its foreign keys are the user and item ids; its
one datetime column is the timestamp; its other columns are event columns. SDV is not imported here: an
SDV `Metadata` object is read through its `to_dict()`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tailsynth.models.errors import ConfigError
from tailsynth.train.config import DataConfig, from_dict

ROLES = ("interactions", "users", "items")
# SDV sdtypes we model directly; boolean columns are modelled as categories. Anything else (PII sdtypes
# such as email or phone_number, or unknown ones) must be dropped from the metadata first.
SDTYPES = {"categorical": "categorical", "boolean": "categorical", "numerical": "numerical",
           "datetime": "datetime", "id": "id"}


def data_config_from_sdv(
    metadata: Any,
    paths: Mapping[str, str],
    *,
    tables: Mapping[str, str] | None = None,
    timestamp: str | None = None,
    **options: Any,
) -> DataConfig:
    """A `DataConfig` from SDV metadata plus the file of each table.

    `paths` maps roles ("interactions", and optionally "users", "items") to files; `tables` maps roles to
    the metadata's table names (default: the role names). `options` are further DataConfig keys
    (buckets, split, missing_keys, ...), validated like YAML.
    """
    spec = _as_dict(metadata)
    names = {role: (tables or {}).get(role, role) for role in ROLES}
    all_tables = spec.get("tables", {})
    if names["interactions"] not in all_tables:
        raise ConfigError(f"SDV metadata: no table {names['interactions']!r} for the interactions (tables: {sorted(all_tables)})")
    interactions = all_tables[names["interactions"]]
    keys = _foreign_keys(spec, names["interactions"])
    configs: dict[str, Any] = {}
    id_columns: dict[str, str] = {}
    for role in ("users", "items"):
        if role not in paths:
            continue
        table = all_tables.get(names[role])
        if table is None:
            raise ConfigError(f"SDV metadata: no table {names[role]!r} for the {role} (tables: {sorted(all_tables)})")
        key = table.get("primary_key")
        if names[role] not in keys:
            raise ConfigError(f"SDV metadata: no relationship links {names['interactions']!r} to its parent {names[role]!r}")
        id_columns[role] = keys[names[role]]
        features = {c: _sdtype(names[role], c, v) for c, v in table.get("columns", {}).items() if c != key}
        configs[role] = {"path": paths[role], "id": key, "columns": {c: t for c, t in features.items() if t != "id"}}
    columns = {c: _sdtype(names["interactions"], c, v) for c, v in interactions.get("columns", {}).items()}
    stamp = timestamp or _single_datetime(names["interactions"], columns)
    user_id = id_columns.get("users") or _id_column(names["interactions"], columns, "user", exclude=id_columns.values())
    item_id = id_columns.get("items") or _id_column(names["interactions"], columns, "item", exclude=[user_id])
    events = {c: t for c, t in columns.items() if c not in (stamp, user_id, item_id) and t != "id"}
    configs["interactions"] = {"path": paths["interactions"], "user_id": user_id, "item_id": item_id,
                               "timestamp": stamp, "columns": events}
    return from_dict(DataConfig, {**configs, **options}, where="SDV metadata")


def _as_dict(metadata: Any) -> dict[str, Any]:
    if hasattr(metadata, "to_dict"):
        return metadata.to_dict()
    if isinstance(metadata, (str, Path)):
        path = Path(metadata)
        if not path.is_file():
            raise ConfigError(f"SDV metadata file {path} does not exist")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"SDV metadata file {path} is not valid JSON: {exc}") from None
    if isinstance(metadata, Mapping):
        return dict(metadata)
    raise ConfigError(f"SDV metadata: expected an SDV Metadata, a dict or a JSON path, got {type(metadata).__name__}")


def _foreign_keys(spec: Mapping[str, Any], child: str) -> dict[str, str]:
    """Parent table name -> the child's foreign-key column, for every relationship of `child`."""
    return {
        rel["parent_table_name"]: rel["child_foreign_key"]
        for rel in spec.get("relationships", [])
        if rel.get("child_table_name") == child
    }


def _sdtype(table: str, column: str, entry: Mapping[str, Any]) -> str:
    sdtype = entry.get("sdtype")
    if sdtype not in SDTYPES:
        raise ConfigError(
            f"SDV metadata: column {column!r} of table {table!r} has sdtype {sdtype!r}, which tailsynth does not "
            f"model (supported: {sorted(SDTYPES)}); drop it from the metadata or change its sdtype"
        )
    return SDTYPES[sdtype]


def _single_datetime(table: str, columns: Mapping[str, str]) -> str:
    found = [c for c, t in columns.items() if t == "datetime"]
    if len(found) != 1:
        raise ConfigError(f"SDV metadata: table {table!r} has datetime columns {found}; pass timestamp= to name the one to use")
    return found[0]


def _id_column(table: str, columns: Mapping[str, str], what: str, exclude: Any) -> str:
    """Without a feature table, the interactions' id columns are taken in metadata order (user, then item)."""
    ids = [c for c, t in columns.items() if t == "id" and c not in set(exclude)]
    if not ids:
        raise ConfigError(f"SDV metadata: table {table!r} has no id column left for the {what} id")
    return ids[0]
