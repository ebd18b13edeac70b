"""Count host synchronisations while our generators train on a GPU (part of `evaluate/gpu_check.sh`).

    python -m tailsynth.evaluate.bench.gpu_sync_check --steps 300 --rows 20000 --out sync.json

For each model kind it trains `steps` batches under `torch.cuda.set_sync_debug_mode("warn")`, which makes
torch warn at every operation that waits for the device (`.item()`, a device-to-host copy, `nonzero`, ...),
and counts the warnings raised **inside `training_step`** separately from those raised elsewhere in the
loop (Lightning's logger and our NaN guard copy losses to the host once every `log_every_n_steps` batches
by design). The target is zero inside the step. Each distinct source line is listed with its count.

Needs a CUDA device; without one it says so and exits 2 (its `--help` works anywhere).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from tailsynth.models.atomic import write_json


def count_syncs(kind: str, steps: int, rows: int, precision: str, config_path: str) -> dict[str, Any]:
    """Train `steps` batches of `kind` on CUDA and count the synchronising operations (see module doc)."""
    import lightning as L
    import torch

    from tailsynth.evaluate.bench.settings import load_bench_config
    from tailsynth.models.condition import ConditionSpec
    from tailsynth.models.encoder import TableEncoder
    from tailsynth.models.registry import build_module
    from tailsynth.train.datamodule import EncodedTableDataModule
    from tailsynth.train.finite_loss import FiniteLossGuard
    from tailsynth.train.fit import prepare_tables

    config, bench = load_bench_config(config_path)
    config = replace(config, data=replace(config.data, max_train_rows=rows), model=replace(config.model, kind=kind))
    _, train_rows, _, columns = prepare_tables(config)
    device = torch.device("cuda")
    encoder = TableEncoder(config.model.encoder).fit(train_rows, columns, device=device, seed=config.seed)
    encoded = encoder.transform(train_rows, device=device, generator=torch.Generator(device).manual_seed(0))
    spec = ConditionSpec.from_layout(encoder.layout, config.model.condition.columns)
    codes = spec.codes_from_encoded(encoded)
    batch_size = bench.best.ours_batch_size_gpu
    module = build_module(config.model, encoder.layout, spec, batch_size=batch_size)
    data = EncodedTableDataModule(encoded, codes, spec, config.model.condition, batch_size=batch_size, seed=0)
    inside = {"flag": False}
    step = module.training_step

    def flagged_step(*args: Any, **kwargs: Any) -> Any:
        inside["flag"] = True
        try:
            return step(*args, **kwargs)
        finally:
            inside["flag"] = False

    module.training_step = flagged_step  # type: ignore[method-assign]
    counts: dict[str, Counter] = {"inside_training_step": Counter(), "elsewhere": Counter()}

    def record(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if "synchroniz" in str(message).lower():
            counts["inside_training_step" if inside["flag"] else "elsewhere"][f"{filename}:{lineno}"] += 1

    trainer = L.Trainer(max_steps=steps, max_epochs=-1, accelerator="gpu", devices=1, precision=precision,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, log_every_n_steps=config.trainer.log_every_n_steps,
                        callbacks=[FiniteLossGuard(every_n_steps=config.trainer.log_every_n_steps)])
    with warnings.catch_warnings():  # restores the filters and showwarning afterwards
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.fit(module, datamodule=data)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return {
        "kind": kind, "precision": precision, "steps": steps, "batch_size": batch_size, "rows": len(train_rows),
        "syncs_inside_training_step": sum(counts["inside_training_step"].values()),
        "syncs_elsewhere": sum(counts["elsewhere"].values()),
        "sources": {where: dict(counter.most_common(20)) for where, counter in counts.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tailsynth.evaluate.bench.gpu_sync_check", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training batches per model kind")
    parser.add_argument("--rows", type=int, default=20_000, help="training rows of the built-in data")
    parser.add_argument("--kinds", nargs="+", default=["ctgan", "tvae"], choices=("ctgan", "tvae"),
                        help="model kinds to count, one after another")
    parser.add_argument("--precision", default="bf16-mixed", choices=("bf16-mixed", "32-true"),
                        help="our trainer's precision")
    parser.add_argument("--config", default="configs/bench_online_retail.yaml", help="bench YAML (its data section)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("error: gpu_sync_check needs a CUDA device; torch sees none", file=sys.stderr)
        return 2
    results = []
    for kind in args.kinds:
        print(f"[gpu_sync_check] {kind}: {args.steps} steps, {args.precision}", flush=True)
        results.append(count_syncs(kind, args.steps, args.rows, args.precision, args.config))
        print(f"[gpu_sync_check] {kind}: {results[-1]['syncs_inside_training_step']} syncs inside the step, "
              f"{results[-1]['syncs_elsewhere']} elsewhere", flush=True)
    write_json(Path(args.out), {"device": torch.cuda.get_device_name(0), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
