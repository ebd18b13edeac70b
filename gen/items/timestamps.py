"""Timestamps for cold-start rows: a moment inside a window that agrees with the generated time parts.

The generator's own timestamp column is not used for the output: it lies in the training period, and a
new item's interactions happen after it. What the model does say about *when* people buy is in the time
parts it generates (`data.time_parts`: hour, dayofweek with Monday = 0, month, dayofmonth), so:

1. The window [start, end] is cut into hour slots (the first and last clipped to the window), each
   holding its whole minutes.
2. For a row, the eligible slots are those that agree with every time part the row has (hour of the
   slot, its weekday, month, day of month). One eligible MINUTE is drawn uniformly: the slot with
   probability proportional to its minutes, then the minute within it (seconds are 0). So a row with
   hour 14 and dayofweek 2 gets a Wednesday of the window, 14:mm, with a uniformly random minute.
3. When no slot agrees (a window shorter than a week, or a month it does not contain), the row's parts
   are dropped in the order dayofmonth, month, dayofweek, hour until one does; such rows are counted
   per dropped part in the stats. A row without time parts gets a uniform minute of the window.

Vectorised over rows: one loop over the distinct combinations of time-part values present (at most
7 x 24 for hour and day of week), never over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailsynth.models.errors import ColdStartError

DEFAULT_DAYS = 30
"""Default window: the last 30 days of the training data's timestamps."""
PARTS = ("hour", "dayofweek", "month", "dayofmonth")
RELAX_ORDER = ("dayofmonth", "month", "dayofweek", "hour")
SHIFT_WEEKS = 2
"""Existing items' timestamps move by up to this many whole weeks from one of the item's own (`place_as_is`):
an item's season is kept to within a month, its weekday and hour exactly."""
_MINUTE = np.timedelta64(60, "s").astype("timedelta64[ns]")


@dataclass(frozen=True)
class Window:
    """A closed interval of timestamps, and where it came from (for the report)."""

    start: pd.Timestamp
    end: pd.Timestamp
    source: str

    def plain(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "source": self.source}


def default_window(timestamps: pd.Series, days: int = DEFAULT_DAYS) -> Window:
    """The last `days` days of `timestamps` (the training rows'): [max - days, max]."""
    end = pd.Timestamp(timestamps.max())
    if pd.isna(end):
        raise ColdStartError("the training rows have no timestamps to place a default window in; give --window")
    return Window(end - pd.Timedelta(days=days), end, f"default: the last {days} days of the training timestamps")


def parse_window(window: tuple[str, str] | list[str]) -> Window:
    """Window from two date texts (any pandas-readable form); ColdStartError naming what is wrong."""
    if len(window) != 2:
        raise ColdStartError(f"window: expected (START, END), got {window!r}")
    try:
        start, end = (pd.Timestamp(value) for value in window)
    except (ValueError, TypeError) as exc:
        raise ColdStartError(f"window {tuple(window)!r}: not a date ({exc})") from None
    if pd.isna(start) or pd.isna(end):
        raise ColdStartError(f"window {tuple(window)!r}: START and END must both be dates")
    start, end = (stamp.tz_localize(None) if stamp.tzinfo else stamp for stamp in (start, end))
    if _minutes_between(start, end) < 1:
        raise ColdStartError(f"window {tuple(window)!r}: END must be at least a whole minute after START")
    return Window(start, end, "given")


def place_in_window(parts: pd.DataFrame, window: Window, rng: np.random.Generator) -> tuple[pd.Series, dict]:
    """One timestamp per row of `parts` inside `window`, honouring its time parts (see module docstring).

    parts: [n rows] with any of the columns hour, dayofweek, month, dayofmonth (categorical or numeric;
    a null means "no constraint"). Returns (datetime64[ns] Series [n] on parts' index, stats).
    """
    slots = _slots(window)
    used = [part for part in PARTS if part in parts.columns]
    values = np.full((len(parts), len(PARTS)), -1, dtype=np.int64)
    for j, part in enumerate(PARTS):
        if part in used:
            numbers = pd.to_numeric(pd.Series(parts[part].to_numpy(dtype=object)), errors="coerce")
            values[:, j] = numbers.fillna(-1).to_numpy(dtype=np.int64)
    combos, inverse = np.unique(values, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(combos) + 1))
    stamps = np.empty(len(parts), dtype="datetime64[ns]")
    relaxed = dict.fromkeys(RELAX_ORDER, 0)
    for g, combo in enumerate(combos):  # distinct time-part combinations, not rows
        rows = order[bounds[g]:bounds[g + 1]]
        eligible, dropped = _eligible(slots, combo)
        for part in dropped:
            relaxed[part] += len(rows)
        stamps[rows] = _draw_minutes(slots, eligible, len(rows), rng)
    stats = {"window": window.plain(), "time_parts_honoured": used, "rows": int(len(parts)),
             "rows_with_parts_dropped": relaxed,
             "rule": "a uniformly drawn minute of the window whose hour slot agrees with the row's time parts"}
    return pd.Series(stamps, index=parts.index), stats


@dataclass(frozen=True)
class _Slots:
    """The window's hour slots: first whole minute [s], number of minutes [s], and their time parts [s, 4]."""

    first: np.ndarray
    minutes: np.ndarray
    parts: np.ndarray


def _slots(window: Window) -> _Slots:
    start, end = window.start.ceil("min"), window.end.floor("min")
    hours = pd.date_range(start.floor("h"), end, freq="h")
    first = np.maximum(hours.to_numpy(dtype="datetime64[ns]"), start.to_datetime64())
    last = np.minimum((hours + pd.Timedelta(minutes=59)).to_numpy(dtype="datetime64[ns]"), end.to_datetime64())
    minutes = (last - first) // _MINUTE + 1
    keep = minutes > 0
    index = pd.DatetimeIndex(first[keep])
    parts = np.stack([index.hour, index.dayofweek, index.month, index.day], axis=1).astype(np.int64)
    return _Slots(first[keep], minutes[keep].astype(np.int64), parts)


def _eligible(slots: _Slots, combo: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Indices of slots agreeing with `combo` ([4], -1 = free) and the parts dropped to find any."""
    combo = combo.copy()
    dropped: list[str] = []
    for part in (None, *RELAX_ORDER):
        if part is not None and combo[PARTS.index(part)] >= 0:
            combo[PARTS.index(part)] = -1
            dropped.append(part)
        agree = np.all((combo < 0) | (slots.parts == combo), axis=1)
        if agree.any():
            return np.flatnonzero(agree), dropped
    raise AssertionError("unreachable: with every part dropped all slots agree")


def _draw_minutes(slots: _Slots, eligible: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k minutes drawn uniformly from the eligible slots' minutes (datetime64[ns] [k])."""
    cumulative = np.cumsum(slots.minutes[eligible])
    picks = rng.integers(0, cumulative[-1], size=k)
    at = np.searchsorted(cumulative, picks, side="right")
    offset = picks - (cumulative[at] - slots.minutes[eligible][at])
    return slots.first[eligible][at] + offset * _MINUTE


def _minutes_between(start: pd.Timestamp, end: pd.Timestamp) -> int:
    return int((end.floor("min") - start.ceil("min")) // pd.Timedelta(minutes=1))


RESOLUTIONS = ("D", "h", "min", "s")
"""Candidate resolutions of the data's timestamps, coarsest first."""


def resolution(timestamps: pd.Series, rows: int = 100_000) -> str:
    """The coarsest unit (day, hour, minute, second) that every timestamp (of a sample) is a whole multiple of;
    emitted timestamps are rounded to it, so they carry no precision the data does not have."""
    stamps = pd.to_datetime(timestamps.dropna().iloc[:rows])
    for unit in RESOLUTIONS:
        if (stamps == stamps.dt.floor(unit)).all():
            return unit
    return "s"


def place_as_is(
    stamps: pd.Series, parts: pd.DataFrame, window: Window, unit: str, rng: np.random.Generator
) -> tuple[pd.Series, dict]:
    """Timestamps for rows of existing items whose timestamp is item-level: a time of the item's own season,
    not one of its real timestamps. The row's draft timestamp (drawn from the item's own training rows by
    `gen.items.item_values`) is moved by a whole number of weeks drawn uniformly from -SHIFT_WEEKS..
    +SHIFT_WEEKS, which keeps its weekday and hour, and given a uniformly drawn minute (second, at second
    resolution); kept inside the window by whole weeks, at the data's resolution; the time parts are then
    derived from it. Why not the item's own timestamp whole: on the built-in tail 38% of such candidates
    repeated a real event of the item (item, time, quantity, price) against 2.3% of real held-out rows, and
    an item with one training row could only ever copy it. Why not the generated weekday and hour
    (`place_near`): measured on the built-in tail against held-out rows of the same items, that fails the
    union's hour test; the item's own weekday and hour pass (README, "Tail augmentation")."""
    placed = pd.to_datetime(stamps).to_numpy(dtype="datetime64[ns]")
    week = np.timedelta64(7, "D").astype("timedelta64[ns]")
    shifts = rng.integers(-SHIFT_WEEKS, SHIFT_WEEKS + 1, size=len(placed))
    placed = placed + shifts * week
    if unit in ("min", "s"):
        placed = placed.astype("datetime64[h]").astype("datetime64[ns]") + \
            rng.integers(0, 60, size=len(placed)).astype("timedelta64[m]").astype("timedelta64[ns]")
    if unit == "s":
        placed = placed + rng.integers(0, 60, size=len(placed)).astype("timedelta64[s]").astype("timedelta64[ns]")
    start, end = window.start.to_datetime64(), window.end.to_datetime64()
    for _ in range(SHIFT_WEEKS + 1):  # a few whole weeks at most, back inside the window
        placed = np.where(placed < start, placed + week, placed)
        placed = np.where(placed > end, placed - week, placed)
    placed = pd.Series(placed).clip(window.start, window.end).dt.floor(unit)
    stats = {"window": window.plain(), "resolution": unit, "rows": int(len(placed)),
             "rows_shifted": int((shifts != 0).sum()),
             "rule": (f"a timestamp of the item's own training rows moved by a whole number of weeks drawn from "
                      f"-{SHIFT_WEEKS}..+{SHIFT_WEEKS} (same weekday and hour), a drawn minute, at the data's "
                      "resolution")}
    return pd.Series(placed.to_numpy(), index=parts.index), stats


def place_near(
    generated: pd.Series, parts: pd.DataFrame, window: Window, unit: str, rng: np.random.Generator
) -> tuple[pd.Series, dict]:
    """Timestamps for rows of EXISTING items: the generated date, moved to the generated weekday and hour.

    The generator's own timestamp carries the season (when in the year people buy), but a continuous
    column cannot carry the hour of day; the generated time parts can. So each row takes the day of its
    generated timestamp moved to the nearest day (-3..+3) with the generated `dayofweek`, the generated
    `hour`, and a uniformly drawn minute (second, for data at second resolution); the result is kept inside
    the window by whole weeks and rounded to `unit`. Vectorised over rows.
    """
    base = pd.to_datetime(generated).clip(window.start, window.end).to_numpy(dtype="datetime64[ns]")
    day = base.astype("datetime64[D]")
    moved = 0
    if "dayofweek" in parts.columns:
        current = (day.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        wanted = _part(parts["dayofweek"], current)
        shift = (wanted - current + 3) % 7 - 3
        moved = int((shift != 0).sum())
        day = day + shift.astype("timedelta64[D]")
    stamps = day.astype("datetime64[ns]")
    if unit in ("h", "min", "s"):
        hours = _part(parts["hour"], base.astype("datetime64[h]").astype(np.int64) % 24) if "hour" in parts.columns \
            else base.astype("datetime64[h]").astype(np.int64) % 24
        stamps = stamps + hours.astype("timedelta64[h]").astype("timedelta64[ns]")
    if unit in ("min", "s"):
        stamps = stamps + rng.integers(0, 60, size=len(stamps)).astype("timedelta64[m]").astype("timedelta64[ns]")
    if unit == "s":
        stamps = stamps + rng.integers(0, 60, size=len(stamps)).astype("timedelta64[s]").astype("timedelta64[ns]")
    week = np.timedelta64(7, "D").astype("timedelta64[ns]")
    start, end = window.start.to_datetime64(), window.end.to_datetime64()
    stamps = np.where(stamps < start, stamps + week, stamps)
    stamps = np.where(stamps > end, stamps - week, stamps)
    stats = {"window": window.plain(), "resolution": unit, "rows": int(len(stamps)),
             "rows_moved_to_generated_weekday": moved,
             "rule": ("the generated timestamp's day moved to the nearest day with the generated weekday, the "
                      "generated hour, a uniformly drawn minute; kept inside the window by whole weeks")}
    return pd.Series(stamps, index=parts.index), stats


def _part(values: pd.Series, fallback: np.ndarray) -> np.ndarray:
    """A time part as int64 [n]; nulls take the fallback's value."""
    numbers = pd.to_numeric(pd.Series(values.to_numpy(dtype=object)), errors="coerce").to_numpy(dtype=float)
    return np.where(np.isnan(numbers), fallback, numbers).astype(np.int64)
