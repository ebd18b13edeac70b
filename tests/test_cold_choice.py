"""The cold chooser's validation benchmark (`evaluate.bench.cold_choice`): the pseudo-cold split reads training
rows only, the hidden items' rows never reach the refit, and the choice rule. Fast (no generator)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailsynth.evaluate.bench.cold_choice import (MIN_BUYERS, Columns, choose, draw_pseudo_cold,
                                                  gate_rows, hide_items, refit_taste, users_without_hidden,
                                                  validation_view, with_users)
from tailsynth.evaluate.utility.data import GATE_SHARE, gate_view
from tailsynth.gen.bundle import Bundle
from tailsynth.models.content_taste import ContentTaste
from tailsynth.models.taste import fit_taste_space

COLUMNS = Columns("user", "item")


def _planted() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """train, buckets, items, and the held-out cold items' rows (C0-C4, never in train). Users 0-29 buy red
    items R0-R9, users 30-59 blue items B0-B9; R7-R9 and B7-B9 are tail items; user 60 buys only R9."""
    rng = np.random.default_rng(0)
    pairs = []
    for user in range(60):
        side = "R" if user < 30 else "B"
        pairs += [(user, f"{side}{i}") for i in rng.choice(10, size=6, replace=False)] + [(user, f"{side}0")]
    pairs.append((60, "R9"))
    train = pd.DataFrame(pairs, columns=["user", "item"])
    names = [f"{side}{i}" for side in "RB" for i in range(10)]
    buckets = pd.DataFrame({"item": names, "pop_bucket": ["tail" if n[1] in "789" else "head" for n in names]})
    items = pd.DataFrame({"item": names + [f"C{i}" for i in range(5)],
                          "category": ["decor"] * 10 + ["garden"] * 10 + ["decor"] * 5,
                          "text": [f"red heart {w}" for w in "abcdefghij"] + [f"blue tin {w}" for w in "abcdefghij"]
                          + [f"red lace {w}" for w in "abcde"]})
    cold = pd.DataFrame({"user": [1, 2, 3, 4, 5], "item": [f"C{i}" for i in range(5)]})
    return train, buckets, items, cold


def test_pseudo_cold_items_are_training_items_with_buyers_never_held_out_ones() -> None:
    train, buckets, _, cold = _planted()
    buyers = train.drop_duplicates().groupby("item")["user"].nunique()
    for split in ("tail", "any"):
        ids = draw_pseudo_cold(train, buckets, COLUMNS, split=split, tail="tail", n_items=4, seed=0)
        assert len(ids) == 4 and len(set(ids)) == 4
        assert set(ids) <= set(train["item"]) and not set(ids) & set(cold["item"])
        assert (buyers[ids] >= MIN_BUYERS).all()
        same = draw_pseudo_cold(train, buckets, COLUMNS, split=split, tail="tail", n_items=4, seed=0)
        assert list(ids) == list(same)  # seeded
    tail = draw_pseudo_cold(train, buckets, COLUMNS, split="tail", tail="tail", n_items=100, seed=0)
    assert set(tail) <= {"R7", "R8", "R9", "B7", "B8", "B9"}
    with pytest.raises(ValueError, match="split"):
        draw_pseudo_cold(train, buckets, COLUMNS, split="head", tail="tail", n_items=4, seed=0)


def test_hidden_rows_are_absent_from_the_refit_and_the_view() -> None:
    train, buckets, items, _ = _planted()
    ids = np.array(["B8", "R9"], dtype=object)
    kept, hidden = hide_items(train, "item", ids)
    assert set(hidden["item"]) == set(ids) and not kept["item"].isin(ids).any()
    assert len(kept) + len(hidden) == len(train)
    space0 = fit_taste_space(train["user"].to_numpy(), train["item"].to_numpy(dtype=object), dim=4, seed=0)
    template = ContentTaste.fit(items, "item", ["category"], "text", space0, seed=0, neighbours=3)
    space, content = refit_taste(kept, items, COLUMNS, template, dim=4, seed=0)
    assert not set(ids) & set(space.item_ids)
    assert 60 not in set(space.user_ids)  # user 60 bought only the hidden R9
    assert (space.item_positions(np.asarray(ids)) < 0).all()
    assert content.space is space and (content.space.item_positions(np.asarray(ids)) < 0).all()
    bundle = Bundle(Path("run/bundle"), {}, None, None, None,  # type: ignore[arg-type]
                    {"train": train, "holdout": train.iloc[:3], "cold_holdout": train.iloc[:3], "buckets": buckets,
                     "users": pd.DataFrame({"user": range(61)}), "items": items})
    view = validation_view(bundle, kept, space, content)
    assert view.taste is space and view.content is content
    assert view.table("holdout").empty and view.table("cold_holdout").empty
    assert not view.table("train")["item"].isin(ids).any()
    assert len(bundle.table("train")) == len(train) and len(bundle.table("holdout")) == 3  # the bundle untouched


def test_gated_validation_judges_against_the_gate_half_without_the_hidden_items() -> None:
    train, buckets, items, _ = _planted()
    holdout = train.sample(frac=1.0, random_state=1).reset_index(drop=True).assign(row=lambda t: range(len(t)))
    bundle = Bundle(Path("run/bundle"), {}, None, None, None,  # type: ignore[arg-type]
                    {"train": train, "holdout": holdout, "cold_holdout": holdout.iloc[:0], "buckets": buckets,
                     "users": pd.DataFrame({"user": range(61)}), "items": items})
    ids = np.array(["R0", "B8"], dtype=object)
    rows = gate_rows(bundle, "item", ids)
    gate_half, scored, _ = gate_view(bundle, GATE_SHARE)
    assert not rows["item"].isin(ids).any() and len(rows) > 0
    assert set(rows["row"]) <= set(gate_half.table("holdout")["row"]) and not set(rows["row"]) & set(scored["row"])
    view = validation_view(bundle, hide_items(train, "item", ids)[0], None, None, rows)
    assert view.table("holdout") is rows and view.table("cold_holdout").empty


def test_choice_is_the_best_mean_ratio_among_settings_never_measurably_below_a_cell_best() -> None:
    def cell(**arms: tuple[float, float]) -> dict:  # arm -> (ratio to transfer, high end of the interval vs best)
        return {arm: {"ratio_to_transfer": ratio, "minus_best": {"high": high}} for arm, (ratio, high) in arms.items()}

    # a: best mean ratio but measurably below the best on tail item-kNN; b and c admissible, c higher on average.
    summary = {"tail": {"als": cell(a=(3.0, 0.0), b=(1.2, 0.01), c=(1.1, 0.0)),
                        "item_knn": cell(a=(0.9, -0.02), b=(1.0, 0.0), c=(1.5, 0.0))},
               "any": {"als": cell(a=(1.3, 0.0), b=(1.1, 0.0), c=(1.15, 0.01)),
                       "item_knn": cell(a=(1.1, 0.0), b=(1.0, 0.0), c=(1.0, 0.0))}}
    choice = choose(summary, ["a", "b", "c"])
    assert choice["admissible"] == ["b", "c"] and choice["chosen"] == "c"
    assert choice["worst_ratio"] == {"a": 0.9, "b": 1.0, "c": 1.0}
    for arms in summary.values():  # none admissible: the highest worst-case ratio
        for entry in arms.values():
            for arm in entry.values():
                arm["minus_best"]["high"] = -1.0
    assert choose(summary, ["a", "b", "c"])["chosen"] in ("b", "c")


def test_the_fallback_never_takes_a_setting_below_neighbour_transfer() -> None:
    """None admissible: the fallback takes the best worst-case ratio within the budget only if it is >= 1 (never
    below transfer in any cell); otherwise nothing is chosen (the default stays)."""
    def cell(**arms: tuple[float, float]) -> dict:  # arm -> (ratio to transfer, high end of the interval vs best)
        return {arm: {"ratio_to_transfer": ratio, "minus_best": {"high": high}} for arm, (ratio, high) in arms.items()}

    summary = {"tail": {"als": cell(a=(1.3, -0.01), b=(1.1, 0.0)), "item_knn": cell(a=(1.2, 0.0), b=(0.7, -0.05)),
                        "overall": {"none": 0.16, "a": {"ratio_to_none": 0.97}, "b": {"ratio_to_none": 0.99}}}}
    choice = choose(summary, ["a", "b"])  # a is over the budget, b (within) is 0.7x transfer on item-kNN
    assert choice["admissible"] == [] and choice["within_overall_budget"] == ["b"] and choice["chosen"] is None
    summary["tail"]["item_knn"]["b"]["ratio_to_transfer"] = 1.05
    assert choose(summary, ["a", "b"])["chosen"] == "b"
    summary["tail"]["overall"]["b"]["ratio_to_none"] = 0.97  # none within: every setting, a's worst 1.2 >= 1
    assert choose(summary, ["a", "b"])["chosen"] == "a"


def test_a_setting_that_costs_more_than_the_overall_budget_is_not_chosen() -> None:
    def cell(**arms: float) -> dict:  # arm -> ratio to transfer, never measurably below the cell's best
        return {arm: {"ratio_to_transfer": ratio, "minus_best": {"high": 0.0}} for arm, ratio in arms.items()}

    summary = {split: {"als": cell(a=1.5, b=1.2), "item_knn": cell(a=1.5, b=1.2),
                       "overall": {"none": 0.16, "a": {"ratio_to_none": 0.95}, "b": {"ratio_to_none": 0.99}}}
               for split in ("tail", "any")}
    choice = choose(summary, ["a", "b"])
    assert choice["chosen"] == "b" and choice["admissible"] == ["b"] and choice["within_overall_budget"] == ["b"]
    summary["any"]["overall"]["a"]["ratio_to_none"] = 1.0  # within on one split only: still out
    assert choose(summary, ["a", "b"])["chosen"] == "b"
    summary["tail"]["overall"]["a"]["ratio_to_none"] = 1.0  # within on both pseudo-cold splits ...
    summary["new_items"] = {"overall": {"none": 0.16, "a": {"ratio_to_none": 0.97}, "b": {"ratio_to_none": 0.99}}}
    assert choose(summary, ["a", "b"])["chosen"] == "b"  # ... but not on the new items: out
    assert choose({"new_items": summary["new_items"]}, ["a", "b"])["chosen"] is None  # costs only: no choice


def test_a_refused_call_costs_nothing_measured_and_is_compared_on_the_seeds_that_emitted() -> None:
    """A refused call adds no rows: its overall cost is NaN for that seed (`refused_cost`), not 0, and the budget
    compares a setting with no rows on the seeds where it emitted only; refused everywhere, it is never within."""
    from tailsynth.evaluate.bench.cold_choice import refused_cost, summarise
    from tailsynth.evaluate.utility.intervals import seed_mean

    figures = refused_cost({"overall": np.full(4, 0.2), "als": np.zeros(4)})
    assert np.isnan(figures["overall"]).all() and (figures["als"] == 0).all()  # its items still score 0
    users = 50
    none = [np.full(users, 0.2), np.full(users, 0.1)]  # seed 1's model is worse on every arm
    by_seed = {"none": none, "transfer": [np.full(users, 0.19), np.full(users, 0.095)],
               "a": [np.full(users, 0.2), np.full(users, np.nan)],  # no cost on seed 0, refused on seed 1
               "b": [np.full(users, np.nan)] * 2}  # refused on both
    split = {"per_user": {arm: {"overall": seed_mean(v)} for arm, v in by_seed.items()}, "overall_by_seed": by_seed}
    cells = summarise({"new_items": split}, ["a", "b"], resamples=50)["new_items"]["overall"]
    assert cells["a"]["seeds"] == [0] and cells["a"]["ratio_to_none"] == pytest.approx(1.0)  # not 0.2 / 0.15
    assert cells["transfer"]["seeds"] == [0, 1] and cells["transfer"]["ratio_to_none"] == pytest.approx(0.95)
    assert cells["b"]["seeds"] == [] and np.isnan(cells["b"]["ratio_to_none"])
    summary = {"new_items": {"overall": cells}}
    assert choose(summary, ["a", "b"])["within_overall_budget"] == ["a"]


def test_the_weight_is_the_most_visible_one_within_the_overall_budget_on_every_split() -> None:
    from tailsynth.evaluate.bench.cold_choice import Grid, choose_weight, label

    grid = Grid(temperatures=(0.5,), shortlists=(1,), weights=(1.0, 0.5, 0.25))
    setting = grid.settings()[0]
    arms = {w: label(setting, w) for w in grid.weights}
    assert grid.labels() == list(arms.values()) and grid.labels(1.0) == [label(setting)] == [arms[1.0]]
    assert len(set(arms.values())) == 3 and arms[0.5].endswith("weight=0.5")

    def split(ratios: tuple[float, ...], visible: tuple[float, ...] | None) -> dict:  # per weight, in grid order
        cells = {"overall": {"none": 0.16, **{arms[w]: {"ratio_to_none": r}
                                              for w, r in zip(grid.weights, ratios)}}}
        if visible is not None:
            cells["cold_full"] = {"transfer": 0.01, **{arms[w]: {"mean": v} for w, v in zip(grid.weights, visible)}}
        return cells

    # weight 1 finds the pseudo-cold items most often but costs 3% on the new items: 0.5 is the most visible within
    summary = {"tail": split((0.99, 1.0, 1.0), (0.03, 0.02, 0.01)),
               "any": split((0.99, 0.995, 1.0), (0.03, 0.02, 0.01)), "new_items": split((0.97, 0.99, 0.995), None)}
    choice = choose_weight(summary, arms)
    assert choice["chosen"] == 0.5 and choice["within_overall_budget"] == [0.5, 0.25]
    assert choice["full_catalogue_cold"][1.0] == pytest.approx(0.03)
    assert choice["overall_ratio_to_none"][1.0]["new_items"] == 0.97
    summary["new_items"] = split((0.97, 0.97, 0.97), None)  # none within the budget: the smallest weight
    assert choose_weight(summary, arms)["chosen"] == 0.25


def test_user_match_compares_the_generated_rows_users_with_the_hidden_buyers_one_per_pair() -> None:
    from types import SimpleNamespace

    from tailsynth.evaluate.bench.cold_choice import user_match

    users = pd.DataFrame({"user": range(6), "frequency": [1, 1, 1, 50, 60, 70], "Country": ["UK"] * 6})
    bundle = SimpleNamespace(table=lambda name: users, role=lambda role: ["frequency", "Country"],
                             columns={"frequency": "numerical", "Country": "categorical"})
    hidden = pd.DataFrame({"user": [0, 1, 2, 2, 2], "item": ["a", "a", "a", "a", "a"]})  # user 2's repeats count once
    assert user_match(bundle, pd.DataFrame({"user": [0, 1, 2]}), hidden, COLUMNS) == {"frequency": 0.0}
    assert user_match(bundle, pd.DataFrame({"user": [3, 4, 5]}), hidden, COLUMNS) == {"frequency": 1.0}


def test_validation_users_are_rederived_without_the_hidden_purchases_where_built_in() -> None:
    """A hidden buyer's features must not count the hidden purchase (a scored cold item's buyers' do not)."""
    at = pd.Timestamp("2011-01-01")
    train = pd.DataFrame({"CustomerID": [1, 1, 2], "StockCode": ["A", "H", "H"], "Quantity": [1, 2, 3],
                          "UnitPrice": [1.0, 10.0, 2.0], "InvoiceDate": [at, at + pd.Timedelta(days=4), at],
                          "monetary": [21.0, 21.0, 6.0]})
    users = pd.DataFrame({"CustomerID": [1, 2], "recency_days": [0, 4], "frequency": [2, 1], "monetary": [21.0, 6.0]})
    kept, hidden = hide_items(train, "StockCode", np.array(["H"], dtype=object))
    manifest = {"meta": {"config": {"data": {"users": {"path": "users.csv"}}}}}
    given = Bundle(Path("run/bundle"), manifest, None, None, None, {"train": train, "users": users})  # type: ignore[arg-type]
    assert users_without_hidden(given, kept, hidden) is None  # a table the user supplies is taken as given
    built_in = replace(given, manifest={"meta": {"config": {"data": {"users": {"path": "builtin:online_retail"}}}}})
    derived = users_without_hidden(built_in, kept, hidden)
    assert derived.set_index("CustomerID")["monetary"].tolist() == [1.0, 0.0]
    assert derived.set_index("CustomerID")["frequency"].tolist() == [1, 0]
    assert with_users(kept, derived, "CustomerID", ["monetary"])["monetary"].tolist() == [1.0]
    assert users["monetary"].tolist() == [21.0, 6.0]  # the bundle's table untouched


def _run(seeds: list[int], knn: list[float], als: list[float], rows: list[int], refusals: list[list[str]],
         arm: str = "tau=0.5") -> dict:
    """A cold_choice result JSON's shape, one gated pseudo-cold split."""
    return {"seeds": seeds, "splits": {"tail": {
        "info": {"gated": True, "rows_added": {arm: rows}, "refusals": {arm: refusals}},
        "per_seed": {arm: {"item_knn": knn, "als": als}, "transfer": {"item_knn": [0.1] * len(seeds)}}}}}


def test_runs_are_compared_only_on_the_seeds_both_emitted_in_full() -> None:
    from tailsynth.evaluate.bench.cold_compare import compare

    base = [("b0.json", _run([0, 1], [0.30, 0.20], [0.40, 0.40], [90, 100], [["hour"], []])),
            ("b2.json", _run([2], [0.25], [0.38], [100], [[]]))]
    trial = [("t.json", _run([0, 1, 2, 3], [0.50, 0.26, 0.00, 0.33], [0.41, 0.39, 0.00, 0.40],
                             [100, 100, 0, 100], [[], [], ["AUC"], []]))]
    result = compare(base, trial)
    tail = result["splits"]["tail"]
    assert result["arm"] == "tau=0.5" and tail["paired_seeds"] == [1]  # seed 0: base partial; 2: trial refused
    assert tail["calls"] == {"base": {"full": 2, "partial": 1, "refused": 0},
                             "trial": {"full": 3, "partial": 0, "refused": 1}}
    knn = tail["figures"]["item_knn"]
    assert knn["paired"]["base"] == pytest.approx(0.20) and knn["paired"]["difference"] == pytest.approx(0.06)
    assert knn["every_seed"]["trial"] == pytest.approx(np.mean([0.50, 0.26, 0.00, 0.33]))
    assert "transfer" not in result  # figures are the setting's own
    other = [("t.json", _run([1], [0.40], [0.39], [100], [[]], arm="tau=0.25"))]
    two = compare(base, other, "tau=0.5", "tau=0.25")["splits"]["tail"]["figures"]["item_knn"]["paired"]
    assert two["difference"] == pytest.approx(0.20)  # two temperatures: seed 1, 0.40 - 0.20


def test_a_comparison_names_the_file_of_a_seed_given_twice_or_a_missing_setting() -> None:
    from tailsynth.evaluate.bench.cold_compare import CompareError, compare

    block = _run([0], [0.3], [0.4], [100], [[]])
    with pytest.raises(CompareError, match=r"b1\.json.*seed 0 is also in another block"):
        compare([("b0.json", block), ("b1.json", block)], [("t.json", block)])
    with pytest.raises(CompareError, match=r"t\.json.*no setting 'tau=0\.5'.*holds \['tau=0\.7'\]"):
        compare([("b0.json", block)], [("t.json", _run([0], [0.3], [0.4], [100], [[]], arm="tau=0.7"))],
                arm="tau=0.5")
    unrecorded = _run([0], [0.3], [0.4], [100], [[]])
    del unrecorded["splits"]["tail"]["info"]["refusals"]
    with pytest.raises(CompareError, match=r"old\.json.*without the calls' refusals"):
        compare([("old.json", unrecorded)], [("t.json", block)])


def test_cold_choice_gate_settings_without_a_gated_call_are_an_error(capsys) -> None:
    """`--gate` changes only gated calls: given without `--gated` or `--pass-rate` it would be silently unused, so
    the command stops naming the option before it loads anything (the bundle path does not exist)."""
    from tailsynth.evaluate.bench import cold_choice

    with pytest.raises(SystemExit) as stopped:
        cold_choice.main(["--bundle", "no/such/run", "--gate", "alpha=1e-300"])
    assert stopped.value.code == 2
    assert "--gate alpha=1e-300: only gated calls read it; add --gated or --pass-rate N" in capsys.readouterr().err


def test_cold_choice_rows_scale_needs_auto_rows(capsys) -> None:
    """`--rows-scale` multiplies the predicted counts of `--rows auto`; with a fixed count it would be unused."""
    from tailsynth.evaluate.bench import cold_choice

    for command in (["--rows", "50", "--rows-scale", "2"], ["--rows", "auto", "--rows-scale", "0"]):
        with pytest.raises(SystemExit) as stopped:
            cold_choice.main(["--bundle", "no/such/run", *command])
        assert stopped.value.code == 2 and "--rows-scale" in capsys.readouterr().err
