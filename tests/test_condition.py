"""ConditionSpec (lookup, vector <-> codes) and TrainingSampler (bucket rules, row membership, masks)."""

from __future__ import annotations

import math

import pytest
import torch

from tailsynth.models.condition import ConditionSpec, TrainingSampler, bucket_probabilities, layout_width
from tailsynth.models.errors import ConfigError, DataError, EncodingError
from tailsynth.models.layout import ColumnLayout, SpanInfo

BUCKET_COUNTS = (800, 150, 0, 50)  # bucket 2 has no rows: it must never be drawn


def make_layout() -> tuple[ColumnLayout, ...]:
    """pop_bucket (4), a continuous column with nulls (1 + 3 + 2), colour (5), country (2)."""
    return (
        ColumnLayout("quantity", "numerical", 0, (SpanInfo(1, "tanh"), SpanInfo(3, "softmax"), SpanInfo(2, "softmax"))),
        ColumnLayout("pop_bucket", "categorical", 6, (SpanInfo(4, "softmax"),), ("head", "torso", "mid", "tail")),
        ColumnLayout("colour", "categorical", 10, (SpanInfo(5, "softmax"),), tuple("abcde")),
        ColumnLayout("country", "categorical", 15, (SpanInfo(2, "softmax"),), ("uk", "fr")),
    )


def make_codes(generator: torch.Generator) -> torch.Tensor:
    """Training rows' codes [1000, 3]: buckets with BUCKET_COUNTS (shuffled), random colour and country."""
    buckets = torch.repeat_interleave(torch.arange(4), torch.tensor(BUCKET_COUNTS))
    buckets = buckets[torch.randperm(buckets.numel(), generator=generator)]
    colour = torch.randint(0, 5, (buckets.numel(),), generator=generator)
    country = torch.randint(0, 2, (buckets.numel(),), generator=generator)
    return torch.stack([buckets, colour, country], dim=1)


def test_from_layout_finds_starts_and_sizes() -> None:
    spec = ConditionSpec.from_layout(make_layout(), ["country", "colour"])
    assert spec.columns == ("pop_bucket", "country", "colour")
    assert spec.sizes == (4, 2, 5)
    assert spec.starts == (6, 15, 10)
    assert spec.width == 11
    spec.check_layout(make_layout())
    assert layout_width(make_layout()) == 17


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["size"], "'size' is not an encoded column"), (["quantity"], "must be categorical"), (["pop_bucket"], "twice")],
)
def test_from_layout_rejects_bad_columns(extra: list[str], message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        ConditionSpec.from_layout(make_layout(), extra)


def test_layout_must_be_contiguous_and_spec_must_match_it() -> None:
    layout = make_layout()
    shifted = (*layout[:3], ColumnLayout("country", "categorical", 16, (SpanInfo(2, "softmax"),)))
    with pytest.raises(EncodingError, match="'country' starts at 16, expected 15"):
        layout_width(shifted)
    spec = ConditionSpec.from_layout(layout, ["colour"])
    moved = ConditionSpec(spec.columns, spec.sizes, (6, 11))
    with pytest.raises(EncodingError, match="does not match"):
        moved.check_layout(layout)


def test_vector_and_codes_round_trip() -> None:
    generator = torch.Generator().manual_seed(0)
    spec = ConditionSpec.from_layout(make_layout(), ["colour", "country"])
    codes = make_codes(generator)[:64]
    everything = torch.ones_like(codes, dtype=torch.bool)
    cond = spec.vector(codes, everything)
    assert cond.shape == (64, 11)
    assert torch.equal(cond.sum(dim=1), torch.full((64,), 3.0))
    # Put the condition one-hots where the columns live in X; reading them back gives the codes again.
    x = torch.rand(64, 17, generator=generator)
    offset = 0
    for start, size in zip(spec.starts, spec.sizes):
        x[:, start : start + size] = cond[:, offset : offset + size]
        offset += size
    assert torch.equal(spec.codes_from_encoded(x), codes)


def test_vector_zeroes_masked_columns() -> None:
    spec = ConditionSpec.from_layout(make_layout(), ["colour", "country"])
    codes = torch.tensor([[3, 4, 1], [0, 2, 0]])
    mask = torch.tensor([[True, False, True], [True, True, False]])
    expected = torch.tensor(
        [[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]], dtype=torch.float32
    )
    assert torch.equal(spec.vector(codes, mask), expected)


def draw_many(rule: str, keep: float = 0.5, draws: int = 30, batch: int = 1000) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    spec = ConditionSpec.from_layout(make_layout(), ["colour", "country"])
    codes = make_codes(generator)
    sampler = TrainingSampler(codes, spec, rule, keep)
    parts = [sampler.draw(batch, generator) for _ in range(draws)]
    row_idx, cond, drawn, mask = (torch.cat(list(items)) for items in zip(*parts))
    return codes, spec, row_idx, cond, drawn, mask


@pytest.mark.parametrize("rule", ["empirical", "log_frequency", "uniform"])
def test_bucket_frequencies_follow_the_rule(rule: str) -> None:
    _, _, _, _, drawn, _ = draw_many(rule)
    observed = torch.bincount(drawn[:, 0], minlength=4).double() / drawn.shape[0]
    counts = torch.tensor(BUCKET_COUNTS, dtype=torch.float64)
    if rule == "empirical":
        weights = counts
    elif rule == "log_frequency":
        weights = torch.log1p(counts)
    else:
        weights = (counts > 0).double()
    expected = weights / weights.sum()
    assert observed[2] == 0  # the empty bucket is never drawn, under any rule
    # 30,000 draws: the standard error of a share is below 0.003, so 0.015 is five of them.
    assert torch.allclose(observed, expected, atol=0.015), (observed, expected)


def test_uniform_rule_balances_an_imbalanced_table() -> None:
    _, _, _, _, drawn, _ = draw_many("uniform")
    shares = torch.bincount(drawn[:, 0], minlength=4).double() / drawn.shape[0]
    assert shares[3] > 0.3  # tail rows are 5% of the table but a third of the draws


def test_drawn_rows_belong_to_their_bucket_and_cover_it() -> None:
    codes, spec, row_idx, cond, drawn, mask = draw_many("uniform")
    assert torch.equal(drawn, codes[row_idx])
    assert torch.equal(cond, spec.vector(drawn, mask))
    # Each of the 50 tail rows is drawn ~200 times; uniform within the bucket means all are hit, evenly.
    tail_rows = row_idx[drawn[:, 0] == 3]
    hits = torch.bincount(tail_rows, minlength=codes.shape[0])[codes[:, 0] == 3]
    assert hits.numel() == 50 and bool((hits > 0).all())
    mean = hits.double().mean()
    chi_square = float(((hits - mean) ** 2 / mean).sum())
    assert chi_square < 100, chi_square  # 49 degrees of freedom: 100 is far in the tail


def test_masks_show_the_bucket_and_keep_extras_at_the_configured_rate() -> None:
    *_, mask = draw_many("log_frequency", keep=0.3)
    assert bool(mask[:, 0].all())
    assert math.isclose(float(mask[:, 1:].double().mean()), 0.3, abs_tol=0.01)
    *_, never = draw_many("log_frequency", keep=0.0, draws=2)
    assert not bool(never[:, 1:].any())
    *_, always = draw_many("log_frequency", keep=1.0, draws=2)
    assert bool(always.all())


def test_same_generator_seed_gives_the_same_batch() -> None:
    spec = ConditionSpec.from_layout(make_layout(), ["colour"])
    codes = make_codes(torch.Generator().manual_seed(2))[:, :2]
    sampler = TrainingSampler(codes, spec, "log_frequency", 0.5)
    first = sampler.draw(64, torch.Generator().manual_seed(9))
    again = sampler.draw(64, torch.Generator().manual_seed(9))
    other = sampler.draw(64, torch.Generator().manual_seed(10))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_sampler_rejects_bad_inputs() -> None:
    spec = ConditionSpec.from_layout(make_layout(), ["colour"])
    codes = torch.tensor([[0, 1], [3, 4]])
    with pytest.raises(ConfigError, match="sampling"):
        TrainingSampler(codes, spec, "sqrt", 0.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="extra_keep_prob"):
        TrainingSampler(codes, spec, "uniform", 1.5)
    with pytest.raises(DataError, match=r"'colour': codes must lie in \[0, 5\)"):
        TrainingSampler(torch.tensor([[0, 1], [3, 5]]), spec, "uniform", 0.5)
    with pytest.raises(DataError, match="long tensor"):
        TrainingSampler(codes[:, :1], spec, "uniform", 0.5)
    with pytest.raises(DataError, match="no training rows"):
        TrainingSampler(codes[:0], spec, "uniform", 0.5)


def test_bucket_probabilities_log_frequency_is_ctgans() -> None:
    probs = bucket_probabilities(torch.tensor([9, 0, 99]), "log_frequency")
    expected = torch.tensor([math.log(10), 0.0, math.log(100)]) / (math.log(10) + math.log(100))
    assert torch.allclose(probs, expected)
