"""Cold start: gated synthetic interactions for new items that have features but no interactions yet.

    result = gen.cold_start(bundle, new_items, per_item="auto", bucket="tail", seed=0)
    if result.passed:
        interactions = pd.concat([interactions, result.rows])   # same columns, dtypes and labels

How the rows are made:
1. The items table is checked (`gen.cold_items`): item id + the item features the model was conditioned
   on; unseen feature values, known ids, duplicate ids, missing columns are errors (or skipped items).
2. Each item gets its row count: `per_item`, or "auto" - drawn from the real counts of the bucket's items.
3. Items are grouped by their feature values. Per group the conditioned generator is asked for
   {pop_bucket: bucket, feature: value, ...} and its rows go through the same gate as tail sampling
   (`gen.gate.run_gate`), judged against the real rows of the bucket with the same feature values when
   their holdout has at least `min_holdout_rows` rows, else against the whole bucket (the report says
   which). Rows of a group are exchangeable given its condition, so the accepted ones are handed out to
   the group's items in turn. Any refused group refuses the whole result: `passed` False, `rows` None.
4. Each row is given to an existing user whose features match the generated ones (`gen.users`), and a
   timestamp inside the window that agrees with the generated time parts (`gen.timestamps`; default
   window: the last 30 days of the training timestamps). The generated event columns are kept.
5. The output has the real interactions' columns of roles user_id, item_id, timestamp, event, in the
   records' order, with the training table's dtypes and category labels: appendable as is.

`gate=False` skips the gate for inspection: rows come back but `passed` is False and the report says
UNGATED, so code that appends only passed results never appends them by accident.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from gen.cold_items import check_items, item_counts
from gen.cold_start_report import UNGATED, held_out_section, summary_report
from gen.sampling import rows_where
from gen.gate import run_gate
from gen.gate_report import plain, report_path
from gen.timestamps import default_window, parse_window, place_in_window
from gen.users import match_users
from models.errors import BundleError, ColdStartError, DataError
from models.synthesize import synthesize
from train.config import GateConfig, from_dict

if TYPE_CHECKING:
    from gen.bundle import Bundle

OUTPUT_ROLES = ("user_id", "item_id", "timestamp", "event")
SHOWN_SKIPPED = 20
"""Skipped items quoted in the warning; the report lists them all."""


@dataclass(frozen=True)
class ColdStartResult:
    passed: bool
    """True only when every group's gate passed (False when refused, and when ungated)."""
    rows: pd.DataFrame | None
    """Appendable interactions when passed or ungated; None when refused (nothing is emitted)."""
    report: dict
    """Strict-JSON-able: settings, totals, items, groups (with gate reports), users, timestamps, held_out_items."""


@dataclass(frozen=True)
class _Group:
    label: str
    conditions: dict[str, Any]
    items: np.ndarray
    """Positions of the group's items in the valid items table."""
    rows: int
    seed: int


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
    progress: bool = True,
) -> ColdStartResult:
    """Gated synthetic interactions for the new `items` (see module docstring); ColdStartError for bad input.

    gate: None - the gate settings the model was trained with; a GateConfig - those; False - no gate.
    """
    started = time.monotonic()
    config = _gate_config(bundle, gate)
    _check_bucket(bundle, bucket)
    if window is not None:
        span = parse_window(window)
    else:
        span = default_window(bundle.table("train")[_one(bundle, "timestamp")])
    checked = check_items(bundle, items, on_invalid)
    if checked.skipped:
        shown = "; ".join(f"{e['item']!r} ({', '.join(e['reasons'])})" for e in checked.skipped[:SHOWN_SKIPPED])
        more = f"; and {len(checked.skipped) - SHOWN_SKIPPED} more" if len(checked.skipped) > SHOWN_SKIPPED else ""
        warnings.warn(f"cold start: skipped {len(checked.skipped)} invalid item(s) (all listed in the report's "
                      f"'skipped'): {shown}{more}", stacklevel=2)
    if len(checked.valid) == 0:
        raise ColdStartError(f"items table: none of the {len(items)} item(s) is valid; nothing to generate")
    count_rng, user_rng, time_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    counts = item_counts(bundle, len(checked.valid), per_item, bucket, count_rng)
    groups = _groups(bundle, checked.valid, counts, bucket, seed)
    generated, entries = _generate(bundle, groups, checked.valid, counts, config, progress)
    settings = {"per_item": per_item, "bucket": bucket, "seed": seed, "on_invalid": on_invalid,
                "window": span.plain(),
                "gate_source": "none (UNGATED)" if config is None else (
                    "the bundle's (trained with)" if gate is None or gate is True else "given")}
    report = summary_report(bundle, checked, counts, groups, entries, config, settings)
    report["provenance"] = bundle.provenance()
    if generated is None:
        report.update(seconds=time.monotonic() - started)
        return ColdStartResult(False, None, plain(report))
    rows, report["users"], report["timestamps"] = _assemble(bundle, generated, span, user_rng, time_rng)
    held = held_out_section(bundle, generated, checked.valid, bucket, seed=seed, device=_device(bundle))
    if held is not None:
        report["held_out_items"] = held
    report["totals"]["rows_emitted"] = len(rows)
    report.update(seconds=time.monotonic() - started)
    return ColdStartResult(config is not None, rows, plain(report))


def cold_start_cli(bundle: Bundle, args: argparse.Namespace) -> int:
    """`python -m gen cold-start`: write rows + `<out>.report.json` (0), only the report on refusal (1).

    Bad input raises ColdStartError (the caller prints it and exits 2); nothing is written then.
    """
    from evaluate.atomic import write_json, write_table
    from train.io import read_table

    out = Path(args.out)
    if not (out.suffix.lower() in (".parquet", ".pq", ".csv") or out.name.lower().endswith(".csv.gz")):
        raise ColdStartError(f"--out {out}: expected a .parquet, .pq, .csv or .csv.gz path for the rows")
    try:
        items = read_table(args.items, role="items")
    except DataError as exc:
        raise ColdStartError(str(exc)) from None
    per_item: int | Literal["auto"] = "auto"
    if str(args.per_item) != "auto":
        try:
            per_item = int(args.per_item)
        except ValueError:
            raise ColdStartError(f"--per-item: expected a whole number or 'auto', got {args.per_item!r}") from None
    result = cold_start(bundle, items, per_item, args.bucket, seed=args.seed,
                        window=tuple(args.window) if getattr(args, "window", None) else None,
                        on_invalid="skip" if args.skip_invalid else "error",
                        gate=False if getattr(args, "no_gate", False) else None)
    if result.rows is not None:  # rows first: a report never sits beside a rows file it does not describe
        write_table(out, result.rows)
    write_json(report_path(out), result.report)
    if result.rows is None:
        for failure in result.report["failures"]:
            print(failure["message"], file=sys.stderr)
        print(f"nothing emitted; report: {report_path(out)}", file=sys.stderr)
        return 1
    label = "UNGATED" if not result.passed else "gated"
    print(f"wrote {len(result.rows):,} {label} rows for {result.report['totals']['items_valid']:,} new items to "
          f"{out} (report: {report_path(out)})")
    if not result.passed:
        print(UNGATED, file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------------------
# steps


def _gate_config(bundle: Bundle, gate: GateConfig | Literal[False] | None) -> GateConfig | None:
    if gate is False:
        return None
    if gate is None or gate is True:
        return from_dict(GateConfig, bundle.config.get("gate", {}), where=f"{bundle.path} gate config")
    if not isinstance(gate, GateConfig):
        raise ColdStartError(f"gate: expected None, False or a GateConfig, got {type(gate).__name__}")
    return gate


def _check_bucket(bundle: Bundle, bucket: str) -> None:
    known = [label for label in bundle.encoder.column(bundle.spec.columns[0]).categories if label is not None]
    if bucket not in known:
        raise ColdStartError(f"bucket {bucket!r}: the model knows the buckets {known}")


def _groups(bundle: Bundle, valid: pd.DataFrame, counts: np.ndarray, bucket: str, seed: int) -> list[_Group]:
    """Items with equal feature values form one group (first appearance order); each gets its own seed.

    The seed depends on the run seed and the group's label only, so a group's rows do not change when
    other items are added to the table.
    """
    features = list(bundle.spec.columns[1:])
    keys = valid[features].astype(object).where(valid[features].notna(), None) if features else None
    index = keys.groupby(features, sort=False, dropna=False).indices if features else {(): np.arange(len(valid))}
    groups = []
    for key, members in index.items():  # feature combinations (tens), not rows
        key = key if isinstance(key, tuple) else (key,)
        values = {feature: (None if pd.isna(value) else value) for feature, value in zip(features, key)}
        conditions = {bundle.spec.columns[0]: bucket, **values}
        label = ", ".join(f"{name}={value}" for name, value in conditions.items())
        group_seed = int(np.random.SeedSequence([seed, zlib.crc32(label.encode())]).generate_state(1)[0])
        groups.append(_Group(label, conditions, np.sort(members), int(counts[members].sum()), group_seed))
    return groups


def _generate(
    bundle: Bundle, groups: list[_Group], valid: pd.DataFrame, counts: np.ndarray, config: GateConfig | None,
    progress: bool,
) -> tuple[pd.DataFrame | None, list[dict]]:
    """Model rows for every group (gated unless config is None), with the item id column; None if refused."""
    id_column, bucket_column = _one(bundle, "item_id"), bundle.spec.columns[0]
    train, holdout = (rows_where(bundle.table(name), {bucket_column: groups[0].conditions[bucket_column]})
                      for name in ("train", "holdout"))
    parts, entries, refused = [], [], False
    for group in groups:  # feature combinations, not rows
        generator = torch.Generator(device=_device(bundle)).manual_seed(group.seed)
        batch = config.chunk_rows if config is not None else 10_000

        def draw(k: int, group: _Group = group, generator: torch.Generator = generator) -> pd.DataFrame:
            return synthesize(bundle.module, bundle.encoder, bundle.spec, k, group.conditions,
                              generator=generator, batch_size=batch)[0]

        entry: dict[str, Any] = {"label": group.label, "conditions": group.conditions, "items": len(group.items),
                                 "rows": group.rows, "seed": group.seed}
        if config is None:
            rows = draw(group.rows)
            entry.update(reference=None, gate="UNGATED")
        else:
            reference_train, reference_holdout, entry["reference"] = _reference(train, holdout, group, config)
            columns = {name: kind for name, kind in bundle.columns.items() if name not in group.conditions}
            result = run_gate(draw, group.rows, train=reference_train, holdout=reference_holdout, columns=columns,
                              config=config, seed=group.seed, device=_device(bundle), progress=progress,
                              label=f"cold start {group.label}")
            rows, entry["passed"], entry["gate"] = result.rows, result.passed, result.report
            refused |= not result.passed
        entries.append(entry)
        if rows is not None:  # exchangeable rows: the first counts[0] go to the group's first item, and so on
            positions = np.repeat(group.items, counts[group.items])
            parts.append(rows.reset_index(drop=True).assign(
                **{id_column: valid[id_column].to_numpy()[positions], "_item_position": positions}))
    if refused:
        return None, entries
    generated = pd.concat(parts, ignore_index=True)
    order = np.argsort(generated["_item_position"].to_numpy(), kind="stable")  # items in input order
    return generated.iloc[order].drop(columns="_item_position").reset_index(drop=True), entries


def _reference(
    train: pd.DataFrame, holdout: pd.DataFrame, group: _Group, config: GateConfig
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The bucket's real rows with the group's feature values when the holdout has enough, else the bucket's."""
    same = {name: value for name, value in list(group.conditions.items())[1:]}
    same_train, same_holdout = rows_where(train, same), rows_where(holdout, same)
    info = {"same_feature_holdout_rows": len(same_holdout), "min_holdout_rows": config.min_holdout_rows}
    if same and len(same_holdout) >= config.min_holdout_rows:
        return same_train, same_holdout, {"kind": "same_features", **info, "train_rows": len(same_train),
                                          "holdout_rows": len(same_holdout)}
    reason = (f"only {len(same_holdout)} held-out rows of the bucket have these feature values (fewer than "
              f"min_holdout_rows {config.min_holdout_rows}): judged against the whole bucket")
    return train, holdout, {"kind": "bucket", **info, "train_rows": len(train), "holdout_rows": len(holdout),
                            "note": reason}


def _assemble(
    bundle: Bundle, generated: pd.DataFrame, span: Any, user_rng: np.random.Generator, time_rng: np.random.Generator
) -> tuple[pd.DataFrame, dict, dict]:
    """Model rows -> appendable interactions (user, item, timestamp, events), plus users / timestamps stats."""
    users = _users(bundle)
    user_id = _one(bundle, "user_id")
    features = [c for c in bundle.role("user_feature") if c in generated.columns and c in users.columns]
    categorical = [c for c in features if bundle.columns.get(c) == "categorical"]
    numerical = [c for c in features if c not in categorical]
    match = match_users(generated, users, categorical=categorical, numerical=numerical, rng=user_rng,
                        device=_device(bundle))
    parts = [c for c in bundle.role("time_part") if c in generated.columns]
    stamps, time_stats = place_in_window(generated[parts], span, time_rng)
    train = bundle.table("train")
    columns = {}
    for column in _output_columns(bundle):  # a handful of columns
        role = next(c["role"] for c in bundle.manifest["schema"] if c["name"] == column)
        if role == "user_id":
            values = pd.Series(users[user_id].to_numpy()[match.positions])
        elif role == "timestamp":
            values = stamps.reset_index(drop=True)
        elif column in generated.columns:
            values = generated[column].reset_index(drop=True)
        else:
            raise BundleError(f"{bundle.path}: the model does not generate the {role} column {column!r}")
        columns[column] = values.astype(train[column].dtype) if column in train.columns else values
    return pd.DataFrame(columns), match.stats, time_stats


def _output_columns(bundle: Bundle) -> list[str]:
    return [c["name"] for c in bundle.manifest["schema"] if c["role"] in OUTPUT_ROLES]


def _users(bundle: Bundle) -> pd.DataFrame:
    """The bundle's users table, or (a run without one) the distinct users of the training rows."""
    try:
        return bundle.table("users")
    except BundleError:
        train = bundle.table("train")
        columns = [_one(bundle, "user_id"), *[c for c in bundle.role("user_feature") if c in train.columns]]
        return train[columns].drop_duplicates(columns[0]).reset_index(drop=True)


def _one(bundle: Bundle, role: str) -> str:
    names = bundle.role(role)
    if not names:
        raise BundleError(f"{bundle.path}: the records schema has no {role} column")
    return names[0]


def _device(bundle: Bundle) -> torch.device:
    return next(bundle.module.parameters()).device
