"""Tail augmentation: gated synthetic interactions for EXISTING items of a bucket, ready to append.

    result = gen.augment(bundle, bucket="tail", per_item=3, seed=0)
    if result.rows is not None:
        interactions = pd.concat([interactions, result.rows])   # same columns, dtypes and labels

- Items: every item of the bucket with training rows, or the given ids (which must be known items of the
  training data; an id of another bucket is an error, or skipped with a warning with
  `on_other_bucket="skip"`).
- Counts: `per_item=K` gives exactly K rows per item; `"auto"` brings each item up to the bucket's median
  interaction count: max(1, median - count) rows, where count is the item's real interaction count and the
  median is over the bucket's items with at least one interaction.
- Each item's rows are generated conditioned on the bucket and the item's own features; the price is generated
  relative to the item's median, an item-level whole-number column (the quantity) is the generator's value
  moved to the nearest value the item was sold at (its pack sizes), and an item-level timestamp starts from
  one drawn from the item's own training rows (`item_values`; an item-level timestamp
  is moved by whole weeks, `timestamps.place_as_is`, else the generated date moves to the generated weekday
  and hour, `timestamps.place_near`), and each row goes to a real user chosen by taste
  (`taste_users.choose_users`: the item's vector, its own blended with its content prediction, against every
  user's; never one of its buyers), made like the items' real first buyers by default
  (`TasteSettings.like_first_buyers`: the users' feature mix, the row at its user's nearest purchase time,
  drawn values tilted toward the user); or with `users="demographic"` like one of the item's own buyers, active
  at that time (`written.Buyers`).
- Judged against held-out rows of the SAME items (`judge.matched`): rows for item X must look like X's
  real interactions, not like its feature group's (a per-item copier of real rows fails the group-mix
  reference, README).
- The rows pass the gate of `gen.items.pipeline` (the same as cold start's) and are judged as written.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from tailsynth.gen.items.closeness import closeness
from tailsynth.gen.items.cold_items import gate_config, gate_source, known_bucket
from tailsynth.gen.items.item_values import ItemValues
from tailsynth.gen.items.pipeline import ItemsRequest, ItemsResult, generate_items
from tailsynth.gen.items.taste_check import MIN_LIFT
from tailsynth.gen.items.taste_plan import UsersRule
from tailsynth.gen.items.taste_users import TasteSettings
from tailsynth.gen.items.timestamps import Window, resolution
from tailsynth.gen.items.written import Placement, one
from tailsynth.gen.sampling import rows_where
from tailsynth.models.errors import AugmentError
from tailsynth.train.config import GateConfig

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle

SHOWN = 10

AUGMENT_TASTE = TasteSettings(like_first_buyers=True)
"""`gen.augment`'s chooser: taste rows made like the items' first buyers (`TasteSettings.like_first_buyers`), one
users' mix for the whole call. Raked per unit the gate judges (`mix_by_group`, `mix_units`), augment at 3 rows per
item (seeds 10-21, gate half) emitted 78.9% of the rows on four trainings (2 of 48 calls refused) against 70.9% (5)
with one target, but one training fell 5.3 points (68.1% -> 62.8%), so by its rule (T19, evaluate/bench/README.md)
it is not the default."""


def augment(
    bundle: Bundle,
    bucket: str = "tail",
    per_item: int | Literal["auto"] = "auto",
    items: Sequence[Any] | pd.Series | pd.DataFrame | None = None,
    *,
    seed: int = 0,
    gate: GateConfig | Literal[False] | None = None,
    on_other_bucket: Literal["error", "skip"] = "error",
    all_or_nothing: bool = False,
    item_signal: bool = True,
    progress: bool = True,
    users: UsersRule | None = None,
    taste: TasteSettings | None = None,
    min_lift: float = MIN_LIFT,
) -> ItemsResult:
    """Gated interactions for existing items (see module docstring); AugmentError for bad input.

    gate: None - the gate settings the model was trained with; a GateConfig - those; False - no gate.
    item_signal: False generates every column from the feature group alone (for the ablation).
    users: "taste" / "demographic" / None (taste when the bundle has a taste space; `gen.items.taste_plan`);
    taste: the chooser's settings (default `AUGMENT_TASTE`); min_lift: the gate's taste test.
    """
    config = gate_config(bundle, gate, AugmentError)
    known_bucket(bundle, bucket, AugmentError)
    if on_other_bucket not in ("error", "skip"):
        raise AugmentError(f"on_other_bucket: expected 'error' or 'skip', got {on_other_bucket!r}")
    item_column = one(bundle, "item_id")
    train = rows_where(bundle.table("train"), {bundle.spec.columns[0]: bucket}).reset_index(drop=True)
    table, skipped = _items(bundle, bucket, items, item_column, on_other_bucket)
    counts = _counts(bundle, table[item_column], per_item, bucket)
    stamps = bundle.table("train")[one(bundle, "timestamp")]
    window = Window(pd.Timestamp(stamps.min()), pd.Timestamp(stamps.max()), "the training timestamps' span")
    # A column the model generates relative to the item's own level (model.condition.relative) is the
    # generator's: never drawn from the item's rows. A whole-number one (a quantity: decimals 0) is moved to
    # the nearest value the item was sold at, its pack sizes (`ItemValues`, snapped columns).
    relative = [condition for condition in bundle.spec.continuous if condition.scales is not None]
    snap = [condition.scales for condition in relative if condition.decimals == 0]
    numerical_events = [c for c in bundle.role("event") if bundle.columns.get(c) == "numerical"
                        and c not in {condition.scales for condition in relative}]
    # A timestamp whose item level conditions the model (`model.condition.item_level: {InvoiceDate: median}`,
    # when the item sells) is the generator's too: the generated date, then its user's nearest basket.
    levelled = set(bundle.condition.item_level)
    candidates = [*numerical_events, *[c for c in bundle.role("timestamp") if c in bundle.columns and c not in levelled]]
    # An item-level whole-number column (the quantity) is the generator's too, moved to the item's pack sizes
    # (evaluate/bench/README.md, "Existing items' quantity from the generator").
    values = ItemValues.fit(train, item_column, table[item_column], candidates, snap=snap,
                            snap_whole=True) if item_signal else None
    own_time = values is not None and one(bundle, "timestamp") in values.columns
    placement = Placement("as_is" if own_time else "near_generated", window, resolution(stamps))
    request = ItemsRequest(table, counts, bucket, placement, values,
                           judge_timestamp=True, all_or_nothing=all_or_nothing, match_items=True, users=users,
                           taste=taste or AUGMENT_TASTE, min_lift=min_lift)
    result, generated = generate_items(bundle, request, config, seed=seed, progress=progress)
    report = dict(result.report)
    report["settings"].update(gate_source=gate_source(gate), kind="augment", per_item=per_item, seed=seed, on_other_bucket=on_other_bucket,
                              item_signal=item_signal, users=(report.get("taste") or {}).get("users"),
                              counts_rule=("K rows per item" if per_item != "auto" else
                                           "max(1, bucket median count - item count) rows per item"))
    report["skipped"] = skipped
    records = generated.records if generated.records is not None else generated.accepted
    if records is not None and len(records):  # the emitted rows, or (nothing emitted) the accepted candidates
        holdout = rows_where(bundle.table("holdout"), {bundle.spec.columns[0]: bucket}).reset_index(drop=True)
        report["closeness"] = closeness(records, train, holdout, item_column, numerical_events,
                                        np.random.default_rng(seed))
        report["closeness"] = report["closeness"] and {
            **report["closeness"], "rows": "emitted" if generated.records is not None else "accepted (none emitted)"}
    return ItemsResult(result.passed, result.rows, report)


def _items(bundle: Bundle, bucket: str, items: Any, item_column: str,
           on_other_bucket: str) -> tuple[pd.DataFrame, list[dict]]:
    """The items to augment: id, bucket column and conditioned features, in the given (or bucket) order."""
    buckets = bundle.table("buckets")
    train_ids = pd.Index(bundle.table("train")[item_column].unique())
    of_bucket = buckets.loc[(buckets["pop_bucket"] == bucket).to_numpy(), "item"]
    skipped: list[dict] = []
    if items is None:
        ids = pd.Series(of_bucket[of_bucket.isin(train_ids)].to_numpy(), dtype=object)
    else:
        ids = _given_ids(items, item_column, train_ids)
        unknown = ids[~ids.isin(train_ids)]
        if len(unknown):
            raise AugmentError(f"items: {len(unknown)} id(s) are not items of the training data: {_quote(unknown)}; "
                               "augment takes existing items (new items: gen cold-start)")
        other = ids[~ids.isin(of_bucket)]
        if len(other):
            where = buckets.set_index("item")["pop_bucket"].reindex(other).astype(str)
            detail = ", ".join(f"{item!r} ({label})" for item, label in list(where.items())[:SHOWN])
            message = f"items: {len(other)} id(s) are not {bucket!r} items: {detail}"
            if on_other_bucket == "error":
                raise AugmentError(message + "; pass on_other_bucket='skip' (--skip-other-buckets) to skip them")
            warnings.warn(message + "; skipped", stacklevel=3)
            skipped = [{"item": item, "reason": f"bucket {label}, not {bucket}"} for item, label in where.items()]
            ids = ids[ids.isin(of_bucket)]
        if len(ids) == 0:
            raise AugmentError(f"items: none of the given ids is a {bucket!r} item; nothing to augment")
    features = list(bundle.item_features)
    source = _feature_table(bundle, item_column, features)
    table = source.set_index(item_column).reindex(ids.to_numpy())[features].reset_index()
    table.insert(1, bundle.spec.columns[0], bucket)
    return table.reset_index(drop=True), skipped


def _given_ids(items: Any, item_column: str, train_ids: pd.Index) -> pd.Series:
    if isinstance(items, pd.DataFrame):
        if item_column not in items.columns:
            raise AugmentError(f"items table: no column {item_column!r} (the item id); it has {list(items.columns)[:20]}")
        items = items[item_column]
    ids = pd.Series(list(items), dtype=object)
    if len(ids) == 0:
        raise AugmentError("items: the list of item ids is empty; give ids or None for every item of the bucket")
    if ids.isna().any():
        raise AugmentError(f"items: {int(ids.isna().sum())} null item id(s)")
    if len(train_ids) and all(isinstance(v, str) for v in train_ids[:100]):
        ids = ids.astype(str)  # a CSV-read 22457 names the item "22457"
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise AugmentError(f"items: id(s) listed more than once: {_quote(duplicated.unique())}")
    return ids.astype(object)


def _feature_table(bundle: Bundle, item_column: str, features: list[str]) -> pd.DataFrame:
    """Item id + conditioned features: the bundle's items table, or the first training row of each item."""
    train = bundle.table("train")
    try:
        items = bundle.table("items")
        if all(name in items.columns for name in [item_column, *features]):
            return items[[item_column, *features]]
    except Exception:  # noqa: BLE001 - a bundle without an items table: fall back to the records
        pass
    return train[[item_column, *features]].drop_duplicates(item_column)


def _counts(bundle: Bundle, ids: pd.Series, per_item: Any, bucket: str) -> np.ndarray:
    if per_item == "auto":
        buckets = bundle.table("buckets")
        mine = buckets[(buckets["pop_bucket"] == bucket).to_numpy() & (buckets["count"] >= 1).to_numpy()]
        median = float(np.median(mine["count"].to_numpy()))
        count = buckets.set_index("item")["count"].reindex(ids.to_numpy()).fillna(0).to_numpy()
        return np.maximum(1, np.ceil(median - count)).astype(np.int64)
    if isinstance(per_item, bool) or not isinstance(per_item, (int, np.integer)) or per_item < 1:
        raise AugmentError(f"per_item: expected a whole number >= 1 or 'auto', got {per_item!r}")
    return np.full(len(ids), int(per_item), dtype=np.int64)


def _quote(values: Any) -> str:
    values = list(values)
    return "[" + ", ".join(repr(v) for v in values[:SHOWN]) + (", ..." if len(values) > SHOWN else "") + f"] ({len(values)})"
