"""The table encoder (`models.encoder.TableEncoder`): layout, exact round trips, dtypes, state, errors.

Continuous round trips are checked to the encoder's stated resolution: alpha is stored as float32, so a
decoded value may differ by 4 * std_k * 2^-24 (we allow 2^-23) plus float64/unit rounding; ints must be
exact. Values more than 3.96 std_k from their drawn mode are clipped (alpha = +-0.99, as in CTGAN): the
round-trip tests exclude those rows and check they are rare; `test_clipping_...` shows what happens.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tailsynth.models.encoder as encoder_module
from tailsynth.models.config import EncoderConfig
from tailsynth.models.encoder import TableEncoder
from tailsynth.models.errors import BundleError, ConfigError, EncodingError
from tailsynth.models.layout import all_spans
from tailsynth.train.config import load_config

REPO = Path(__file__).resolve().parents[1]

N_ROWS = 300
COLUMNS = {
    "quantity": "numerical",
    "quantity_na": "numerical",
    "price": "numerical",
    "price32": "numerical",
    "when": "datetime",
    "when_tz": "datetime",
    "country": "categorical",
    "category_id": "categorical",
    "channel": "categorical",
    "segment": "categorical",
    "returning": "categorical",
    "label": "categorical",
}
CONTINUOUS = [name for name, sdtype in COLUMNS.items() if sdtype != "categorical"]
CATEGORICAL = [name for name, sdtype in COLUMNS.items() if sdtype == "categorical"]


def _table(seed: int = 0, rows: int = N_ROWS) -> pd.DataFrame:
    """A seeded behaviour-like table with every dtype the encoder promises to keep."""
    rng = np.random.default_rng(seed)
    price = np.where(rng.random(rows) < 0.6, rng.normal(5.0, 1.0, rows), rng.normal(60.0, 8.0, rows))
    price[rng.random(rows) < 0.1] = np.nan
    seconds = rng.integers(0, 90 * 86400, rows)
    when = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, unit="s"))
    when_tz = when.dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
    when_tz = when_tz.astype("datetime64[us, Europe/Berlin]")  # a non-default unit and a time zone
    channel = rng.choice(np.array(["web", "app", None], dtype=object), rows, p=[0.5, 0.4, 0.1])
    quantity_na = np.where(rng.random(rows) < 0.15, None, rng.integers(0, 6, rows))
    return pd.DataFrame(
        {
            "quantity": rng.integers(1, 40, rows),
            "quantity_na": pd.array(quantity_na, dtype="Int64"),
            "price": price,
            "price32": rng.lognormal(1.0, 0.5, rows).astype(np.float32),
            "when": when,
            "when_tz": when_tz,
            "country": rng.choice(["UK", "FR", "DE", "NL"], rows, p=[0.55, 0.2, 0.15, 0.1]),
            "category_id": rng.choice([30, 10, 20], rows),
            "channel": pd.Series(channel, dtype=object),
            "segment": pd.Categorical(rng.choice(["gold", "silver"], rows), ["bronze", "silver", "gold"]),
            "returning": rng.random(rows) < 0.3,
            "label": pd.array(rng.choice(["a", "b", None], rows), dtype="string"),
        }
    )


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _table()


@pytest.fixture(scope="module")
def encoder(table: pd.DataFrame) -> TableEncoder:
    return TableEncoder(EncoderConfig(gmm_iterations=50)).fit(table, COLUMNS, seed=0)


@pytest.fixture(scope="module")
def encoded(encoder: TableEncoder, table: pd.DataFrame) -> torch.Tensor:
    return encoder.transform(table, generator=torch.Generator().manual_seed(1))


def _modes(encoder: TableEncoder, encoded: torch.Tensor, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(alpha [n], std of each row's mode [n]) of a continuous column."""
    layout = encoder.column(name)
    state = next(c for c in encoder.state()["columns"] if c["name"] == name)
    stds = np.array(state["stds"] + [0.0] * len(state["spikes"]))  # a spike decodes exactly: width 0
    block = encoded[:, layout.start : layout.stop]
    mode = block[:, 1 : 1 + layout.spans[1].dim].argmax(1).numpy()
    return block[:, 0].numpy(), stds[mode]


def test_layout_is_contiguous_and_matches_the_columns(encoder: TableEncoder, encoded: torch.Tensor) -> None:
    assert [c.name for c in encoder.layout] == list(COLUMNS)
    assert sum(c.width for c in encoder.layout) == encoder.width
    assert sum(span.dim for span in all_spans(encoder.layout)) == encoder.width
    assert encoded.shape == (N_ROWS, encoder.width) and encoded.dtype == torch.float32
    for before, after in zip(encoder.layout, encoder.layout[1:]):
        assert after.start == before.stop
    assert [s.activation for s in encoder.column("price").spans] == ["tanh", "softmax", "softmax"]
    assert encoder.column("price").spans[2].dim == 2  # it has nulls
    assert len(encoder.column("quantity").spans) == 2  # it has none
    # categories: most frequent first, a seen null last; unseen dtype categories ("bronze") are not spans
    assert encoder.column("country").categories == ("UK", "FR", "DE", "NL")
    assert encoder.column("channel").categories == ("web", "app", None)
    assert set(encoder.column("segment").categories) == {"gold", "silver"}


def test_encoded_rows_are_one_hot_per_span_and_alpha_in_range(
    encoder: TableEncoder, encoded: torch.Tensor
) -> None:
    start = 0
    for span in all_spans(encoder.layout):
        block = encoded[:, start : start + span.dim]
        if span.activation == "softmax":
            assert torch.all((block == 0) | (block == 1)) and torch.all(block.sum(1) == 1)
        else:
            assert block.abs().max() <= 0.99
        start += span.dim


def test_round_trip_exact_for_categoricals_and_dtypes(
    encoder: TableEncoder, encoded: torch.Tensor, table: pd.DataFrame
) -> None:
    decoded = encoder.inverse_transform(encoded)
    assert list(decoded.columns) == list(COLUMNS)
    assert decoded.dtypes.to_dict() == table.dtypes.to_dict()
    for name in CATEGORICAL:
        pd.testing.assert_series_equal(decoded[name], table[name], check_names=False)
    assert decoded["segment"].dtype == table["segment"].dtype  # same categories, "bronze" included
    assert decoded["channel"].isna().equals(table["channel"].isna())
    assert decoded["channel"][table["channel"].isna()].map(lambda v: v is None).all()


def test_round_trip_continuous_to_float32_resolution(
    encoder: TableEncoder, encoded: torch.Tensor, table: pd.DataFrame
) -> None:
    decoded = encoder.inverse_transform(encoded)
    for name in CONTINUOUS:
        alpha, std = _modes(encoder, encoded, name)
        kept = np.abs(alpha) < 0.99
        assert kept.mean() >= 0.99, f"{name}: {np.sum(~kept)} rows clipped"
        null = table[name].isna().to_numpy()
        assert np.array_equal(decoded[name].isna().to_numpy(), null), name
        rows = kept & ~null
        if name.startswith("when"):
            error = (decoded[name] - table[name]).dt.total_seconds().abs().to_numpy()[rows]
            original = table[name].astype("int64").to_numpy()[rows] / 1e9
        else:
            error = np.abs(decoded[name].astype("float64") - table[name].astype("float64")).to_numpy()[rows]
            original = table[name].astype("float64").to_numpy()[rows]
        tolerance = 4 * std[rows] * 2.0**-23 + 1e-12 * np.abs(original) + 1e-6
        assert np.all(error <= tolerance), f"{name}: max error {error.max()}"
        if name.startswith("quantity"):
            assert np.all(error == 0), name  # ints round back exactly


def test_clipping_moves_values_beyond_four_stds_of_every_mode(
    encoder: TableEncoder, table: pd.DataFrame
) -> None:
    far = table.head(3).copy()
    far["price32"] = np.float32(1e4)  # far beyond every mode of price32
    encoded = encoder.transform(far)
    alpha, std = _modes(encoder, encoded, "price32")
    assert np.all(alpha == np.float32(0.99))
    decoded = encoder.inverse_transform(encoded)["price32"].to_numpy()
    assert np.all(decoded < 1e4) and np.all(decoded > 0)


def test_state_json_round_trip_transforms_and_decodes_identically(
    encoder: TableEncoder, encoded: torch.Tensor, table: pd.DataFrame
) -> None:
    state = json.loads(json.dumps(encoder.state()))
    restored = TableEncoder.from_state(state)
    assert restored.layout == encoder.layout and restored.width == encoder.width
    again = restored.transform(table, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, encoded)
    pd.testing.assert_frame_equal(restored.inverse_transform(encoded), encoder.inverse_transform(encoded))


def test_same_seed_same_encoder_and_same_generator_same_matrix(
    encoder: TableEncoder, table: pd.DataFrame
) -> None:
    twin = TableEncoder(EncoderConfig(gmm_iterations=50)).fit(table, COLUMNS, seed=0)
    assert twin.state() == encoder.state()
    first = encoder.transform(table, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, twin.transform(table, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(encoder.transform(table), encoder.transform(table))  # default: seeded by fit


def test_codes_are_span_positions_and_unseen_labels_are_named(
    encoder: TableEncoder, encoded: torch.Tensor, table: pd.DataFrame
) -> None:
    layout = encoder.column("country")
    codes = encoder.codes("country", table["country"])
    assert codes.dtype == torch.long
    assert torch.equal(codes, encoded[:, layout.start : layout.stop].argmax(1))
    assert encoder.codes("category_id", [20]).tolist() == [encoder.column("category_id").categories.index(20)]
    with pytest.raises(EncodingError, match=r"'country'.*'ZZ'"):
        encoder.codes("country", ["UK", "ZZ"])
    bad = table.head(5).copy()
    bad["channel"] = ["web", "fax", "web", "fax", "app"]
    with pytest.raises(EncodingError, match=r"'channel'.*'fax'"):
        encoder.transform(bad)
    with pytest.raises(EncodingError, match="'price'.*not categorical"):
        encoder.codes("price", [1.0])


def test_too_many_categories_is_refused_naming_column_count_and_limit(table: pd.DataFrame) -> None:
    many = table.assign(country=[f"c{i % 12}" for i in range(len(table))])
    with pytest.raises(EncodingError, match=r"'country' has 12 categories.*max_categories=10.*id"):
        TableEncoder(EncoderConfig(max_categories=10)).fit(many, {"country": "categorical"})


def test_id_sdtype_and_bad_dtypes_are_refused(table: pd.DataFrame) -> None:
    with pytest.raises(EncodingError, match="'user_id'.*'id'"):
        TableEncoder(EncoderConfig()).fit(table.assign(user_id=1), {"user_id": "id"})
    with pytest.raises(EncodingError, match="'country'.*numerical"):
        TableEncoder(EncoderConfig()).fit(table, {"country": "numerical"})
    with pytest.raises(EncodingError, match="'price'.*datetime"):
        TableEncoder(EncoderConfig()).fit(table, {"price": "datetime"})
    with pytest.raises(EncodingError, match="missing_col"):
        TableEncoder(EncoderConfig()).fit(table, {"missing_col": "numerical"})


def test_fit_uses_a_seeded_sample_but_categories_from_every_row(
    table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[torch.Tensor] = []
    original = encoder_module.fit_gmm

    def spy(values: torch.Tensor, *args: object, **kwargs: object) -> object:
        seen.append(torch.nan_to_num(values, nan=-1.0))
        return original(values, *args, **kwargs)

    monkeypatch.setattr(encoder_module, "fit_gmm", spy)
    rare = table.assign(country=["LU"] + list(table["country"][1:]))  # in one row only
    config = EncoderConfig(fit_sample_rows=100, gmm_iterations=10)
    columns = {"price": "numerical", "country": "categorical"}
    fitted = [TableEncoder(config).fit(rare, columns, seed=seed) for seed in (0, 0, 1)]
    assert [tuple(v.shape) for v in seen] == [(1, 100)] * 3
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])
    assert "LU" in fitted[0].column("country").categories
    fitted[0].transform(rare)  # every row encodes, the rare label and the unsampled nulls included


def test_decoding_any_model_output_stays_in_vocabulary_and_dtype(
    encoder: TableEncoder, table: pd.DataFrame
) -> None:
    # A generator emits scores and tanh values anywhere in [-1, 1], not exact one-hots.
    scores = torch.rand((64, encoder.width), generator=torch.Generator().manual_seed(3)) * 2 - 1
    decoded = encoder.inverse_transform(scores)
    assert decoded.dtypes.to_dict() == table.dtypes.to_dict()
    for name in CATEGORICAL:
        assert set(decoded[name].dropna()) <= set(table[name].dropna()), name
    for name in ("quantity", "price", "price32", "when"):  # within the range seen at fit, never beyond
        assert decoded[name].dropna().between(table[name].min(), table[name].max()).all(), name


def test_malformed_state_and_unexpected_nulls_are_refused(encoder: TableEncoder, table: pd.DataFrame) -> None:
    with pytest.raises(BundleError, match="format"):
        TableEncoder.from_state({"format": "something else"})
    state = json.loads(json.dumps(encoder.state()))
    state["columns"][0]["surprise"] = 1
    with pytest.raises(BundleError, match="malformed"):
        TableEncoder.from_state(state)
    holes = table.head(4).assign(quantity=[1.0, np.nan, 2.0, 3.0])
    with pytest.raises(EncodingError, match="'quantity'.*null"):
        encoder.transform(holes)


def _spiky(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Quantities with point masses (40% at 1, 20% at 12) over a smooth remainder; prices in cents."""
    rng = np.random.default_rng(seed)
    smooth = np.rint(rng.lognormal(3.0, 0.8, rows)) + 100
    quantity = np.where(rng.random(rows) < 0.4, 1, np.where(rng.random(rows) < 1 / 3, 12, smooth)).astype(np.int64)
    price = np.round(rng.lognormal(1.0, 0.6, rows), 2)
    return pd.DataFrame({"quantity": quantity, "price": price, "noise": rng.normal(0.0, 1.0, rows)})


SPIKY = {"quantity": "numerical", "price": "numerical", "noise": "numerical"}


def test_point_masses_get_modes_of_their_own_and_decode_exactly() -> None:
    table = _spiky()
    encoder = TableEncoder(EncoderConfig(gmm_iterations=30, spike_share=0.05)).fit(table, SPIKY)
    column = next(c for c in encoder.state()["columns"] if c["name"] == "quantity")
    assert column["spikes"] == [1.0, 12.0]  # most frequent first; the smooth part has no 5% value
    layout = encoder.column("quantity")
    assert layout.spans[1].dim == len(column["means"]) + 2
    encoded = encoder.transform(table)
    slot = encoded[:, layout.start + 1 : layout.stop].argmax(1).numpy()
    at_one = table["quantity"].to_numpy() == 1
    assert np.all(slot[at_one] == len(column["means"])) and np.all(encoded[at_one, layout.start].numpy() == 0)
    assert np.all(slot[~at_one & (table["quantity"].to_numpy() != 12)] < len(column["means"]))
    # Whatever alpha a generator emits, a spike slot decodes to exactly its value.
    fake = encoded[at_one][:5].clone()
    fake[:, layout.start] = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    assert encoder.inverse_transform(fake)["quantity"].tolist() == [1] * 5
    pd.testing.assert_series_equal(encoder.inverse_transform(encoded)["quantity"], table["quantity"])


def test_the_mixture_is_fitted_on_what_the_spikes_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    valid_masks: list[torch.Tensor] = []
    original = encoder_module.fit_gmm

    def spy(values: torch.Tensor, valid: torch.Tensor, **kwargs: object) -> object:
        valid_masks.append(valid.clone())
        return original(values, valid, **kwargs)

    monkeypatch.setattr(encoder_module, "fit_gmm", spy)
    table = _spiky()
    TableEncoder(EncoderConfig(gmm_iterations=5, spike_share=0.05)).fit(table, SPIKY)
    quantity = valid_masks[0][0].numpy()
    assert not quantity[table["quantity"].isin([1, 12]).to_numpy()].any()
    assert quantity[~table["quantity"].isin([1, 12]).to_numpy()].all()
    assert valid_masks[0][2].all()  # normal noise has no spikes: every value


def test_spike_share_zero_turns_spikes_off() -> None:
    table = _spiky()
    encoder = TableEncoder(EncoderConfig(gmm_iterations=5, spike_share=0.0)).fit(table, SPIKY)
    assert all(not c.get("spikes") for c in encoder.state()["columns"])
    decoded = encoder.inverse_transform(encoder.transform(table))
    assert decoded["quantity"].between(table["quantity"].min(), table["quantity"].max()).all()


def test_spike_columns_limit_spikes_to_the_named_columns() -> None:
    table = _spiky()
    named = TableEncoder(EncoderConfig(gmm_iterations=5, spike_share=0.05, spike_columns=("price",))).fit(table, SPIKY)
    assert all(not c.get("spikes") for c in named.state()["columns"])  # quantity's spikes are not asked for
    both = TableEncoder(EncoderConfig(gmm_iterations=5, spike_share=0.05, spike_columns=("quantity", "price")))
    spikes = {c["name"]: c.get("spikes") for c in both.fit(table, SPIKY).state()["columns"]}
    assert spikes["quantity"] == [1.0, 12.0] and not spikes["price"]


def test_spike_columns_must_be_numerical_columns_of_the_records() -> None:
    with pytest.raises(ConfigError, match="spike_columns: 'Country' is not a numerical column"):
        load_config(REPO / "configs" / "online_retail_tvae.yaml", ["model.encoder.spike_columns=[Country]"])


def test_decoded_values_keep_the_precision_seen_at_fit() -> None:
    table = _spiky()
    encoder = TableEncoder(EncoderConfig(gmm_iterations=10)).fit(table, SPIKY)
    decimals = {c["name"]: c["decimals"] for c in encoder.state()["columns"]}
    assert decimals == {"quantity": None, "price": 2, "noise": None}  # ints round anyway; noise has 16 digits
    scores = torch.rand((500, encoder.width), generator=torch.Generator().manual_seed(0)) * 2 - 1
    price = encoder.inverse_transform(scores)["price"].to_numpy()
    np.testing.assert_array_equal(price, np.round(price, 2))
    assert price.min() >= table["price"].min() and price.max() <= table["price"].max()


def test_an_encoder_state_of_another_version_is_refused(encoder: TableEncoder) -> None:
    state = json.loads(json.dumps(encoder.state()))
    state["version"] = 1
    with pytest.raises(BundleError, match="version 1"):
        TableEncoder.from_state(state)


@pytest.mark.parametrize("settings", [{"spike_share": -0.1}, {"spike_share": 1.5}, {"max_spikes": -1}])
def test_spike_settings_out_of_range_are_config_errors(settings: dict) -> None:
    with pytest.raises(ConfigError, match="spike"):
        EncoderConfig(**settings)
