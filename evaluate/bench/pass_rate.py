"""How often a gated call emits: the rows `gen.augment` or `gen.cold_start` emits on seeds no benchmark scores.

    python -m tailsynth.evaluate.bench.pass_rate --bundle runs/online_retail_tvae --call augment --per-item 3 \
        [--seeds 12] [--threads 1] [--out FILE]
    python -m tailsynth.evaluate.bench.pass_rate --bundle runs/cold_spq --call cold-start --per-item 50|auto
        [--mix-by-group 0|1|2]            # the chooser's mix: 0 one target, 1 per feature group, 2 per judged unit
                                          # (TasteSettings.mix_by_group, mix_units; default: the call's own)

The gate refuses whole calls (a union's test, a taste test) and drops failing feature groups. Whether a call
emits decides most downstream figures of a few seeds, and three seeds cannot tell a call's pass rate from
luck. So the call is repeated on seeds from `PASS_SEEDS_FROM` (the benchmarks score seeds 0, 1, 2, ...) and
the rows it emits are counted: rows per seed, their mean share of the rows asked for, the refused calls and
each call's first failures. The JSON is rewritten after every call ("complete": false until the last), so a run
stopped early keeps the calls it made.
- augment: README command 1's call, `gen.augment(bundle, bucket, per_item, seed=s)`, every default, through the
  gate's view (`gate_view`: the gate half of the holdout, as the utility benchmark's tail study calls it), so no
  verdict counted here reads the rows that study scores. `--gate-share 0` gates on the whole holdout, as
  `gen augment` itself does: the product's own rate, whose verdicts read the scored rows (never choose a
  setting on it);
- cold-start: the bundle's held-out new items (`data.split.cold_items`) through the gate's view, the call the
  utility benchmark scores (`NewItemsCall`), default settings (`--gate-share` as for augment).
The JSON holds the config (with the chooser's settings), the bundle's seed and the versions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from tailsynth.evaluate.utility.data import GATE_SHARE, gate_view
from tailsynth.gen.items.cold_items import AUTO_SCALE

PASS_SEEDS_FROM = 10
"""The first seed counted: away from the seeds the benchmarks score (0, 1, 2, ...)."""
SHOWN_FAILURES = 3
"""Failures kept per call (the report holds them all)."""


@dataclass(frozen=True)
class NewItemsCall:
    """The product's default call for the bundle's new items (`data.split.cold_items`) through the gate's view
    (`gate_view`): the call the utility benchmark scores. Only the new items' ids are read from their held-out
    table, never their rows."""

    generator: Any
    """The bundle as generation sees it: the gate half of the holdout."""
    items: pd.DataFrame
    """The new items' rows of the items table (id and content)."""
    bucket: str

    @classmethod
    def of(cls, bundle: Any, gate_share: float = GATE_SHARE) -> NewItemsCall | None:
        """None for a bundle without new items. gate_share: the holdout's share the gate judges against
        (`gate_view`; 0: the whole holdout)."""
        if not (bundle.path / "cold_holdout.parquet").is_file():
            return None
        item = bundle.role("item_id")[0]
        ids = pd.unique(bundle.table("cold_holdout")[item])
        items = bundle.table("items")
        return cls(gate_view(bundle, gate_share)[0], items[items[item].isin(ids)].reset_index(drop=True),
                   tuple(bundle.config["data"]["buckets"]["names"])[-1])

    def rows(self, settings: Any, seed: int, per_item: int | str, gate: Any = None,
             auto_scale: float = AUTO_SCALE) -> Any:
        """The call's result (`ItemsResult`: rows None when refused). settings: the chooser's (`TasteSettings`;
        None: gen.cold_start's default); gate: gen.cold_start's (None: the bundle's); auto_scale: gen.cold_start's."""
        from tailsynth import gen

        return gen.cold_start(self.generator, self.items, per_item=per_item, bucket=self.bucket, seed=seed,
                              gate=gate, progress=False, users="taste", taste=settings, auto_scale=auto_scale)


def emitted(call: Callable[[int], Any], seeds: Sequence[int], name: str | None = None,
            after_each: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """`call(seed)` -> an `ItemsResult` for each seed: {"seeds", "asked" (rows requested, from the reports),
    "rows" (emitted per seed), "share" (their mean over what was asked), "refused" (calls with no row),
    "failures" (each call's first ones)}. name: a progress line per call on stderr under this name (None: quiet);
    after_each: given the summary of the seeds done so far after each call (a stopped run keeps its failures)."""
    seeds = list(seeds)
    rows, asked, failures = [], [], []
    for seed in seeds:  # a handful of whole generation calls
        started = time.monotonic()
        result = call(seed)
        rows.append(0 if result.rows is None else len(result.rows))
        asked.append(int(result.report["totals"]["rows_requested"]))
        failures.append(list(result.report.get("refusals", []))[:SHOWN_FAILURES])
        if name is not None:
            print(f"  {name} seed {seed}: {rows[-1]:,} of {asked[-1]:,} rows, {time.monotonic() - started:.0f}s",
                  file=sys.stderr, flush=True)
        if after_each is not None and len(rows) < len(seeds):
            after_each(_summary(seeds[:len(rows)], rows, asked, failures))
    return _summary(seeds, rows, asked, failures)


def _summary(seeds: list[int], rows: list[int], asked: list[int], failures: list[list[str]]) -> dict[str, Any]:
    return {"seeds": seeds, "asked": max(asked, default=0), "rows": list(rows),
            "share": float(np.sum(rows)) / max(sum(asked), 1), "refused": sum(n == 0 for n in rows),
            "failures": list(failures)}


def _per_item(text: str) -> int | str:
    """A whole number >= 1 or "auto" (the calls' own check names a bad value)."""
    return text if text == "auto" else int(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tailsynth.evaluate.bench.pass_rate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="run directory written by tailsynth train")
    parser.add_argument("--call", choices=("augment", "cold-start"), default="augment")
    parser.add_argument("--per-item", type=_per_item, default=3, help="rows asked per item, or auto (default 3)")
    parser.add_argument("--bucket", default="tail", help="augment: the bucket (default tail)")
    parser.add_argument("--seeds", type=int, default=12, help=f"calls, on seeds {PASS_SEEDS_FROM}.. (default 12)")
    parser.add_argument("--gate-share", type=float, default=GATE_SHARE,
                        help=f"the holdout's share the gate judges against (default {GATE_SHARE}, the utility "
                             "benchmark's gate half; 0: the whole holdout, as gen augment and gen cold-start do)")
    parser.add_argument("--mix-by-group", type=int, choices=(0, 1, 2),
                        help="the chooser's users' mix: one target (0), per feature group (1, TasteSettings."
                             "mix_by_group), per unit the gate judges (2, and mix_units); default: the call's own")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", help="result JSON (default <run>/pass_rate_<call>.json)")
    args = parser.parse_args(argv)
    from pathlib import Path

    from tailsynth import gen
    from tailsynth.gen.items.augment import AUGMENT_TASTE
    from tailsynth.gen.items.cold_start import NEW_ITEMS_TASTE
    from tailsynth.models.atomic import write_json
    from tailsynth.train.bundle_writer import package_versions

    torch.set_num_threads(args.threads)
    bundle = gen.load(args.bundle, device="cpu")
    seeds = range(PASS_SEEDS_FROM, PASS_SEEDS_FROM + args.seeds)
    try:  # gate_view names a share outside [0, 1)
        if args.call == "augment":
            view = gate_view(bundle, args.gate_share)[0]
        else:
            call = NewItemsCall.of(bundle, args.gate_share)
    except ValueError as exc:
        parser.error(f"--gate-share: {exc}")
    default = AUGMENT_TASTE if args.call == "augment" else NEW_ITEMS_TASTE
    taste = default if args.mix_by_group is None else replace(default, mix_by_group=args.mix_by_group >= 1,
                                                              mix_units=args.mix_by_group == 2)
    out = Path(args.out) if args.out else bundle.path.parent / f"pass_rate_{args.call}.json"
    head = {"bundle": str(bundle.path), "config": {**vars(args), "taste": taste.plain()},
            "training_seed": bundle.seed, "versions": package_versions()}

    def write(result: dict[str, Any], complete: bool = False) -> None:  # after each call: a stopped run keeps them
        write_json(out, {**head, "complete": complete, **result})

    if args.call == "augment":
        result = emitted(lambda seed: gen.augment(view, args.bucket, args.per_item, seed=seed, progress=False,
                                                  taste=taste), seeds, args.call, write)
    else:
        if call is None:
            parser.error(f"{args.bundle}: the bundle holds no new items (train it with data.split.cold_items)")
        result = emitted(lambda seed: call.rows(taste, seed, args.per_item), seeds, args.call, write)
    write(result, complete=True)
    print(f"wrote {out}: {result['share']:.0%} of the rows asked for on average, {result['refused']} of "
          f"{len(result['rows'])} calls refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
