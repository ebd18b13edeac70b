"""`tailsynth evaluate bench`: tailsynth's generators against SDV 2.0's, side by side, in one run.

For every system (ours-ctgan, ours-tvae, sdv-ctgan, sdv-tvae) a subprocess (`evaluate.bench_worker`) trains
on exactly the rows `train.fit` trains on and records encoder fit + transform seconds, seconds per epoch,
training rows/s, the time to draw `sample_rows` rows and `tail_rows` tail rows (and how many came back:
SDV conditions by rejection), and its peak memory. The parent then judges every tail sample with the same
`evaluate.fidelity.measure` against the same holdout tail rows, next to the real-vs-real floor (training
tail rows against holdout tail rows), and reads our monitor history to find the time at which our model
first matched each SDV model's final tail fidelity. `out/bench.json` and `out/bench.md` are rewritten
atomically after every system, so an interrupted run leaves the systems finished so far.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tailsynth.models.atomic import write_json, write_table, write_text
from tailsynth.evaluate.bench.facts import machine_facts
from tailsynth.evaluate.bench.markdown import render_markdown
from tailsynth.evaluate.bench.settings import (
    DEFAULT_SYSTEMS, PAIRS, SYSTEMS, BenchSettings, Setting, ours_config, peer_settings, resolve_device,
    system_settings,
)
from tailsynth.evaluate.bench.peers.sdv import sdv_version
from tailsynth.evaluate.bench.peers.venv import ensure_peer_venv, peer_venv_dir

if TYPE_CHECKING:
    from tailsynth.train.config import RunConfig

SCHEMA = "tailsynth-bench/1"
SDV_OVER_OURS = ("encoder_s", "seconds_per_epoch", "median_seconds_per_epoch", "train_s", "sample_s", "tail_s_full",
                 "tail_s_per_1k_returned", "peak_rss_mib", "peak_gpu_mib")
"""Pair ratios reported as SDV/ours (times and memory: above 1, ours is cheaper); rows/s is ours/SDV."""


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def run_bench(
    config: RunConfig,
    *,
    systems: Sequence[str] = DEFAULT_SYSTEMS,
    setting: Setting = "equal",
    rows: int | None = None,
    epochs: int,
    encoder_rows: int,
    out: Path,
    seed: int = 0,
    bench: BenchSettings | None = None,
    command: str | None = None,
    budget_s: float | None = None,
    peer_venv: str | Path | None = None,
) -> dict[str, Any]:
    """Benchmark `systems` under `setting`; returns the report also written to `out/bench.json` and `.md`.

    `rows` caps the training rows (default: the config's data.max_train_rows); `encoder_rows=0` skips the
    encoder section. `bench` holds the per-setting hyper-parameters and device (default `BenchSettings()`).
    `budget_s`: the equal wall-time budget — every system trains for about that many seconds instead of
    `epochs` (ours: `trainer.max_time_s`; SDV: its epoch loop stops at the epoch boundary that keeps it
    within the budget; ARGN: its `max_training_time`). `peer_venv`: the peers' venv for argn
    (`evaluate.peer_venv`; default $TAILSYNTH_PEER_VENV or ./.venv-peers).
    """
    from tailsynth.train.config import to_dict
    from tailsynth.train.fit import prepare_tables

    bench = bench or BenchSettings()
    if min(bench.sample_rows, bench.tail_rows, bench.judge_rows) < 1:
        raise ValueError("bench.sample_rows, bench.tail_rows and bench.judge_rows must be positive")
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise ValueError(f"systems {unknown or list(systems)}: expected some of {list(SYSTEMS)}")
    # The bench's own bounds, checked here once for the CLI and Python callers alike (`tailsynth evaluate
    # bench` passes its numbers through unchecked; a ValueError is its exit status 2 with the message).
    if epochs < 1:
        raise ValueError(f"epochs {epochs}: expected at least 1")
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"budget_s {budget_s}: expected a positive number of seconds")
    if rows is not None and rows < 1:
        raise ValueError(f"rows {rows}: expected at least 1 training row")
    if encoder_rows < 0:
        raise ValueError(f"encoder_rows {encoder_rows}: expected 0 (skip the encoder section) or more")
    out = Path(out)
    device = resolve_device(bench)
    base = ours_config(config, "ours-ctgan", bench, setting=setting, epochs=epochs, rows=rows, seed=seed,
                       device=device, out=out)
    report: dict[str, Any] = {
        "schema": SCHEMA, "setting": setting, "device": device, "seed": seed,
        "epochs": None if budget_s is not None else epochs, "budget_s": budget_s,
        "bench": to_dict(bench), "machine": machine_facts(device, command), "systems": {}, "pairs": {},
    }
    budget = f"a {budget_s:g} s training budget" if budget_s is not None else f"{epochs} epoch(s)"
    say(f"setting {setting}, {budget}, device {device}; building the rows every system trains on")
    _, train_rows, holdout_rows, columns = prepare_tables(base)
    report["data"] = _data_facts(base, train_rows, holdout_rows, columns, bench)
    tables = _tail_tables(train_rows, holdout_rows, bench, base.monitor.rows, seed)
    judged = {name: kind for name, kind in columns.items() if name != bench.bucket_column}
    report["floor"] = _floor(tables, judged, bench, seed, device)
    workdir = out / "work"
    for index, system in enumerate(systems, start=1):
        say(f"system {index}/{len(systems)}: {system}")
        if SYSTEMS[system].family == "argn":
            report["systems"][system] = _run_argn(
                bench, epochs=epochs, budget_s=budget_s, seed=seed, device=device, train_rows=train_rows,
                columns=columns, workdir=workdir, peer_venv=peer_venv)
        else:
            report["systems"][system] = _run_system(
                system, config, bench, setting=setting, epochs=epochs, rows=rows, seed=seed, device=device,
                out=out, columns=columns, workdir=workdir, budget_s=budget_s)
        _judge(report["systems"][system], tables, judged, seed, device, bench.auc)
        _compare(report)
        _write(out, report)
    if encoder_rows > 0:
        say(f"encoder section: {encoder_rows} rows")
        spec = {"system": "encoder", "rows": encoder_rows, "seed": seed, "device": device}
        report["encoder"] = _spawn("encoder", spec, workdir, bench.system_timeout_s)
    _write(out, report)
    say(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return report


def _run_system(system: str, config: RunConfig, bench: BenchSettings, *, setting: Setting, epochs: int,
                rows: int | None, seed: int, device: str, out: Path, columns: dict[str, str],
                workdir: Path, budget_s: float | None = None) -> dict[str, Any]:
    from tailsynth.train.config import to_dict

    family = SYSTEMS[system].family
    run_config = ours_config(config, system, bench, setting=setting, epochs=epochs, rows=rows, seed=seed,
                             device=device, out=out, budget_s=budget_s)
    peer = (peer_settings(system, bench, setting=setting, epochs=epochs, device=device, budget_s=budget_s)
            if family == "sdv" else None)
    settings = system_settings(None if peer else run_config, peer)
    if family == "sdv" and sdv_version() is None:
        say(f"{system}: peer: not installed (pip install 'tailsynth[sdv]')")
        return {"status": "not installed", "settings": settings}
    spec = {
        "system": system, "family": family, "config": to_dict(run_config), "seed": seed, "device": device,
        "peer": dataclasses.asdict(peer) if peer else None, "columns": list(columns),
        "bucket_column": bench.bucket_column, "tail_label": bench.tail_label,
        "sample_rows": bench.sample_rows, "tail_rows": bench.tail_rows,
        "tail_path": str(workdir / f"{system}_tail.parquet"),
    }
    result = _spawn(system, spec, workdir, bench.system_timeout_s)
    result["settings"] = settings
    if result.get("status") == "ok":
        result["tail_sample"] = spec["tail_path"]
        result.update(_derived(result))
    return result


def _run_argn(bench: BenchSettings, *, epochs: int, budget_s: float | None, seed: int, device: str,
              train_rows: pd.DataFrame, columns: dict[str, str], workdir: Path,
              peer_venv: str | Path | None) -> dict[str, Any]:
    """TabularARGN on the same training rows, from the peers' venv (`evaluate.argn_worker`)."""
    from tailsynth.evaluate.bench.settings import BUDGET_MAX_EPOCHS

    settings = {"kind": "argn", "epochs": None if budget_s is not None else epochs, "budget_s": budget_s,
                "value_protection": False, "batch_size": "engine's own", "gpu": device == "cuda"}
    try:
        python = ensure_peer_venv(peer_venv_dir(peer_venv), progress=say)
    except RuntimeError as exc:
        say(f"argn: peer not available ({exc})")
        return {"status": "not installed", "error": str(exc), "settings": settings}
    workdir.mkdir(parents=True, exist_ok=True)
    train_path = write_table(workdir / "argn_train.parquet", train_rows[list(columns)].reset_index(drop=True))
    workspace = workdir / "argn_workspace"
    if workspace.exists():
        shutil.rmtree(workspace)  # the engine's split() refuses to reuse a workspace of an earlier run
    spec = {
        "system": "argn", "seed": seed, "device": device, "columns": list(columns), "sdtypes": columns,
        "epochs": BUDGET_MAX_EPOCHS if budget_s is not None else epochs, "budget_s": budget_s,
        "bucket_column": bench.bucket_column, "tail_label": bench.tail_label, "sample_rows": bench.sample_rows,
        "tail_rows": bench.tail_rows, "train_path": str(train_path), "workspace": str(workspace),
        "tail_path": str(workdir / "argn_tail.parquet"),
    }
    # The peers' venv does not hold tailsynth: the worker runs by file path and loads only models/atomic.py.
    command = [str(python), str(Path(__file__).resolve().parent / "peers" / "argn_worker.py")]
    result = _spawn("argn", spec, workdir, bench.system_timeout_s, command=command)
    result["settings"] = settings
    if result.get("status") == "ok":
        result["tail_sample"] = spec["tail_path"]
        result.update(_derived(result))
    return result


def _derived(result: dict[str, Any]) -> dict[str, Any]:
    """Measures computed the same way for every system from what its worker reported."""
    epoch_seconds = result.get("epoch_seconds") or []
    # The tail-draw time compares only when every asked-for row came back (SDV may return fewer or none).
    full = result.get("tail_rows_returned") == result.get("tail_rows_requested")
    # Rows trained: what the worker counted (a time budget stops ours mid-epoch; ARGN logs its samples),
    # else epochs x training rows.
    rows_trained = result.get("rows_trained")
    if rows_trained is None:
        rows_trained = result.get("train_rows", 0) * (result.get("epochs") or 0)
    return {
        "encoder_s": _total(result.get("encoder_fit_s"), result.get("encoder_transform_s")),
        "rows_trained": rows_trained,
        "epochs_trained": _ratio(rows_trained, result.get("train_rows")),
        # Rows of the training table seen per second of training, and its inverse per 1,000 rows.
        "train_rows_per_s": _ratio(rows_trained, result.get("train_s")),
        "s_per_1k_rows_trained": _ratio(result.get("train_s"), (rows_trained or 0) / 1000),
        # The median epoch resists one-off warm-up and stalls caused by other processes on a shared machine.
        "median_seconds_per_epoch": float(statistics.median(epoch_seconds)) if epoch_seconds else None,
        "tail_s_full": result.get("tail_s") if full else None,
        "tail_s_per_1k_returned": _ratio(result.get("tail_s"), result.get("tail_rows_returned", 0) / 1000),
    }


def _spawn(system: str, spec: dict[str, Any], workdir: Path, timeout_s: float | None,
           command: list[str] | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one system in a fresh interpreter; its result JSON (or the failure) comes back as a dict.

    `command` (default: our `bench-worker` under this interpreter) is given `--spec S --result R`.
    """
    spec_path, result_path = workdir / f"{system}_spec.json", workdir / f"{system}_result.json"
    write_json(spec_path, spec)
    result_path.unlink(missing_ok=True)
    started = time.perf_counter()
    if command is None:
        command = [sys.executable, "-m", "tailsynth.evaluate", "bench-worker", "--system", system]
    command = [*command, "--spec", str(spec_path), "--result", str(result_path)]
    try:
        completed = subprocess.run(command, check=False, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:  # the child is killed; the run goes on with the next system
        say(f"{system}: stopped after the {timeout_s} s limit (bench.system_timeout_s)")
        return {"status": "timeout", "error": f"stopped after {timeout_s} s"}
    if not result_path.is_file():
        say(f"{system}: the worker exited with {completed.returncode} and wrote no result")
        return {"status": "error", "error": f"worker exited with code {completed.returncode}, no result"}
    result = json.loads(result_path.read_text())
    result["process_wall_s"] = time.perf_counter() - started
    say(f"{system}: {result.get('status')} in {result['process_wall_s']:.1f} s" +
        (f" ({result.get('error')})" if result.get("status") != "ok" else ""))
    return result


# ---------------------------------------------------------------------------------------------------------
# judging: the same real rows and the same measure for every system


def _tail_tables(train_rows: pd.DataFrame, holdout_rows: pd.DataFrame, bench: BenchSettings, monitor_rows: int,
                 seed: int) -> dict[str, pd.DataFrame]:
    """Holdout tail rows (at most `judge_rows` of them, and the monitor's sample) and the training tail rows."""
    def tail(table: pd.DataFrame) -> pd.DataFrame:
        return table.loc[(table[bench.bucket_column] == bench.tail_label).to_numpy(dtype=bool, na_value=False)]

    holdout = tail(holdout_rows)
    if len(holdout) == 0:
        raise ValueError(f"the holdout has no {bench.bucket_column}={bench.tail_label!r} rows to judge against")
    # Exactly the reference rows train.monitor.FidelityMonitor compares against for this bucket.
    monitor = holdout.sample(min(len(holdout), monitor_rows), random_state=seed)
    if len(holdout) > bench.judge_rows:
        holdout = holdout.sample(bench.judge_rows, random_state=seed)
    return {"holdout": holdout, "monitor": monitor, "train": tail(train_rows)}


def _measure(real: pd.DataFrame, synth: pd.DataFrame, judged: dict[str, str], seed: int, device: str,
             auc: bool) -> dict:
    """The scalar measures of `evaluate.fidelity.measure` (per-column details are left out of the report)."""
    from tailsynth.evaluate.measures.fidelity import measure

    result = measure(real, synth, judged, seed=seed, auc=auc, device=device)
    return {k: v for k, v in result.items() if isinstance(v, (int, float)) or v is None}


def _floor(tables: dict[str, pd.DataFrame], judged: dict[str, str], bench: BenchSettings, seed: int,
           device: str) -> dict[str, Any]:
    """Real vs real: training tail rows against the same holdout rows, at the synthetic samples' sizes."""
    train = tables["train"]
    if len(train) == 0:
        return {"status": "no training tail rows"}
    say(f"real-vs-real floor: {len(train)} training tail rows vs {len(tables['holdout'])} holdout tail rows")
    full = train.sample(min(len(train), bench.tail_rows), random_state=seed)
    small = train.sample(min(len(train), len(tables["monitor"])), random_state=seed)
    return {"tail": _measure(tables["holdout"], full, judged, seed, device, bench.auc),
            "tail_monitor": _measure(tables["monitor"], small, judged, seed, device, bench.auc)}


def _judge(result: dict[str, Any], tables: dict[str, pd.DataFrame], judged: dict[str, str], seed: int,
           device: str, auc: bool) -> None:
    """Add `tail_fidelity` (sample vs all holdout tail rows) and `tail_fidelity_monitor` (the monitor's way)."""
    if result.get("status") != "ok":
        return
    say("judging the tail sample against the holdout tail rows")
    synth = pd.read_parquet(result["tail_sample"])
    if len(synth) == 0:
        result["tail_fidelity"] = result["tail_fidelity_monitor"] = None
        return
    result["tail_fidelity"] = _measure(tables["holdout"], synth, judged, seed, device, auc)
    # Same reference rows and sample size as our training monitor, so "time to reach" compares like with like.
    monitor = tables["monitor"]
    result["tail_fidelity_monitor"] = _measure(monitor, synth.head(len(monitor)), judged, seed, device, auc)


def _compare(report: dict[str, Any]) -> None:
    """Ratios SDV/ours for each CTGAN and TVAE pair, and our time to reach each SDV model's tail fidelity."""
    systems = report["systems"]
    for ours, peer in PAIRS:
        mine, theirs = systems.get(ours), systems.get(peer)
        if (mine or {}).get("status") != "ok" or (theirs or {}).get("status") != "ok":
            continue
        ratios = {key: _ratio(theirs.get(key), mine.get(key)) for key in SDV_OVER_OURS}
        ratios["train_rows_per_s"] = _ratio(mine.get("train_rows_per_s"), theirs.get("train_rows_per_s"))
        report["pairs"][f"{ours} vs {peer}"] = ratios
    for name, result in systems.items():
        if SYSTEMS[name].family != "ours" or result.get("status") != "ok":
            continue
        result["reach"] = {
            peer: _reach(result, target)
            for peer, target in systems.items()
            if SYSTEMS[peer].family != "ours" and target.get("status") == "ok" and target.get("tail_fidelity_monitor")
        }


def _reach(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """First monitored epoch at which our tail mean KS and AUC are both <= the peer's final values."""
    target = peer["tail_fidelity_monitor"]
    tail = sorted((h for h in ours.get("history", []) if h.get("bucket") == "tail"), key=lambda h: h["epoch"])
    hit = next((h for h in tail if _at_most(h.get("mean_ks"), target.get("mean_ks"))
                and _at_most(h.get("auc"), target.get("auc"))), None)
    peer_train = peer.get("train_s")
    peer_total = _total(peer.get("preprocess_s"), peer.get("encoder_s"), peer_train)
    entry: dict[str, Any] = {"target_mean_ks": target.get("mean_ks"), "target_auc": target.get("auc"),
                             "epoch": None, "train_seconds": None, "total_seconds": None,
                             "speedup_train": None, "speedup_total": None}
    if hit is not None:
        ours_total = _total(ours.get("encoder_s"), hit["train_seconds"])
        entry.update(epoch=hit["epoch"], mean_ks=hit.get("mean_ks"), auc=hit.get("auc"),
                     train_seconds=hit["train_seconds"], total_seconds=ours_total,
                     speedup_train=_ratio(peer_train, hit["train_seconds"]),
                     speedup_total=_ratio(peer_total, ours_total))
    return entry


def _at_most(value: Any, target: Any) -> bool:
    if target is None:  # the peer has no value for this measure: it does not constrain
        return True
    return value is not None and float(value) <= float(target)


def _total(*parts: Any) -> float | None:
    return None if any(p is None for p in parts) else float(sum(parts))


def _ratio(numerator: Any, denominator: Any) -> float | None:
    if numerator is None or denominator is None or float(denominator) <= 0:
        return None
    return float(numerator) / float(denominator)


def _data_facts(config: RunConfig, train_rows: pd.DataFrame, holdout_rows: pd.DataFrame, columns: dict[str, str],
                bench: BenchSettings) -> dict[str, Any]:
    bucket = bench.bucket_column
    return {
        "source": config.data.interactions.path, "max_train_rows": config.data.max_train_rows,
        "train_rows": len(train_rows), "holdout_rows": len(holdout_rows), "columns": columns,
        "train_buckets": train_rows[bucket].astype(str).value_counts().to_dict(),
        "holdout_buckets": holdout_rows[bucket].astype(str).value_counts().to_dict(),
        "monitor_rows": config.monitor.rows, "monitor_every_n_epochs": config.monitor.every_n_epochs,
    }


def _write(out: Path, report: dict[str, Any]) -> None:
    write_json(out / "bench.json", report)
    write_text(out / "bench.md", render_markdown(report))
