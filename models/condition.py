"""The condition vector and training-by-sampling.

A condition is a tuple of categorical columns of the encoded layout: `pop_bucket` first (always shown), then
optional extra item columns (`ConditionConfig.columns`) that are shown or masked per row. The vector fed to
the networks is one one-hot block per condition column, all zeros where the column is masked, followed by
one entry per continuous condition (`ContinuousCondition`: an item-level number such as the item's catalogue
price, standardised as sign(x) log(1 + |x|), then by the training rows' mean and std).

Continuous conditions are always shown (never masked): an item's level is known for every item the
generator is asked about (the caller passes it, or it is drawn from real training rows), and a masked value
written as 0 could not be told apart from an item at the training mean without a further indicator column.

`TrainingSampler` is CTGAN's training-by-sampling restricted to the bucket column: a bucket is drawn by a
rule (its frequency, its log-frequency, or uniformly), then a real row of that bucket uniformly, so the
generator sees tail buckets far more often than their share of rows. Row indices per bucket are sorted
once; each draw is a few tensor operations on the codes' device (no Python loop over rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from tailsynth.models.continuous import ContinuousCondition, signed_log1p
from tailsynth.models.errors import ConfigError, DataError, EncodingError
from tailsynth.models.layout import ColumnLayout

BUCKET_COLUMN = "pop_bucket"
SamplingRule = Literal["empirical", "log_frequency", "uniform"]


@dataclass(frozen=True)
class ConditionSpec:
    """Which categorical columns form the condition and where their one-hots live in the encoded matrix X,
    and which continuous conditions follow them in the condition vector."""

    columns: tuple[str, ...]
    sizes: tuple[int, ...]
    """Number of categories of each condition column (its one-hot width)."""
    starts: tuple[int, ...]
    """Each condition column's first index in X (the encoded row), not in the condition vector."""
    continuous: tuple[ContinuousCondition, ...] = ()
    """Continuous conditions, one vector entry each after the one-hot blocks (none: today's vector)."""

    @property
    def categorical_width(self) -> int:
        """Width of the one-hot blocks: the sum of the condition columns' category counts."""
        return sum(self.sizes)

    @property
    def width(self) -> int:
        """Width of the condition vector: the one-hot blocks plus one entry per continuous condition."""
        return sum(self.sizes) + len(self.continuous)

    @property
    def continuous_names(self) -> tuple[str, ...]:
        return tuple(condition.name for condition in self.continuous)

    @classmethod
    def from_layout(
        cls,
        layout: Sequence[ColumnLayout],
        extra_columns: Sequence[str] = (),
        continuous: Sequence[ContinuousCondition] = (),
    ) -> ConditionSpec:
        """`pop_bucket` plus `extra_columns`, looked up in the encoder's layout, then `continuous`.

        Raises EncodingError if a column is missing from the layout, is not categorical, or is repeated
        (a continuous condition may not share a categorical condition's name either).
        """
        names = (BUCKET_COLUMN, *extra_columns)
        every = (*names, *(condition.name for condition in continuous))
        repeated = sorted({name for name in every if every.count(name) > 1})
        if repeated:
            raise EncodingError(
                f"condition columns {list(every)}: {repeated} listed twice (pop_bucket is always included)"
            )
        by_name = {column.name: column for column in layout}
        sizes, starts = [], []
        for name in names:
            column = by_name.get(name)
            if column is None:
                raise EncodingError(
                    f"condition column {name!r} is not an encoded column; encoded columns are {sorted(by_name)}"
                )
            if not column.is_discrete or len(column.spans) != 1:
                raise EncodingError(
                    f"condition column {name!r} must be categorical (one one-hot span), "
                    f"but it is encoded as {column.sdtype} with {len(column.spans)} span(s)"
                )
            sizes.append(column.width)
            starts.append(column.start)
        return cls(columns=names, sizes=tuple(sizes), starts=tuple(starts), continuous=tuple(continuous))

    def check_layout(self, layout: Sequence[ColumnLayout]) -> None:
        """Raise EncodingError unless every condition column sits in `layout` where this spec says it does."""
        expected = ConditionSpec.from_layout(layout, self.columns[1:], self.continuous)
        if expected != self:
            raise EncodingError(f"condition spec {self} does not match the encoder's layout (expected {expected})")

    def check_vector(self, cond: Tensor) -> None:
        """ValueError unless cond is a batch of condition vectors [b, self.width] (a shape check, no sync)."""
        if cond.ndim != 2 or cond.shape[1] != self.width:
            raise ValueError(
                f"expected condition vectors of shape [b, {self.width}] for columns {list(self.columns)}, "
                f"got {tuple(cond.shape)}"
            )

    def codes_from_encoded(self, x: Tensor) -> Tensor:
        """Condition codes of encoded rows: x [n, width of X] -> long [n, k], argmax of each column's slice."""
        slices = [x[:, start : start + size].argmax(dim=1) for start, size in zip(self.starts, self.sizes)]
        return torch.stack(slices, dim=1)

    def standardise(self, values: Tensor) -> Tensor:
        """Raw continuous condition values [b, c] (an item's catalogue price, ...) -> float32 [b, c] as the
        networks see them. Elementwise tensor ops: no host sync."""
        if values.ndim != 2 or values.shape[1] != len(self.continuous):
            raise ValueError(f"expected continuous condition values of shape [b, {len(self.continuous)}] for "
                             f"{list(self.continuous_names)}, got {tuple(values.shape)}")
        mean = torch.tensor([c.mean for c in self.continuous], dtype=torch.float64, device=values.device)
        std = torch.tensor([c.std for c in self.continuous], dtype=torch.float64, device=values.device)
        return ((signed_log1p(values.double()) - mean) / std).float()

    def vector(self, codes: Tensor, mask: Tensor, continuous: Tensor | None = None) -> Tensor:
        """The condition vector: codes long [b, k], mask bool [b, k], continuous float [b, c] (already
        standardised, `standardise`) -> float [b, self.width].

        One-hot per shown column, zeros where `mask` is False, then the continuous values as they are.
        `continuous` is required when the spec has continuous conditions. Built with `scatter_` into slices
        of one zero tensor (one op per condition column, k is small); `F.one_hot` is avoided because on CUDA
        it checks the code range on the host, a synchronisation in the training hot path.
        """
        out = torch.zeros((codes.shape[0], self.width), device=codes.device)
        offset = 0
        for j, size in enumerate(self.sizes):
            out[:, offset : offset + size].scatter_(1, codes[:, j : j + 1], mask[:, j : j + 1].to(out.dtype))
            offset += size
        if self.continuous:  # a shape check only (no sync); without continuous conditions the vector is as before
            if continuous is None or continuous.shape != (codes.shape[0], len(self.continuous)):
                got = None if continuous is None else tuple(continuous.shape)
                raise ValueError(f"continuous conditions {list(self.continuous_names)}: expected values of shape "
                                 f"[{codes.shape[0]}, {len(self.continuous)}], got {got}")
            out[:, offset:] = continuous
        return out


def layout_width(layout: Sequence[ColumnLayout]) -> int:
    """Width of the encoded row; EncodingError unless the columns tile it contiguously from 0."""
    position = 0
    for column in layout:
        if column.start != position:
            raise EncodingError(f"layout column {column.name!r} starts at {column.start}, expected {position}")
        position = column.stop
    if position == 0:
        raise EncodingError("the layout is empty: the encoder produced no columns")
    return position


def continuous_state(spec: ConditionSpec) -> list[dict[str, Any]]:
    """The spec's continuous conditions as plain JSON data (the bundle manifest's `condition_continuous`)."""
    return [condition.state() for condition in spec.continuous]


class TrainingSampler:
    """Draws training batches: a bucket by `rule`, then a uniformly random real row of that bucket.

    Everything lives on the device of `codes` (the training rows' condition codes [n, k]); a draw is a
    handful of tensor ops there and never synchronises with the host. `values` [n, c] are the training rows'
    raw continuous condition values (each row carries its item's level), required when the spec has
    continuous conditions; they are standardised once here and drawn with their rows.
    """

    def __init__(
        self,
        codes: Tensor,
        spec: ConditionSpec,
        rule: SamplingRule,
        extra_keep_prob: float,
        values: Tensor | None = None,
    ) -> None:
        _check_codes(codes, spec)
        self.continuous = _standardised_values(values, codes, spec)
        if rule not in ("empirical", "log_frequency", "uniform"):
            raise ConfigError(f"condition.sampling: expected empirical, log_frequency or uniform, got {rule!r}")
        if not 0.0 <= extra_keep_prob <= 1.0:
            raise ConfigError(f"condition.extra_keep_prob: expected a probability in [0, 1], got {extra_keep_prob}")
        self.spec = spec
        self.rule = rule
        self.extra_keep_prob = float(extra_keep_prob)
        self.codes = codes
        buckets = codes[:, 0]
        # Rows sorted by bucket: bucket b's rows are order[offsets[b] : offsets[b] + counts[b]].
        self.order = torch.argsort(buckets, stable=True)
        # A few bucket counts, computed once on the host: CUDA cumsum may refuse to run under Lightning's
        # deterministic mode, and this is set-up, not the training step.
        counts = torch.bincount(buckets.cpu(), minlength=spec.sizes[0])
        self.counts = counts.to(codes.device)
        self.offsets = (torch.cumsum(counts, dim=0) - counts).to(codes.device)
        self.bucket_probs = bucket_probabilities(self.counts, rule)

    @property
    def device(self) -> torch.device:
        return self.codes.device

    def draw(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One batch of conditions and the real rows that match them.

        Returns (row_idx long [b], cond float [b, spec.width], codes long [b, k], mask bool [b, k]):
        `row_idx` indexes the training rows, `codes = self.codes[row_idx]`, `mask[:, 0]` is always True and
        each extra column is shown with probability `extra_keep_prob`. The drawn rows' own continuous
        condition values (standardised, `self.continuous[row_idx]`) are cond's last c entries, always shown.
        `generator` must live on `self.device`.
        """
        if generator is not None and generator.device.type != self.device.type:
            raise ValueError(
                f"TrainingSampler on {self.device} needs a generator on that device, got one on {generator.device}"
            )
        buckets = torch.multinomial(self.bucket_probs, batch_size, replacement=True, generator=generator)
        counts = self.counts[buckets]
        uniform = torch.rand(batch_size, generator=generator, device=self.device, dtype=torch.float64)
        # floor(u * count) < count in exact arithmetic; the minimum guards float rounding at u close to 1.
        within = torch.minimum((uniform * counts).long(), counts - 1)
        row_idx = self.order[self.offsets[buckets] + within]
        codes = self.codes[row_idx]
        keep = torch.rand((batch_size, codes.shape[1] - 1), generator=generator, device=self.device)
        mask = torch.cat([torch.ones_like(codes[:, :1], dtype=torch.bool), keep < self.extra_keep_prob], dim=1)
        continuous = self.continuous[row_idx] if self.spec.continuous else None
        return row_idx, self.spec.vector(codes, mask, continuous), codes, mask


def bucket_probabilities(counts: Tensor, rule: SamplingRule) -> Tensor:
    """Probability of drawing each bucket from its row counts [n_buckets]; empty buckets get zero."""
    counts = counts.double()
    if rule == "empirical":
        weights = counts
    elif rule == "log_frequency":
        weights = torch.log1p(counts)  # CTGAN's log-frequency: log(1 + count), zero for empty buckets
    else:
        weights = (counts > 0).double()
    return (weights / weights.sum()).float()


def _check_codes(codes: Tensor, spec: ConditionSpec) -> None:
    """Validate the training rows' codes once, at construction (host syncs are fine here, not in draw)."""
    if codes.dtype != torch.long or codes.ndim != 2 or codes.shape[1] != len(spec.columns):
        raise DataError(
            f"condition codes: expected a long tensor [n, {len(spec.columns)}] for columns {list(spec.columns)}, "
            f"got {codes.dtype} of shape {tuple(codes.shape)}"
        )
    if codes.shape[0] == 0:
        raise DataError("condition codes: there are no training rows to sample from")
    sizes = torch.tensor(spec.sizes, device=codes.device)
    bad = (codes < 0) | (codes >= sizes)
    if bool(bad.any()):
        j = int(bad.any(dim=0).nonzero()[0])
        raise DataError(
            f"condition column {spec.columns[j]!r}: codes must lie in [0, {spec.sizes[j]}), "
            f"{int(bad[:, j].sum())} row(s) do not"
        )


def _standardised_values(values: Tensor | None, codes: Tensor, spec: ConditionSpec) -> Tensor:
    """The training rows' standardised continuous condition values float32 [n, c] on the codes' device,
    validated once at construction (a host sync here is set-up, not the training step)."""
    count = len(spec.continuous)
    if values is None and not count:
        return torch.zeros((codes.shape[0], 0), device=codes.device)
    if values is None or values.ndim != 2 or values.shape != (codes.shape[0], count):
        got = None if values is None else tuple(values.shape)
        raise DataError(f"continuous conditions {list(spec.continuous_names)}: expected the training rows' values "
                        f"[{codes.shape[0]}, {count}], got {got}")
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        j = int((~finite).any(dim=0).nonzero()[0])
        raise DataError(f"continuous condition {spec.continuous[j].name!r}: {int((~finite[:, j]).sum())} training "
                        f"row(s) have no finite value")
    return spec.standardise(values.to(codes.device))
