"""Cold start on one tiny bundle that held 5 tail items out of training (data.split.cold_items=5).

Mechanics run ungated (gate=False); the default gate must refuse cleanly on this tiny data (its tail holdout
is under min_holdout_rows); one gated success path uses TEST_GATE (see there). Timestamps are also checked
on hand-made time parts (gen.items.timestamps).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tailsynth import gen
import tailsynth.gen.items.pipeline as pipeline_module
from tailsynth.gen.__main__ import main as gen_main
from tailsynth.gen.items.cold_start import cold_start
from tailsynth.gen.items.timestamps import parse_window, place_in_window
from tailsynth.models.errors import ColdStartError
from tailsynth.train.config import GateConfig, load_config
from tailsynth.train.fit import fit
from helpers import real_counts

REPO = Path(__file__).resolve().parents[1]
FEATURES = ["category", "price_band"]
# A deliberately lenient gate for the gated success paths, whose job is the accounting, not fidelity: the
# 2-epoch tiny model is far from the data. min_holdout_rows 10 lets the tiny holdout's groups be judged
# (pooled: no single feature group of the tiny tail has many held-out rows), alpha 1e-100 and max_auc 1.0
# let its rows through the tests, 200x candidates cover the filters' rejections, 2,000-row chunks keep it
# quick. Never a setting for real data.
TEST_GATE = GateConfig(alpha=1e-100, max_auc=1.0, min_holdout_rows=10, max_candidates_factor=200, chunk_rows=2000)
# The taste test asks for 3x activity-weighted random users; the tiny data reaches about 2x on pseudo-cold
# items, so tests of what is emitted lower it. The 3x refusal itself: tests/test_taste_users.py.
TINY_MIN_LIFT = 1.0


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> gen.Bundle:
    config = load_config(REPO / "configs" / "tiny.yaml", ["data.split.cold_items=5", "monitor.enabled=false"])
    run = fit(replace(config, out_dir=str(tmp_path_factory.mktemp("runs")), name="cold"))
    return gen.load(run, device="cpu")


@pytest.fixture(scope="module")
def held_items(bundle: gen.Bundle) -> pd.DataFrame:
    """The 5 held-out tail items: real features, real interactions in cold_holdout, none in training."""
    cold_ids = bundle.table("cold_holdout")["StockCode"].unique()
    items = bundle.table("items")
    return items[items["StockCode"].isin(cold_ids)].reset_index(drop=True)


@pytest.fixture(scope="module")
def new_items(bundle: gen.Bundle) -> pd.DataFrame:
    """Items of the item table without any interaction, whose features the model knows (plus the held 5)."""
    items = bundle.table("items")
    known = set(bundle.table("train")["StockCode"]) | set(bundle.table("holdout")["StockCode"])
    keep = ~items["StockCode"].isin(known)
    for column in FEATURES:
        keep &= items[column].isin(bundle.encoder.column(column).categories)
    return items[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def ungated(bundle: gen.Bundle, held_items: pd.DataFrame):
    return cold_start(bundle, held_items, per_item=7, seed=1, gate=False, progress=False)


def test_rows_are_appendable_interactions(bundle: gen.Bundle, held_items: pd.DataFrame, ungated) -> None:
    """In the interactions file's column order and dtypes as read (its int64 ids stay int64)."""
    rows = ungated.rows
    file_dtypes = bundle.manifest["meta"]["file_dtypes"]
    assert list(rows.columns) == list(file_dtypes) == ["StockCode", "InvoiceDate", "Quantity", "UnitPrice",
                                                       "CustomerID"]
    for column in rows.columns:
        if column != "InvoiceDate":  # text in the file, written as a datetime
            text = {str(rows[column].dtype), file_dtypes[column]} <= {"object", "str", "string"}  # pandas 3
            assert str(rows[column].dtype) == file_dtypes[column] or text, column
    assert rows.groupby("StockCode").size().to_dict() == dict.fromkeys(held_items["StockCode"], 7)
    assert rows["CustomerID"].isin(bundle.table("users")["CustomerID"]).all()
    assert not rows.isna().any().any()


def test_ungated_result_says_so(ungated) -> None:
    assert not ungated.passed and ungated.rows is not None
    report = ungated.report
    assert report["verdict"] == "ungated" and "UNGATED" in report["warning"]
    assert report["settings"]["gate"] is None and all(g["gate"] == "UNGATED" for g in report["groups"])
    json.dumps(report, allow_nan=False)  # strict JSON
    assert report["users"]["exact"] + report["users"]["fallback"] == len(ungated.rows)


def test_item_features_are_the_conditions(
    bundle: gen.Bundle, held_items: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every generator call asks for the tail and exactly one item group's features; rows join back to them."""
    calls = []
    real_synthesize = pipeline_module.synthesize

    def spy(module, encoder, spec, n, conditions, **kwargs):
        calls.append((n, dict(conditions)))
        return real_synthesize(module, encoder, spec, n, conditions, **kwargs)

    monkeypatch.setattr(pipeline_module, "synthesize", spy)
    result = cold_start(bundle, held_items, per_item=3, seed=2, gate=False, progress=False)
    joined = result.rows.merge(held_items, on="StockCode", how="left", validate="many_to_one")
    groups = {g["label"]: g["conditions"] for g in result.report["groups"]}
    item_group = {e["item"]: e["group"] for e in result.report["items"]}
    for feature in FEATURES:
        expected = joined["StockCode"].map(lambda item: groups[item_group[item]][feature])
        assert (joined[feature].astype(object) == expected).all(), feature
    combos = {tuple(row) for row in held_items[FEATURES].astype(str).to_numpy()}
    asked = {(c["category"], c["price_band"]) for _, c in calls}
    assert asked == combos and all(c["pop_bucket"] == "tail" for _, c in calls)
    assert sum(n for n, _ in calls) == len(result.rows) == 3 * len(held_items)


def test_timestamps_lie_in_the_window(bundle: gen.Bundle, held_items: pd.DataFrame, ungated) -> None:
    end = bundle.table("train")["InvoiceDate"].max()
    assert ungated.rows["InvoiceDate"].between(end - pd.Timedelta(days=30), end).all()
    window = ("2011-03-01", "2011-03-03 12:00")
    rows = cold_start(bundle, held_items, per_item=20, seed=1, gate=False, window=window, progress=False).rows
    assert rows["InvoiceDate"].between(pd.Timestamp(window[0]), pd.Timestamp(window[1])).all()
    assert (rows["InvoiceDate"].dt.second == 0).all()


def test_time_parts_are_honoured_and_relaxed_only_when_impossible() -> None:
    parts = pd.DataFrame({"hour": pd.Categorical([14, 3, 23, None] * 50, categories=range(24)),
                          "dayofweek": pd.Categorical([2, 6, 0, 4] * 50, categories=range(7))})
    window = parse_window(("2011-11-09 12:31:17", "2011-12-09 12:31"))
    stamps, stats = place_in_window(parts, window, np.random.default_rng(0))
    assert stamps.between(window.start, window.end).all()
    given = parts["hour"].notna()
    assert (stamps[given].dt.hour == parts["hour"][given].astype(int)).all()
    assert (stamps.dt.dayofweek == parts["dayofweek"].astype(int)).all()
    assert sum(stats["rows_with_parts_dropped"].values()) == 0
    short = parse_window(("2011-12-05 00:00", "2011-12-06 23:59"))  # a Monday and a Tuesday only
    stamps, stats = place_in_window(parts, short, np.random.default_rng(0))
    assert stamps.between(short.start, short.end).all()
    assert stats["rows_with_parts_dropped"]["dayofweek"] == 150  # days 2, 6, 4 are not in the window
    assert (stamps[given].dt.hour == parts["hour"][given].astype(int)).all()


@pytest.mark.slow
def test_auto_counts_are_the_predicted_popularity_within_the_bucket(bundle: gen.Bundle,
                                                                      new_items: pd.DataFrame) -> None:
    tail = real_counts(bundle)
    result = cold_start(bundle, new_items, per_item="auto", seed=4, gate=False, progress=False)
    counts = result.rows.groupby("StockCode").size().reindex(new_items["StockCode"], fill_value=0)
    predicted = bundle.content.predicted_counts(new_items)
    assert (counts.to_numpy() == np.clip(predicted, tail.min(), tail.max())).all()
    assert counts.between(tail.min(), tail.max()).all() and counts.nunique() > 1 and len(new_items) > 20
    assert result.report["settings"]["rows_per_item"].startswith("predicted from the content neighbours")
    assert {e["item"]: e["rows"] for e in result.report["items"]} == counts.to_dict()
    other_seed = cold_start(bundle, new_items, "auto", seed=5, gate=False, progress=False).rows
    assert other_seed.groupby("StockCode").size().reindex(new_items["StockCode"]).equals(counts)  # content, not luck


@pytest.mark.slow
def test_mix_by_group_rakes_each_feature_group_on_its_own(bundle: gen.Bundle, new_items: pd.DataFrame) -> None:
    """`TasteSettings.mix_by_group`: the users' mix is fitted per feature group of the new items (one target each),
    the report says so, and the rows are the same on the same seed; off, one pooled target."""
    from tailsynth.gen.items.cold_start import NEW_ITEMS_TASTE
    from tailsynth.gen.items.groups import make_groups

    groups = len(make_groups(bundle, new_items, np.ones(len(new_items), dtype=np.int64), "tail", 0))
    assert groups > 1
    reports = {}
    for by_group in (False, True):
        taste = replace(NEW_ITEMS_TASTE, mix_by_group=by_group)
        result = cold_start(bundle, new_items, per_item=4, seed=6, gate=False, progress=False, taste=taste)
        section = result.report["taste"]
        assert section["settings"]["mix_by_group"] is by_group
        reports[by_group] = section["like_first_buyers"], result.rows
    pooled, grouped = reports[False][0], reports[True][0]
    assert pooled["groups"] == 1 and pooled["group_prior"] is None
    assert grouped["groups"] == groups and grouped["group_prior"] > 0
    again = cold_start(bundle, new_items, per_item=4, seed=6, gate=False, progress=False,
                       taste=replace(NEW_ITEMS_TASTE, mix_by_group=True)).rows
    assert again.equals(reports[True][1])
    assert not reports[True][1]["CustomerID"].equals(reports[False][1]["CustomerID"])


def test_mix_units_give_the_gates_pooled_groups_one_target(bundle: gen.Bundle, new_items: pd.DataFrame) -> None:
    """`TasteSettings.mix_units` with the gate's units: one mix target per group judged alone and one for the rest
    (`taste_plan.mix_groups`), each item raked with its group's; without it, one per feature group."""
    from tailsynth.gen.items.cold_start import NEW_ITEMS_TASTE
    from tailsynth.gen.items.groups import group_of, make_groups
    from tailsynth.gen.items.judge import Unit
    from tailsynth.gen.items.taste_plan import taste_users
    from tailsynth.gen.items.written import users_table

    counts = np.full(len(new_items), 4, dtype=np.int64)
    groups = make_groups(bundle, new_items, counts, "tail", 0)
    assert len(groups) > 3
    units = [Unit("a", "group", np.array([1])), Unit("b", "group", np.array([2])),
             Unit("rest", "pooled", np.array([0] + list(range(3, len(groups)))))]
    of_items = group_of(new_items, groups, bundle)
    for mix_units, expected in ((True, np.where(of_items == 1, 0, np.where(of_items == 2, 1, 2))), (False, of_items)):
        taste = replace(NEW_ITEMS_TASTE, mix_by_group=True, mix_units=mix_units)
        chooser = taste_users(bundle, new_items, new_items, taste, "CustomerID", users_table(bundle),
                              torch.device("cpu"), counts, seed=0, groups=groups, bucket="tail", units=units)
        assert chooser.mix_stats["groups"] == expected.max() + 1
        assert (chooser.item_groups == expected).all()


@pytest.mark.slow
def test_auto_scale_multiplies_the_predicted_popularity_within_the_bucket(bundle: gen.Bundle,
                                                                         new_items: pd.DataFrame) -> None:
    from tailsynth.gen.items.cold_items import item_counts

    tail = real_counts(bundle)
    predicted = bundle.content.predicted_counts(new_items)
    counts, rule = item_counts(bundle, new_items["StockCode"], "auto", "tail", np.random.default_rng(0), new_items,
                               auto_scale=2.5)
    assert (counts == np.clip(np.rint(predicted * 2.5), tail.min(), tail.max())).all()
    assert (counts > np.clip(predicted, tail.min(), tail.max())).any() and "x 2.5" in rule
    fixed, _ = item_counts(bundle, new_items["StockCode"], 4, "tail", np.random.default_rng(0), new_items, 2.5)
    assert (fixed == 4).all()  # a fixed count is what was asked
    for bad in (0, -1.0, True, "2"):
        with pytest.raises(ColdStartError, match="auto_scale: expected a number > 0"):
            item_counts(bundle, new_items["StockCode"], "auto", "tail", np.random.default_rng(0), new_items, bad)


@pytest.mark.slow
def test_auto_counts_without_a_content_predictor_are_drawn_from_the_bucket(bundle: gen.Bundle,
                                                                            new_items: pd.DataFrame) -> None:
    from tailsynth.gen.items.cold_items import item_counts

    tail = real_counts(bundle)
    counts, rule = item_counts(bundle, new_items["StockCode"], "auto", "tail", np.random.default_rng(0), None)
    assert rule == "drawn from the real tail items' counts" and np.isin(counts, tail.to_numpy()).all()
    doubled, rule = item_counts(bundle, new_items["StockCode"], "auto", "tail", np.random.default_rng(0), None, 2)
    assert rule == "drawn from the real tail items' counts x 2"
    assert (doubled == np.clip(counts * 2, tail.min(), tail.max())).all()  # the same draw, doubled


@pytest.mark.slow
def test_same_seed_same_rows(bundle: gen.Bundle, held_items: pd.DataFrame, ungated) -> None:
    again = cold_start(bundle, held_items, per_item=7, seed=1, gate=False, progress=False)
    other = cold_start(bundle, held_items, per_item=7, seed=2, gate=False, progress=False)
    pd.testing.assert_frame_equal(ungated.rows, again.rows)
    assert not ungated.rows.equals(other.rows)


def test_held_out_items_are_measured_beside_a_floor(held_items: pd.DataFrame, ungated) -> None:
    section = ungated.report["held_out_items"]
    assert {e["item"] for e in section["items"]} == set(held_items["StockCode"])
    assert all(e["generated_rows"] == 7 and e["real_rows"] > 0 for e in section["items"])
    for side in ("generated", "floor"):
        assert {"mean_ks", "mean_tvd", "columns", "auc"} <= set(section[side])
        assert [c["column"] for c in section[side]["columns"]] == section["columns"]
    assert section["floor"]["rows_synth"] == section["generated"]["rows_real"]  # same-size real sample
    assert "InvoiceDate" not in section["columns"] and "category" not in section["columns"]


# ---------------------------------------------------------------------------------------------------------
# the gate


@pytest.mark.slow
def test_default_gate_refuses_cleanly(bundle: gen.Bundle, held_items: pd.DataFrame) -> None:
    """The tiny tail holdout (174 rows) is below the default min_holdout_rows 200: no group can be judged."""
    # Users matched on features: on the tiny data the taste test refuses first (lift ~1x at 10 rows per item).
    result = cold_start(bundle, held_items, per_item=10, seed=0, progress=False, users="demographic")
    report = result.report
    assert not result.passed and result.rows is None and report["verdict"] == "refused"
    assert report["settings"]["gate"]["min_holdout_rows"] == 200
    assert report["settings"]["gate_source"].startswith("the bundle")
    assert report["totals"]["groups_refused"] == report["totals"]["groups"] == len(held_items)
    assert report["units"] == [] and report["union"] is None
    assert {f["group"] for f in report["failures"]} == {g["label"] for g in report["groups"]}
    assert all(not g["emitted"] and g["reason"] for g in report["groups"])
    assert "held_out_items" not in report and report["totals"]["rows_emitted"] == 0
    json.dumps(report, allow_nan=False)


@pytest.mark.slow
def test_gated_success_emits_exactly_the_requested_rows(bundle: gen.Bundle, held_items: pd.DataFrame) -> None:
    # Users matched on features, so that every item's 9 rows fit the candidate budget (taste users on the tiny
    # data run out of fresh pairs first); taste users through the gate: tests/test_taste_users.py.
    # The 2-epoch model's rows pass the discriminator filter at about 1% in some groups (7 of 9 rows for the
    # "storage" item within 200x candidates): 1,000x covers every item.
    # ratio_quantile 0.5 is augment's cap: a cold-start call filters at new_items_ratio_quantile (0.9).
    given = replace(TEST_GATE, max_candidates_factor=1000, ratio_quantile=0.5)
    result = cold_start(bundle, held_items, per_item=9, seed=3, gate=given, progress=False, users="demographic")
    report = result.report
    judged = [g for g in report["groups"] if g["unit"] is not None]
    assert judged, report["failures"]
    emitted = {g["label"] for g in report["groups"] if g["emitted"]}
    assert emitted == {g["label"] for g in judged}  # the lenient gate passes every group it can judge
    per_item = result.rows.groupby("StockCode").size()
    assert (per_item == 9).all() and len(per_item) == report["totals"]["items_emitted"]
    gate = report["gate"]
    assert gate["candidates"] == (gate["calibration_rows"] + gate["accepted"] + sum(gate["rejected"].values())
                                  + gate["unused"])
    assert gate["accepted"] == 9 * len(held_items)
    assert report["union"]["passed"] and report["settings"]["gate_source"] == "given"
    assert report["settings"]["gate"]["ratio_quantile"] == given.new_items_ratio_quantile == 0.9
    assert "the 0.9 quantile of r" in json.dumps(report["gate"]) and "the 0.5 quantile" not in json.dumps(report)


def test_groups_are_judged_alone_pooled_or_refused() -> None:
    """plan_units: enough held-out and requested rows -> a unit of its own; others pooled; no holdout -> refused."""
    from tailsynth.gen.items.judge import MIN_UNIT_ROWS, plan_units

    labels = ["alone", "few requested", "few held out", "none held out"]
    holdout = np.array([300, 300, 40, 0])
    requested = np.array([MIN_UNIT_ROWS, MIN_UNIT_ROWS - 1, 500, 500])
    units, refused = plan_units(labels, holdout, requested, GateConfig(min_holdout_rows=200))
    assert [(u.kind, u.groups.tolist()) for u in units] == [("group", [0]), ("pooled", [1, 2])]
    assert list(refused) == [3] and "no held-out" in refused[3]
    units, refused = plan_units(labels, holdout, requested, GateConfig(min_holdout_rows=400))
    assert [(u.kind, u.groups.tolist()) for u in units] == [("pooled", [0, 1, 2])] and list(refused) == [3]
    units, refused = plan_units(labels, holdout, requested, GateConfig(min_holdout_rows=1000))
    assert units == [] and sorted(refused) == [0, 1, 2, 3] and "fewer than min_holdout_rows" in refused[0]


def test_groups_judged_together_share_one_mix_target() -> None:
    """mix_groups: a group judged alone keeps a target of its own, pooled and refused groups share the last."""
    from tailsynth.gen.items.judge import MIN_UNIT_ROWS, plan_units
    from tailsynth.gen.items.taste_plan import mix_groups

    labels = ["pooled", "alone", "none held out", "alone too", "few held out"]
    holdout = np.array([40, 300, 0, 250, 30])
    requested = np.full(5, MIN_UNIT_ROWS)
    units, _ = plan_units(labels, holdout, requested, GateConfig(min_holdout_rows=200))
    assert mix_groups(units, 5).tolist() == [2, 0, 2, 1, 2]
    units, _ = plan_units(labels, holdout, requested, GateConfig(min_holdout_rows=1000))
    assert mix_groups(units, 5).tolist() == [0] * 5  # nothing judged alone: one target
# ---------------------------------------------------------------------------------------------------------
# bad input


def test_unseen_feature_value_is_named(bundle: gen.Bundle, held_items: pd.DataFrame) -> None:
    items = held_items.astype({"category": object})
    items.loc[1, "category"] = "spaceships"
    with pytest.raises(ColdStartError, match=r"category='spaceships' was never seen") as error:
        cold_start(bundle, items, per_item=2, gate=False)
    assert str(items.loc[1, "StockCode"]) in str(error.value)


def test_missing_feature_column_is_always_an_error(bundle: gen.Bundle, held_items: pd.DataFrame) -> None:
    for on_invalid in ("error", "skip"):
        with pytest.raises(ColdStartError, match=r"missing column\(s\) \['price_band'\]"):
            cold_start(bundle, held_items.drop(columns="price_band"), per_item=2, gate=False, on_invalid=on_invalid)


def test_duplicate_ids_are_always_an_error(bundle: gen.Bundle, held_items: pd.DataFrame) -> None:
    items = pd.concat([held_items, held_items.iloc[:1]], ignore_index=True)
    for on_invalid in ("error", "skip"):
        with pytest.raises(ColdStartError, match=f"repeats item id.*{held_items['StockCode'][0]}"):
            cold_start(bundle, items, per_item=2, gate=False, on_invalid=on_invalid)


def test_known_ids_error_or_are_skipped_with_a_warning(bundle: gen.Bundle, held_items: pd.DataFrame) -> None:
    known = bundle.table("items")
    known = known[known["StockCode"] == bundle.table("train")["StockCode"].iloc[0]]
    unseen = held_items.iloc[:1].astype({"price_band": object}).assign(StockCode="NEW-1", price_band="free")
    items = pd.concat([held_items, known, unseen], ignore_index=True)
    with pytest.raises(ColdStartError, match="already has real interactions"):
        cold_start(bundle, items, per_item=2, gate=False)
    with pytest.warns(UserWarning, match="skipped 2 invalid item") as caught:
        result = cold_start(bundle, items, per_item=2, gate=False, on_invalid="skip", progress=False)
    assert known["StockCode"].iloc[0] in str(caught[0].message) and "NEW-1" in str(caught[0].message)
    skipped = {e["item"]: e["reasons"] for e in result.report["skipped"]}
    assert set(skipped) == {known["StockCode"].iloc[0], "NEW-1"} and "price_band='free'" in skipped["NEW-1"][0]
    assert set(result.rows["StockCode"]) == set(held_items["StockCode"])
    assert result.report["totals"]["items_skipped"] == 2
    with pytest.raises(ColdStartError, match="none of the 2 item"), pytest.warns(UserWarning, match="skipped 2"):
        cold_start(bundle, items.iloc[-2:], per_item=2, gate=False, on_invalid="skip")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"per_item": 0}, "per_item"), ({"per_item": "many"}, "per_item"), ({"bucket": "mega"}, "bucket 'mega'"),
    ({"window": ("2011-01-02", "2011-01-01")}, "window"), ({"window": ("soon", "later")}, "not a date"),
])
def test_bad_settings_are_named(bundle: gen.Bundle, held_items: pd.DataFrame, kwargs: dict, message: str) -> None:
    settings = {"per_item": 2, **kwargs}
    with pytest.raises(ColdStartError, match=message):
        cold_start(bundle, held_items, gate=False, progress=False, **settings)


# ---------------------------------------------------------------------------------------------------------
# command line: tailsynth gen cold-start


@pytest.mark.slow
def test_cli_writes_rows_and_report_or_only_the_report(bundle: gen.Bundle, held_items: pd.DataFrame,
                                                       tmp_path: Path) -> None:
    items_csv = tmp_path / "new_items.csv"
    held_items.to_csv(items_csv, index=False)  # all-digit ids: read back as integers, emitted as the train's text
    base = ["cold-start", "--bundle", str(bundle.path), "--items", str(items_csv), "--per-item", "4"]
    out = tmp_path / "ungated.parquet"
    assert gen_main([*base, "--out", str(out), "--no-gate", "--window", "2011-06-01", "2011-06-30"]) == 0
    rows = pd.read_parquet(out)
    # Ids stay text: object dtype under pandas 2, the string dtype under pandas 3; never numbers.
    assert pd.api.types.is_string_dtype(rows["StockCode"]) and set(rows["StockCode"]) == set(held_items["StockCode"])
    assert json.loads(Path(f"{out}.report.json").read_text())["verdict"] == "ungated"
    refused = tmp_path / "gated.parquet"
    assert gen_main([*base, "--out", str(refused)]) == 1
    assert not refused.exists() and json.loads(Path(f"{refused}.report.json").read_text())["verdict"] == "refused"
    bad = tmp_path / "bad.parquet"
    pd.concat([held_items, held_items]).to_csv(items_csv, index=False)
    assert gen_main([*base, "--out", str(bad)]) == 2
    assert not list(tmp_path.glob("bad.parquet*"))


@pytest.mark.slow
def test_cli_auto_scale_reaches_the_counts_and_a_bad_one_is_named(bundle: gen.Bundle, new_items: pd.DataFrame,
                                                                   tmp_path: Path, capsys) -> None:
    items_csv = tmp_path / "new_items.csv"
    new_items.to_csv(items_csv, index=False)
    base = ["cold-start", "--bundle", str(bundle.path), "--items", str(items_csv), "--no-gate"]
    out = tmp_path / "scaled.parquet"
    assert gen_main([*base, "--per-item", "auto", "--auto-scale", "2", "--out", str(out)]) == 0
    counts = pd.read_parquet(out).groupby("StockCode").size()
    tail = real_counts(bundle)
    predicted = pd.Series(bundle.content.predicted_counts(new_items), index=new_items["StockCode"].astype(str))
    assert (counts == np.clip(np.rint(predicted * 2), tail.min(), tail.max()).reindex(counts.index)).all()
    assert json.loads(Path(f"{out}.report.json").read_text())["settings"]["auto_scale"] == 2.0
    for bad, said in ((["--per-item", "auto", "--auto-scale", "0"], "expected a number > 0"),
                      (["--per-item", "auto", "--auto-scale", "x"], "expected a number > 0"),
                      (["--per-item", "3", "--auto-scale", "2"], "scales --per-item auto only")):
        assert gen_main([*base, *bad, "--out", str(tmp_path / "bad.parquet")]) == 2
        assert said in capsys.readouterr().err
    assert not list(tmp_path.glob("bad.parquet*"))
