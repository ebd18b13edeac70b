"""Sampling-time conditions: columns not given are drawn jointly from training rows that agree with the
given ones (`models.synthesize.condition_codes`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tailsynth.models.condition import ConditionSpec
from tailsynth.models.config import EncoderConfig
from tailsynth.models.encoder import TableEncoder
from tailsynth.models.errors import EncodingError
from tailsynth.models.synthesize import condition_codes

# tail rows have colour a (75%) or b (25%); head rows are all colour c.
TABLE = pd.DataFrame({
    "pop_bucket": ["tail"] * 400 + ["head"] * 600,
    "colour": ["a"] * 300 + ["b"] * 100 + ["c"] * 600,
})


@pytest.fixture(scope="module")
def setup() -> tuple[TableEncoder, ConditionSpec, torch.Tensor]:
    encoder = TableEncoder(EncoderConfig()).fit(TABLE, {"pop_bucket": "categorical", "colour": "categorical"})
    spec = ConditionSpec.from_layout(encoder.layout, ["colour"])
    pool = torch.stack([encoder.codes(c, TABLE[c]) for c in spec.columns], dim=1)
    return encoder, spec, pool


def labels(encoder: TableEncoder, column: str, codes: torch.Tensor) -> np.ndarray:
    return np.asarray(encoder.column(column).categories, dtype=object)[codes.numpy()]


def test_a_given_bucket_shows_item_columns_drawn_from_its_own_rows(setup) -> None:  # noqa: ANN001
    encoder, spec, pool = setup
    codes, mask = condition_codes(encoder, spec, 4000, {"pop_bucket": "tail"}, pool=pool,
                                  generator=torch.Generator().manual_seed(0))
    assert bool(mask.all())
    assert set(labels(encoder, "pop_bucket", codes[:, 0])) == {"tail"}
    colours = pd.Series(labels(encoder, "colour", codes[:, 1]))
    assert set(colours) == {"a", "b"}  # never c: no tail row has it
    assert colours.eq("a").mean() == pytest.approx(0.75, abs=0.03)


def test_nothing_given_draws_real_combinations(setup) -> None:  # noqa: ANN001
    encoder, spec, pool = setup
    codes, mask = condition_codes(encoder, spec, 2000, None, pool=pool, generator=torch.Generator().manual_seed(1))
    assert bool(mask.all())
    pairs = set(zip(labels(encoder, "pop_bucket", codes[:, 0]), labels(encoder, "colour", codes[:, 1])))
    assert pairs == {("tail", "a"), ("tail", "b"), ("head", "c")}


def test_a_given_item_column_draws_the_bucket_that_goes_with_it(setup) -> None:  # noqa: ANN001
    encoder, spec, pool = setup
    codes, _ = condition_codes(encoder, spec, 50, {"colour": "c"}, pool=pool)
    assert set(labels(encoder, "pop_bucket", codes[:, 0])) == {"head"}


def test_given_columns_are_kept_as_given(setup) -> None:  # noqa: ANN001
    encoder, spec, pool = setup
    codes, mask = condition_codes(encoder, spec, 3, {"pop_bucket": "tail", "colour": ["c", "a", "b"]}, pool=pool)
    assert bool(mask.all())  # an unseen combination is the caller's to ask for (cold start does)
    assert list(labels(encoder, "colour", codes[:, 1])) == ["c", "a", "b"]


def test_a_combination_no_training_row_has_masks_nothing_given_and_draws_any_bucket(setup) -> None:  # noqa: ANN001
    encoder, spec, pool = setup
    without_c = pool[torch.from_numpy(TABLE["colour"].ne("c").to_numpy())]
    codes, mask = condition_codes(encoder, spec, 500, {"colour": "c"}, pool=without_c,
                                  generator=torch.Generator().manual_seed(2))
    assert bool(mask.all())  # the bucket is always shown, colour was given
    assert set(labels(encoder, "pop_bucket", codes[:, 0])) == {"tail"}  # all the pool has
    assert set(labels(encoder, "colour", codes[:, 1])) == {"c"}


def test_without_a_pool_extras_are_masked_and_the_bucket_is_required(setup) -> None:  # noqa: ANN001
    encoder, spec, _ = setup
    codes, mask = condition_codes(encoder, spec, 5, {"pop_bucket": "head"})
    assert bool(mask[:, 0].all()) and not bool(mask[:, 1].any())
    with pytest.raises(EncodingError, match="pop_bucket"):
        condition_codes(encoder, spec, 5, {"colour": "a"})


def test_same_seed_same_draws(setup) -> None:  # noqa: ANN001
    encoder, spec, pool = setup
    draws = [condition_codes(encoder, spec, 300, {"pop_bucket": "tail"}, pool=pool,
                             generator=torch.Generator().manual_seed(s))[0] for s in (5, 5, 6)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
