"""`tailsynth evaluate`: the benchmark against SDV, a bundle's fidelity report, a fidelity check of any table,
and the downstream recommender utility of a bundle's rows.

    tailsynth evaluate bench --config configs/bench_online_retail.yaml --setting equal --rows 20000 --epochs 5
    tailsynth evaluate report --bundle runs/online_retail_ctgan --rows 5000
    tailsynth evaluate fidelity --real real.csv --synth synth.csv --columns columns.json --out report.json
    tailsynth evaluate utility --bundle runs/online_retail_tvae --seeds 3 --share 0.5
    tailsynth evaluate bench-scale --rows 1000000 3000000 10000000 --out runs/bench_scale

Errors a user can cause (a bad config, file or argument) print `error: ...` and exit with status 2.
Subcommand modules are imported inside their handlers so `--help` stays fast and `evaluate` imports no
model code until a command needs it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from tailsynth.evaluate.bench.settings import DEFAULT_SYSTEMS, SYSTEMS

SUBCOMMANDS = "{bench,bench-cold-start,bench-scale,report,fidelity,utility}"  # the *-worker commands are internal and left out of the help


def _bench(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tailsynth.evaluate.bench.compare import run_bench
    from tailsynth.evaluate.bench.settings import load_bench_config

    config, bench = load_bench_config(args.config, args.set)
    if args.device is not None:
        bench = replace(bench, device=args.device)
    if args.gpu_precision is not None:
        bench = replace(bench, gpu_precision=args.gpu_precision)
    out = Path(args.out) if args.out else Path("runs") / f"bench_{args.setting}"
    epochs = args.epochs if args.epochs is not None else config.trainer.max_epochs
    command = "tailsynth evaluate " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    run_bench(config, systems=tuple(args.systems), setting=args.setting, rows=args.rows, epochs=epochs,
              encoder_rows=args.encoder_rows, out=out, seed=args.seed, bench=bench, command=command,
              budget_s=args.budget_s, peer_venv=args.peer_venv)
    return 0


def _bench_worker(args: argparse.Namespace) -> int:
    from tailsynth.evaluate.bench.worker import run_worker

    return run_worker(args.system, Path(args.spec), Path(args.result))


def _report(args: argparse.Namespace) -> int:
    from tailsynth.evaluate.report.command import report_command

    return report_command(args.bundle, args.rows, args.seed)


def _fidelity(args: argparse.Namespace) -> int:
    from tailsynth.evaluate.report.command import fidelity_command

    return fidelity_command(args)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailsynth evaluate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar=SUBCOMMANDS)

    bench = commands.add_parser("bench", help="benchmark our generators against SDV 2.0 side by side")
    bench.add_argument("--config", default="configs/bench_online_retail.yaml", help="bench YAML (RunConfig + bench:)")
    bench.add_argument("--setting", choices=("equal", "best"), default="equal",
                       help="equal: same epochs/batch/layers/pac for all; best: each system at its best batch")
    bench.add_argument("--systems", nargs="+", choices=tuple(SYSTEMS), default=DEFAULT_SYSTEMS,
                       help="default: ours and SDV; argn (TabularARGN) runs from the peers' venv, created on "
                            "first use (--peer-venv)")
    # The bench's numbers are range-checked once, by run_bench (the CLI and Python callers alike).
    bench.add_argument("--rows", type=int, default=None, help="training rows (default: data.max_train_rows)")
    bench.add_argument("--epochs", type=int, default=None, help="epochs (default: trainer.max_epochs)")
    bench.add_argument("--encoder-rows", type=int, default=1_000_000,
                       help="rows for the encoder section (0 skips it)")
    bench.add_argument("--budget-s", type=float, default=None,
                       help="equal wall-time budget: every system trains for about this many seconds instead "
                            "of --epochs (ours: trainer.max_time_s; SDV: stopped at an epoch boundary; ARGN: "
                            "its max_training_time); our monitor is off")
    bench.add_argument("--peer-venv", default=None,
                       help="the peers' venv for argn (default: $TAILSYNTH_PEER_VENV, else ./.venv-peers)")
    bench.add_argument("--out", default=None, help="output folder (default: runs/bench_<setting>)")
    bench.add_argument("--seed", type=int, default=0, help="seed of every system's training and the measures (default 0)")
    bench.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                       help="overrides bench.device (auto: the GPU when there is one)")
    bench.add_argument("--gpu-precision", default=None, help="overrides bench.gpu_precision (e.g. bf16-mixed)")
    # As `tailsynth train --set`: action="extend" keeps every --set, values read by the same YAML scalar rule.
    bench.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="override any config key, e.g. monitor.enabled=false (repeatable; bench.* keys set the "
                            "bench section)")
    bench.set_defaults(handler=_bench)

    from tailsynth.evaluate.bench import cold_start as bench_cold_start

    cold = commands.add_parser("bench-cold-start", help="gated cold-start rows per second on a trained bundle")
    bench_cold_start.add_arguments(cold)
    cold.set_defaults(handler=bench_cold_start.run)

    from tailsynth.evaluate.bench import scale as bench_scale

    scale = commands.add_parser("bench-scale", help="peak memory and time of the training pipeline against rows")
    bench_scale.add_arguments(scale)
    scale.set_defaults(handler=bench_scale.run)
    scale_worker = commands.add_parser("bench-scale-worker", help="internal: one size of `bench-scale` in its own process")
    scale_worker.add_argument("--spec", required=True, help="JSON file with what to run (written by bench-scale)")
    scale_worker.add_argument("--result", required=True, help="JSON file to write the measurements to")
    scale_worker.set_defaults(handler=lambda args: bench_scale.run_worker(Path(args.spec), Path(args.result)))

    worker = commands.add_parser("bench-worker", help="internal: one system of `bench` in its own process")
    worker.add_argument("--system", required=True, choices=(*(s for s in SYSTEMS if s != "argn"), "encoder"), help="the system to run")
    worker.add_argument("--spec", required=True, help="JSON file with what to run (written by bench)")
    worker.add_argument("--result", required=True, help="JSON file to write the measurements to")
    worker.set_defaults(handler=_bench_worker)

    report = commands.add_parser("report", help="fidelity report of a trained bundle")
    report.add_argument("--bundle", required=True, help="run directory (or its bundle/ folder)")
    report.add_argument("--rows", type=_positive, default=5000,
                        help="synthetic rows per bucket, raw and through the gate (default 5000)")
    report.add_argument("--seed", type=int, default=0, help="seed of sampling, the gate and the measures (default 0)")
    report.set_defaults(handler=_report)

    fidelity = commands.add_parser("fidelity", help="fidelity of any synthetic table against a real one")
    fidelity.add_argument("--real", required=True, help="real (training) rows, .csv or .parquet: the reference for copies and distances, and "
                               "what the synthetic rows are compared against unless --holdout is given")
    fidelity.add_argument("--synth", required=True, help="synthetic table to judge (.csv or .parquet)")
    fidelity.add_argument("--columns", required=True, help="JSON mapping column -> sdtype, or a file holding it")
    fidelity.add_argument("--holdout", default=None,
                          help="real held-out rows: the synthetic rows are compared against these, beside the "
                               "real-vs-real floor (--real vs --holdout)")
    fidelity.add_argument("--by", default=None, help="also report per value of this column (e.g. pop_bucket)")
    fidelity.add_argument("--seed", type=int, default=0, help="seed of subsamples and the discriminator (default 0)")
    fidelity.add_argument("--out", required=True, help="the report to write (JSON)")
    fidelity.set_defaults(handler=_fidelity)

    from tailsynth.evaluate.utility import benchmark as utility

    utility_parser = commands.add_parser("utility", help="does a recommender trained with our rows recommend the "
                                                         "tail and cold-start items better? (tailsynth[utility])")
    utility.add_arguments(utility_parser)
    utility_parser.set_defaults(handler=utility.command)
    return parser


def _is_user_error(exc: Exception) -> bool:
    """Our error families (every one a `TailsynthError`) or a `ValueError` from a bad argument."""
    from tailsynth.models.errors import TailsynthError

    return isinstance(exc, (TailsynthError, ValueError))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tailsynth.train.threads import apply_cpu_threads, recorded_cpu_threads

    # Torch's CPU threads: a bundle's recorded trainer.cpu_threads, else the default (train.threads).
    bundle = getattr(args, "bundle", None)
    apply_cpu_threads(recorded_cpu_threads(bundle) if bundle else None)
    try:
        return int(args.handler(args) or 0)
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
