"""The ARGN peer in its own process: MOSTLY AI's TabularARGN (mostlyai-engine), trained and timed stage by stage.

Runs inside the peers' virtual environment (`evaluate.peer_venv`), which holds mostlyai-engine and its heavy
dependencies; this module therefore imports only the standard library, pandas and the atomic writers of
`models/atomic.py`, loaded from this checkout by file path (the peers' venv does not hold tailsynth)
(never torch-side code of ours, never `models/` or `train/`):

    .venv-peers/bin/python -m tailsynth.evaluate.bench.peers.argn_worker --spec S --result R

The parent (`evaluate.bench`) writes the exact training rows our fit trains on to `spec["train_path"]`;
this worker runs the engine's own pipeline on them, each stage timed:

- `preprocess_s`: `split` + `analyze` + `encode` (the engine's own encoding). **`value_protection` is
  off**: on by default it replaces rare categories and clips extreme numbers, which would hide exactly the
  long tail the bench judges;
- `train_s`: `train` with `max_epochs` (equal epochs) or `max_training_time` (the equal wall-time budget,
  in the engine's minutes); the engine also stops early on its own validation loss and keeps its best
  checkpoint — that is its own means. Epochs and samples trained come from its progress log;
- `sample_s`: `generate` of `sample_rows` rows; `tail_s`: `generate` with `seed_data` of `tail_rows`
  rows fixing `bucket_column` to `tail_label` — the engine's conditional generation, which returns every
  row asked for.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd


def _atomic_writers() -> Any:
    """models/atomic.py of this checkout as a module: stdlib and pandas only, so the peers' venv can run it."""
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "models" / "atomic.py"
    spec = importlib.util.spec_from_file_location("tailsynth_atomic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __package__:  # imported as tailsynth.evaluate.bench.peers.argn_worker (tests, tailsynth's own venv)
    from tailsynth.models.atomic import write_json, write_table
else:  # run by file path in the peers' venv
    _atomic = _atomic_writers()
    write_json, write_table = _atomic.write_json, _atomic.write_table


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from mostlyai import engine

    say = _progress()
    workspace = Path(spec["workspace"])
    train_rows = pd.read_parquet(spec["train_path"])
    columns = list(spec["columns"])
    engine.set_random_state(int(spec["seed"]))
    encoding = {name: _encoding_type(kind) for name, kind in spec["sdtypes"].items()}
    result: dict[str, Any] = {"train_rows": len(train_rows), "engine_version": engine.__version__}
    say(f"argn: split, analyze (value_protection off) and encode {len(train_rows)} rows")
    started = time.perf_counter()
    engine.split(tgt_data=train_rows[columns], tgt_encoding_types=encoding, workspace_dir=workspace)
    engine.analyze(value_protection=False, workspace_dir=workspace)
    engine.encode(workspace_dir=workspace)
    result["preprocess_s"] = time.perf_counter() - started
    budget = spec.get("budget_s")
    limits = {"max_epochs": float(spec["epochs"])}
    if budget is not None:
        limits["max_training_time"] = float(budget) / 60.0  # the engine counts minutes
    say(f"argn: training ({', '.join(f'{k}={v:g}' for k, v in limits.items())}) on {spec['device']}")
    started = time.perf_counter()
    engine.train(device=spec["device"], workspace_dir=workspace, **limits)
    result["train_s"] = time.perf_counter() - started
    result.update(_progress_facts(workspace))
    say(f"argn: generating {spec['sample_rows']} rows")
    started = time.perf_counter()
    _generate(engine, workspace, sample_size=int(spec["sample_rows"]), device=spec["device"])
    result["sample_s"] = time.perf_counter() - started
    seed = pd.DataFrame({spec["bucket_column"]: [spec["tail_label"]] * int(spec["tail_rows"])})
    say(f"argn: generating {spec['tail_rows']} rows seeded with {spec['bucket_column']}={spec['tail_label']!r}")
    started = time.perf_counter()
    tail = _generate(engine, workspace, seed_data=seed, device=spec["device"])
    result["tail_s"] = time.perf_counter() - started
    result["tail_rows_requested"] = int(spec["tail_rows"])
    result["tail_rows_returned"] = len(tail)
    tail = _like_training(tail[[c for c in columns if c in tail.columns]], train_rows, spec["sdtypes"])
    write_table(spec["tail_path"], tail.reset_index(drop=True))
    return result


def _like_training(rows: pd.DataFrame, train_rows: pd.DataFrame, sdtypes: dict[str, str]) -> pd.DataFrame:
    """The engine's rows in the training rows' values and dtypes: it returns categories as strings ("10"
    for an hour category held as the integer 10), which the judge would count as unseen categories."""
    rows = rows.copy()
    for name in rows.columns:
        if sdtypes.get(name) == "categorical":
            seen = train_rows[name].dropna().unique()
            by_text = {str(value): value for value in seen}
            mapped = rows[name].astype("string").map(by_text)  # a dict lookup per value, no Python loop
            values = mapped.astype(object).where(mapped.notna(), rows[name].astype(object))
            dtype = train_rows[name].dtype
            rows[name] = values.astype(dtype) if isinstance(dtype, pd.CategoricalDtype) else values
        elif sdtypes.get(name) == "numerical":
            rows[name] = pd.to_numeric(rows[name], errors="coerce").astype(train_rows[name].dtype, errors="ignore")
    return rows


def _encoding_type(sdtype: str) -> str:
    """The engine's encoding type for one of our sdtypes."""
    types = {"categorical": "TABULAR_CATEGORICAL", "numerical": "TABULAR_NUMERIC_AUTO",
             "datetime": "TABULAR_DATETIME"}
    if sdtype not in types:
        raise ValueError(f"argn: sdtype {sdtype!r} has no engine encoding (expected one of {sorted(types)})")
    return types[sdtype]


def _generate(engine: Any, workspace: Path, *, device: str, **kwargs: Any) -> pd.DataFrame:
    """One `engine.generate` call; returns the rows it wrote to the workspace's SyntheticData folder."""
    engine.generate(workspace_dir=workspace, device=device, **kwargs)
    files = sorted((workspace / "SyntheticData").glob("*.parquet"))
    if not files:
        raise RuntimeError(f"argn: generate wrote no parquet files under {workspace / 'SyntheticData'}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _progress_facts(workspace: Path) -> dict[str, Any]:
    """Epochs, steps and samples trained, from the engine's progress log (last row)."""
    logs = sorted(workspace.glob("ModelStore/**/progress-messages.csv"))
    if not logs:
        return {}
    progress = pd.read_csv(logs[-1])
    if progress.empty:
        return {}
    last = progress.iloc[-1]
    facts: dict[str, Any] = {}
    for key, name in (("epoch", "epochs"), ("steps", "steps"), ("samples", "rows_trained")):
        if key in progress.columns and pd.notna(last[key]):
            facts[name] = float(last[key])
    if "val_loss" in progress.columns and progress["val_loss"].notna().any():
        facts["best_val_loss"] = float(progress["val_loss"].min())
    return facts


def _progress():
    def say(message: str) -> None:
        print(f"[bench:argn] {message}", flush=True)

    return say


def _peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tailsynth.evaluate.bench.peers.argn_worker", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, help="spec JSON written by the bench")
    parser.add_argument("--result", required=True, help="result JSON to write")
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    started = time.perf_counter()
    try:
        result = run(spec)
        result["status"] = "ok"
    except Exception as exc:  # recorded; the bench goes on with the next system
        traceback.print_exc()
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    result["worker_wall_s"] = time.perf_counter() - started
    result["peak_rss_mib"] = _peak_rss_mib()
    result["peak_gpu_mib"] = None
    write_json(args.result, result)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
