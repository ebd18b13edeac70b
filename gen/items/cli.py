"""`tailsynth gen augment` and `tailsynth gen cold-start`: write the emitted rows, then `<out>.report.json`.

Exit codes: 0 when rows were written - every requested row, or the groups that passed (the refused groups
and why are printed and in the report; `--all-or-nothing` makes any refusal emit nothing); 1 when nothing was
emitted (0 with --exit-zero); bad input raises the toolkit's error (the caller prints it and exits 2) before
anything is written.
A refusal that emits nothing removes an older rows file at --out, so no stale rows sit beside its report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tailsynth.gen.gate.report import report_path
from tailsynth.gen.items.pipeline import UNGATED, ItemsResult
from tailsynth.models.errors import DataError, TailsynthError

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle

OUT_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")
SHOWN_FAILURES = 12


def check_out(out: str, error: type[TailsynthError]) -> Path:
    path = Path(out)
    if not path.name.lower().endswith(OUT_SUFFIXES):
        raise error(f"--out {out}: expected a .parquet, .pq, .csv or .csv.gz path for the rows")
    return path


def per_item_arg(value: str, error: type[TailsynthError]) -> int | Literal["auto"]:
    if str(value) == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise error(f"--per-item: expected a whole number or 'auto', got {value!r}") from None


def read_items(path: str, error: type[TailsynthError]) -> Any:
    from tailsynth.train.io import read_table

    try:
        return read_table(path, role="items")
    except DataError as exc:
        raise error(str(exc)) from None


def augment_cli(bundle: Bundle, args: argparse.Namespace) -> int:
    from tailsynth.gen.items.augment import augment
    from tailsynth.models.errors import AugmentError

    out = check_out(args.out, AugmentError)
    per_item = per_item_arg(args.per_item, AugmentError)
    items = read_items(args.items, AugmentError) if args.items else None
    result = augment(bundle, args.bucket, per_item, items, seed=args.seed,
                     gate=False if args.no_gate else None,
                     on_other_bucket="skip" if args.skip_other_buckets else "error",
                     all_or_nothing=args.all_or_nothing)
    return write_result(result, out, "existing items", args)


def cold_start_cli(bundle: Bundle, args: argparse.Namespace) -> int:
    from tailsynth.gen.items.cold_start import cold_start
    from tailsynth.models.errors import ColdStartError

    out = check_out(args.out, ColdStartError)
    per_item = per_item_arg(args.per_item, ColdStartError)
    result = cold_start(bundle, read_items(args.items, ColdStartError), per_item, args.bucket, seed=args.seed,
                        window=tuple(args.window) if args.window else None,
                        on_invalid="skip" if args.skip_invalid else "error",
                        gate=False if args.no_gate else None, all_or_nothing=args.all_or_nothing)
    return write_result(result, out, "new items", args)


def write_result(result: ItemsResult, out: Path, what: str, args: argparse.Namespace) -> int:
    """Rows first (a report never sits beside a rows file it does not describe), then the report."""
    from tailsynth.models.atomic import write_json, write_table

    if result.rows is not None:
        write_table(out, result.rows)
    elif out.exists():
        out.unlink()
    write_json(report_path(out), result.report)
    totals = result.report["totals"]
    if result.report.get("verdict") == "ungated":
        print(f"wrote {len(result.rows):,} UNGATED rows for {totals['items']:,} {what} to {out}")
        print(UNGATED, file=sys.stderr)
        return 0
    print(summary(result, what, out))
    for message in result.report["refusals"][:SHOWN_FAILURES]:
        print(f"  refused: {message}", file=sys.stderr)
    more = len(result.report["refusals"]) - SHOWN_FAILURES
    if more > 0:
        print(f"  ... and {more} more (report: {report_path(out)})", file=sys.stderr)
    for line in result.report.get("advice", []):
        print(f"  try: {line}", file=sys.stderr)
    return 0 if result.rows is not None or args.exit_zero else 1


def summary(result: ItemsResult, what: str, out: Path) -> str:
    report, totals = result.report, result.report["totals"]
    union = report.get("union") or {}
    auc = (union.get("auc") or {}).get("value")
    worst = min((t["pvalue"] for t in union.get("tests", []) if t.get("pvalue") is not None), default=None)
    gate = (f"union of emitted groups: AUC {auc:.3f} (max {report['settings']['gate']['max_auc']:.2f}), smallest "
            f"column p {worst:.3g}" if auc is not None and worst is not None else "no group passed")
    if result.rows is None:
        return f"nothing emitted for {totals['items']:,} {what}: every group was refused ({gate}); report: {report_path(out)}"
    return (f"wrote {totals['rows_emitted']:,} of {totals['rows_requested']:,} gated rows for "
            f"{totals['items_emitted']:,} of {totals['items']:,} {what} ({totals['groups_emitted']} of "
            f"{totals['groups']} feature groups passed; {gate}) to {out}; report: {report_path(out)}")
