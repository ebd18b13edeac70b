"""`tailsynth gen sample|augment|cold-start ...`: gated synthetic rows written atomically.

Exit codes: 0 rows written; 1 the gate refused (nothing written but `<out>.report.json`, reasons printed;
0 instead with `--exit-zero`); 2 bad input (the message names the file, column or key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tailsynth.gen.gate_overrides import add_gate_option
from tailsynth.models.errors import ConfigError, DataError, TailsynthError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailsynth gen", description="Sample gated synthetic interactions.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{sample,augment,cold-start}")

    sample = commands.add_parser("sample", help="rows for a popularity bucket, through the fidelity gate")
    sample.add_argument("--bundle", required=True, help="run directory written by tailsynth train (or its bundle/ folder)")
    sample.add_argument("--bucket", default="tail", help="pop_bucket value to condition on (default tail)")
    sample.add_argument("--condition", nargs="*", default=[], metavar="COLUMN=VALUE", help="further item conditions")
    sample.add_argument("--rows", type=int, required=True, help="number of rows to emit")
    sample.add_argument("--out", required=True, help="output .parquet or .csv (a .report.json is written beside it)")
    sample.add_argument("--seed", type=int, default=0, help="seed of generation and the gate (default 0)")
    sample.add_argument("--no-gate", action="store_true", help="emit raw generator rows without the gate (not for training data)")
    add_gate_option(sample, "this call")
    sample.add_argument("--exit-zero", action="store_true",
                        help="exit 0 when the gate refuses (demos, pipelines that read the report); the refusal is "
                             "still printed and reported, and nothing is emitted")

    aug = commands.add_parser("augment", help="gated interactions for existing items of a bucket (the long tail)")
    aug.add_argument("--bundle", required=True, help="run directory written by tailsynth train (or its bundle/ folder)")
    aug.add_argument("--bucket", default="tail", help="the bucket whose items are augmented (default tail)")
    aug.add_argument("--items", help="optional table (.csv or .parquet) with an item id column: augment only these")
    aug.add_argument("--per-item", default="auto",
                     help="rows per item, or 'auto': max(1, the bucket's median count - the item's count)")
    aug.add_argument("--skip-other-buckets", action="store_true",
                     help="skip listed items of another bucket with a warning instead of failing")
    _item_options(aug)

    cold = commands.add_parser("cold-start", help="interactions for new items from their features alone")
    cold.add_argument("--bundle", required=True, help="run directory written by tailsynth train (or its bundle/ folder)")
    cold.add_argument("--items", required=True, help="new items table (.csv or .parquet): item id + conditioned item features")
    cold.add_argument("--per-item", default="auto", help="rows per item, or 'auto' to draw counts like real items of the bucket")
    cold.add_argument("--bucket", default="tail", help="the bucket the new items are generated as (default tail)")
    cold.add_argument("--skip-invalid", action="store_true", help="skip invalid items with a warning instead of failing")
    cold.add_argument("--window", nargs=2, metavar=("START", "END"),
                      help="timestamps lie in [START, END]; a bare date is its 00:00 (default: the last 30 days of the training timestamps)")
    _item_options(cold)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tailsynth.train.threads import apply_cpu_threads, recorded_cpu_threads

    apply_cpu_threads(recorded_cpu_threads(args.bundle))  # the bundle's trainer.cpu_threads, or the default
    try:
        if args.command == "sample":
            return _sample(args)
        from tailsynth import gen
        from tailsynth.gen.items import cli

        handler = cli.augment_cli if args.command == "augment" else cli.cold_start_cli
        return handler(gen.load(args.bundle), args)
    except TailsynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _sample(args: argparse.Namespace) -> int:
    from tailsynth import gen
    from tailsynth.models.atomic import write_table
    from tailsynth.gen.gate.report import format_refusal, write_gate_output
    from tailsynth.gen.gate_overrides import gate_config, parse_overrides

    if args.rows < 1:
        raise SystemExit("error: --rows must be at least 1")
    if not args.out.lower().endswith((".parquet", ".pq", ".csv", ".csv.gz")):
        raise DataError(f"--out {args.out}: expected a .parquet or .csv output file")  # before any generation
    conditions = {"pop_bucket": args.bucket, **_pairs(args.condition)}
    overrides = parse_overrides(args.gate)
    if overrides and args.no_gate:
        raise ConfigError("--gate and --no-gate together: gate settings only apply to gated rows")
    bundle = gen.load(args.bundle)
    gate = gate_config(bundle.config.get("gate", {}), overrides, where="gen sample") if overrides else None
    out = Path(args.out)
    if args.no_gate:
        write_table(out, gen.sample(bundle, args.rows, conditions, seed=args.seed))
        print(f"wrote {args.rows:,} UNGATED rows to {out}")
        return 0
    result = gen.sample_gated(bundle, args.rows, conditions, gate=gate, seed=args.seed)
    write_gate_output(result, out)
    if not result.passed:
        print(format_refusal(result.report), file=sys.stderr)
        print(f"nothing emitted; report: {out}.report.json", file=sys.stderr)
        return 0 if args.exit_zero else 1
    print(f"wrote {len(result.rows):,} gated rows to {out} (report: {out}.report.json)")
    return 0


def _item_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output .parquet or .csv (a .report.json is written beside it)")
    parser.add_argument("--seed", type=int, default=0, help="seed of generation, users, timestamps and the gate")
    parser.add_argument("--all-or-nothing", action="store_true",
                        help="emit nothing unless every feature group passes the gate (default: emit the groups that pass)")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when every group was refused and nothing was emitted (demos)")
    parser.add_argument("--no-gate", action="store_true", help="emit raw generator rows without the gate (not for training data)")


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --condition expects COLUMN=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


if __name__ == "__main__":
    sys.exit(main())
