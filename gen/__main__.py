"""`tailsynth gen sample|augment|cold-start ...`: gated synthetic rows and their report, written as one unit.

Exit codes: 0 rows written; 1 the gate refused (nothing written but `<out>.report.json`, reasons printed;
0 instead with `--exit-zero`); 2 bad input (the message names the file, column or key).

Before any work every command checks its output (`gen.outputs`: the folder exists and is writable, the
path is no input of the call and lies in no bundle or run directory), locks it, and bounds the request
(`gen.limits`); so a bad path or an impossible request stops in a second, and a refusal never deletes a
file this call did not create. Settings of the call: `--set KEY=VALUE` (`gen.gate_overrides`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tailsynth.gen.gate_overrides import CallSettings, add_set_option
from tailsynth.models.errors import ConfigError, TailsynthError

if TYPE_CHECKING:  # the command line imports torch only once a command runs, so --help stays fast
    from tailsynth.gen.bundle import Bundle
    from tailsynth.gen.outputs import Output

MAX_SEED = 2**63 - 1


def seed_arg(text: str) -> int:
    """--seed: a whole number in [0, 2**63 - 1] (numpy's seed sequences refuse negative seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 2**63-1, got {value}")
    return value


def rows_arg(text: str) -> int:
    """--rows: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailsynth gen", description="Sample gated synthetic interactions.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{sample,augment,cold-start}")

    sample = commands.add_parser("sample", help="rows for a popularity bucket, through the fidelity gate")
    sample.add_argument("--bundle", required=True, help="run directory written by tailsynth train (or its bundle/ folder)")
    sample.add_argument("--bucket", default="tail", help="pop_bucket value to condition on (default tail)")
    sample.add_argument("--rows", type=rows_arg, required=True, help="number of rows to emit (at least 1)")
    _common_options(sample, conditions=True)
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
    cold.add_argument("--per-item", default="auto",
                      help="rows per item, or 'auto': each item's predicted popularity (its content neighbours' "
                           "training counts, within the bucket's real range)")
    cold.add_argument("--auto-scale", default=None, metavar="F",
                      help="with --per-item auto: rows per predicted interaction (default 1). More rows reach more "
                           "users in an item-item recommender but cost warm items more (append them at a lower "
                           "weight) and give the gate's tests more power: evaluate/bench/README.md, 'More rows per "
                           "new item'")
    cold.add_argument("--bucket", default="tail", help="the bucket the new items are generated as (default tail)")
    cold.add_argument("--skip-invalid", action="store_true", help="skip invalid items with a warning instead of failing")
    cold.add_argument("--window", nargs=2, metavar=("START", "END"),
                      help="timestamps lie in [START, END]; a bare date is its 00:00 (default: the last 30 days of the training timestamps)")
    _item_options(cold)
    return parser


def _common_options(parser: argparse.ArgumentParser, conditions: bool) -> None:
    parser.add_argument("--out", required=True,
                        help="output .parquet or .csv in an existing, writable folder; not an input of the call, not "
                             "inside a bundle or a run directory's folders (its top level is fine); a .report.json "
                             "is written beside it")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="seed of generation, users, timestamps and the gate, 0 to 2**63-1 (default 0)")
    parser.add_argument("--no-gate", action="store_true", help="emit raw generator rows without the gate (not for training data)")
    add_set_option(parser, conditions)


def _item_options(parser: argparse.ArgumentParser) -> None:
    _common_options(parser, conditions=False)
    parser.add_argument("--users", choices=("taste", "demographic"),
                        help="how rows get their users: by taste in the bundle's taste space (the default when the "
                             "bundle has one), or matched on the generated user features like the item's buyers "
                             "(demographic: no taste claim)")
    parser.add_argument("--all-or-nothing", action="store_true",
                        help="emit nothing unless every feature group passes the gate (default: emit the groups that pass)")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when every group was refused and nothing was emitted (demos)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except TailsynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from tailsynth.gen.gate_overrides import parse_settings
    from tailsynth.gen.outputs import claim_output
    from tailsynth.train.io import check_bundle_tables
    from tailsynth.train.threads import apply_cpu_threads, recorded_cpu_threads

    settings = parse_settings(args.set, conditions=args.command == "sample")
    if settings.gate and args.no_gate:
        raise ConfigError("--set gate.* and --no-gate together: gate settings only apply to gated rows")
    items = getattr(args, "items", None)
    with claim_output(args.out, inputs=[items], bundle=args.bundle) as output:  # before any work
        check_bundle_tables(args.bundle)  # a truncated table fails here, not after generation
        apply_cpu_threads(recorded_cpu_threads(args.bundle))  # the bundle's trainer.cpu_threads, or the default
        from tailsynth import gen

        bundle = gen.load(args.bundle)
        if args.command == "sample":
            return _sample(bundle, args, settings, output)
        from tailsynth.gen.items import cli

        handler = cli.augment_cli if args.command == "augment" else cli.cold_start_cli
        return handler(bundle, args, settings, output)


def _sample(bundle: Bundle, args: argparse.Namespace, settings: CallSettings, output: Output) -> int:
    from tailsynth import gen
    from tailsynth.gen.gate.report import format_refusal, write_gate_output
    from tailsynth.gen.gate_overrides import gate_config
    from tailsynth.gen.items.pipeline import UNGATED
    from tailsynth.gen.limits import check_request

    conditions = {"pop_bucket": args.bucket, **settings.condition}
    gate = gate_config(bundle.config.get("gate", {}), settings.gate, where="gen sample", option="--set gate.*")
    out = Path(args.out)
    check_request(bundle, args.rows, in_flight_rows=0 if args.no_gate else 4 * gate.chunk_rows,
                  max_memory_gib=settings.max_memory_gib, what=f"gen sample --rows {args.rows:,}")
    if args.no_gate:
        rows = gen.sample(bundle, args.rows, conditions, seed=args.seed)
        output.write(rows, {"verdict": "ungated", "passed": False, "warning": UNGATED, "rows": len(rows),
                            "conditions": conditions, "seed": args.seed, "provenance": bundle.provenance()})
        print(f"wrote {len(rows):,} UNGATED rows to {out} (report: {output.report_path})")
        print(UNGATED, file=sys.stderr)
        return 0
    result = gen.sample_gated(bundle, args.rows, conditions, gate=gate if settings.gate else None, seed=args.seed)
    write_gate_output(result, output)
    if not result.passed:
        print(format_refusal(result.report), file=sys.stderr)
        print(f"nothing emitted; report: {output.report_path}", file=sys.stderr)
        if out.exists():
            print(f"  {out} was left as it was: an earlier call wrote it, and this report does not describe it",
                  file=sys.stderr)
        return 0 if args.exit_zero else 1
    print(f"wrote {len(result.rows):,} gated rows to {out} (report: {output.report_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
