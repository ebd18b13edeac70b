"""gen.augment on the tiny bundle: appendable interactions for existing tail items, per-item counts, rows
judged as written, partial emission, bad input; and the pieces (item-level values, timestamps near the
generated date, condition adherence, stratified judging) on hand-made tables with known answers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailsynth import gen
from tailsynth.gen.__main__ import main as gen_main
from tailsynth.gen.gate.adherence import LabelRanges
from tailsynth.gen.items.item_values import ItemValues
from tailsynth.gen.items.judge import stratified
from tailsynth.gen.items.timestamps import Window, place_near, resolution
from tailsynth.models.errors import AugmentError
from tailsynth.train.io import read_table
from tailsynth.train.config import GateConfig, load_config
from tailsynth.train.fit import fit
from helpers import TINY_MIN_LIFT

REPO = Path(__file__).resolve().parents[1]
# Lenient on purpose (see tests/test_cold_start.py): these tests check what is emitted and how it is
# accounted for, not the 2-epoch tiny model's fidelity. Never a setting for real data.
TEST_GATE = GateConfig(alpha=1e-100, max_auc=1.0, min_holdout_rows=10, max_candidates_factor=50, chunk_rows=2000)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> gen.Bundle:
    config = load_config(REPO / "configs" / "tiny.yaml", ["monitor.enabled=false"])
    return gen.load(fit(replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="augment")), device="cpu")


@pytest.fixture(scope="module")
def tail_items(bundle: gen.Bundle) -> pd.Series:
    buckets = bundle.table("buckets")
    train_ids = set(bundle.table("train")["StockCode"])
    tail = buckets.loc[buckets["pop_bucket"] == "tail", "item"]
    return tail[tail.isin(train_ids)].reset_index(drop=True)


@pytest.fixture(scope="module")
def gated(bundle: gen.Bundle) -> gen.items.pipeline.ItemsResult:
    return gen.augment(bundle, per_item=4, seed=0, gate=TEST_GATE, min_lift=TINY_MIN_LIFT, progress=False)


def test_rows_are_appendable_interactions_of_real_items_and_users(bundle, tail_items, gated) -> None:
    rows = gated.rows
    assert rows is not None and len(rows) > 0
    # The interactions file's own column order (InvoiceNo is not modelled) and dtypes as read: CustomerID
    # stays int64 (not the nullable Int64 of the records), the timestamp a datetime.
    assert list(rows.columns) == ["StockCode", "InvoiceDate", "Quantity", "UnitPrice", "CustomerID"]
    read = read_table(REPO / "tests" / "data" / "tiny_interactions.csv", role="interactions")
    assert [c for c in read.columns if c in rows.columns] == list(rows.columns)
    assert rows["CustomerID"].dtype == "int64" and rows["Quantity"].dtype == "int64"
    text = ("object", "str", "string")  # pandas 3 reads text as its string dtype
    assert all(rows[c].dtype == read[c].dtype or {str(rows[c].dtype), str(read[c].dtype)} <= set(text)
               for c in rows.columns if c != "InvoiceDate")
    assert pd.api.types.is_datetime64_any_dtype(rows["InvoiceDate"])
    assert rows["StockCode"].isin(tail_items).all()
    assert rows["CustomerID"].isin(bundle.table("users")["CustomerID"]).all()
    assert not rows.isna().any().any()
    json.dumps(gated.report, allow_nan=False)


def test_per_item_counts_are_exact_for_every_emitted_item(tail_items, gated) -> None:
    counts = gated.rows.groupby("StockCode").size()
    assert (counts == 4).all()
    entries = {e["item"]: e for e in gated.report["items"]}
    assert set(entries) == set(tail_items)
    assert all(entries[item]["emitted"] == 4 for item in counts.index)
    emitted_groups = {g["label"] for g in gated.report["groups"] if g["emitted"]}
    assert all(e["emitted"] in (0, 4) for e in entries.values())
    assert all(e["emitted"] == 0 or e["group"] in emitted_groups for e in entries.values())
    # An item of an emitted group with no rows is one the candidate budget left short (it emits nothing).
    unfilled = sum(e["emitted"] == 0 and e["group"] in emitted_groups for e in entries.values())
    assert unfilled <= gated.report["short_items"]["items"]


def test_rows_carry_their_items_features_and_derived_time_parts(bundle, gated) -> None:
    """Judged as written: the records the gate saw join back to the emitted interactions exactly."""
    rows = gated.rows
    assert (rows["InvoiceDate"].dt.second == 0).all()  # the data's own resolution: minutes
    start, end = bundle.table("train")["InvoiceDate"].agg(["min", "max"])
    assert rows["InvoiceDate"].between(start, end).all()
    assert gated.report["settings"]["timestamp_unit"] == "min" and gated.report["settings"]["timestamp_judged"]
    adherence = gated.report["gate"]["adherence"]
    for column in ("category", "price_band"):
        assert adherence["accepted"][column] == 1.0  # inconsistent candidates never pass
        assert adherence["real_holdout"][column] >= 0.9


def test_item_level_price_comes_from_the_items_own_rows(bundle, gated) -> None:
    from tailsynth.gen.items.item_values import MIN_SHARE

    info = gated.report["item_values"]
    assert "UnitPrice" in info["item_level_columns"]
    level = info["item_level_columns"] + info["snapped_columns"]  # item-level: drawn, or (whole numbers) snapped
    assert all((share >= MIN_SHARE) == (name in level) for name, share in info["item_share"].items())
    train = bundle.table("train")
    for name in info["snapped_columns"]:  # the generator's value at one of the item's own values
        values = train.groupby("StockCode")[name].apply(set)
        assert all(v in values[item] for item, v in zip(gated.rows["StockCode"], gated.rows[name]))
    own = train.groupby("StockCode")["UnitPrice"].apply(set)
    rows = gated.rows
    assert all(price in own[item] for item, price in zip(rows["StockCode"], rows["UnitPrice"]))


def test_no_emitted_row_repeats_a_real_event(bundle, gated) -> None:
    """Issue 19 part 4: a row whose (item, time, quantity, price) equals a training row's is a real event with
    another user attached; the gate drops such candidates, counts them and reports the real floor."""
    key = ["StockCode", "InvoiceDate", "Quantity", "UnitPrice"]
    train = bundle.table("train")[key].astype(str)
    emitted = gated.rows[key].astype(str)
    assert not pd.MultiIndex.from_frame(emitted).isin(pd.MultiIndex.from_frame(train)).any()
    copies = gated.report["event_copies"]
    assert copies["emitted"] == 0 and copies["columns"] == key and 0 <= copies["real_holdout"] <= 1
    assert gated.report["gate"]["rejected"]["event_copy"] >= 0 and copies["raw_candidates"] is not None


@pytest.mark.slow
def test_refused_groups_emit_nothing_and_passing_groups_are_emitted(bundle, gated) -> None:
    report = gated.report
    refused = [g for g in report["groups"] if not g["emitted"]]
    passed = [g for g in report["groups"] if g["emitted"]]
    assert refused and passed, "the tiny tail has groups with and without held-out rows"
    assert report["verdict"] == "partial" and not gated.passed
    emitted_items = set(gated.rows["StockCode"])
    passed_labels = {g["label"] for g in passed}
    for entry in report["items"]:
        assert entry["item"] not in emitted_items or entry["group"] in passed_labels  # refused groups: nothing
    short = [e for e in report["items"] if e["group"] in passed_labels and e["item"] not in emitted_items]
    assert len(short) <= report["short_items"]["items"]  # a passing group's missing items: short of budget
    assert all(g["reason"] for g in refused if g["unit"] is None)
    assert report["union"]["passed"] and report["totals"]["rows_emitted"] == len(gated.rows)
    nothing = gen.augment(bundle, per_item=4, seed=0, gate=TEST_GATE, min_lift=TINY_MIN_LIFT, all_or_nothing=True, progress=False)
    assert nothing.rows is None and nothing.report["verdict"] == "refused"


@pytest.mark.slow
def test_same_seed_same_rows(bundle, gated) -> None:
    again = gen.augment(bundle, per_item=4, seed=0, gate=TEST_GATE, min_lift=TINY_MIN_LIFT, progress=False)
    pd.testing.assert_frame_equal(gated.rows, again.rows)


def test_auto_counts_bring_items_to_the_bucket_median(bundle, tail_items) -> None:
    result = gen.augment(bundle, per_item="auto", gate=False, progress=False)
    buckets = bundle.table("buckets").set_index("item")
    tail = buckets[(buckets["pop_bucket"] == "tail") & (buckets["count"] >= 1)]
    median = np.median(tail["count"])
    counts = result.rows.groupby("StockCode").size().reindex(tail_items, fill_value=0)
    expected = np.maximum(1, np.ceil(median - buckets.loc[tail_items, "count"].to_numpy()))
    assert (counts.to_numpy() == expected).all() and result.report["verdict"] == "ungated"


def test_listed_items_only(bundle, tail_items) -> None:
    chosen = tail_items.iloc[:3]
    result = gen.augment(bundle, per_item=2, items=chosen.tolist(), gate=False, progress=False)
    assert result.rows.groupby("StockCode").size().to_dict() == dict.fromkeys(chosen, 2)


def test_bad_input_is_named(bundle, tail_items) -> None:
    head = bundle.table("buckets").query("pop_bucket == 'head'")["item"].iloc[0]
    with pytest.raises(AugmentError, match="not items of the training data.*'no-such-item'"):
        gen.augment(bundle, items=["no-such-item", tail_items[0]], gate=False, progress=False)
    with pytest.raises(AugmentError, match=f"not 'tail' items: '{head}' \\(head\\)"):
        gen.augment(bundle, items=[head, tail_items[0]], gate=False, progress=False)
    with pytest.warns(UserWarning, match="skipped"):
        skipped = gen.augment(bundle, per_item=1, items=[head, tail_items[0]], on_other_bucket="skip", gate=False,
                              progress=False)
    assert set(skipped.rows["StockCode"]) == {tail_items[0]} and skipped.report["skipped"][0]["item"] == head
    with pytest.raises(AugmentError, match="empty"):
        gen.augment(bundle, items=[], gate=False, progress=False)
    with pytest.raises(AugmentError, match="more than once"):
        gen.augment(bundle, items=[tail_items[0], tail_items[0]], gate=False, progress=False)
    for bad in (0, -2, 1.5, "many"):
        with pytest.raises(AugmentError, match="per_item"):
            gen.augment(bundle, per_item=bad, gate=False, progress=False)
    with pytest.raises(AugmentError, match="unknown bucket 'tial'; the model knows"):
        gen.augment(bundle, bucket="tial", gate=False, progress=False)


@pytest.mark.slow
def test_cli_writes_rows_and_report_and_exit_codes(bundle, tail_items, tmp_path: Path) -> None:
    out = tmp_path / "tail.parquet"
    base = ["augment", "--bundle", str(bundle.path), "--per-item", "3"]
    assert gen_main([*base, "--out", str(out), "--no-gate"]) == 0
    assert len(pd.read_parquet(out)) == 3 * len(tail_items)
    out.write_bytes(b"stale")
    assert gen_main([*base, "--out", str(out)]) == 1  # the default gate cannot judge the tiny holdout
    # A refusal deletes no file it did not create (issue 20); its report says it describes no rows file.
    assert out.read_bytes() == b"stale"
    report = json.loads(Path(f"{out}.report.json").read_text())
    assert report["verdict"] == "refused" and report["output"]["rows"] is None
    items = tmp_path / "items.csv"
    pd.DataFrame({"StockCode": ["no-such-item"]}).to_csv(items, index=False)
    bad = tmp_path / "bad.parquet"
    assert gen_main([*base, "--items", str(items), "--out", str(bad)]) == 2
    assert not list(tmp_path.glob("bad.parquet*"))


# ---------------------------------------------------------------------------------------------------------
# the pieces, on hand-made tables


def test_item_values_are_drawn_from_the_same_items_own_rows() -> None:
    train = pd.DataFrame({"item": ["a"] * 4 + ["b"] * 4, "price": [1.0, 1.0, 2.0, 2.0, 10.0, 10.0, 12.0, 12.0],
                          "qty": [1, 5, 3, 8, 2, 7, 4, 6]})
    values = ItemValues.fit(train, "item", pd.Series(["b", "a", "c"]), ["price", "qty"])
    assert values.columns == ["price"]  # the item explains all of price's rank variance, little of qty's
    codes = np.r_[np.ones(400, dtype=np.int64), np.zeros(400, dtype=np.int64), [2]]  # positions in ["b", "a", "c"]
    rows = pd.DataFrame({"price": np.full(len(codes), 1.4), "qty": np.arange(len(codes))})
    out = values.apply(rows, codes, np.random.default_rng(0))
    assert set(out["price"][:400]) == {1.0, 2.0} and set(out["price"][400:800]) == {10.0, 12.0}
    assert 0.4 < (out["price"][:400] == 1.0).mean() < 0.6  # uniformly over the item's rows, not nearest 1.4
    assert out["price"].iloc[-1] == 1.4  # "c" has no rows: generated value kept
    assert out["qty"].tolist() == rows["qty"].tolist()


def test_snapped_columns_take_their_items_nearest_own_value() -> None:
    train = pd.DataFrame({"item": ["a"] * 4 + ["b"] * 3, "qty": [1, 12, 6, 24, 100, 2, 50]})
    values = ItemValues.fit(train, "item", pd.Series(["b", "a", "c"]), [], snap=["qty"])
    assert values.columns == ["qty"] and values.info["snapped_columns"] == ["qty"]
    codes = np.array([1, 1, 1, 1, 1, 0, 0, 0, 2, 1])  # positions in ["b", "a", "c"]
    rows = pd.DataFrame({"qty": [0.0, 3.0, 8.9, 17.0, 300.0, 1.0, 30.0, 80.0, 7.0, np.nan]})
    out = values.apply(rows, codes, np.random.default_rng(0))["qty"].tolist()
    # item a sells 1, 6, 12, 24; item b 2, 50, 100; c has no rows (kept); a missing value stays missing
    assert out[:9] == [1, 1, 6, 12, 24, 2, 50, 100, 7]
    assert np.isnan(out[9])


def test_item_level_whole_number_columns_are_snapped_not_drawn_when_asked() -> None:
    """gen.augment's quantity: the generator's value at the item's nearest pack size, never a drawn one; an
    item-level column with fractions (a price) is still drawn."""
    train = pd.DataFrame({"item": ["a"] * 4 + ["b"] * 4, "price": [1.5, 1.5, 2.5, 2.5, 10.5, 10.5, 12.5, 12.5],
                          "qty": [1, 1, 12, 12, 50, 50, 100, 100]})
    values = ItemValues.fit(train, "item", pd.Series(["a", "b"]), ["price", "qty"], snap_whole=True)
    assert values.columns == ["price", "qty"] and values.info["snapped_columns"] == ["qty"]
    codes = np.r_[np.zeros(200, dtype=np.int64), np.ones(200, dtype=np.int64)]
    rows = pd.DataFrame({"price": np.zeros(400), "qty": np.r_[np.full(100, 2), np.full(100, 9), np.full(200, 60)]})
    out = values.apply(rows, codes, np.random.default_rng(0))
    assert out["qty"].tolist() == [1] * 100 + [12] * 100 + [50] * 200  # nearest, so the generator decides
    assert set(out["price"][:200]) == {1.5, 2.5} and set(out["price"][200:]) == {10.5, 12.5}  # drawn
    drawn = ItemValues.fit(train, "item", pd.Series(["a", "b"]), ["price", "qty"])
    assert drawn.info["snapped_columns"] == [] and set(drawn.apply(rows, codes, np.random.default_rng(0))["qty"][:100]) \
        == {1, 12}


def test_matched_sides_have_equal_counts_per_stratum() -> None:
    from tailsynth.gen.items.judge import matched

    synth = np.repeat([5, 1, 9, 7], [3, 2, 4, 3])
    real = np.repeat([1, 5, 7, 8], [1, 6, 1, 2])  # stratum 9 has no real row, 8 no synthetic one
    synth_picks, real_picks = matched(synth, real, np.random.default_rng(0))
    assert sorted(synth[synth_picks].tolist()) == sorted(real[real_picks].tolist()) == [1, 5, 5, 5, 7]
    assert len(set(synth_picks)) == len(synth_picks) and len(set(real_picks)) == len(real_picks)
    capped_s, capped_r = matched(np.repeat([0, 1], 100), np.repeat([0, 1], [300, 100]), np.random.default_rng(1),
                                 limit=50)
    assert len(capped_s) == len(capped_r) == 50


def test_buyers_give_rows_the_country_of_one_of_the_items_own_buyers() -> None:
    from tailsynth.gen.items.written import Buyers

    users = pd.DataFrame({"u": ["x", "y", "z"], "Country": ["France", "UK", "UK"]})
    train = pd.DataFrame({"u": ["x", "x", "y", "z"], "item": ["a", "a", "b", "b"]})
    codes = pd.Index(["a", "b", "c"]).get_indexer(train["item"])
    buyers = Buyers.fit(users, "u", train, codes, 3)
    rows = pd.DataFrame({"Country": ["UK", "France", "Spain"]})
    wanted = buyers.like(rows, np.array([0, 1, 2]), users, ["Country"], np.random.default_rng(0))
    assert wanted["Country"].tolist() == ["France", "UK", "Spain"]  # item "c" has no buyer: the row's own


def test_place_as_is_keeps_the_items_weekday_and_hour_but_never_its_exact_time() -> None:
    from tailsynth.gen.items.timestamps import SHIFT_WEEKS, place_as_is

    window = Window(pd.Timestamp("2011-01-01"), pd.Timestamp("2011-12-31 23:59"), "test")
    own = pd.Series(pd.to_datetime(["2011-06-15 03:17:44"] * 400 + ["2010-05-01 10:00:00"]))
    stamps, stats = place_as_is(own, pd.DataFrame(index=own.index), window, "min", np.random.default_rng(0))
    inside = stamps.iloc[:400]
    assert (inside.dt.hour == 3).all() and (inside.dt.dayofweek == own[0].dayofweek).all()
    assert (inside.dt.second == 0).all() and inside.dt.minute.nunique() > 30
    days = (inside.dt.normalize() - pd.Timestamp("2011-06-15")).dt.days
    assert set(days.unique()) == {7 * k for k in range(-SHIFT_WEEKS, SHIFT_WEEKS + 1)}
    assert (inside != pd.Timestamp("2011-06-15 03:17")).mean() > 0.95  # the real time itself is rare
    assert stamps.iloc[400] == pd.Timestamp("2011-01-01") and stats["resolution"] == "min"
    again, _ = place_as_is(own, pd.DataFrame(index=own.index), window, "min", np.random.default_rng(0))
    assert again.equals(stamps)


def test_place_near_keeps_the_date_and_honours_weekday_and_hour() -> None:
    window = Window(pd.Timestamp("2011-01-01"), pd.Timestamp("2011-12-31 23:59"), "test")
    generated = pd.Series(pd.to_datetime(["2011-06-15 03:17:44.123", "2011-01-01 00:00:00", "2011-12-31 22:00:00"], format="ISO8601"))
    parts = pd.DataFrame({"hour": [14, 9, 23], "dayofweek": [0, 6, 4]})
    stamps, stats = place_near(generated, parts, window, "min", np.random.default_rng(0))
    assert (stamps.dt.hour.to_numpy() == [14, 9, 23]).all() and (stamps.dt.dayofweek.to_numpy() == [0, 6, 4]).all()
    assert (stamps.dt.second == 0).all() and stamps.between(window.start, window.end).all()
    assert abs((stamps[0].normalize() - pd.Timestamp("2011-06-15")).days) <= 3
    assert stats["resolution"] == "min"
    assert resolution(pd.Series(pd.to_datetime(["2011-01-01 10:00", "2011-01-02 11:00"]))) == "h"
    assert resolution(pd.Series(pd.to_datetime(["2011-01-01 10:00:05"]))) == "s"


def test_label_ranges_find_rows_that_do_not_honour_their_label() -> None:
    train = pd.DataFrame({"band": ["low"] * 30 + ["high"] * 30,
                          "price": np.r_[np.linspace(0.5, 0.99, 30), np.linspace(10, 20, 30)]})
    ranges = LabelRanges.fit(train, ["band"], ["price"], margin=0.0)
    rows = pd.DataFrame({"band": ["low", "high", "high", "low"], "price": [0.7, 2.15, 15.0, 12.0]})
    assert ranges.mask(rows).tolist() == [True, False, True, False]
    assert ranges.rates(rows) == {"band": 0.5}


def test_stratified_sides_have_the_same_mix() -> None:
    rng = np.random.default_rng(0)
    real = np.repeat([0, 1, 2], [100, 50, 10])
    synth = np.repeat([0, 1, 2], [40, 400, 40])
    synth_picks, real_picks = stratified(synth, real, rng)
    real_mix = np.bincount(real[real_picks], minlength=3) / len(real_picks)
    synth_mix = np.bincount(synth[synth_picks], minlength=3) / len(synth_picks)
    assert np.allclose(real_mix, synth_mix, atol=0.02)
    assert len(np.unique(synth_picks)) == len(synth_picks) and len(np.unique(real_picks)) == len(real_picks)


@pytest.mark.slow
def test_throughput_benchmark_reports_augment_rows_per_second(bundle, tail_items) -> None:
    from tailsynth.evaluate.bench.cold_start import cold_start_benchmark

    lenient = {"alpha": 1e-100, "max_auc": 1.0, "min_holdout_rows": 10, "max_candidates_factor": 50,
               "chunk_rows": 2000}
    result = cold_start_benchmark(bundle.path, augment=True, items=None, per_item=2, gate=lenient, device="cpu",
                                  min_lift=TINY_MIN_LIFT)
    assert result["kind"] == "augment" and result["rows_requested"] == 2 * len(tail_items)
    assert result["rows_emitted"] == 2 * result["items_emitted"] > 0
    assert result["rows_per_s"] == pytest.approx(result["rows_emitted"] / result["wall_s"])


def test_refusals_come_with_advice_that_never_loosens_the_gate() -> None:
    from tailsynth.gen.gate.advice import advice

    failures = [{"measure": "auc", "value": 0.7}, {"measure": "column_test", "column": "UnitPrice"},
                {"measure": "column_test", "column": "Quantity"},
                "no held-out real row has these feature values, so the rows cannot be judged"]
    lines = advice(failures)
    assert lines[0].startswith("column(s) Quantity, UnitPrice differ") and len(lines) == 3
    assert any("max_epochs" in line for line in lines) and any("holdout_fraction" in line for line in lines)
    assert not any(word in line for line in lines for word in ("alpha", "max_auc", "rare_k"))
    assert advice([]) == []


def test_choose_among_within_categories_keeps_the_rows_categories() -> None:
    from tailsynth.gen.items.users import MIN_WITHIN, choose_among

    users = pd.DataFrame({"u": np.arange(200), "Country": ["UK"] * 150 + ["France"] * 50})
    pool = np.arange(200)  # one real interaction per user
    rows = pd.DataFrame({"Country": ["France"] * 300 + ["Spain"] * 10})
    match = choose_among(rows, users, pool, categorical=["Country"], numerical=[], rng=np.random.default_rng(0),
                         candidates=4, within_categories=True)
    countries = users["Country"].to_numpy()[match.positions]
    assert (countries[:300] == "France").all() and MIN_WITHIN <= 50
    assert match.stats["fallback"] == 10  # no Spanish user: drawn from the whole pool, counted as fallback
    plain = choose_among(rows, users, pool, categorical=["Country"], numerical=[], rng=np.random.default_rng(0),
                         candidates=1)
    assert (users["Country"].to_numpy()[plain.positions][:300] == "France").mean() < 0.5  # the pool's mix instead


@pytest.mark.slow
def test_unix_second_timestamps_are_written_back_as_integers(bundle) -> None:
    """A bundle whose interactions held Unix seconds (meta.written_as) emits them as integers again."""
    import copy

    unix = copy.copy(bundle)
    unix.manifest = {**bundle.manifest, "meta": {**bundle.manifest["meta"], "written_as": {"InvoiceDate": "int64"}}}
    rows = gen.augment(unix, per_item=1, gate=False, progress=False).rows
    stamps = gen.augment(bundle, per_item=1, gate=False, progress=False).rows["InvoiceDate"]
    assert rows["InvoiceDate"].dtype == np.int64
    assert (rows["InvoiceDate"].to_numpy() == stamps.astype("int64").to_numpy() // 1_000_000_000).all()
