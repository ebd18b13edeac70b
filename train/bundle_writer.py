"""What a finished run saves for `gen.load`: the bundle manifest, the weights and the reference tables."""

from __future__ import annotations

import platform
import time
from importlib import metadata
from pathlib import Path

import lightning as L
import pandas as pd
import torch

from tailsynth.models.bundle import save_bundle
from tailsynth.models.condition import ConditionSpec, continuous_state
from tailsynth.models.encoder import TableEncoder
from tailsynth.train.config import RunConfig, to_dict
from tailsynth.train.records import Records
from tailsynth.train.split import capped_rows
from tailsynth.train.taste_fit import FittedTaste

# Reference tables stored beside the weights (parquet). The gate judges against `train`/`holdout`, cold
# start draws real users from `users` and checks new items against `items` and `buckets`.
# `holdout` is capped at data.split.bundle_holdout_rows (a seeded sample; `train.split.capped_rows`); `train`
# is what the model trained on, which data.max_train_rows bounds.
# `cold_holdout` (optional) holds every interaction of the items kept out of training for cold-start checks.
TABLES = ("train", "holdout", "buckets", "users", "items", "cold_holdout")


def package_versions() -> dict[str, str]:
    names = ("tailsynth", "torch", "lightning", "numpy", "pandas", "scipy", "pyarrow", "scikit-learn")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_run_bundle(
    directory: Path,
    *,
    config: RunConfig,
    module: L.LightningModule,
    encoder: TableEncoder,
    spec: ConditionSpec,
    records: Records,
    train_rows: pd.DataFrame,
    holdout_rows: pd.DataFrame,
    columns: dict[str, str],
    timings: dict[str, float],
    monitor_history: list[dict] | None = None,
    cold_rows: pd.DataFrame | None = None,
    taste: FittedTaste | None = None,
) -> Path:
    cap = config.data.split.bundle_holdout_rows
    stored_holdout = capped_rows(holdout_rows, cap, seed=config.seed)
    manifest = {
        "kind": config.model.kind,
        "model": to_dict(config.model),
        "condition_columns": list(spec.columns),
        "condition_continuous": continuous_state(spec),  # names and standardisation (models.condition)
        "columns": columns,
        "schema": [{"name": c.name, "role": c.role, "sdtype": c.sdtype} for c in records.columns],
        "encoder": encoder.state(),
        "meta": {
            "config": to_dict(config),
            "seed": config.seed,
            "versions": package_versions(),
            "timings": timings,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rows": {"train": len(train_rows), "holdout": len(holdout_rows), "holdout_stored": len(stored_holdout),
                     "bundle_holdout_rows": cap},
            "cleaning": list(records.cleaning),
            "written_as": dict(records.written_as),
            "file_dtypes": dict(records.file_dtypes),
            "monitor": monitor_history or [],
        },
    }
    if taste is not None:  # the taste space and predictor: tensors and lists in taste.pt (weights_only)
        manifest["taste"] = taste.summary
    tables = {
        "train": train_rows,
        "holdout": stored_holdout,
        "buckets": records.buckets,
        "users": records.users,
        "items": records.items,
        "cold_holdout": cold_rows,
    }

    def add_tables(folder: Path) -> None:
        for name, table in tables.items():
            if table is not None:
                table.to_parquet(folder / f"{name}.parquet", index=False)
        if taste is not None:
            torch.save(taste.state(), folder / taste.summary["file"])

    return save_bundle(directory, manifest, module.state_dict(), extra_files=add_tables)
