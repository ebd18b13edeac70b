"""Item-interaction throughput: gated synthetic interactions per second for new items (cold start) or for
the existing items of a bucket (`--augment`: tail augmentation) of a trained bundle.

    tailsynth evaluate bench-cold-start --bundle runs/tiny --items 200 --per-item 50 [--set gate.min_holdout_rows=50 ...]
    tailsynth evaluate bench-cold-start --bundle runs/online_retail_tvae --augment --per-item 3   # every tail item

`cold_start_benchmark` builds `items` new items from the bundle itself: the items it held out of training
(table `cold_holdout`) with their real features first, then new ids (`bench-00000`, ... or integers above
the largest training id) whose feature values are drawn, seeded, from the real items of the bucket (one
draw per item, so common feature combinations are common here too). It runs `gen.cold_start` with
`per_item` rows each through the gate and reports gated rows per second (rows emitted / cold-start wall
time, gate included), the wall times, the device and the verdict. A refused gate is reported, not
hidden: rows_per_s is then None. A benchmark, not a test.

Like `evaluate.bench`, this imports the generator side (gen, train) lazily, inside the function: it is the
part of evaluate/ that runs a trained model; the measures themselves stay free of models/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailsynth.models.atomic import write_json
from tailsynth.models.errors import ConfigError
from tailsynth.evaluate.bench.facts import machine_facts


def cold_start_benchmark(
    bundle_path: str | Path,
    *,
    items: int | None = 200,
    per_item: int = 50,
    seed: int = 0,
    bucket: str = "tail",
    gate: dict[str, Any] | None = None,
    device: str | None = None,
    augment: bool = False,
    min_lift: float | None = None,
) -> dict[str, Any]:
    """Gated cold-start rows/s on `items` new items x `per_item` rows (see module docstring); with `augment`,
    gated augmentation rows/s on the bucket's first `items` existing items (every item when items is None).

    gate: overrides of the bundle's gate settings (GateConfig field -> value), e.g. for a tiny bundle whose
    holdout is below the default min_holdout_rows; None uses the settings the model was trained with.
    min_lift: the gate's taste test (None: its default, `gen.items.taste_check.MIN_LIFT`).
    """
    import torch

    from tailsynth import gen
    from tailsynth.gen.gate_overrides import gate_config
    from tailsynth.gen.items.augment import augment as augment_items
    from tailsynth.gen.items.cold_start import cold_start

    if (items is not None and items < 1) or per_item < 1:
        raise ValueError(f"items and per_item must be at least 1, got items={items}, per_item={per_item}")
    started = time.perf_counter()
    bundle = gen.load(bundle_path, device=device)
    load_s = time.perf_counter() - started
    if augment:
        buckets = bundle.table("buckets")
        known = buckets["item"].isin(bundle.table("train")[bundle.role("item_id")[0]])
        chosen = buckets.loc[(buckets["pop_bucket"] == bucket).to_numpy() & known.to_numpy(), "item"]
        new_items = chosen if items is None else chosen.iloc[:items]
    else:
        new_items = bench_items(bundle, items or 200, bucket, np.random.default_rng(seed))
    config = gate_config(bundle.config.get("gate", {}), gate or {}, where="cold-start benchmark gate")
    where = next(bundle.module.parameters()).device
    _sync(where, torch)
    taste = {} if min_lift is None else {"min_lift": min_lift}
    started = time.perf_counter()
    if augment:
        result = augment_items(bundle, bucket, per_item, new_items.tolist(), seed=seed, gate=config, progress=False,
                               **taste)
    else:
        result = cold_start(bundle, new_items, per_item, bucket, seed=seed, gate=config, progress=False, **taste)
    _sync(where, torch)
    wall = time.perf_counter() - started
    report = result.report
    rows = 0 if result.rows is None else len(result.rows)
    return {
        "kind": "augment" if augment else "cold_start", "bundle": str(bundle.path), "device": str(where),
        "gpu": torch.cuda.get_device_name(where) if where.type == "cuda" else None,
        "items": len(new_items), "per_item": per_item, "bucket": bucket, "seed": seed,
        "groups": report["totals"]["groups"], "gate": {"overrides": gate or {}, "config": report["settings"]["gate"]},
        "verdict": report["verdict"], "rows_requested": report["totals"]["rows_requested"], "rows_emitted": rows,
        "items_emitted": report["totals"].get("items_emitted", 0), "groups_emitted": report["totals"].get("groups_emitted"),
        "rows_per_s": rows / wall if rows and wall > 0 else None,
        "rows_per_s_note": "rows emitted (all, or the groups that passed) / wall time of the call, gate included",
        "wall_s": wall, "load_s": load_s,
        "held_out_items": len(report.get("held_out_items", {}).get("items", [])),
        "failures": [f["message"] for f in report.get("failures", [])][:10],
        "machine": machine_facts(str(where)),
    }


def bench_items(bundle: Any, count: int, bucket: str, rng: np.random.Generator) -> pd.DataFrame:
    """`count` new items: the bundle's held-out items first, then new ids with real items' feature values."""
    id_column, features = bundle.role("item_id")[0], list(bundle.item_features)
    catalogue = bundle.table("items")
    buckets = bundle.table("buckets")
    in_bucket = catalogue[id_column].isin(buckets.loc[buckets["pop_bucket"] == bucket, "item"])
    held = catalogue.iloc[:0]
    if (Path(bundle.path) / "cold_holdout.parquet").is_file():  # trained with data.split.cold_items > 0
        held = catalogue[catalogue[id_column].isin(bundle.table("cold_holdout")[id_column])]
    allowed = np.ones(len(catalogue), dtype=bool)
    for column in features:  # only feature values the model knows
        allowed &= catalogue[column].isin(bundle.encoder.column(column).categories).to_numpy()
    pool = catalogue.loc[in_bucket.to_numpy() & allowed, features]
    if len(pool) == 0:
        raise ValueError(f"the bundle has no {bucket!r} items with known feature values to copy features from")
    held = held.iloc[:count][[id_column, *features]]
    extra = count - len(held)
    drawn = pool.iloc[rng.integers(0, len(pool), size=extra)].reset_index(drop=True)
    train_ids = bundle.table("train")[id_column]
    if pd.api.types.is_integer_dtype(train_ids.dtype):
        ids = pd.Series(int(train_ids.max()) + 1 + np.arange(extra), dtype=train_ids.dtype)
    else:
        ids = pd.Series([f"bench-{i:05d}" for i in range(extra)], dtype=object)  # ids, built once
    drawn.insert(0, id_column, ids)
    return pd.concat([held, drawn], ignore_index=True)


def _sync(device: Any, torch: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by `tailsynth evaluate bench-cold-start` and this module's main)."""
    parser.add_argument("--bundle", help="run directory written by tailsynth train (or its bundle/ folder)")
    parser.add_argument("bundle_path", nargs="?", metavar="RUN", help=argparse.SUPPRESS)  # deprecated: use --bundle
    parser.add_argument("--items", type=int, default=None,
                        help="new items to cold-start (default 200); with --augment: the bucket's first N items (default all)")
    parser.add_argument("--per-item", type=int, default=50, help="rows per item (default 50)")
    parser.add_argument("--augment", action="store_true", help="augment the bucket's existing items instead of new ones")
    parser.add_argument("--seed", type=int, default=0, help="seed of the new items' features, generation and the gate")
    parser.add_argument("--bucket", default="tail", help="the bucket the items belong to or are generated as (default tail)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    # As `tailsynth gen --set gate.KEY=VALUE` and `tailsynth train --set`: repeatable, values read as YAML scalars.
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="gate settings of this benchmark's call, repeatable: gate.KEY (a key of the config's "
                             "gate: section, e.g. gate.min_holdout_rows=50); the bundle's own settings otherwise")
    parser.add_argument("--out", help="also write the result as JSON here")


def bundle_argument(args: argparse.Namespace) -> str:
    """--bundle, or the run given positionally as before (deprecated, with a note on stderr)."""
    if args.bundle and args.bundle_path and args.bundle != args.bundle_path:
        raise ValueError(f"two runs given: --bundle {args.bundle} and {args.bundle_path}; give one, as --bundle")
    if args.bundle:
        return args.bundle
    if args.bundle_path:
        print(f"note: the run as a positional argument is deprecated; write --bundle {args.bundle_path}", file=sys.stderr)
        return args.bundle_path
    raise ValueError("bench-cold-start: the run directory is required: --bundle RUN")


def run(args: argparse.Namespace) -> int:
    from tailsynth.gen.gate_overrides import SET_OPTION, parse_settings

    settings = parse_settings(args.set, conditions=False)
    if settings.max_memory_gib is not None:
        raise ConfigError(f"bench-cold-start {SET_OPTION}: only gate.KEY settings apply here, not max_memory_gib")
    overrides = settings.gate
    result = cold_start_benchmark(bundle_argument(args), items=args.items, per_item=args.per_item, seed=args.seed,
                                  bucket=args.bucket, gate=overrides or None, device=args.device, augment=args.augment)
    if args.out:
        write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tailsynth.evaluate.bench.cold_start", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
