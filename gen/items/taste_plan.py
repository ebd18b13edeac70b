"""Which rule chooses a generation call's users, and what the taste rule takes from the bundle.

`users="taste"` (the default when the bundle has a taste space and, for new items, a content predictor;
`users_rule`): `choose_users` with each item's vector
from the bundle's content->taste predictor (`ContentTaste.vectors_for`: an existing item's own vector
blended with its content prediction by its interaction count; a new item's prediction), checked first by
the gate's taste test (`taste_check`). `users="demographic"`: today's matching on the generated user
features (`gen.items.users`), kept as an explicit option -- and the fallback, said in the report, for a
bundle without a taste space (or, for new items, without a content predictor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from tailsynth.gen.items.groups import Group, group_of, item_groups
from tailsynth.gen.items.judge import Unit
from tailsynth.gen.items.taste_check import check_taste, content_rows, validation_split
from tailsynth.gen.items.taste_mix import UserMix
from tailsynth.gen.items.taste_users import Evidence, TasteSettings, TasteUsers, distribution
from tailsynth.gen.items.written import one_off
from tailsynth.models.errors import BundleError

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle
    from tailsynth.gen.items.taste_check import TasteCheck

UsersRule = Literal["taste", "demographic"]
USERS_RULES: tuple[UsersRule, ...] = ("taste", "demographic")


@dataclass(frozen=True)
class UsersChoice:
    """The rule a call uses and why."""

    rule: UsersRule
    note: str | None


def users_rule(bundle: Bundle, asked: UsersRule | None, new_items: bool) -> UsersChoice:
    """`asked`, or (None) taste when the bundle can do it (a taste space; for new items also a content
    predictor), else demographic with the reason."""
    if asked is not None and asked not in USERS_RULES:
        raise ValueError(f"users: expected one of {USERS_RULES} or None, got {asked!r}")
    if asked == "demographic":
        return UsersChoice("demographic", "users matched on the generated user features, as asked (no taste claim)")
    try:
        _ = bundle.content if new_items else bundle.taste  # loads (and checks) what the rule needs
    except BundleError as exc:
        if asked == "taste":
            raise
        return UsersChoice("demographic", f"users matched on the generated user features: {exc}")
    return UsersChoice("taste", None)


def taste_users(bundle: Bundle, items: pd.DataFrame, content_table: pd.DataFrame | None, settings: TasteSettings,
                user_column: str, users: pd.DataFrame, device: torch.device, counts_wanted: np.ndarray,
                seed: int, groups: list[Group], bucket: str | None = None,
                units: list[Unit] | None = None) -> TasteUsers:
    """The chooser for the request's `items` (id first). content_table: the items' content columns (new items:
    the caller's table); None: the bundle's items table. Existing items exclude their training buyers. With
    `settings.like_first_buyers` its prior is fitted to the one-off buyers' feature mix for `counts_wanted` rows
    per item (`user_mix`; bucket: the request's popularity bucket), per feature group of the call's `groups`
    (`groups.make_groups`) with `settings.mix_by_group` (with `settings.mix_units` and the gate's `units` of those
    groups, the groups judged in one unit share one target)."""
    space = bundle.taste
    ids = items.iloc[:, 0].to_numpy()
    at = space.item_positions(as_space_ids(ids, space.item_ids))
    counts = np.where(at >= 0, space.item_counts[np.maximum(at, 0)], 0)
    try:
        content = bundle.content
    except BundleError:
        content = None
    if content is not None:
        table = content_table if content_table is not None else _items_table(bundle)
        rows = content_rows(content, as_space_ids(ids, space.item_ids), table)
        vectors = content.vectors_for(rows, counts)
    elif (at >= 0).all():
        vectors = space.item_vectors[torch.as_tensor(at, dtype=torch.long)]
    else:
        raise BundleError(f"{bundle.path}: {int((at < 0).sum())} item(s) have no taste vector and the bundle has no "
                          "content->taste predictor to give them one")
    train = bundle.table("train")
    item_column = items.columns[0]
    codes = pd.Index(pd.Series(ids).astype(str)).get_indexer(train[item_column].astype(str))
    known = codes >= 0
    user_at = space.user_positions(train[user_column].to_numpy()[known])
    owned = (codes[known][user_at >= 0], user_at[user_at >= 0])
    table_positions = pd.Index(users[user_column]).get_indexer(pd.Index(space.user_ids))
    evidence = None
    if settings.evidence_weight > 0:
        user_rows = space.user_positions(train[user_column].to_numpy())
        item_rows = space.item_positions(as_space_ids(train[item_column].to_numpy(), space.item_ids))
        both = (user_rows >= 0) & (item_rows >= 0)
        evidence = Evidence.fit(space, user_rows[both], item_rows[both], settings.neighbours)
    chooser = TasteUsers(space, vectors, owned, table_positions, settings, device, evidence)
    if settings.like_first_buyers:
        mixed = groups if settings.mix_by_group else None
        merged = mix_groups(units, len(groups)) if mixed and settings.mix_units and units is not None else None
        of_items = None if mixed is None else item_groups(groups, len(items))
        chooser.match(user_mix(bundle, users, user_column, ids, train, bucket, mixed, merged), counts_wanted, seed,
                      of_items if merged is None else merged[of_items])
    return chooser


def user_mix(bundle: Bundle, users: pd.DataFrame, user_column: str, ids: np.ndarray, train: pd.DataFrame,
             bucket: str | None = None, groups: list[Group] | None = None,
             merged: np.ndarray | None = None) -> UserMix:
    """The users' feature mix the taste draw matches (`taste_mix`): the users of the request items' one-off
    training pairs (`written.one_off`). Built-in tail: the items' training buyers against their held-out first
    purchases, frequency KS 0.049; their one-off pairs' users 0.013.

    Items without any (new items): the one-off pairs of the training items in `bucket` (the request's popularity
    bucket; every one-off pair when the bucket has none or is not given). New items are judged against the
    bucket's held-out first purchases, and on the chooser's validation items (tail split, 3 seeds) the pseudo-cold
    items' real buyers are KS 0.03-0.05 from the tail's one-off buyers against 0.07-0.10 from every one-off
    pair's (frequency, monetary, recency). Alone this target emitted less (an earlier bundle: 59% of the rows on
    seeds 10-21 against 85%; `runs/cold_spq_u`: 90%, 1 refused, against 99%); with three tries per user
    (`pipeline.NEW_ITEMS_EVENT_TRIES`) 98%, none refused.

    groups: the request's feature groups (`groups.make_groups`); each gets the target rows of its own feature
    values as its target (`UserMix.targets`), the rows of no group count in the pooled target only. merged: [groups]
    the mix group of each group (`mix_groups`; None: each group its own)."""
    features = [c for c in bundle.role("user_feature") if c in users.columns]
    categorical = [c for c in features if bundle.columns.get(c) == "categorical"]
    numerical = [c for c in features if c not in categorical]
    item_column = bundle.role("item_id")[0]
    rows = train[one_off(train, user_column, item_column)]
    mine = rows[item_column].astype(str).isin(pd.Series(ids).astype(str)).to_numpy()
    if not mine.any() and bucket is not None:
        mine = rows[bundle.spec.columns[0]].astype(str).to_numpy() == str(bucket)
    chosen = rows[mine] if mine.any() else rows
    target = pd.Index(users[user_column]).get_indexer(chosen[user_column])
    if not groups:
        return UserMix.of(users, categorical, numerical, target[target >= 0])
    target_groups = group_of(chosen, groups, bundle)
    if merged is not None:
        target_groups = np.where(target_groups >= 0, merged[np.maximum(target_groups, 0)], -1)
    mixes = len(groups) if merged is None else int(merged.max()) + 1
    return UserMix.of(users, categorical, numerical, target[target >= 0], target_groups[target >= 0], mixes)


def mix_groups(units: list[Unit], groups: int) -> np.ndarray:
    """[groups] the mix group of each feature group when the users' mix is raked per judged unit: a group the gate
    judges alone (`judge.plan_units`) keeps a target of its own; the groups it judges pooled, and those it cannot
    judge, share the last one. Per feature group, a pooled small group was raked to its own few one-off pairs
    (shrunk toward the call's, `taste_mix.GROUP_PRIOR`) while the gate judged its rows with the other small groups'
    against their held-out rows together (evaluate/bench/README.md, T18)."""
    alone = [int(u.groups[0]) for u in units if u.kind == "group"]
    merged = np.full(groups, len(alone), dtype=np.int64)
    merged[alone] = np.arange(len(alone))
    return merged


def taste_gate(bundle: Bundle, settings: TasteSettings, counts: np.ndarray, *, new_items: bool, seed: int,
               min_lift: float, device: torch.device, chooser: TasteUsers | None = None) -> TasteCheck:
    """The gate's taste test on validation items from the bundle's training rows (`taste_check`). chooser:
    the call's own, whose prior offsets (`TasteUsers.match`, the users' feature mix) the validation draw
    uses too, so the lift judged is that of the rule that chooses the emitted rows."""
    train = bundle.table("train")
    user_column, item_column = bundle.role("user_id")[0], bundle.role("item_id")[0]
    try:
        content = bundle.content
    except BundleError:
        content = None
    split = validation_split(train[user_column].to_numpy(), as_space_ids(train[item_column].to_numpy(),
                                                                           bundle.taste.item_ids),
                             dim=bundle.taste.dim, seed=seed, content=content,
                             items_table=_items_table(bundle) if content is not None else None,
                             neighbours=settings.neighbours, device=device)
    rows = max(1, int(np.median(counts))) if len(counts) else 1
    offsets = None
    pooled = None if chooser is None else chooser.pooled_offsets()
    if pooled is not None:  # the call's offsets (per group: their mean by rows), by user id, in the refitted space
        at = bundle.taste.user_positions(split.space.user_ids)
        offsets = np.where(at >= 0, pooled[np.maximum(at, 0)], 0.0).astype(np.float32)
    return check_taste(split, settings, new_items=new_items, rows_per_item=rows, seed=seed, min_lift=min_lift,
                       device=device, offsets=offsets)


def taste_section(choice: UsersChoice, check: TasteCheck | None, records: pd.DataFrame | None, user_column: str,
                  item_column: str, bundle: Bundle, settings: TasteSettings) -> dict[str, Any]:
    """The report's `taste` entry: rule, the chooser's settings, the gate's taste test, and the emitted rows'
    per-user and per-item counts next to the real training ones."""
    section: dict[str, Any] = {"users": choice.rule, "note": choice.note,
                               "check": None if check is None else check.plain(), "summary": summary(choice, check)}
    if choice.rule != "taste":
        return section
    section["settings"] = settings.plain()
    space = bundle.taste
    emitted = records if records is not None else pd.DataFrame({user_column: [], item_column: []})
    section["emitted_rows_per_user"] = distribution(emitted[user_column].value_counts().to_numpy())
    section["real_items_per_user"] = distribution(space.user_activity)
    section["emitted_rows_per_item"] = distribution(emitted[item_column].value_counts().to_numpy())
    section["real_buyers_per_item"] = distribution(space.item_counts)
    return section


def summary(choice: UsersChoice, check: TasteCheck | None) -> str:
    """The taste part of the command line's one-line summary (starts with '; ')."""
    if choice.rule != "taste":
        return "; users by demographics (no taste claim)"
    if check is None:
        return "; users by taste (taste not checked: ungated)"
    if check.lift is None:
        return "; users by taste, taste lift not measurable"
    interval = check.lifts[check.judged].get("interval")
    shown = f" [{interval[0]:.1f}-{interval[1]:.1f}]" if interval else ""
    return (f"; taste lift {check.lift:.2f}x{shown} activity-weighted random users on "
            f"{check.judged.replace('_', '-')} validation items (needed >= {check.min_lift:g}x)")


def _items_table(bundle: Bundle) -> pd.DataFrame | None:
    try:
        return bundle.table("items")
    except BundleError:
        return None


def as_space_ids(ids: np.ndarray, space_ids: np.ndarray) -> np.ndarray:
    """Ids in the space's kind: text ids as Python strings (a parquet column may hold them as another
    string type), numbers as they are."""
    if space_ids.dtype == object:
        return pd.Series(ids).astype(str).to_numpy(dtype=object)
    return np.asarray(ids)
