"""From conditions to decoded rows: the one path that `gen.sample`, cold start and training monitors share.

Conditions are labels (`{"pop_bucket": "tail"}`, or per-row labels for cold start); they become condition
codes and a mask, the generator is conditioned on them directly (no rejection sampling, so exactly n rows
come back), and the encoder decodes the result. Columns named in the condition are set to the requested
labels in the output — they are given, not generated — and how often the generator's own output already
agreed is returned as `adherence`, the measure of how well it honours its condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from tailsynth.models.condition import BUCKET_COLUMN, ConditionSpec
from tailsynth.models.encoder import TableEncoder
from tailsynth.models.errors import EncodingError
from tailsynth.models.sampling import generate_rows

Conditions = Mapping[str, Any]


def condition_codes(
    encoder: TableEncoder,
    spec: ConditionSpec,
    n: int,
    conditions: Conditions | None,
    *,
    pool: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes [n, k] and mask [n, k] for `conditions` (`condition_inputs` without the continuous values)."""
    codes, mask, _ = condition_inputs(encoder, spec, n, conditions, pool=pool, generator=generator,
                                      need_values=False)
    return codes, mask


def condition_inputs(
    encoder: TableEncoder,
    spec: ConditionSpec,
    n: int,
    conditions: Conditions | None,
    *,
    pool: torch.Tensor | None = None,
    pool_values: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    need_values: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Codes [n, k], mask [n, k] and raw continuous values float64 [n, c] (None without continuous
    conditions) for `conditions`: a label per categorical column, a number per continuous condition, or a
    sequence of n of either.

    Condition columns left out are drawn from `pool` (the training rows' condition codes [m, k]): each row
    takes them from a uniformly drawn training row that agrees with it on every given column, i.e. from
    the real joint distribution of the condition columns given the requested ones — as CTGAN draws its
    sampling-time condition vectors from the data's own frequencies. So `{"pop_bucket": "tail"}` shows the
    generator the item columns (category, price band) of real tail rows, a condition it was trained on,
    instead of leaving them out. Where no training row agrees (a combination never seen), extra columns
    stay masked and a missing bucket is drawn from all training rows. Without a pool, missing extras are
    masked and `pop_bucket` is required. Continuous conditions left out come from the same drawn row's
    `pool_values` (raw [m, c]; where no row agrees, from a row of the requested bucket, else any row);
    without them a missing continuous condition is an EncodingError (continuous ones are never masked).
    """
    conditions = dict(conditions or {})
    unknown = sorted(set(conditions) - set(spec.columns) - set(spec.continuous_names))
    if unknown:
        raise EncodingError(
            f"condition column(s) {unknown} are not conditions of this model; it was trained with "
            f"{list(spec.columns) + list(spec.continuous_names)}"
        )
    codes, given = _given_codes(encoder, spec, n, conditions)
    values, given_values = _given_values(spec, n, conditions)
    mask = given.expand(n, -1).clone()
    values_missing = need_values and not bool(given_values.all())
    if (bool(given.all()) and not values_missing) or n == 0:
        return codes, mask, values
    if values_missing:
        _check_pool_values(spec, n, given_values, pool, pool_values)
    if pool is None:
        if not bool(given[0]):
            raise EncodingError(f"condition {spec.columns[0]!r} is required (no training rows to draw it from)")
        return codes, mask, values
    pool, host = pool.cpu(), _cpu(generator)
    source, found = _matching_rows(codes[:, given], pool[:, given], spec, given, host)
    missing = ~given
    codes[:, missing] = torch.where(found[:, None], pool[source][:, missing], codes[:, missing])
    mask[:, missing] = found[:, None]
    if not bool(given[0]):  # the bucket is always shown: rows with no agreeing training row draw it from all
        anywhere = torch.randint(0, pool.shape[0], (n,), generator=host)
        codes[:, 0] = torch.where(found, codes[:, 0], pool[anywhere, 0])
        mask[:, 0] = True
        source = torch.where(found, source, anywhere)
    elif not bool(found.all()) and values_missing:  # an unseen combination: a row of the requested bucket
        bucket_only = torch.zeros_like(given)
        bucket_only[0] = True
        same_bucket, _ = _matching_rows(codes[:, :1], pool[:, :1], spec, bucket_only, host)
        source = torch.where(found, source, same_bucket)
    if values_missing:
        assert values is not None and pool_values is not None
        drawn = pool_values.cpu().double()[source]
        values[:, ~given_values] = drawn[:, ~given_values]
    return codes, mask, values


def _given_codes(encoder: TableEncoder, spec: ConditionSpec, n: int, conditions: dict[str, Any]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes long [n, k] of the categorical conditions given (0 where not given) and which were given [k]."""
    codes = torch.zeros((n, len(spec.columns)), dtype=torch.long)
    given = torch.zeros(len(spec.columns), dtype=torch.bool)
    for j, column in enumerate(spec.columns):
        if column not in conditions:
            continue
        labels = conditions[column]
        if np.ndim(labels) != 0 and len(labels) != n:
            raise EncodingError(f"condition {column!r}: expected one label or {n} labels, got {len(labels)}")
        codes[:, j] = _codes(encoder, column, [labels] if np.ndim(labels) == 0 else pd.Series(labels))
        given[j] = True
    return codes, given


def _check_pool_values(spec: ConditionSpec, n: int, given_values: torch.Tensor, pool: torch.Tensor | None,
                       pool_values: torch.Tensor | None) -> None:
    """EncodingError unless training rows' values [m, c] beside a pool [m, k] can supply the missing ones."""
    missing = [name for name, shown in zip(spec.continuous_names, given_values.tolist()) if not shown]
    if pool is None or pool_values is None:
        raise EncodingError(f"continuous condition(s) {missing}: pass a number or {n} numbers (the item's own "
                            f"value, e.g. its catalogue price); there are no training rows' values to draw them from")
    if pool_values.shape != (pool.shape[0], len(spec.continuous)):
        raise EncodingError(f"continuous condition(s) {missing}: pool_values must be the pool rows' values "
                            f"[{pool.shape[0]}, {len(spec.continuous)}], got {tuple(pool_values.shape)}")


def _given_values(spec: ConditionSpec, n: int, conditions: dict[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Raw continuous values float64 [n, c] from `conditions` (0 where not given) and which were given [c]."""
    given = torch.zeros(len(spec.continuous), dtype=torch.bool)
    if not spec.continuous:
        return None, given
    values = torch.zeros((n, len(spec.continuous)), dtype=torch.float64)
    for j, name in enumerate(spec.continuous_names):
        if name not in conditions:
            continue
        try:
            number = np.asarray(conditions[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise EncodingError(f"continuous condition {name!r}: expected a number or {n} numbers, got "
                                f"{conditions[name]!r:.60}") from None
        if number.ndim > 1 or (number.ndim == 1 and len(number) != n):
            raise EncodingError(f"continuous condition {name!r}: expected a number or {n} numbers, got shape "
                                f"{number.shape}")
        if not np.isfinite(number).all():
            raise EncodingError(f"continuous condition {name!r}: every value must be a finite number")
        values[:, j] = torch.from_numpy(np.broadcast_to(number, (n,)).copy())
        given[j] = True
    return values, given


def _matching_rows(
    wanted: torch.Tensor, candidates: torch.Tensor, spec: ConditionSpec, given: torch.Tensor,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each wanted code tuple [n, g], a uniformly drawn index of a candidate row [m, g] equal to it.

    Returns (index long [n], found bool [n]); index is 0 where no candidate agrees. Vectorised: tuples
    become one mixed-radix key, candidates are sorted by key once, and `searchsorted` finds each range.
    """
    radix = torch.tensor([size for size, shown in zip(spec.sizes, given.tolist()) if shown], dtype=torch.long)
    weights = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), radix[:-1]]), 0)
    keys = (candidates * weights).sum(1)
    order = torch.argsort(keys, stable=True)
    sorted_keys = keys[order]
    wanted_keys = (wanted * weights).sum(1)
    first = torch.searchsorted(sorted_keys, wanted_keys, side="left")
    count = torch.searchsorted(sorted_keys, wanted_keys, side="right") - first
    found = count > 0
    uniform = torch.rand(wanted.shape[0], generator=generator, dtype=torch.float64)
    within = torch.minimum((uniform * count).long(), (count - 1).clamp_min(0))
    index = order[(first + within).clamp_max(max(len(order) - 1, 0))]
    return torch.where(found, index, torch.zeros_like(index)), found


def synthesize(
    module: torch.nn.Module,
    encoder: TableEncoder,
    spec: ConditionSpec,
    n: int,
    conditions: Conditions | None = None,
    *,
    generator: torch.Generator | None = None,
    pool: torch.Tensor | None = None,
    pool_values: torch.Tensor | None = None,
    batch_size: int = 10_000,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Exactly `n` decoded rows conditioned on `conditions`, and the generator's adherence per column.

    A continuous condition (`spec.continuous_names`, e.g. "UnitPrice_item_median") takes the item's RAW
    value: one number, or n numbers (one per row). One that is also a generated column is set to the given
    value in the output, as categorical conditions are; a column generated relative to it
    (`ContinuousCondition.scales`) gets the row's level back. Left out, it is drawn with the pool row (see
    `condition_inputs`), which needs `pool_values`.
    """
    if n < 0:
        raise ValueError("n must be non-negative")
    codes, mask, values = condition_inputs(encoder, spec, n, conditions, pool=pool, pool_values=pool_values,
                                           generator=generator)
    device = next(module.parameters()).device
    rows = generate_rows(
        module, spec, codes.to(device), mask.to(device), batch_size=batch_size, generator=generator,
        continuous=values,
    )
    generated_codes = spec.codes_from_encoded(rows).cpu()
    table = encoder.inverse_transform(rows)
    adherence: dict[str, float] = {}
    for j, column in enumerate(spec.columns):
        shown = mask[:, j]
        if not bool(shown.any()):
            continue
        agree = (generated_codes[shown, j] == codes[shown, j]).float().mean()
        adherence[column] = float(agree)
        labels = np.asarray(encoder.column(column).categories, dtype=object)[codes[:, j].numpy()]
        table[column] = table[column].where(~shown.numpy(), pd.Series(labels, index=table.index))
    for j, condition in enumerate(spec.continuous):
        if condition.name in table.columns and values is not None:  # an item-table number: given, not generated
            table[condition.name] = pd.Series(values[:, j].numpy(), index=table.index)
        if condition.scales in table.columns and values is not None:  # learnt relative to the item's level
            relative = pd.to_numeric(table[condition.scales], errors="coerce").to_numpy(dtype=np.float64,
                                                                                          na_value=np.nan)
            table[condition.scales] = condition.put_back(relative, values[:, j].numpy())
    return table, adherence


def _codes(encoder: TableEncoder, column: str, labels: Any) -> torch.Tensor:
    """Category codes of condition labels; an unknown label names the values the model was trained with."""
    try:
        return encoder.codes(column, labels).cpu()
    except EncodingError as exc:
        categories = list(encoder.column(column).categories)
        known = ", ".join(map(str, categories[:20])) + (", ..." if len(categories) > 20 else "")
        # A condition names what to generate, so an unseen value is a typo, not data to refit the encoder on.
        given = pd.unique(pd.Series(np.atleast_1d(np.asarray(labels, dtype=object)), dtype=object))
        known_set = set(categories)
        unseen = [value for value in given[:1000] if value not in known_set][:5]  # on the error path only
        if not unseen:
            raise EncodingError(f"condition {column!r}: {exc}. The model was trained with: {known}") from None
        what = "bucket" if column == BUCKET_COLUMN else "value"
        raise EncodingError(f"condition {column!r}: unknown {what} {', '.join(map(repr, unseen))}; the model "
                            f"knows {known}") from None


def _cpu(generator: torch.Generator | None) -> torch.Generator | None:
    """Condition draws happen on the host; reuse the caller's generator only if it is a CPU one."""
    if generator is None or generator.device.type == "cpu":
        return generator
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)))
