"""One benchmark system in its own process (`tailsynth evaluate bench-worker --system X --spec S --result R`).

A fresh process per system makes the peak memory (`ru_maxrss`, and torch's peak CUDA allocation) belong to
that system alone, and keeps one system's caches, threads and allocator state from slowing the next. The
parent writes a JSON spec; the worker trains, times, writes its conditional sample to `spec["tail_path"]`
(parquet) and its numbers to the result JSON. Judging the sample is the parent's job, so every system is
measured by the same code against the same real rows, outside the timed and memory-counted work.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailsynth.models.atomic import write_json, write_table
from tailsynth.evaluate.bench.settings import peer_from_dict
from tailsynth.evaluate.bench.peers.sdv import run_peer


def run_worker(system: str, spec_path: Path, result_path: Path) -> int:
    """Run `system` as described by the spec; always writes a result (status ok or error). Exit code 0/1."""
    if not Path(spec_path).is_file():
        raise ValueError(f"bench-worker: spec file {spec_path} does not exist (the bench writes it)")
    spec = json.loads(Path(spec_path).read_text())
    if spec.get("system") != system:
        raise ValueError(f"{spec_path}: the spec is for {spec.get('system')!r}, not {system!r}")
    _seed_globals(int(spec["seed"]))
    started = time.perf_counter()
    try:
        if system == "encoder":
            result = _encoder(spec)
        elif spec["family"] == "ours":
            result = _ours(spec)
        else:
            result = _peer(spec)
        result["status"] = "ok"
    except Exception as exc:  # recorded, and the parent goes on with the next system
        traceback.print_exc()
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    result["worker_wall_s"] = time.perf_counter() - started
    result.update(_peak_memory(spec.get("device", "cpu")))
    write_json(result_path, result)
    return 0 if result["status"] == "ok" else 1


def _seed_globals(seed: int) -> None:
    """The worker is a command-line entry point: the one place global seeding is allowed (SDV needs it)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress(system: str):
    def say(message: str) -> None:
        print(f"[bench:{system}] {message}", flush=True)

    return say


def _now(device: str) -> float:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter()


def _ours(spec: dict[str, Any]) -> dict[str, Any]:
    """Train with `train.fit`, then time an unconditional and a conditional draw from the loaded bundle."""
    from tailsynth import gen
    from tailsynth.train.config import RunConfig, from_dict
    from tailsynth.train.fit import fit

    say = _progress(spec["system"])
    config = from_dict(RunConfig, spec["config"], where="bench spec")
    device = spec["device"]
    say(f"training {config.model.kind} for {config.trainer.max_epochs} epoch(s), batch {config.trainer.batch_size}")
    run_dir = fit(config)
    bundle = gen.load(run_dir, device=device)
    meta = bundle.manifest["meta"]
    timings, history = dict(meta["timings"]), list(meta.get("monitor") or [])
    result: dict[str, Any] = {"run_dir": str(run_dir), "train_rows": int(meta["rows"]["train"]), "history": history}
    result.update(_our_training_times(timings, history))
    if timings.get("batches") is not None:  # a time budget may stop mid-epoch: count the rows drawn
        result["rows_trained"] = int(timings["batches"]) * config.trainer.batch_size
    say(f"sampling {spec['sample_rows']} rows")
    started = _now(device)
    gen.sample(bundle, spec["sample_rows"], seed=spec["seed"])
    result["sample_s"] = _now(device) - started
    condition = {spec["bucket_column"]: spec["tail_label"]}
    say(f"sampling {spec['tail_rows']} rows with {condition}")
    started = _now(device)
    tail = gen.sample(bundle, spec["tail_rows"], conditions=condition, seed=spec["seed"] + 1)
    result["tail_s"] = _now(device) - started
    result["tail_rows_requested"] = spec["tail_rows"]
    result["tail_rows_returned"] = len(tail)
    _write_sample(tail, spec)
    return result


def _our_training_times(timings: dict[str, Any], history: list[dict]) -> dict[str, Any]:
    """Encoder and per-epoch seconds of our fit.

    `train_s` in the manifest is the Trainer's wall time, monitoring included; the monitor's history holds
    the training seconds *excluding* monitoring at each monitored epoch, which is what compares with SDV
    (which does no monitoring). Without a history we fall back to the wall time.
    """
    epochs = int(timings.get("epochs") or 0)
    seconds = sorted({(int(h["epoch"]), float(h["train_seconds"])) for h in history})
    out: dict[str, Any] = {
        "encoder_fit_s": timings.get("encoder_fit_s"),
        "encoder_transform_s": timings.get("encoder_transform_s"),
        "trainer_wall_s": timings.get("train_s"),
        "epochs": epochs,
    }
    if seconds and seconds[-1][0] == epochs:
        out["train_s"] = seconds[-1][1]
        out["train_s_source"] = "monitor (excludes monitoring)"
        if [epoch for epoch, _ in seconds] == list(range(1, epochs + 1)):
            marks = [0.0] + [s for _, s in seconds]
            out["epoch_seconds"] = [b - a for a, b in zip(marks, marks[1:])]
    else:
        out["train_s"] = timings.get("train_s")
        out["train_s_source"] = "trainer wall time (includes monitoring)"
    out["seconds_per_epoch"] = out["train_s"] / epochs if epochs and out["train_s"] is not None else None
    return out


def _peer(spec: dict[str, Any]) -> dict[str, Any]:
    """Fit SDV on exactly the rows our fit trains on (`prepare_tables` with the same data config and seed)."""
    from tailsynth.train.config import RunConfig, from_dict
    from tailsynth.train.fit import prepare_tables

    say = _progress(spec["system"])
    config = from_dict(RunConfig, spec["config"], where="bench spec")
    say("building the training rows")
    _, train_rows, _, columns = prepare_tables(config)
    run = run_peer(
        peer_from_dict(spec["peer"]), train_rows, columns,
        condition={spec["bucket_column"]: spec["tail_label"]},
        sample_rows=spec["sample_rows"], tail_rows=spec["tail_rows"], progress=say,
    )
    _write_sample(run.tail if run.tail is not None else pd.DataFrame(columns=list(columns)), spec)
    return {"train_rows": len(train_rows), **run.timings}


def _encoder(spec: dict[str, Any]) -> dict[str, Any]:
    from tailsynth.evaluate.bench.encoder import encoder_benchmark

    _progress("encoder")(f"encoder benchmark on {spec['rows']} rows ({spec['device']})")
    return {"result": encoder_benchmark(spec["rows"], seed=spec["seed"], device=spec["device"])}


def _write_sample(rows: pd.DataFrame, spec: dict[str, Any]) -> None:
    keep = [c for c in spec["columns"] if c in rows.columns]
    write_table(spec["tail_path"], rows[keep].reset_index(drop=True))


def _peak_memory(device: str) -> dict[str, Any]:
    """Peak resident memory of this process (Linux reports KiB) and torch's peak CUDA allocation, in MiB."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 / 1024 / 1024 if sys.platform == "darwin" else 1 / 1024  # macOS reports bytes
    peak = {"peak_rss_mib": rss_kib * scale, "peak_gpu_mib": None}
    if device == "cuda":
        import torch

        peak["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return peak
