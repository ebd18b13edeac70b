"""Scale benchmark: peak memory and time of the training pipeline against the number of interactions.

    tailsynth evaluate bench-scale --rows 1000000 3000000 10000000 --out runs/bench_scale

For each size, a seeded retail-like table (`evaluate.scale_data`: 200k users and 50k items at 10M rows,
fewer in proportion) is written to parquet, then a fresh process (`bench-scale-worker`) runs `train.fit` on
it exactly as `tailsynth train` would: records, split, encoder fit on its sample, transform, one epoch on a
`data.max_train_rows` subsample (`--train-rows`), the bundle. The worker records each stage's seconds and
peak resident memory (Linux: the kernel's high-water mark, reset as each stage begins), so memory belongs
to the stage that used it and to this size alone. Writing the input table is outside the measured process.

Results go to `<out>/bench_scale.json` and `<out>/bench_scale.md` (rewritten after every size, so a long
run shows its progress). The target (issue 11): the 10M-row pipeline under 6 GiB peak. A benchmark, not a
test: times depend on the machine and its load; the memory figures are the ones to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tailsynth.models.atomic import write_json, write_text
from tailsynth.evaluate.bench.facts import machine_facts
from tailsynth.evaluate.bench.scale_data import scale_config, table_sizes, write_scale_tables

TARGET = {"rows": 10_000_000, "peak_rss_gib": 6.0}
CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000],
                        help="interaction counts to measure, one process each")
    parser.add_argument("--train-rows", type=int, default=200_000,
                        help="data.max_train_rows: the subsample the one epoch trains on")
    parser.add_argument("--kind", choices=("tvae", "ctgan"), default="tvae", help="the model trained (default tvae)")
    parser.add_argument("--out", default="runs/bench_scale", help="output folder (default runs/bench_scale)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated table and the training (default 0)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="run config overrides for every size, e.g. data.split.bundle_holdout_rows=null")
    parser.add_argument("--keep-data", action="store_true", help="keep the written input tables")


def run(args: argparse.Namespace) -> int:
    if any(rows < 100 for rows in args.rows) or args.train_rows < 1:
        raise ValueError(f"bench-scale: --rows must each be >= 100 and --train-rows >= 1, got {args.rows}, "
                         f"{args.train_rows}")
    scale_benchmark(args.rows, Path(args.out), train_rows=args.train_rows, kind=args.kind, seed=args.seed,
                    overrides=list(args.set), keep_data=args.keep_data)
    return 0


def scale_benchmark(sizes: list[int], out: Path, *, train_rows: int = 200_000, kind: str = "tvae", seed: int = 0,
                    overrides: list[str] | None = None, keep_data: bool = False) -> dict[str, Any]:
    """Measure every size in its own process (see module docstring); returns what bench_scale.json holds."""
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "command": "tailsynth evaluate " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "machine": machine_facts("cpu"), "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "train_rows": train_rows, "kind": kind, "seed": seed, "overrides": list(overrides or []),
        "target": TARGET, "sizes": [],
    }
    for rows in sizes:
        data = out / f"data_{rows}"
        _say(f"{rows:,} rows: writing the input tables ...")
        started = time.perf_counter()
        paths = write_scale_tables(rows, data, seed=seed)
        _say(f"{rows:,} rows: tables written in {time.perf_counter() - started:.1f}s; measuring in a fresh process")
        spec = {"rows": rows, "config": _run_config(paths, out, rows, train_rows, kind, seed),
                "overrides": list(overrides or [])}
        result = _run_worker(spec, out / f"result_{rows}.json")
        users, items = table_sizes(rows)
        summary["sizes"].append({"rows": rows, "users": users, "items": items, **result})
        if not keep_data:
            shutil.rmtree(data, ignore_errors=True)
        write_json(out / "bench_scale.json", summary)
        write_text(out / "bench_scale.md", markdown(summary))
        _say(f"{rows:,} rows: {result.get('status')}, peak {result.get('peak_rss_mib', 0) / 1024:.2f} GiB, "
             f"{result.get('wall_s', 0):.0f}s")
    return summary


def _run_config(paths: dict[str, Path], out: Path, rows: int, train_rows: int, kind: str, seed: int) -> dict:
    return {
        "name": f"rows_{rows}", "out_dir": str(out / "runs"), "seed": seed,
        "data": {**scale_config(paths), "max_train_rows": train_rows},
        "model": {"kind": kind, "condition": {"columns": ["category", "price_band"]}},
        "trainer": {"max_epochs": 1, "batch_size": 500, "accelerator": "cpu", "progress_bar": False},
    }


def _run_worker(spec: dict[str, Any], result_path: Path) -> dict[str, Any]:
    spec_path = result_path.with_name(result_path.stem + "_spec.json")
    write_json(spec_path, spec)
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tailsynth.evaluate", "bench-scale-worker", "--spec", str(spec_path),
               "--result", str(result_path)]
    done = subprocess.run(command, text=True)
    if not result_path.is_file():
        return {"status": "error", "error": f"the worker exited {done.returncode} without a result"}
    return json.loads(result_path.read_text())


# ---------------------------------------------------------------------------------------------------------
# the worker: one size, one process


def run_worker(spec_path: Path, result_path: Path) -> int:
    """Train on the spec's tables, recording each stage's seconds and peak RSS; always writes a result."""
    from tailsynth.train.config import RunConfig, apply_override, from_dict
    from tailsynth.train.fit import fit

    spec = json.loads(Path(spec_path).read_text())
    raw = spec["config"]
    for item in spec.get("overrides", []):
        apply_override(raw, item)
    meter = StageMeter()
    started = time.perf_counter()
    try:
        config = from_dict(RunConfig, raw, where="bench-scale spec")
        run_dir = fit(config, overwrite=True, on_stage=meter.begin)
        meter.begin("done")
        result: dict[str, Any] = {"status": "ok", **_bundle_facts(run_dir / "bundle")}
    except Exception as exc:  # recorded, so the parent goes on with the next size
        meter.begin("done")
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    result.update(wall_s=time.perf_counter() - started, stages=meter.stages, per_stage_peaks=meter.resettable,
                  peak_rss_mib=max([s["peak_rss_mib"] for s in meter.stages] + [_max_rss_mib()]))
    write_json(result_path, result)
    return 0 if result["status"] == "ok" else 1


class StageMeter:
    """Seconds and peak resident memory of each stage, from one `begin(name)` to the next.

    On Linux the peak is the kernel's VmHWM, reset at each `begin` (`/proc/self/clear_refs`), so a stage's
    figure is its own. Elsewhere (`resettable` False) each figure is the peak so far.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.stages: list[dict[str, Any]] = []
        self.resettable = _reset_peak()
        self._current: tuple[str, float] | None = None

    def begin(self, name: str) -> None:
        now = self.clock()
        if self._current is not None:
            stage, started = self._current
            self.stages.append({"stage": stage, "seconds": now - started, "peak_rss_mib": _stage_peak_mib(),
                                "rss_after_mib": _status_mib("VmRSS")})
            _say(f"  {stage}: {now - started:.1f}s, peak {self.stages[-1]['peak_rss_mib']:,.0f} MiB")
        self.resettable = _reset_peak() and self.resettable
        self._current = (name, self.clock())


def _reset_peak() -> bool:
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _status_mib(field: str) -> float | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _stage_peak_mib() -> float:
    peak = _status_mib("VmHWM")
    return peak if peak is not None else _max_rss_mib()


def _max_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # macOS reports bytes, Linux KiB


def _bundle_facts(bundle: Path) -> dict[str, Any]:
    manifest = json.loads((bundle / "bundle.json").read_text())
    files = {path.name: path.stat().st_size / 2**20 for path in sorted(bundle.iterdir()) if path.is_file()}
    return {"bundle_mib": sum(files.values()), "bundle_files_mib": files, "stored_rows": manifest["meta"]["rows"],
            "timings": manifest["meta"]["timings"]}


def _say(message: str) -> None:
    print(f"[bench-scale] {message}", flush=True)


# ---------------------------------------------------------------------------------------------------------
# the table


STAGE_ORDER = ("records", "split", "encoder_fit", "transform", "train", "bundle")


def markdown(summary: dict[str, Any]) -> str:
    """Peak RSS (MiB) and seconds per stage, one row per size, and whether the target is met."""
    header = "| rows | users | items | " + " | ".join(STAGE_ORDER) + " | peak (GiB) | bundle (MiB) | total (s) |"
    lines = [
        f"Scale benchmark: {summary['kind']}, one epoch on {summary['train_rows']:,} sampled training rows; "
        f"each stage's peak resident memory in MiB, then its seconds in parentheses. Target: "
        f"{TARGET['rows']:,} rows under {TARGET['peak_rss_gib']} GiB peak.",
        "", header, "|" + " ---: |" * (header.count("|") - 1),
    ]
    for size in summary["sizes"]:
        if size.get("status") != "ok":
            lines.append(f"| {size['rows']:,} | {size['users']:,} | {size['items']:,} | failed: "
                         f"{size.get('error', '?')} |")
            continue
        stages = {s["stage"]: s for s in size["stages"]}
        cells = [f"{stages[name]['peak_rss_mib']:,.0f} ({stages[name]['seconds']:.1f})" if name in stages else "–"
                 for name in STAGE_ORDER]
        lines.append(f"| {size['rows']:,} | {size['users']:,} | {size['items']:,} | " + " | ".join(cells)
                     + f" | {size['peak_rss_mib'] / 1024:.2f} | {size['bundle_mib']:.0f} | {size['wall_s']:.0f} |")
    for size in summary["sizes"]:
        if size.get("status") == "ok" and size["rows"] >= TARGET["rows"]:
            met = size["peak_rss_mib"] / 1024 < TARGET["peak_rss_gib"]
            lines += ["", f"{size['rows']:,} rows: peak {size['peak_rss_mib'] / 1024:.2f} GiB, target "
                          f"{'met' if met else 'NOT met'}."]
    return "\n".join(lines) + "\n"
