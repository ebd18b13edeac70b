"""`tailsynth gen augment` and `tailsynth gen cold-start`: the rows and `<out>.report.json`, as one unit.

Exit codes: 0 when rows were written - every requested row, or the groups that passed (the refused groups
and why are printed and in the report; `--all-or-nothing` makes any refusal emit nothing); 1 when nothing was
emitted (0 with --exit-zero); bad input raises the toolkit's error (the caller prints it and exits 2) before
anything is generated: the items table, the counts, the window and the memory the request needs are all
checked first. A refusal that emits nothing writes only its report (`gen.outputs`): a rows file an earlier
call left at --out stays, and the report (`output.rows: null`) says it does not describe it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from tailsynth.gen.gate_overrides import CallSettings, gate_config
from tailsynth.gen.items.pipeline import UNGATED, ItemsResult
from tailsynth.gen.limits import check_request
from tailsynth.gen.outputs import Output, report_path
from tailsynth.models.errors import DataError, TailsynthError

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle

SHOWN_FAILURES = 12


def per_item_arg(value: str, error: type[TailsynthError]) -> int | Literal["auto"]:
    if str(value) == "auto":
        return "auto"
    try:
        count = int(value)
    except ValueError:
        raise error(f"--per-item: expected a whole number >= 1 or 'auto', got {value!r}") from None
    if count < 1:
        raise error(f"--per-item: expected a whole number >= 1 or 'auto', got {count}")
    return count


def read_items(path: str, error: type[TailsynthError]) -> Any:
    from tailsynth.train.io import read_table

    try:
        return read_table(path, role="items")
    except DataError as exc:
        raise error(str(exc)) from None


def window_arg(window: list[str] | None, error: type[TailsynthError]) -> tuple[str, str] | None:
    """--window START END, each a date pandas can hold in nanoseconds (years 1677 to 2262)."""
    if window is None:
        return None
    for text in window:
        try:
            pd.Timestamp(text).as_unit("ns")
        except (ValueError, TypeError, OverflowError) as exc:
            raise error(f"--window {' '.join(window)}: {text!r} is not a date between "
                        f"{pd.Timestamp.min:%Y-%m-%d} and {pd.Timestamp.max:%Y-%m-%d} ({type(exc).__name__})") from None
    return (window[0], window[1])


def gate_arg(bundle: Bundle, args: argparse.Namespace, settings: CallSettings, command: str) -> Any:
    """False (--no-gate), None (the bundle's settings) or the bundle's settings with --set gate.* on top."""
    if args.no_gate:
        return False
    if not settings.gate:
        return None
    return gate_config(bundle.config.get("gate", {}), settings.gate, where=f"gen {command}", option="--set gate.*")


def bound_rows(bundle: Bundle, items: int, per_item: int | Literal["auto"], bucket: str, auto: str,
               gate: Any, settings: CallSettings, what: str) -> None:
    """Most rows the request can ask for, bounded (`gen.limits`) before any generation.

    auto: "median" (augment: at most the bucket's median count per item) or "max" (cold start: counts drawn
    from the bucket's real items, at most their largest)."""
    if per_item == "auto":
        buckets = bundle.table("buckets")
        counts = buckets.loc[(buckets["pop_bucket"] == bucket).to_numpy(), "count"].to_numpy(dtype=np.float64)
        counts = counts[counts >= 1]
        largest = (np.ceil(np.median(counts)) if auto == "median" else counts.max()) if counts.size else 1
        per = max(1, int(largest))
    else:
        per = int(per_item)
    chunk = 0 if gate is False else 4 * (gate.chunk_rows if gate is not None else
                                         int(bundle.config.get("gate", {}).get("chunk_rows", 10_000)))
    check_request(bundle, items * per, in_flight_rows=chunk, max_memory_gib=settings.max_memory_gib,
                  what=f"{what} ({items:,} items x {per:,} rows{' at most' if per_item == 'auto' else ''})")


def augment_cli(bundle: Bundle, args: argparse.Namespace, settings: CallSettings, output: Output) -> int:
    from tailsynth.gen.items.augment import augment
    from tailsynth.models.errors import AugmentError

    per_item = per_item_arg(args.per_item, AugmentError)
    items = read_items(args.items, AugmentError) if args.items else None
    gate = gate_arg(bundle, args, settings, "augment")
    if items is not None:
        count = len(items)
    else:
        buckets = bundle.table("buckets")
        count = int((buckets["pop_bucket"] == args.bucket).sum())
    bound_rows(bundle, count, per_item, args.bucket, "median", gate, settings, "gen augment")
    result = augment(bundle, args.bucket, per_item, items, seed=args.seed, gate=gate,
                     on_other_bucket="skip" if args.skip_other_buckets else "error",
                     all_or_nothing=args.all_or_nothing, **_users(args))
    return write_result(result, output, "existing items", args)


def cold_start_cli(bundle: Bundle, args: argparse.Namespace, settings: CallSettings, output: Output) -> int:
    from tailsynth.gen.items.cold_start import cold_start
    from tailsynth.models.errors import ColdStartError

    per_item = per_item_arg(args.per_item, ColdStartError)
    scale = auto_scale_arg(args.auto_scale, per_item)
    window = window_arg(args.window, ColdStartError)
    items = read_items(args.items, ColdStartError)
    gate = gate_arg(bundle, args, settings, "cold-start")
    bound_rows(bundle, len(items), per_item, args.bucket, "max", gate, settings, "gen cold-start")
    result = cold_start(bundle, items, per_item, args.bucket, seed=args.seed, window=window,
                        on_invalid="skip" if args.skip_invalid else "error",
                        gate=gate, all_or_nothing=args.all_or_nothing, **_users(args), **scale)
    return write_result(result, output, "new items", args)


def auto_scale_arg(value: str | None, per_item: int | Literal["auto"]) -> dict[str, float]:
    """--auto-scale F: gen.cold_start's `auto_scale` keyword (nothing when not given: the library's default)."""
    from tailsynth.models.errors import ColdStartError

    if value is None:
        return {}
    try:
        scale = float(value)
    except ValueError:
        scale = float("nan")
    if not scale > 0 or scale == float("inf"):
        raise ColdStartError(f"--auto-scale: expected a number > 0 (rows per predicted interaction), got {value!r}")
    if per_item != "auto":
        raise ColdStartError(f"--auto-scale {value}: scales --per-item auto only; --per-item {per_item} is exact")
    return {"auto_scale": scale}


def _users(args: argparse.Namespace) -> dict[str, Any]:
    """`users=` only when --users was given, so the library's default (`taste_plan.users_rule`) applies otherwise."""
    return {"users": args.users} if getattr(args, "users", None) else {}


def write_result(result: ItemsResult, output: Output, what: str, args: argparse.Namespace) -> int:
    """Rows and report as one unit (`gen.outputs`); a refusal writes the report alone and deletes nothing."""
    out = output.rows_path
    output.write(result.rows, result.report)
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
    if result.rows is None and out.exists():
        print(f"  {out} was left as it was: an earlier call wrote it, and this report does not describe it",
              file=sys.stderr)
    return 0 if result.rows is not None or args.exit_zero else 1


def summary(result: ItemsResult, what: str, out: Path) -> str:
    report, totals = result.report, result.report["totals"]
    union = report.get("union") or {}
    auc = (union.get("auc") or {}).get("value")
    worst = min((t["pvalue"] for t in union.get("tests", []) if t.get("pvalue") is not None), default=None)
    gate = (f"union of emitted groups: AUC {auc:.3f} (max {report['settings']['gate']['max_auc']:.2f}), smallest "
            f"column p {worst:.3g}" if auc is not None and worst is not None else "no group passed")
    gate += (report.get("taste") or {}).get("summary") or ""  # taste lift of the users (gen.items.taste_plan)
    if result.rows is None:
        return f"nothing emitted for {totals['items']:,} {what}: every group was refused ({gate}); report: {report_path(out)}"
    return (f"wrote {totals['rows_emitted']:,} of {totals['rows_requested']:,} gated rows for "
            f"{totals['items_emitted']:,} of {totals['items']:,} {what} ({totals['groups_emitted']} of "
            f"{totals['groups']} feature groups passed; {gate}) to {out}; report: {report_path(out)}")
