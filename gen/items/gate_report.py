"""The report of one item call (`gen.items.pipeline.generate_items`): its sections, built from the typed results
of the fill (`gen.gate.fill.Accounting`) and of the judgement (`gen.gate.verdict.UnitVerdict`).

Top-level keys, in order: settings, totals, item_values, provenance, [reference], holdout_privacy_trim, gate,
short_items, units, union, pair_repeats, [event_copies], items, verdict, passed, groups, failures, refusals,
advice, the writer's users / timestamps counters, user_pools, taste, seconds. A taste refusal and an ungated
call have their own shorter reports (`taste_refusal_report`, `ungated_report`). Nothing here decides
anything: the decisions are the pipeline's and the gate's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailsynth.evaluate.measures.privacy import copy_rate, event_copies
from tailsynth.gen.gate.advice import advice
from tailsynth.gen.gate.adherence import LabelRanges
from tailsynth.gen.gate.fill import Accounting
from tailsynth.gen.gate.verdict import UnitVerdict
from tailsynth.gen.items.taste_check import TasteCheck
from tailsynth.train.config import GateConfig, to_dict

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle
    from tailsynth.gen.items.groups import Group
    from tailsynth.gen.items.pipeline import ItemsRequest

TASTE_ADVICE = ("the taste space predicts too little of who takes which item on this data (few interactions per "
                "user or item, or item content that says little): train on more interactions, or give the items "
                "richer content columns (data.items.text); users='demographic' makes no taste claim at all")


def base_report(bundle: Bundle, request: ItemsRequest, groups: list[Group], config: GateConfig | None) -> dict:
    return {
        "settings": {"bucket": request.bucket, "placement": request.placement.kind,
                     "window": request.placement.window.plain(), "timestamp_unit": request.placement.unit,
                     "timestamp_judged": request.judge_timestamp, "all_or_nothing": request.all_or_nothing,
                     "gate": None if config is None else to_dict(config)},
        "totals": {"items": len(request.items), "groups": len(groups), "rows_requested": int(request.counts.sum()),
                   "rows_emitted": 0},
        "item_values": None if request.item_values is None else request.item_values.info,
        "provenance": bundle.provenance(),
    }


def ungated_report(bundle: Bundle, request: ItemsRequest, groups: list[Group], records: pd.DataFrame,
                   warning: str, stats: dict, pool_stats: dict | None, taste: dict) -> dict:
    """Every drawn row is returned, unjudged: the report says so and lists the groups as UNGATED."""
    report = base_report(bundle, request, groups, None)
    report["user_pools"] = pool_stats
    report["taste"] = taste
    report.update(verdict="ungated", passed=False, warning=warning, **stats,
                  groups=[{"label": g.label, "conditions": g.conditions, "items": len(g.items), "rows": g.rows,
                           "seed": g.seed, "gate": "UNGATED"} for g in groups],
                  items=item_entries(request.items, request.counts, groups, records))
    report["totals"]["rows_emitted"] = len(records)
    return report


def taste_refusal_report(bundle: Bundle, request: ItemsRequest, groups: list[Group], config: GateConfig,
                         check: TasteCheck, taste: dict) -> dict:
    """Nothing emitted: the users the chooser picks for validation items are too close to random."""
    report = base_report(bundle, request, groups, config)
    failure = {"measure": "taste", "lift": check.lift, "min_lift": request.min_lift, "message": check.message}
    report.update(verdict="refused", passed=False, failures=[failure], refusals=[check.message],
                  advice=[TASTE_ADVICE], groups=[], units=[], union=None,
                  items=item_entries(request.items, request.counts, groups, pd.DataFrame({"_item": []})),
                  taste=taste)
    report["totals"].update(items_emitted=0, groups_emitted=0, groups_refused=len(groups))
    return report


def gate_section(accounting: Accounting, budget: int, discriminator_filter: dict, ranges: LabelRanges,
                 raw: pd.DataFrame, accepted: pd.DataFrame, holdout: pd.DataFrame, judged: list[str],
                 tested: list[str]) -> dict:
    """The report's "gate": the fill's accounting, the filter, the adherence rates, the judged columns."""
    adherence = {"rule": "share of rows whose numerical columns lie in the range real training rows of the same "
                         "condition label take (gen.gate.adherence); inconsistent candidates are dropped",
                 "raw_candidates": ranges.rates(raw), "accepted": ranges.rates(accepted),
                 "real_holdout": ranges.rates(holdout)}
    return {**accounting.to_dict(budget), "discriminator_filter": discriminator_filter, "adherence": adherence,
            "label_ranges": ranges.plain(), "judged_columns": judged, "tested_columns": tested}


def short_items_section(items: pd.DataFrame, counts: np.ndarray, short_items: np.ndarray,
                        budget_message: str) -> dict:
    """Items the candidate budget left short of their count (they emit nothing)."""
    return {"items": int(short_items.size), "rows_requested": int(counts[short_items].sum()),
            "rule": "items with fewer accepted rows than asked for when the candidate budget was spent emit nothing",
            "first": items.iloc[short_items[:10], 0].tolist(),
            "message": (f"{short_items.size} item(s) got fewer accepted rows than asked for and emit nothing; "
                        + budget_message) if short_items.size else None}


def event_copies_section(records: pd.DataFrame, holdout: pd.DataFrame, train: pd.DataFrame,
                         events: dict[str, str], raw: pd.DataFrame) -> dict:
    """Shares of emitted rows / raw candidates / real held-out rows repeating a training row's event tuple."""
    return {**event_copies(records, holdout, train, events), "raw_candidates": copy_rate(raw, train, events)}


def item_entries(items: pd.DataFrame, counts: np.ndarray, groups: list[Group], records: pd.DataFrame) -> list[dict]:
    """One report entry per item: id, rows requested and emitted, its group."""
    label = np.empty(len(items), dtype=object)
    for group in groups:  # groups, not rows
        label[group.items] = group.label
    emitted = np.bincount(records["_item"].to_numpy(dtype=np.int64), minlength=len(items)) if len(records) else \
        np.zeros(len(items), dtype=np.int64)
    table = pd.DataFrame({"item": items.iloc[:, 0].to_numpy(), "rows": counts, "emitted": emitted, "group": label})
    return table.to_dict("records")


def unit_failures(units: list[UnitVerdict], union: UnitVerdict | None) -> list[dict[str, Any]]:
    """Each failed measure of the units and of the union, its sentence prefixed by where it failed."""
    failures = [{"unit": unit.label, **failure.to_dict(), "message": f"{unit.label}: {failure.message}"}
                for unit in units for failure in unit.verdict.failures]
    if union is not None:
        failures += [{"unit": "union", **failure.to_dict(), "message": f"union of the passing groups: {failure.message}"}
                     for failure in union.verdict.failures]
    return failures


def finish_report(report: dict, request: ItemsRequest, groups: list[Group], units: list[UnitVerdict],
                  union: UnitVerdict | None, unjudged: dict[int, str], emitted: list[int], records: pd.DataFrame,
                  stats: dict) -> None:
    """The verdict of the call, its groups and failures, and the totals emitted (added to `report`)."""
    unit_of = {g: unit for unit in units for g in unit.groups}
    failures, group_entries = [], []
    for g, group in enumerate(groups):  # groups (tens)
        entry = {"label": group.label, "conditions": group.conditions, "items": len(group.items), "rows": group.rows,
                 "seed": group.seed, "emitted": g in emitted}
        if g in unjudged:
            entry.update(unit=None, reason=unjudged[g])
            failures.append({"group": group.label, "message": f"group {group.label}: {unjudged[g]}"})
        else:
            unit = unit_of.get(g)
            entry.update(unit=unit.label if unit else None, unit_passed=bool(unit and unit.passed))
        group_entries.append(entry)
    failures += unit_failures(units, union)
    short = report.get("short_items") or {}
    if short.get("message"):
        failures.append({"measure": "candidate_budget", "items": short["items"], "message": short["message"]})
    emitted_items = int(pd.Series(records["_item"]).nunique()) if len(records) else 0
    report["items"] = item_entries(request.items, request.counts, groups, records)
    verdict = "refused" if not emitted else ("passed" if len(emitted) == len(groups) else "partial")
    reasons = [*failures, *(reason for reason in unjudged.values())]
    report.update(verdict=verdict, passed=verdict == "passed", groups=group_entries, failures=failures,
                  refusals=[f["message"] for f in failures], advice=advice(reasons), **stats)
    report["totals"].update(rows_emitted=len(records), items_emitted=emitted_items, groups_emitted=len(emitted),
                            groups_refused=len(groups) - len(emitted))
