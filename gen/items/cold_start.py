"""Cold start: gated synthetic interactions for new items that have features but no interactions yet.

    result = gen.cold_start(bundle, new_items, per_item="auto", bucket="tail", seed=0)
    if result.rows is not None:
        interactions = pd.concat([interactions, result.rows])   # same columns, dtypes and labels

1. The items table is checked (`gen.items.cold_items`): item id + the item features the model was conditioned
   on; unseen feature values, known ids, duplicate ids, missing columns are errors (or skipped items).
2. Each item gets its row count: `per_item`, or "auto" - its predicted popularity (`cold_items.item_counts`).
3. The rows are made, written and gated by the path augmentation shares (`gen.items.pipeline`): users
   chosen by taste (each item's vector predicted from its content, `gen.items.taste_plan`; or, with
   `users="demographic"`, matched on the generated user features), timestamps inside the window (default: the last 30 days of the
   training data) agreeing with the generated time parts, which are then derived from the written
   timestamp; judged per feature group against held-out rows with the same features, pooled where those
   are few, and as a union. The timestamp itself is not judged: the window is the caller's choice.
4. With items the bundle held out (`data.split.cold_items`), `held_out_items` compares their generated rows
   with their real interactions beside a floor of real rows of similar known items.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from tailsynth.gen.items.cold_items import (AUTO_SCALE, check_items, gate_config, gate_source, item_counts,
                                            known_bucket)
from tailsynth.gen.items.groups import device
from tailsynth.gen.items.pipeline import ItemsRequest, ItemsResult, generate_items
from tailsynth.gen.items.report import held_out_section
from tailsynth.gen.items.taste_check import MIN_LIFT
from tailsynth.gen.items.taste_plan import UsersRule
from tailsynth.gen.items.taste_users import (NEW_ITEMS_ACTIVITY_POWER, NEW_ITEMS_LIKE_FIRST_BUYERS,
                                             NEW_ITEMS_MIX_BY_GROUP, NEW_ITEMS_PER_USER_CAP, TasteSettings)
from tailsynth.gen.items.timestamps import default_window, parse_window
from tailsynth.gen.items.written import Placement, one
from tailsynth.models.errors import ColdStartError
from tailsynth.train.config import GateConfig

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle

SHOWN_SKIPPED = 20
"""Skipped items quoted in the warning; the report lists them all."""

NEW_ITEMS_TASTE = TasteSettings(per_user_cap=NEW_ITEMS_PER_USER_CAP, activity_power=NEW_ITEMS_ACTIVITY_POWER,
                                like_first_buyers=NEW_ITEMS_LIKE_FIRST_BUYERS, mix_by_group=NEW_ITEMS_MIX_BY_GROUP)
"""The chooser's default for new items: chosen on gated validation items (see the three constants)."""

ColdStartResult = ItemsResult
"""Cold start returns the result every gated call of `gen` returns."""


def cold_start(
    bundle: Bundle,
    items: pd.DataFrame,
    per_item: int | Literal["auto"] = "auto",
    bucket: str = "tail",
    *,
    seed: int = 0,
    window: tuple[str, str] | None = None,
    on_invalid: Literal["error", "skip"] = "error",
    gate: GateConfig | Literal[False] | None = None,
    all_or_nothing: bool = False,
    progress: bool = True,
    users: UsersRule | None = None,
    taste: TasteSettings | None = None,
    min_lift: float = MIN_LIFT,
    auto_scale: float = AUTO_SCALE,
) -> ItemsResult:
    """Gated synthetic interactions for the new `items` (see module docstring); ColdStartError for bad input.

    gate: None - the gate settings the model was trained with; a GateConfig - those; False - no gate. Either way
    the discriminator filter's cap is `new_items_ratio_quantile` (augment's `ratio_quantile` is not used here).
    users: "taste" / "demographic" / None (taste when the bundle has a taste space and a content predictor:
    each item's vector predicted from the content columns of `items`); taste: the chooser's settings (default
    `NEW_ITEMS_TASTE`);
    min_lift: the gate's taste test (pseudo-cold validation items);
    auto_scale: with per_item="auto", rows per predicted interaction (`cold_items.AUTO_SCALE`).
    """
    config = gate_config(bundle, gate)
    if config is not None:  # new items' filter cap (GateConfig.new_items_ratio_quantile)
        config = replace(config, ratio_quantile=config.new_items_ratio_quantile)
    known_bucket(bundle, bucket)
    stamps = bundle.table("train")[one(bundle, "timestamp")]
    span = parse_window(window) if window is not None else default_window(stamps)
    checked = check_items(bundle, items, on_invalid)
    if checked.skipped:
        shown = "; ".join(f"{e['item']!r} ({', '.join(e['reasons'])})" for e in checked.skipped[:SHOWN_SKIPPED])
        more = f"; and {len(checked.skipped) - SHOWN_SKIPPED} more" if len(checked.skipped) > SHOWN_SKIPPED else ""
        warnings.warn(f"cold start: skipped {len(checked.skipped)} invalid item(s) (all listed in the report's "
                      f"'skipped'): {shown}{more}", stacklevel=2)
    if len(checked.valid) == 0:
        raise ColdStartError(f"items table: none of the {len(items)} item(s) is valid; nothing to generate")
    counts, counts_rule = item_counts(bundle, checked.valid.iloc[:, 0], per_item, bucket, np.random.default_rng(seed),
                                      items, auto_scale)
    table = checked.valid.copy()
    table.insert(1, bundle.spec.columns[0], bucket)
    request = ItemsRequest(table, counts, bucket, Placement("window", span, "min"),
                           None, judge_timestamp=False, all_or_nothing=all_or_nothing, new_items=True, users=users,
                           taste=taste or NEW_ITEMS_TASTE, min_lift=min_lift, content=items)
    result, generated = generate_items(bundle, request, config, seed=seed, progress=progress)
    report = dict(result.report)
    report["settings"].update(gate_source=gate_source(gate), kind="cold_start", per_item=per_item,
                              rows_per_item=counts_rule, auto_scale=auto_scale, seed=seed,
                              on_invalid=on_invalid, users=(report.get("taste") or {}).get("users"))
    report["skipped"] = checked.skipped
    report["totals"].update(items_given=len(checked.valid) + len(checked.skipped), items_valid=len(checked.valid),
                            items_skipped=len(checked.skipped))
    records = generated.records
    if records is not None and len(records):
        held = held_out_section(bundle, records, checked.valid, bucket, seed=seed, device=device(bundle))
        if held is not None:
            report["held_out_items"] = held
    return ItemsResult(result.passed, result.rows, report)
