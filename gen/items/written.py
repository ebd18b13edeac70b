"""Generated rows -> interactions as they will be written, and the behaviour records they stand for.

The gate must judge what a user appends, not the generator's draft. So every candidate is turned into
an interaction first — a real user (by taste, `gen.items.taste_users`; or, the demographic option,
`gen.items.users`, drawn from the users who bought items with the same features in the bucket, see
`user_pools`), its item's id, a timestamp at the data's own
resolution (`gen.items.timestamps`), the generated event columns (item-level ones from the item's own
rows for existing items, `gen.items.item_values`) — and then back into a behaviour record exactly as
`train.records` would build it from that interaction: the user's real features joined from the users
table, the item's features, the time parts derived from the written timestamp, the bucket. Those
records are what the gate's filters and tests see; the interaction columns are what is emitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from tailsynth.gen.items.item_values import ItemValues
from tailsynth.gen.items.timestamps import Window, place_as_is, place_in_window, place_near
from tailsynth.gen.items.user_times import UserTimes
from tailsynth.gen.items.user_values import UserTilt
from tailsynth.gen.items.taste_users import Strata, TasteUsers
from tailsynth.gen.items.users import UserMatch, choose_among, match_users, nearest_of, numeric_values
from tailsynth.models.errors import BundleError
from tailsynth.train.records import time_parts

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle

OUTPUT_ROLES = ("user_id", "item_id", "timestamp", "event")
DRAFT_PREFIX = "_draft_"
"""Columns keeping the generator's own value of an item-level column (for the closeness measure)."""


@dataclass(frozen=True)
class Placement:
    """How timestamps are made: `window` (new items: a minute of the window matching the generated time
    parts), `near_generated` (existing items: the generated date at the generated weekday and hour) or
    `as_is` (existing items whose timestamp is item-level: the item's own timestamp, `place_as_is`)."""

    kind: Literal["window", "near_generated", "as_is"]
    window: Window
    unit: str


class Writer:
    """Turns generated rows of given items into written interactions plus their records (see module doc)."""

    def __init__(self, bundle: Bundle, items: pd.DataFrame, placement: Placement,
                 item_values: ItemValues | None, device: torch.device,
                 buyers_of: tuple[pd.DataFrame, np.ndarray] | None = None,
                 taste: TasteUsers | None = None) -> None:
        """buyers_of: existing items' real training rows and their item codes (positions in `items`): each
        row then goes to a user like one of its item's buyers (`Buyers`). taste: users chosen by taste
        (`gen.items.taste_users`) instead of by the generated user features; rows it finds no user for are
        dropped (counted in the stats)."""
        self.bundle, self.items, self.placement, self.item_values = bundle, items, placement, item_values
        self.device = device
        self.user_id, self.item_id, self.timestamp = (one(bundle, role) for role in ("user_id", "item_id", "timestamp"))
        self.users = users_table(bundle)
        self.user_features = [c for c in bundle.role("user_feature") if c in self.users.columns]
        self.parts = tuple(bundle.role("time_part"))
        self.dtypes = bundle.table("train").dtypes
        self.output_columns = [c["name"] for c in bundle.manifest["schema"] if c["role"] in OUTPUT_ROLES]
        self.buyers = None if buyers_of is None else Buyers.fit(self.users, self.user_id, *buyers_of, len(items))
        self.taste = taste
        self.user_times = UserTimes.fit(bundle.table("train"), self.user_id, self.timestamp, self.users) \
            if taste is not None and taste.settings.like_first_buyers and placement.kind != "window" else None
        """Existing items' taste rows: each row at its user's purchase time nearest to the item's (`user_times`)."""
        self.tilts: dict[str, UserTilt] = {}
        """Existing items' taste rows: item-level values tilted toward the row's user (`user_values`)."""
        if self.user_times is not None and item_values is not None:
            train = bundle.table("train")
            mine = train[self.item_id].astype(str).isin(items[self.item_id].astype(str)).to_numpy()
            first = train[mine & one_off(train, self.user_id, self.item_id)]  # whom the rows go to: like them
            centre_on = pd.Index(self.users[self.user_id]).get_indexer(first[self.user_id])
            for name in item_values.columns:  # a few event columns
                tilt = None if name == self.timestamp else UserTilt.fit(train, self.user_id, self.item_id, name,
                                                                        self.users, centre_on[centre_on >= 0])
                if tilt is not None:
                    self.tilts[name] = tilt

    def user_positions(self, records: pd.DataFrame) -> np.ndarray:
        """[len(records)] the written rows' users' positions in the users table (-1: none)."""
        return pd.Index(self.users[self.user_id]).get_indexer(records[self.user_id])

    def _strata(self, drafts: pd.DataFrame) -> Strata | None:
        """The rows' generated country (first categorical user feature) when the taste settings stratify."""
        if self.taste is None or not self.taste.settings.stratify:
            return None
        column = next((c for c in self.user_features if self.bundle.columns.get(c) == "categorical" and c in drafts),
                      None)
        return None if column is None else Strata.of(column, drafts[column], self.users[column])

    def choose(self, item_codes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """Taste users for rows of items `item_codes` [n] BEFORE their events are generated (a model conditioned on
        the user, `model.condition.user`): the shortlist [n, width] (-1: the item ran out of users) and stats.
        Never stratified by a generated country (`TasteSettings.stratify`): the user's country is given, not
        generated."""
        assert self.taste is not None
        return self.taste.shortlist(item_codes, rng)

    def user_values(self, users: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """The users' (positions [n] in the users table) values of the condition columns `names`."""
        return {name: self.users[name].to_numpy()[users] for name in names}

    def write(self, drafts: pd.DataFrame, item_codes: np.ndarray, rng: np.random.Generator,
              pool: UserPool | None = None, chosen: tuple[np.ndarray, dict] | None = None) -> tuple[pd.DataFrame, dict]:
        """drafts [n]: decoded generator rows; item_codes [n]: positions in `items`; pool: the real interactions
        whose users a row may go to (None: any user, `users.match_users`); chosen: the taste shortlist and its
        stats when the users were chosen before the drafts were generated for them (`choose`). Returns (records
        as written, with the output columns, `_item` and `_draft_*` columns; stats of users and timestamps)."""
        drafts = drafts.reset_index(drop=True)
        user_rng, time_rng, value_rng = (np.random.default_rng(s) for s in rng.integers(0, 2**63, size=3))
        shortlist = None
        if self.taste is not None:  # taste users first: rows of an item that ran out of users are dropped
            shortlist, taste_stats = chosen if chosen is not None else \
                self.taste.shortlist(item_codes, user_rng, self._strata(drafts))
            served = shortlist[:, 0] >= 0
            drafts, item_codes, shortlist = drafts[served].reset_index(drop=True), np.asarray(item_codes)[served], \
                shortlist[served]
        rows = drafts
        if self.item_values is not None and self.item_values.columns:
            tilts = {name: tilt.of(shortlist[:, 0]) for name, tilt in self.tilts.items()} \
                if shortlist is not None and shortlist.shape[1] == 1 else None
            rows = self.item_values.apply(drafts, item_codes, value_rng, tilts)
            for name in self.item_values.columns:
                rows[DRAFT_PREFIX + name] = drafts[name].to_numpy()
        categorical = [c for c in self.user_features if self.bundle.columns.get(c) == "categorical" and c in rows]
        numerical = [c for c in self.user_features if c not in categorical and c in rows]
        stamps, time_stats = self._timestamps(rows, time_rng)
        if shortlist is not None:
            match = nearest_of(rows, self.users, shortlist, categorical=categorical, numerical=numerical)
            match = UserMatch(match.positions, {**taste_stats, **match.stats})  # rows: those served
            if self.user_times is not None:
                stamps, time_stats["user_time"] = self.user_times.place(stamps, match.positions)
        elif pool is None:
            match = match_users(rows, self.users, categorical=categorical, numerical=numerical, rng=user_rng,
                                device=self.device)
        elif self.buyers is not None:  # existing items: like one of the item's own buyers, buying at that time
            match = choose_among(self.buyers.like(rows, item_codes, self.users, categorical, user_rng), self.users,
                                 pool.users, categorical=categorical, numerical=[], rng=user_rng,
                                 candidates=ANCHOR_CANDIDATES, pool_seconds=pool.seconds,
                                 row_seconds=numeric_values(stamps), within_categories=True)
        else:
            match = choose_among(rows, self.users, pool.users, categorical=categorical, numerical=numerical,
                                 rng=user_rng, pool_seconds=pool.seconds, row_seconds=numeric_values(stamps))
        users = match.positions
        written: dict[str, Any] = {}
        for column in self.bundle.table("train").columns:  # the records' columns, in order (a handful)
            written[column] = self._column(column, rows, users, item_codes, stamps)
        for extra in [c for c in rows.columns if c.startswith(DRAFT_PREFIX)]:
            written[extra] = rows[extra].to_numpy()
        written["_item"] = np.asarray(item_codes)
        return pd.DataFrame(written), {"users": match.stats, "timestamps": time_stats}

    def interactions(self, records: pd.DataFrame) -> pd.DataFrame:
        """The appendable part: the real interactions' columns, in the records' order, with their dtypes; a
        timestamp the file held as Unix seconds is written as Unix seconds again, in the file's dtype."""
        meta = self.bundle.manifest.get("meta", {})
        file_dtypes = meta.get("file_dtypes", {})
        order = [c for c in file_dtypes if c in self.output_columns]
        order += [c for c in self.output_columns if c not in order]
        rows = records[order].reset_index(drop=True)
        for name, dtype in meta.get("written_as", {}).items():
            if name in rows.columns:
                rows[name] = unix_seconds(rows[name], dtype)
        for name, dtype in file_dtypes.items():
            if name in rows.columns and name not in meta.get("written_as", {}):
                rows[name] = as_file_dtype(rows[name], dtype)
        return rows

    def _timestamps(self, rows: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.Series, dict]:
        parts = rows[[p for p in self.parts if p in rows.columns]]
        if self.placement.kind == "as_is" and self.timestamp in rows.columns:
            return place_as_is(rows[self.timestamp], parts, self.placement.window, self.placement.unit, rng)
        if self.placement.kind == "near_generated" and self.timestamp in rows.columns:
            return place_near(rows[self.timestamp], parts, self.placement.window, self.placement.unit, rng)
        return place_in_window(parts, self.placement.window, rng)

    def _column(self, column: str, rows: pd.DataFrame, users: np.ndarray, item_codes: np.ndarray,
                stamps: pd.Series) -> pd.Series:
        if column == self.user_id or column in self.user_features:
            values = pd.Series(self.users[column].to_numpy()[users])
        elif column == self.timestamp:
            values = stamps.reset_index(drop=True)
        elif column in self.parts:
            values = time_parts(stamps.reset_index(drop=True), (column,))[column].astype(np.int64)
        elif column in self.items.columns:  # the item's id and features (the conditions of its rows)
            values = pd.Series(self.items[column].to_numpy()[item_codes])
        elif column in rows.columns:
            values = rows[column].reset_index(drop=True)
        else:
            raise BundleError(f"{self.bundle.path}: the model does not generate the column {column!r}")
        return _cast(values, self.dtypes[column])


def as_file_dtype(values: pd.Series, dtype: str) -> pd.Series:
    """A column in the dtype the interactions file was read with (a nullable Int64 back to int64, ...) when
    the values fit it exactly; otherwise unchanged (a null cannot be an int64)."""
    if str(values.dtype) == dtype or dtype in ("object", "str", "string"):
        return values
    try:
        cast = values.astype(dtype)
    except (TypeError, ValueError, OverflowError):
        return values
    same = cast.astype(values.dtype) == values if values.notna().all() else None
    return cast if same is not None and bool(same.all()) else values


def unix_seconds(stamps: pd.Series, dtype: str) -> pd.Series:
    """Datetimes as Unix seconds in `dtype` (an integer dtype: whole seconds; a float one: fractions kept)."""
    nanoseconds = stamps.astype("datetime64[ns]").astype("int64")
    if np.issubdtype(np.dtype(dtype), np.integer):
        return pd.Series(nanoseconds // 1_000_000_000, index=stamps.index).astype(dtype)
    return pd.Series(nanoseconds / 1e9, index=stamps.index).astype(dtype)


def _cast(values: pd.Series, dtype: Any) -> pd.Series:
    """Values in the training table's dtype (labels as categories of the same set where categorical)."""
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        return values


def users_table(bundle: Bundle) -> pd.DataFrame:
    """The bundle's users table, or (a run without one) the distinct users of the training rows."""
    try:
        return bundle.table("users")
    except BundleError:
        train = bundle.table("train")
        columns = [one(bundle, "user_id"), *[c for c in bundle.role("user_feature") if c in train.columns]]
        return train[columns].drop_duplicates(columns[0]).reset_index(drop=True)


def one(bundle: Bundle, role: str) -> str:
    names = bundle.role(role)
    if not names:
        raise BundleError(f"{bundle.path}: the records schema has no {role} column")
    return names[0]


ANCHOR_CANDIDATES = 128
"""Pool entries drawn per row of an existing item (`Buyers`), all with the categorical features of one of
the item's buyers; the one nearest in time is taken."""


@dataclass(frozen=True)
class Buyers:
    """Each requested item's real training buyers: positions in the users table, grouped by item.

    Who a row of an existing item goes to: of `ANCHOR_CANDIDATES` entries of the group's pool (real
    interactions with items of the same features) whose users have the categorical features (the country)
    of a real buyer of THIS item drawn at random, the one nearest in time to the row's timestamp. Where fewer
    than `users.MIN_WITHIN` pool entries have those features, from the whole pool. So the rows keep the
    item's own mix of buyers' countries and a user's activity fits the time (a user's recency, frequency and
    spend follow from when they buy), while the (user, item) pair is mostly new (README: pair repeats
    next to the real rate). Measured on the built-in tail: drawing the user from the group's pool alone,
    even for real rows of the item, lets a discriminator tell them from held-out rows (every unit fails
    on AUC); the generated user features (`choose_among` with them) do no better than the pool.
    """

    users: np.ndarray
    """int64 [m]: buyers' positions in the users table, sorted by item code."""
    bounds: np.ndarray
    """int64 [items + 1]: item i's buyers are users[bounds[i]:bounds[i + 1]] (one entry per interaction)."""

    @classmethod
    def fit(cls, users: pd.DataFrame, user_column: str, train: pd.DataFrame, item_codes: np.ndarray,
            items: int) -> Buyers:
        """train: the bucket's training rows; item_codes [len(train)]: their item's code (-1: not requested)."""
        positions = pd.Index(users[user_column]).get_indexer(train[user_column])
        keep = (item_codes >= 0) & (positions >= 0)
        order = np.argsort(item_codes[keep], kind="stable")
        codes = item_codes[keep][order]
        return cls(positions[keep][order].astype(np.int64), np.searchsorted(codes, np.arange(items + 1)))

    def like(self, rows: pd.DataFrame, item_codes: np.ndarray, users: pd.DataFrame, categorical: list[str],
             rng: np.random.Generator) -> pd.DataFrame:
        """The categorical user features each row's user should have: a drawn buyer's (the row's own where its
        item has no buyer)."""
        wanted = rows[categorical].copy()
        anchors = self.draw(item_codes, rng)
        known = anchors >= 0
        for column in categorical:  # a few user features
            values = wanted[column].to_numpy(dtype=object)
            values[known] = users[column].to_numpy(dtype=object)[anchors[known]]
            wanted[column] = values
        return wanted

    def draw(self, item_codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """[n]: one real buyer of each row's item, drawn uniformly over its interactions (-1: none)."""
        item_codes = np.asarray(item_codes, dtype=np.int64)
        low, high = self.bounds[item_codes], self.bounds[item_codes + 1]
        at = low + np.floor(rng.random(len(item_codes)) * np.maximum(high - low, 1)).astype(np.int64)
        drawn = self.users[np.minimum(at, max(self.users.size - 1, 0))] if self.users.size else at
        return np.where(high > low, drawn, -1)


MIN_POOL_USERS = 30
"""A feature group whose real buyers are fewer draws its users from all of the bucket's buyers."""


@dataclass(frozen=True)
class UserPool:
    """Real interactions a row's user is drawn from: their users' positions in the users table and times."""

    users: np.ndarray
    seconds: np.ndarray


def user_pools(users: pd.DataFrame, user_column: str, train: pd.DataFrame, group_of_row: np.ndarray,
               groups: int, timestamp: str) -> tuple[list[UserPool | None], dict]:
    """Per group, the bucket's real training interactions with items of the group's feature values (their
    users and times; group_of_row [n] gives each row's group, -1 none), for `users.choose_among`: who buys
    decor of price band 5-10, and when, is who the rows of such items should go to. Groups with fewer than
    MIN_POOL_USERS such users (new feature combinations, rare ones) take all of the bucket's interactions;
    a bucket without any: None (`users.match_users` over every user)."""
    positions = pd.Index(users[user_column]).get_indexer(train[user_column])
    seconds = numeric_values(train[timestamp].reset_index(drop=True))
    known = positions >= 0
    everyone = UserPool(positions[known], seconds[known]) if known.any() else None
    pools: list[UserPool | None] = []
    own = 0
    order = np.argsort(group_of_row, kind="stable")
    bounds = np.searchsorted(group_of_row[order], np.arange(groups + 1))
    for g in range(groups):  # groups (tens), not rows
        members = order[bounds[g]:bounds[g + 1]]
        members = members[positions[members] >= 0]
        if np.unique(positions[members]).size >= MIN_POOL_USERS:
            pools.append(UserPool(positions[members], seconds[members]))
            own += 1
        else:
            pools.append(everyone)
    stats = {"rule": (f"each row's user comes from the bucket's real interactions with items of the same feature "
                      f"values (groups with fewer than {MIN_POOL_USERS} such users: all of the bucket's); which of the "
                      "drawn candidates is taken: see users.rule"),
             "groups_with_own_pool": own, "groups_with_bucket_pool": groups - own,
             "bucket_buyers": int(np.unique(positions[known]).size)}
    return pools, stats


def pairs(rows: pd.DataFrame, user: str, item: str) -> pd.MultiIndex:
    """The rows' (user, item) pairs as text keys: what "the same pair" means wherever pairs are compared."""
    return pd.MultiIndex.from_frame(rows[[user, item]].astype(str))


def one_off(rows: pd.DataFrame, user: str, item: str) -> np.ndarray:
    """[n] bool: rows whose (user, item) pair occurs once in `rows`, the training analogue of a first purchase
    (a synthetic row is always a user's first purchase of the item; repeated pairs belong to heavier users)."""
    return ~pairs(rows, user, item).duplicated(keep=False)


def pair_repeats(emitted: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, user: str,
                 item: str) -> dict[str, float | None]:
    """How often a (user, item) pair repeats one seen before: emitted rows against the training rows and the
    emitted rows before them, next to the same rate of the real held-out rows of the bucket (the real data's
    own rate of repeat purchases)."""
    def rate(rows: pd.DataFrame) -> float | None:
        if len(rows) == 0:
            return None
        keys = pairs(rows, user, item)
        return float(np.mean(keys.isin(pairs(train, user, item)) | keys.duplicated()))

    return {"emitted": rate(emitted), "real_holdout": rate(holdout),
            "note": "share of rows whose (user, item) pair appeared in training or earlier in the same rows"}
