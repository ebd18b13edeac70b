"""Continuous conditions: the spec's vector layout and standardisation, the sampler's drawn values, sampling-
time values (given or drawn with the pool row), the item levels from training rows, the config check, the
state round trip, and tiny CTGAN/TVAE fits whose output follows the condition they are given."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from tailsynth.models.condition import ConditionSpec, TrainingSampler, continuous_state
from tailsynth.models.continuous import ContinuousCondition, continuous_from_state, fit_continuous, signed_log1p
from tailsynth.models.config import ConditionConfig, CTGANConfig, EncoderConfig, TVAEConfig
from tailsynth.models.ctgan import CTGANModule
from tailsynth.models.encoder import TableEncoder
from tailsynth.models.errors import ConfigError, DataError, EncodingError
from tailsynth.models.layout import ColumnLayout, SpanInfo
from tailsynth.models.synthesize import condition_inputs, synthesize
from tailsynth.models.tvae import TVAEModule
from tailsynth.gen.bundle import load
from tailsynth.train.config import load_config
from tailsynth.train.fit import fit
from tailsynth.train.item_levels import condition_names, condition_spec, condition_values, item_level_table
from helpers import fit_batches

LAYOUT = (
    ColumnLayout("pop_bucket", "categorical", 0, (SpanInfo(3, "softmax"),), ("head", "torso", "tail")),
    ColumnLayout("quantity", "numerical", 3, (SpanInfo(1, "tanh"), SpanInfo(3, "softmax"))),
    ColumnLayout("colour", "categorical", 7, (SpanInfo(4, "softmax"),), tuple("abcd")),
)
PRICES = torch.tensor([[1.0, 10.0], [3.0, 10.0], [7.0, 10.0], [15.0, 10.0]])
"""Raw values of two continuous conditions for four rows; the second is constant."""


def make_spec() -> ConditionSpec:
    return ConditionSpec.from_layout(LAYOUT, ["colour"], fit_continuous(["price", "weight"], PRICES))


def test_width_and_layout_one_hots_then_continuous_values() -> None:
    spec = make_spec()
    assert spec.categorical_width == 7 and spec.width == 9
    assert spec.continuous_names == ("price", "weight")
    spec.check_layout(LAYOUT)
    codes, mask = torch.tensor([[2, 1], [0, 3]]), torch.tensor([[True, True], [True, False]])
    continuous = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    cond = spec.vector(codes, mask, continuous)
    assert torch.equal(cond[:, :7], ConditionSpec.from_layout(LAYOUT, ["colour"]).vector(codes, mask))
    assert torch.equal(cond[:, 7:], continuous)
    with pytest.raises(ValueError, match=r"\['price', 'weight'\].*\[2, 2\]"):
        spec.vector(codes, mask)
    with pytest.raises(EncodingError, match="listed twice"):
        ConditionSpec.from_layout(LAYOUT, ["colour"], (ContinuousCondition("colour", 0.0, 1.0),))


def test_standardisation_is_signed_log1p_then_training_mean_and_std() -> None:
    spec = make_spec()
    standard = spec.standardise(PRICES)
    assert standard.dtype == torch.float32
    assert torch.allclose(standard[:, 0].mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(standard[:, 0].std(correction=0), torch.tensor(1.0), atol=1e-5)
    assert torch.equal(standard[:, 1], torch.zeros(4))  # a constant has std 0: stored as 1, so it maps to 0
    logged = torch.log1p(PRICES[:, 0].double())
    assert spec.continuous[0].mean == pytest.approx(float(logged.mean()))
    assert torch.equal(signed_log1p(torch.tensor([-3.0, 0.0, 3.0])), torch.tensor([-1.0, 0.0, 1.0]) * np.log1p(3.0))


def test_sampler_returns_the_drawn_rows_own_values_and_draws_as_without_them() -> None:
    generator = torch.Generator().manual_seed(0)
    n = 500
    codes = torch.stack([torch.randint(0, 3, (n,), generator=generator), torch.randint(0, 4, (n,), generator=generator)], 1)
    values = torch.stack([torch.arange(n, dtype=torch.float64), torch.full((n,), 2.0, dtype=torch.float64)], 1)
    spec = ConditionSpec.from_layout(LAYOUT, ["colour"], fit_continuous(["price", "weight"], values))
    sampler = TrainingSampler(codes, spec, "uniform", 0.5, values)
    plain = TrainingSampler(codes, ConditionSpec.from_layout(LAYOUT, ["colour"]), "uniform", 0.5)
    row_idx, cond, drawn, mask = sampler.draw(64, torch.Generator().manual_seed(3))
    assert torch.equal(cond[:, 7:], spec.standardise(values[row_idx]))
    # Continuous conditions add no random draw: the same rows, codes, masks and one-hots as without them.
    plain_idx, plain_cond, plain_codes, plain_mask = plain.draw(64, torch.Generator().manual_seed(3))
    assert torch.equal(row_idx, plain_idx) and torch.equal(drawn, plain_codes) and torch.equal(mask, plain_mask)
    assert torch.equal(cond[:, :7], plain_cond)
    with pytest.raises(DataError, match=r"\[500, 2\]"):
        TrainingSampler(codes, spec, "uniform", 0.5)
    with pytest.raises(DataError, match="'price': 1 training row"):
        TrainingSampler(codes, spec, "uniform", 0.5, values.index_fill(0, torch.tensor([7]), float("nan")))


def test_state_round_trips_through_json_and_rejects_malformed_entries() -> None:
    spec = make_spec()
    restored = continuous_from_state(json.loads(json.dumps(continuous_state(spec))))
    assert ConditionSpec.from_layout(LAYOUT, ["colour"], restored) == spec
    assert continuous_from_state([]) == ()
    with pytest.raises(ValueError, match="std > 0"):
        continuous_from_state([{**continuous_state(spec)[0], "std": 0.0}])
    with pytest.raises(ValueError, match="transform"):
        continuous_from_state([{"name": "price", "mean": 0.0, "std": 1.0}])


# ---------------------------------------------------------------------------------------------------------
# sampling-time values and the item levels

POOL_TABLE = pd.DataFrame({"pop_bucket": ["tail"] * 30 + ["head"] * 70, "colour": ["a"] * 30 + ["c"] * 70})


@pytest.fixture(scope="module")
def pool_setup() -> tuple[TableEncoder, ConditionSpec, torch.Tensor, torch.Tensor]:
    encoder = TableEncoder(EncoderConfig()).fit(POOL_TABLE, {"pop_bucket": "categorical", "colour": "categorical"})
    values = torch.tensor([[2.0]] * 30 + [[50.0]] * 70, dtype=torch.float64)  # tail items cheap, head dear
    spec = ConditionSpec.from_layout(encoder.layout, ["colour"], fit_continuous(["price"], values))
    pool = torch.stack([encoder.codes(c, POOL_TABLE[c]) for c in spec.columns], dim=1)
    return encoder, spec, pool, values


def test_given_values_pass_through_and_missing_ones_come_with_the_pool_row(pool_setup) -> None:  # noqa: ANN001
    encoder, spec, pool, values = pool_setup
    _, _, given = condition_inputs(encoder, spec, 3, {"pop_bucket": "tail", "price": [1.0, 2.5, 9.0]})
    assert given[:, 0].tolist() == [1.0, 2.5, 9.0]
    _, _, one = condition_inputs(encoder, spec, 2, {"pop_bucket": "tail", "price": 4})
    assert one[:, 0].tolist() == [4.0, 4.0]
    _, _, drawn = condition_inputs(encoder, spec, 200, {"pop_bucket": "tail"}, pool=pool, pool_values=values,
                                   generator=torch.Generator().manual_seed(0))
    assert set(drawn[:, 0].tolist()) == {2.0}  # the values of tail rows, drawn jointly with their colour
    with pytest.raises(EncodingError, match=r"\['price'\]: pass a number or 5 numbers"):
        condition_inputs(encoder, spec, 5, {"pop_bucket": "tail"}, pool=pool)
    with pytest.raises(EncodingError, match="'price': every value must be a finite number"):
        condition_inputs(encoder, spec, 2, {"pop_bucket": "tail", "price": [1.0, float("nan")]})
    with pytest.raises(EncodingError, match=r"'price': expected a number or 3 numbers"):
        condition_inputs(encoder, spec, 3, {"pop_bucket": "tail", "price": [1.0, 2.0]})


def test_item_levels_come_from_training_rows_per_item() -> None:
    train = pd.DataFrame({"item": ["x", "x", "x", "y", "y"], "UnitPrice": [1.0, 2.0, 9.0, 4.0, 6.0],
                          "weight": [0.5, 0.5, 0.5, 2.0, 2.0]})
    condition = ConditionConfig(continuous=("weight",), item_level={"UnitPrice": "median"})
    assert condition_names(condition) == ("weight", "UnitPrice_item_median")
    table = item_level_table(train, condition, "item")
    assert table.to_dict("index") == {"x": {"weight": 0.5, "UnitPrice_item_median": 2.0},
                                      "y": {"weight": 2.0, "UnitPrice_item_median": 5.0}}
    spec, values = condition_spec(LAYOUT, condition, train, "item")
    assert spec.continuous_names == ("weight", "UnitPrice_item_median")
    assert values.tolist() == [[0.5, 2.0]] * 3 + [[2.0, 5.0]] * 2
    with pytest.raises(DataError, match="'weight' has no value for 1 training item"):
        condition_spec(LAYOUT, condition, train.assign(weight=[0.5] * 3 + [float("nan")] * 2), "item")
    plain, none = condition_spec(LAYOUT, ConditionConfig(columns=("colour",)), train, "item")
    assert none is None and plain == ConditionSpec.from_layout(LAYOUT, ["colour"])


def test_an_items_time_level_is_its_median_training_day() -> None:
    """The timestamp's level (when the item sells) is its median training time in days since 1970."""
    train = pd.DataFrame({"item": ["x", "x", "x", "y"],
                          "InvoiceDate": pd.to_datetime(["1970-01-02 00:00", "1970-01-11 00:00", "1970-01-04 12:00", "2011-01-01 00:00"])})
    table = item_level_table(train, ConditionConfig(item_level={"InvoiceDate": "median"}), "item")
    assert table["InvoiceDate_item_median"].to_dict() == {"x": 3.5, "y": 14975.0}


@pytest.mark.parametrize(("override", "message"), [
    ("model.condition.item_level={InvoiceDate: median}\nmodel.condition.relative=[InvoiceDate]", r"model.condition.relative: 'InvoiceDate' is a timestamp"),
    ("model.condition.continuous=[nope]", r"model.condition.continuous: 'nope' is not a column of the records"),
    ("model.condition.continuous=[price_band]", r"model.condition.continuous: 'price_band' is a categorical"),
    ("model.condition.item_level={Country: median}", r"model.condition.item_level: 'Country' is a categorical"),
    ("model.condition.item_level={UnitPrice: mean}", r"model.condition.item_level.UnitPrice: expected one of"),
])
def test_config_rejects_a_continuous_condition_that_is_not_a_numerical_column(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("configs/tiny.yaml", override.split("\n"))
    config = load_config("configs/tiny.yaml", ["model.condition.item_level={UnitPrice: median, InvoiceDate: median}"])
    assert config.model.condition.item_level == {"UnitPrice": "median", "InvoiceDate": "median"}


def test_a_trained_bundle_keeps_the_spec_and_takes_an_items_catalogue_value(tmp_path) -> None:  # noqa: ANN001
    """train.fit -> bundle -> gen.load on the tiny data, two batches: the loaded spec is the trained one
    (names and standardisation), and generation takes the item's median price from the training rows."""
    config = load_config("configs/tiny.yaml", [
        "model.condition.item_level={UnitPrice: median}", f"out_dir={tmp_path}", "trainer.max_epochs=1",
        "trainer.limit_train_batches=2", "monitor.enabled=false", "taste.enabled=false"])
    bundle = load(fit(config), device="cpu")
    train = bundle.table("train")
    condition = config.model.condition
    expected, values = condition_spec(bundle.encoder.layout, condition, train, "StockCode")
    assert bundle.spec == expected and bundle.spec.continuous_names == ("UnitPrice_item_median",)
    assert bundle.module.cond_width == bundle.spec.width == bundle.spec.categorical_width + 1
    price = float(item_level_table(train, condition, "StockCode")["UnitPrice_item_median"].iloc[0])
    asked = {"pop_bucket": "tail", "UnitPrice_item_median": price}
    rows, _ = synthesize(bundle.module, bundle.encoder, bundle.spec, 6, asked, generator=torch.Generator().manual_seed(0))
    again, _ = synthesize(bundle.module, bundle.encoder, bundle.spec, 6, asked, generator=torch.Generator().manual_seed(0))
    pd.testing.assert_frame_equal(rows, again)
    assert torch.equal(values, condition_values(train, condition, "StockCode"))  # what gen passes as pool_values
    drawn, _ = synthesize(bundle.module, bundle.encoder, bundle.spec, 6, {"pop_bucket": "tail"}, pool=bundle.pool,
                          pool_values=values, generator=torch.Generator().manual_seed(0))
    assert len(drawn) == 6
    # Through gen: sample draws the value with its pool row; augment conditions each existing item's rows on
    # its own median price; cold start (new items, no price) draws it with training rows of their labels.
    from tailsynth import gen

    assert len(gen.sample(bundle, 5, {"pop_bucket": "tail"}, seed=0)) == 5
    levels = bundle.item_levels["UnitPrice_item_median"]
    tail = bundle.table("buckets").query("pop_bucket == 'tail'")["item"]
    items = [i for i in tail if i in levels.index][:4]
    rows = gen.augment(bundle, per_item=2, items=items, gate=False, progress=False).rows
    assert rows is not None and rows.groupby("StockCode").size().to_dict() == dict.fromkeys(items, 2)
    new = bundle.table("items").query("StockCode in @items").assign(StockCode=lambda f: "new-" + f["StockCode"].astype(str))
    cold = gen.cold_start(bundle, new.drop(columns=["description"], errors="ignore"), per_item=2, gate=False,
                          progress=False, users="demographic").rows
    assert cold is not None and len(cold) == 2 * len(new)


def test_an_item_time_condition_makes_augment_write_the_generators_dates(tmp_path) -> None:  # noqa: ANN001
    """With the item's median time as a condition, augment reads no time of the item's rows: the generated
    date is placed (near_generated), and without it the item's own time is (as_is)."""
    from tailsynth import gen

    def augmented(level: str) -> dict:
        config = load_config("configs/tiny.yaml", [
            f"model.condition.item_level={level}", f"out_dir={tmp_path}", f"name=t{len(level)}",
            "trainer.max_epochs=1", "trainer.limit_train_batches=2", "monitor.enabled=false", "taste.enabled=false"])
        bundle = load(fit(config), device="cpu")
        result = gen.augment(bundle, per_item=1, gate=False, progress=False)
        assert result.rows is not None and len(result.rows) > 0
        return {"names": bundle.spec.continuous_names, "placement": result.report["settings"]["placement"]}

    timed = augmented("{UnitPrice: median, InvoiceDate: median}")
    assert timed == {"names": ("UnitPrice_item_median", "InvoiceDate_item_median"), "placement": "near_generated"}
    assert augmented("{UnitPrice: median}")["placement"] == "as_is"


# ---------------------------------------------------------------------------------------------------------
# the models follow the condition

def planted(steps: int, shuffle: bool = False) -> tuple[TableEncoder, ConditionSpec, list[tuple[torch.Tensor, ...]]]:
    """`steps` batches of 64 from 480 rows of 40 items, price = the item's level * exp(0.1 noise), the level
    the continuous condition (with `shuffle`, levels given to the wrong items: a condition that says nothing
    about the price)."""
    rng = np.random.default_rng(0)
    level = np.exp(rng.uniform(0, 3, 40))
    item = rng.integers(0, 40, 480)
    table = pd.DataFrame({"pop_bucket": np.where(rng.random(480) < 0.5, "head", "tail"),
                          "price": level[item] * np.exp(0.1 * rng.standard_normal(480))})
    encoder = TableEncoder(EncoderConfig(max_modes=1, gmm_iterations=30)).fit(
        table, {"pop_bucket": "categorical", "price": "numerical"}, seed=0)
    x = encoder.transform(table, generator=torch.Generator().manual_seed(0))
    values = torch.tensor(level[rng.permutation(40)] if shuffle else level)[item][:, None]
    spec = ConditionSpec.from_layout(encoder.layout, (), fit_continuous(["level"], values))
    sampler = TrainingSampler(spec.codes_from_encoded(x), spec, "uniform", 0.5, values)
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(steps):
        row_idx, cond, codes, mask = sampler.draw(64, generator)
        batches.append((x[row_idx], cond, codes, mask))
    return encoder, spec, batches


def follows(module, encoder: TableEncoder, spec: ConditionSpec, batches: list) -> float:  # noqa: ANN001
    """Rank correlation of generated prices with the levels asked for (one row per level)."""
    fit_batches(module, batches)
    asked = np.exp(np.linspace(0, 3, 200))
    rows, _ = synthesize(module, encoder, spec, 200, {"pop_bucket": "tail", "level": asked},
                         generator=torch.Generator().manual_seed(1))
    again, _ = synthesize(module, encoder, spec, 200, {"pop_bucket": "tail", "level": asked},
                          generator=torch.Generator().manual_seed(1))
    pd.testing.assert_frame_equal(rows, again)  # same seed, same rows
    return float(spearmanr(asked, rows["price"]).statistic)


def build(kind: str, encoder: TableEncoder, spec: ConditionSpec):  # noqa: ANN201
    with torch.random.fork_rng():
        torch.manual_seed(0)
        if kind == "ctgan":
            config = CTGANConfig(embedding_dim=8, generator_dims=(32,), critic_dims=(32,), pac=2, ema_decay=0.0,
                                 generator_lr=5e-3, critic_lr=5e-3)
            return CTGANModule(encoder.layout, spec, config)
        return TVAEModule(encoder.layout, spec, TVAEConfig(embedding_dim=8, compress_dims=(16, 16),
                                                           decompress_dims=(16, 16), lr=5e-3))


@pytest.mark.parametrize(("kind", "steps"), [("ctgan", 250), ("tvae", 150)])
def test_generated_values_follow_the_continuous_condition(kind: str, steps: int) -> None:
    """Measured with these seeds: CTGAN 0.87, TVAE 0.96. Trained on shuffled levels (a condition that
    carries no information, which a model can only ignore) the same fits give 0.13 and 0.21. A GAN is
    slower to learn it: CTGAN at 150 steps gave 0.60 against 0.48 shuffled, hence its 250."""
    encoder, spec, batches = planted(steps)
    assert follows(build(kind, encoder, spec), encoder, spec, batches) > 0.5


def test_a_condition_that_says_nothing_is_not_followed() -> None:
    """The control for the threshold above: TVAE trained with the levels given to the wrong items."""
    encoder, spec, batches = planted(150, shuffle=True)
    assert follows(build("tvae", encoder, spec), encoder, spec, batches) < 0.5


# ---------------------------------------------------------------------------------------------------------
# columns generated relative to their item's level (model.condition.relative)

def test_relative_to_level_round_trips_for_zero_negative_and_large_values() -> None:
    from tailsynth.models.continuous import from_level, relative_to_level

    values = np.array([0.0, -3.5, 0.42, 2.1, 1250.0, np.nan])
    levels = np.array([1.25, 2.0, 0.0, 2.1, 980.0, 3.0])
    back = from_level(relative_to_level(values, levels), levels)
    np.testing.assert_allclose(back[:5], values[:5], rtol=1e-12, atol=1e-12)
    assert np.isnan(back[5]) and relative_to_level(np.array([2.1]), np.array([2.1]))[0] == 0.0


def test_config_relative_needs_an_item_level() -> None:
    with pytest.raises(ConfigError, match=r"model.condition.relative: 'UnitPrice' must be listed once and be a key"):
        load_config("configs/tiny.yaml", ["model.condition.relative=[UnitPrice]"])
    config = load_config("configs/tiny.yaml", ["model.condition.item_level={UnitPrice: median}",
                                               "model.condition.relative=[UnitPrice]"])
    assert config.model.condition.relative == ("UnitPrice",)


def test_a_relative_column_is_generated_around_its_items_level_and_never_drawn_from_its_rows(tmp_path) -> None:  # noqa: ANN001
    """train.fit learns UnitPrice relative to the item's training median; generation puts the level back, so an
    item's generated prices follow its own level (two items ~100x apart stay apart) and augment takes the
    price from the generator (it is no item-level column drawn from the item's rows). A whole-number relative
    column (Quantity) is moved to the nearest quantity its item was sold at."""
    config = load_config("configs/tiny.yaml", [
        "model.condition.item_level={UnitPrice: median, Quantity: median}",
        "model.condition.relative=[UnitPrice, Quantity]",
        f"out_dir={tmp_path}", "trainer.max_epochs=2", "monitor.enabled=false", "taste.enabled=false"])
    bundle = load(fit(config), device="cpu")
    condition, quantity = bundle.spec.continuous
    assert condition.scales == "UnitPrice" and condition.state()["scales"] == "UnitPrice"
    assert quantity.scales == "Quantity" and quantity.decimals == 0
    medians = {}
    for level in (0.5, 50.0):
        rows, _ = synthesize(bundle.module, bundle.encoder, bundle.spec, 400,
                             {"pop_bucket": "tail", "UnitPrice_item_median": level, "Quantity_item_median": 2.0},
                             generator=torch.Generator().manual_seed(0))
        medians[level] = float(rows["UnitPrice"].median())
    assert medians[50.0] > 20 * medians[0.5]
    from tailsynth import gen

    levels = bundle.item_levels["UnitPrice_item_median"]
    tail = bundle.table("buckets").query("pop_bucket == 'tail'")["item"]
    items = [i for i in tail if i in levels.index][:4]
    result = gen.augment(bundle, per_item=2, items=items, gate=False, progress=False)
    assert "UnitPrice" not in result.report["item_values"]["item_level_columns"]
    assert result.rows["UnitPrice"].notna().all()
    assert result.report["item_values"]["snapped_columns"] == ["Quantity"]
    train = bundle.table("train")
    sold = train.groupby("StockCode")["Quantity"].agg(set)
    assert all(q in sold[item] for item, q in zip(result.rows["StockCode"], result.rows["Quantity"], strict=True))


def test_put_back_rounds_to_the_real_columns_decimals_and_the_state_keeps_them() -> None:
    condition = ContinuousCondition("UnitPrice_item_median", 0.0, 1.0, scales="UnitPrice", decimals=2)
    from tailsynth.models.continuous import relative_to_level

    level = np.array([1.25, 4.95])
    back = condition.put_back(relative_to_level(np.array([1.2499, 5.1234]), level) + 1e-9, level)
    np.testing.assert_allclose(back, [1.25, 5.12])
    assert continuous_from_state([condition.state()]) == (condition,)
    with pytest.raises(ValueError, match="decimals a whole number"):
        continuous_from_state([{**condition.state(), "decimals": -1}])
