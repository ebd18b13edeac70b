"""Choosing the cold chooser's defaults by downstream recall on validation items from the training rows.

    python -m tailsynth.evaluate.bench.cold_choice --bundle runs/util_cold150 [--items 150] [--rows 50 | auto] \
        [--temperatures 0.1 0.25 0.5] [--shortlists 1 4] [--evidence 0 0.3] [--activity-powers 0.5] \
        [--first-buyers 0 1] [--user-caps 150] [--weights 1 0.5] [--gated] [--splits tail any new_items] \
        [--seeds 1] [--first-seed 0] [--pass-rate 12] [--threads 1] [--out FILE]

Never reads the bundle's scored held-out rows or its cold items' rows (the utility benchmark scores those).
From the bundle's TRAINING rows only (`--gated`: and the gate's half of the holdout, which the utility
benchmark's gated arms see too, and the ids and features of the bundle's new items):
1. Pseudo-cold items (`draw_pseudo_cold`): two splits, `--items` warm items each, seeded: "tail" draws from
   the tail bucket, "any" from every bucket; an item needs `MIN_BUYERS` distinct training buyers.
2. Their training rows are hidden (`hide_items`): the taste space and the content->taste predictor are refitted
   on the rest (`refit_taste`, the calls and settings `train.taste_fit` and `gen.items.taste_check` use), and
   a view of the bundle (`validation_view`) holds the rest as its training table, the refit as its taste
   space and predictor, and no held-out table (`--gated`: the utility benchmark's gate half of the holdout,
   `evaluate.utility.data.gate_view`, less the pseudo-cold items' rows, as new items have none). The built-in
   users table's frequency / monetary / recency are re-derived without the hidden purchases and joined again
   onto every row the view holds (`users_without_hidden`: a hidden buyer must not carry the purchase the
   chooser is asked to find; a table the user supplies is taken as given). The generator's weights are the
   bundle's (they saw the hidden rows; the network is conditioned on item features, not ids).
3. For every setting (temperature x shortlist x evidence weight x activity power x first buyers x per-user cap)
   `gen.cold_start(view, users="taste", gate=False)` writes `--rows` rows per pseudo-cold item (`auto`: the counts
   the product's call asks, each item's predicted popularity from the refitted predictor; `--gated`: the
   default gated call, fidelity gate and taste test included; a refused call adds no rows, so its items score 0, what
   the product's default call delivers, and its overall cost is not measured: the budget compares each setting with
   no rows on the seeds where it emitted); ALS and item-kNN (`evaluate.utility`, the utility benchmark's recommenders
   and settings) are trained on the remaining training rows + those rows and scored by cold-only Recall@20 on the
   pseudo-cold items' own (hidden) training buyers (`evaluate.utility.protocols`); ALS also by its full-catalogue
   Recall@20 on the remaining items ("overall"), with the gate's half of the holdout (less the hidden items' rows) as
   their relevance, against ALS trained on no rows ("none": the cost of the rows to everything else), and on the
   pseudo-cold items among every item ("cold_full": do they reach a top k at all). `--weights`: the same rows
   appended at each confidence weight (a real row adds 1), each a separate arm.
   References: neighbour transfer (the rows per item the call asked for), content-kNN vectors injected into ALS.
   Seeds: `--first-seed` .. `--first-seed` + `--seeds` - 1 (a fresh block replicates a result on new seeds).
   `--gated` on a bundle with new items adds the split "new_items" (`run_new_items`): the overall cost of
   each setting's rows for the bundle's own new items, the rows the utility benchmark scores, with the
   gate's half of the holdout as the warm relevance. The pseudo-cold splits' overall cost is reported but
   misleads: their hidden buyers miss a real purchase, which rows near it restore.
4. The choice (`choose`): of the settings never measurably below the best one in any of the four cells
   (split x recommender: the 95% paired-bootstrap interval of the difference to the cell's best reaches 0)
   and within `OVERALL_BUDGET` of no rows on the overall figure of every split, the one with the highest mean
   ratio to neighbour transfer (settings compared at weight 1). With several `--weights`, the chosen
   setting's weight (`choose_weight`): of the weights within the overall budget on every split, the one
   whose pseudo-cold items are found most often in the full catalogue. The JSON holds every figure, the
   intervals of each setting against transfer and against the cell's best, the config, seeds and versions.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from scipy.stats import ks_2samp

from tailsynth.evaluate.bench.pass_rate import PASS_SEEDS_FROM, NewItemsCall, emitted
from tailsynth.evaluate.utility.arms import COLD_SYNTHETIC, TrainingSet, real_only, with_rows
from tailsynth.evaluate.utility.cold_study import als_scorer, asked_counts, transfer_set, weighted
from tailsynth.evaluate.utility.content import content_matrix, knn_vectors
from tailsynth.evaluate.utility.data import GATE_SHARE, UtilityData, build_data, gate_view
from tailsynth.evaluate.utility.intervals import common_seeds, paired_bootstrap, seed_mean
from tailsynth.evaluate.utility.knn import fit_item_knn
from tailsynth.evaluate.utility.protocols import cold_only, cold_only_chance, full_catalogue
from tailsynth.evaluate.utility.recommenders import Factors, RecommenderConfig, auto_alpha, fit_factors
from tailsynth.gen.gate_overrides import add_gate_option, bundle_gate, parse_overrides
from tailsynth.gen.items.cold_items import AUTO_SCALE
from tailsynth.gen.items.taste_users import (NEW_ITEMS_ACTIVITY_POWER, NEW_ITEMS_LIKE_FIRST_BUYERS,
                                             NEW_ITEMS_MIX_BY_GROUP, NEW_ITEMS_PER_USER_CAP, TasteSettings)
from tailsynth.models.atomic import write_json
from tailsynth.models.errors import ConfigError

SPLITS = ("tail", "any")
NEW_ITEMS = "new_items"
"""The split `run_new_items` adds: the overall cost of rows for the bundle's own new items, no cold-only figure."""
MIN_BUYERS = 3
"""Distinct training buyers a pseudo-cold item needs: something to find once its rows are hidden."""
RECOMMENDERS = ("als", "item_knn")
OVERALL_BUDGET = 0.02
"""Most a setting may cost ALS's overall Recall@20 (full catalogue, warm items) against no rows: the issue's budget."""
Rows = int | Literal["auto"]
"""Rows per cold item: a number, or "auto" (what `gen.cold_start(per_item="auto")` asks: predicted popularity)."""


@dataclass(frozen=True)
class Columns:
    user: str
    item: str


def draw_pseudo_cold(train: pd.DataFrame, buckets: pd.DataFrame, columns: Columns, *, split: str, tail: str,
                     n_items: int, seed: int) -> np.ndarray:
    """Sorted ids of `n_items` warm items (fewer when fewer qualify) with >= MIN_BUYERS distinct training
    buyers: of bucket `tail` (split "tail") or of any bucket (split "any"). Only ids of `train` can be drawn,
    so the bundle's held-out cold items never are. buckets: the bundle's table (item, pop_bucket)."""
    if split not in SPLITS:
        raise ValueError(f"pseudo-cold split: expected one of {SPLITS}, got {split!r}")
    buyers = train.drop_duplicates([columns.user, columns.item])[columns.item].value_counts()
    eligible = buyers.index[buyers.to_numpy() >= MIN_BUYERS]
    if split == "tail":
        in_tail = pd.Index(buckets.loc[buckets["pop_bucket"].astype(str) == tail, "item"])
        eligible = eligible[eligible.isin(in_tail)]
    eligible = np.sort(eligible.to_numpy())
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), 19]))
    return np.sort(rng.choice(eligible, size=min(n_items, len(eligible)), replace=False))


def hide_items(train: pd.DataFrame, item_column: str, ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the training rows the refit and the recommenders see, the hidden rows of `ids`: the truth)."""
    hidden = train[item_column].isin(ids).to_numpy()
    return train[~hidden].reset_index(drop=True), train[hidden].reset_index(drop=True)


def refit_taste(kept: pd.DataFrame, items: pd.DataFrame, columns: Columns, template: Any, dim: int,
                seed: int) -> tuple[Any, Any]:
    """(taste space, content->taste predictor) fitted on `kept` only, with the settings of the bundle's
    predictor `template` (a `ContentTaste`); the predictor learns from items of the refit space alone."""
    from tailsynth.models.content_taste import ContentTaste
    from tailsynth.models.taste import fit_taste_space
    from tailsynth.train.taste_fit import _ids

    space = fit_taste_space(_ids(kept[columns.user]), _ids(kept[columns.item]), dim=dim, seed=seed)
    content = ContentTaste.fit(items, template.item_column, list(template.features.feature_columns),
                               template.features.text_column, space, seed, method=template.method,
                               neighbours=template.neighbours, blend=template.blend)
    return space, content


def validation_view(bundle: Any, kept: pd.DataFrame, space: Any, content: Any, holdout: pd.DataFrame | None = None,
                    users: pd.DataFrame | None = None) -> Any:
    """The bundle as validation generation sees it: training table `kept`, the refit taste space and
    predictor, the holdout table `holdout` (default empty: nothing held out is read), an empty cold_holdout
    (the hidden items are new) and the users table `users` (default the bundle's)."""
    empty = kept.iloc[:0]
    tables = {"train": kept, "holdout": empty if holdout is None else holdout, "cold_holdout": empty}
    if users is not None:
        tables["users"] = users
    return bundle.with_tables(tables, taste=space, content=content)


def users_without_hidden(bundle: Any, kept: pd.DataFrame, hidden: pd.DataFrame) -> pd.DataFrame | None:
    """The users table with its features re-derived without the hidden purchases, or None where that cannot be
    done. The bundle's users table is derived from every training purchase, the hidden items' included, so a
    hidden buyer's frequency / monetary / recency count the very purchase the validation asks the chooser to
    find (the built-in hidden buyers' median monetary 1,569 against 1,377 for held-out first buyers, whose
    purchase is not counted); a scored cold item's buyers do not carry theirs. Built-in users table only
    (`train.retail.users_without`): a table the user supplies is taken as given."""
    from tailsynth.train.retail import users_without
    from tailsynth.train.split_features import BUILTIN

    users_config = (bundle.config.get("data") or {}).get("users") or {}
    if users_config.get("path") != BUILTIN:
        return None
    return users_without(bundle.table("users"), kept, hidden)


def with_users(rows: pd.DataFrame, users: pd.DataFrame, user_column: str, features: list[str]) -> pd.DataFrame:
    """`rows` whose user feature columns are taken again from `users` (one row per user id)."""
    table = users.drop_duplicates(user_column).set_index(user_column)
    rows = rows.copy()
    for name in features:  # a few columns
        values = table[name].reindex(rows[user_column]).to_numpy()
        rows[name] = pd.Series(values, index=rows.index).astype(rows[name].dtype)
    return rows


def gate_rows(bundle: Any, item_column: str, ids: np.ndarray) -> pd.DataFrame:
    """`--gated`: the held-out rows the gate judges against, the utility benchmark's gate half of the holdout
    (`gate_view`, never its scored half) less the pseudo-cold items' rows (a new item has none)."""
    holdout = gate_view(bundle, GATE_SHARE)[0].table("holdout")
    return holdout[~holdout[item_column].isin(ids)].reset_index(drop=True)


def validation_frame(bundle: Any, kept: pd.DataFrame, hidden: pd.DataFrame, columns: Columns,
                     warm: pd.DataFrame | None = None) -> UtilityData:
    """The utility frame: `kept` is training, the hidden items are the cold items, their rows the relevance;
    `warm` (held-out rows of the remaining items) the relevance of the overall figure."""
    items = bundle.table("items")
    features = [name for name in bundle.role("item_feature") if name in items.columns]
    return build_data(kept, kept.iloc[:0] if warm is None else warm, hidden, bundle.table("buckets"),
                      user_id=columns.user, item_id=columns.item, known_users=bundle.table("users")[columns.user],
                      bucket_names=tuple(bundle.config["data"]["buckets"]["names"]),
                      items=items[[columns.item, *features]])


def transfer_counts(bundle: Any, data: UtilityData, rows: Rows, seed: int,
                    auto_scale: float = AUTO_SCALE) -> np.ndarray:
    """int64 [cold items of `data`]: neighbour transfer's rows per item, those `gen.cold_start(bundle, ...,
    per_item=rows, seed=seed, auto_scale=auto_scale)` asks for (`rows` each, or each item's predicted popularity
    times auto_scale)."""
    if rows == "auto":
        return asked_counts(bundle, data, rows, seed, auto_scale)
    return np.full(int(data.cold.sum()), rows, dtype=np.int64)


def cold_recall(data: UtilityData, training: TrainingSet, recommender: RecommenderConfig, alpha: float,
                seed: int) -> tuple[dict[str, np.ndarray], Factors]:
    """Per-user cold-only Recall@k of ALS and item-kNN trained on `training`; ALS's full-catalogue Recall@k on
    the cold items ("cold_full": can a pseudo-cold item reach a top k among every item?) and on the warm items
    ("overall", where the frame holds warm relevance); and ALS's factors."""
    matrix = training.matrix(len(data.users), len(data.items))
    factors = fit_factors(matrix, recommender, alpha, seed)
    knn = fit_item_knn(data, matrix, threads=recommender.threads)
    als = als_scorer(data, factors)
    full = full_catalogue(data, als, recommender.k)
    overall = {"overall": full["full_overall"]} if data.relevant[:, ~data.cold].nnz else {}
    return {**overall, "cold_full": full["full_cold"], "als": cold_only(data, als, recommender.k),
            "item_knn": cold_only(data, knn.score_rows, recommender.k)}, factors


@dataclass(frozen=True)
class Grid:
    temperatures: tuple[float, ...] = (0.1, 0.25, 0.5)
    shortlists: tuple[int, ...] = (1, 4)
    evidence: tuple[float, ...] = (0.3,)
    activity_powers: tuple[float, ...] = (NEW_ITEMS_ACTIVITY_POWER,)
    first_buyers: tuple[bool, ...] = (NEW_ITEMS_LIKE_FIRST_BUYERS,)
    user_caps: tuple[int, ...] = (NEW_ITEMS_PER_USER_CAP,)
    weights: tuple[float, ...] = (1.0,)
    """The confidence each generated row adds to its cell (a real row: 1); the same rows at every weight."""
    mix_by_group: tuple[int, ...] = (int(NEW_ITEMS_MIX_BY_GROUP),)
    """The users' mix: one target (0), per feature group (1, `TasteSettings.mix_by_group`), per judged unit (2, and
    `mix_units`)."""

    def settings(self) -> list[TasteSettings]:
        return [TasteSettings(temperature=t, shortlist=s, evidence_weight=w, activity_power=p, like_first_buyers=f,
                              per_user_cap=c, mix_by_group=g >= 1, mix_units=g == 2)
                for t, s, w, p, f, c, g in itertools.product(self.temperatures, self.shortlists, self.evidence,
                                                             self.activity_powers, self.first_buyers, self.user_caps,
                                                             self.mix_by_group)]

    def labels(self, weight: float | None = None) -> list[str]:
        """Every arm's label (each setting at each weight), or the settings' labels at one `weight`."""
        return [label(s, w) for s in self.settings() for w in self.weights if weight is None or w == weight]


def label(settings: Any, weight: float = 1.0) -> str:
    return (f"tau={settings.temperature:g} shortlist={settings.shortlist} evidence={settings.evidence_weight:g} "
            f"power={settings.activity_power:g}" + (" first_buyers" if settings.like_first_buyers else "")
            + ((" by_unit" if settings.mix_units else " by_group")
               if settings.like_first_buyers and settings.mix_by_group else "")
            + (f" cap={settings.per_user_cap}" if settings.per_user_cap != NEW_ITEMS_PER_USER_CAP else "")
            + (f" weight={weight:g}" if weight != 1.0 else ""))


def user_match(bundle: Any, generated: pd.DataFrame, hidden: pd.DataFrame, columns: Columns) -> dict[str, float]:
    """KS of each numerical user feature: the generated rows' users against the hidden real rows' users (one per
    pair). What the fidelity gate will compare, read from training rows only (`bundle`: the validation view,
    whose users table is re-derived without the hidden purchases where it can be)."""
    users = bundle.table("users").drop_duplicates(columns.user).set_index(columns.user)
    numerical = [c for c in bundle.role("user_feature") if bundle.columns.get(c) == "numerical" and c in users]
    real = hidden.drop_duplicates([columns.user, columns.item])[columns.user]
    return {c: float(ks_2samp(users[c].reindex(generated[columns.user]).dropna(), users[c].reindex(real).dropna())
                     .statistic) for c in numerical}


def run_split(bundle: Any, split: str, grid: Grid, *, n_items: int, rows: Rows, seeds: int,
              recommender: RecommenderConfig, gated: bool = False, progress: bool = True,
              first_seed: int = 0, gate: Any = None, auto_scale: float = AUTO_SCALE) -> dict[str, Any]:
    """Every arm's per-user cold-only vectors on one split, seeds first_seed.. (see module docstring). gate: the
    gated calls' settings (gen.cold_start's: None, the bundle's; a GateConfig, those); auto_scale: with rows
    "auto", gen.cold_start's."""
    from tailsynth import gen

    columns = Columns(bundle.role("user_id")[0], bundle.role("item_id")[0])
    train, names = bundle.table("train"), tuple(bundle.config["data"]["buckets"]["names"])
    ids = draw_pseudo_cold(train, bundle.table("buckets"), columns, split=split, tail=names[-1], n_items=n_items,
                           seed=bundle.seed)
    kept, hidden = hide_items(train, columns.item, ids)
    space, content = refit_taste(kept, bundle.table("items"), columns, bundle.content, bundle.taste.dim, bundle.seed)
    warm = gate_rows(bundle, columns.item, ids)  # the gate's half: what the gate judges, and the overall's truth
    users = users_without_hidden(bundle, kept, hidden)
    if users is not None:  # every row the view holds carries the re-derived user features
        features = [c for c in bundle.role("user_feature") if c in users.columns and c in kept.columns
                    and bundle.columns.get(c) == "numerical"]  # the derived ones (the country is as given)
        kept = with_users(kept, users, columns.user, features)
        warm = with_users(warm, users, columns.user, features)
    view = validation_view(bundle, kept, space, content, warm if gated else None, users)
    data = validation_frame(bundle, kept, hidden, columns, warm[warm[columns.item].isin(kept[columns.item])])
    features = content_matrix(bundle.table("items"), data, columns.item, featuriser=content.features)
    alpha = auto_alpha(real_only(data).matrix(len(data.users), len(data.items)))
    new_items = bundle.table("items")[bundle.table("items")[columns.item].isin(ids)].reset_index(drop=True)
    arms: dict[str, dict[str, list[np.ndarray]]] = {}
    rows_kept: dict[str, list[int]] = {}
    matches: dict[str, list[dict[str, float]]] = {}
    refusals: dict[str, list[list[str]]] = {}

    def add(arm: str, recall: dict[str, np.ndarray]) -> None:
        for name, vector in recall.items():
            arms.setdefault(arm, {}).setdefault(name, []).append(vector)

    for seed in range(first_seed, first_seed + seeds):
        base, factors = cold_recall(data, real_only(data), recommender, alpha, seed)
        add("none", {"overall": base["overall"]})
        items = factors.items.copy()
        items[data.cold] = knn_vectors(features, data, factors.items[:data.n_warm], factors.scored[:data.n_warm])
        add("inject_knn", {"als": cold_only(data, als_scorer(data, Factors(factors.users, items,
                                                                            factors.scored | data.cold)),
                                            recommender.k)})
        transfer = transfer_set(features, data, transfer_counts(view, data, rows, seed, auto_scale),
                                np.random.default_rng(np.random.SeedSequence([seed, 19])))[0]
        add("transfer", cold_recall(data, transfer, recommender, alpha, seed)[0])
        for settings in grid.settings():
            started = time.monotonic()
            result = gen.cold_start(view, new_items, per_item=rows, bucket=names[-1], seed=seed,
                                    gate=gate if gated else False, progress=False, users="taste", taste=settings,
                                    auto_scale=auto_scale)
            made = result.rows if result.rows is not None else kept.iloc[:0]  # refused: its items score 0, its cost NaN
            training, use = with_rows(data, made, COLD_SYNTHETIC, data.cold, (columns.user, columns.item))
            for weight in grid.weights:
                recall = cold_recall(data, weighted(training, COLD_SYNTHETIC, weight), recommender, alpha, seed)[0]
                add(label(settings, weight), recall if len(made) else refused_cost(recall))
            rows_kept.setdefault(label(settings), []).append(use["added"])
            if len(made):
                matches.setdefault(label(settings), []).append(user_match(view, made, hidden, columns))
            if gated:
                refusals.setdefault(label(settings), []).append(list(result.report.get("refusals", [])))
            if progress:
                print(f"  {split} seed {seed} {label(settings)}: {use['added']} rows, "
                      f"{time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    info = {"items": int(len(ids)), "rows_per_item": rows, "hidden_rows": int(len(hidden)), "kept_rows": int(len(kept)),
            "evaluated_users": int((~np.isnan(arms["transfer"]["als"][0])).sum()),
            "chance": cold_only_chance(int(data.cold.sum()), recommender.k), "alpha": alpha,
            "space_items": int(len(space.item_ids)), "rows_added": rows_kept,
            "user_feature_ks": {arm: pd.DataFrame(v).mean().round(4).to_dict() for arm, v in matches.items()},
            "gated": gated, "refusals": refusals,
            "user_features": ("re-derived without the hidden purchases (built-in users table)" if users is not None
                              else "as the bundle holds them (they may count the hidden purchases)")}
    return {"info": info, "per_user": {arm: {name: seed_mean(v) for name, v in by.items()} for arm, by in arms.items()},
            "per_seed": {arm: {name: [_mean(x) for x in v] for name, v in by.items()} for arm, by in arms.items()},
            "overall_by_seed": {arm: by["overall"] for arm, by in arms.items() if "overall" in by}}


def run_new_items(bundle: Any, grid: Grid, *, rows: Rows, seeds: int, recommender: RecommenderConfig,
                  gate: Any = None, progress: bool = True, first_seed: int = 0,
                  auto_scale: float = AUTO_SCALE) -> dict[str, Any] | None:
    """`--gated`, on a bundle holding new items (`data.split.cold_items`): what each setting's rows cost ALS's
    overall Recall@20 (full catalogue, warm items), with the gate half of the holdout as the warm relevance,
    against ALS trained on no rows; None without new items. The rows are the product's default gated call for
    the bundle's new items through the gate's view (`gate_view`), the call the utility benchmark scores, so the
    figure is that benchmark's overall cost on the other half of the same holdout. Only the new items' ids are
    read, never their held-out rows (they have no relevance here: cold-only recall is not measured). The
    pseudo-cold splits cannot measure this cost: their hidden buyers lose a real purchase from their history and
    rows near it restore it (warm recall with the cold items masked rose 1.0% there and fell 2.1% on the
    scored new items, seed 0). gate: gen.cold_start's (None: the default gated call; False for tests)."""
    call = NewItemsCall.of(bundle)
    if call is None:
        return None
    columns = Columns(bundle.role("user_id")[0], bundle.role("item_id")[0])
    train, warm = call.generator.table("train"), call.generator.table("holdout")
    data = build_data(train, warm, train.iloc[:0], bundle.table("buckets"), user_id=columns.user,
                      item_id=columns.item, known_users=bundle.table("users")[columns.user],
                      bucket_names=tuple(bundle.config["data"]["buckets"]["names"]),
                      cold_items=call.items[columns.item])
    features = content_matrix(bundle.table("items"), data, columns.item, featuriser=bundle.content.features)
    alpha = auto_alpha(real_only(data).matrix(len(data.users), len(data.items)))
    arms: dict[str, list[np.ndarray]] = {}
    rows_kept: dict[str, list[int]] = {}
    refusals: dict[str, list[list[str]]] = {}

    def overall(training: TrainingSet, seed: int) -> np.ndarray:
        factors = fit_factors(training.matrix(len(data.users), len(data.items)), recommender, alpha, seed)
        return full_catalogue(data, als_scorer(data, factors), recommender.k)["full_overall"]

    for seed in range(first_seed, first_seed + seeds):
        arms.setdefault("none", []).append(overall(real_only(data), seed))
        transfer = transfer_set(features, data, transfer_counts(call.generator, data, rows, seed, auto_scale),
                                np.random.default_rng(np.random.SeedSequence([seed, 19])))[0]
        arms.setdefault("transfer", []).append(overall(transfer, seed))
        for settings in grid.settings():
            started = time.monotonic()
            result = call.rows(settings, seed, rows, gate, auto_scale)
            made = result.rows if result.rows is not None else train.iloc[:0]  # refused: no rows, cost unmeasured
            training, use = with_rows(data, made, COLD_SYNTHETIC, data.cold, (columns.user, columns.item))
            for weight in grid.weights:
                cost = overall(weighted(training, COLD_SYNTHETIC, weight), seed)
                arms.setdefault(label(settings, weight), []).append(cost if len(made) else np.full_like(cost, np.nan))
            rows_kept.setdefault(label(settings), []).append(use["added"])
            if gate is not False:
                refusals.setdefault(label(settings), []).append(list(result.report.get("refusals", [])))
            if progress:
                print(f"  new items seed {seed} {label(settings)}: {use['added']} rows, "
                      f"{time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    info = {"items": len(call.items), "rows_per_item": rows,
            "evaluated_users": int((~np.isnan(arms["none"][0])).sum()), "alpha": alpha,
            "rows_added": rows_kept, "gated": gate is not False, "refusals": refusals,
            "relevance": "gate half of the holdout, warm items"}
    return {"info": info, "per_user": {arm: {"overall": seed_mean(v)} for arm, v in arms.items()},
            "per_seed": {arm: {"overall": [_mean(x) for x in v]} for arm, v in arms.items()},
            "overall_by_seed": arms}


def pass_rates(bundle: Any, grid: Grid, *, rows: Rows, calls: int, progress: bool = True,
               gate: Any = None, auto_scale: float = AUTO_SCALE) -> dict[str, Any] | None:
    """`--pass-rate N`: per setting, what the product's default gated call for the bundle's new items emits on N
    seeds no benchmark scores (`pass_rate.emitted`). None without new items. The gate's verdicts on a few seeds
    decide most cold-only figures; this measures them on many. gate: as `run_new_items`'."""
    call = NewItemsCall.of(bundle)
    if call is None:
        return None
    seeds = list(range(PASS_SEEDS_FROM, PASS_SEEDS_FROM + calls))
    return {label(settings): emitted(lambda seed, settings=settings: call.rows(settings, seed, rows, gate, auto_scale),
                                     seeds, label(settings) if progress else None)
            for settings in grid.settings()}


def summarise(splits: dict[str, dict[str, Any]], labels: list[str], resamples: int = 1000,
              best_among: list[str] | None = None) -> dict[str, Any]:
    """Per split and recommender (a cell): transfer's and injection's means; for each setting its mean, ratio
    to transfer, and its difference to transfer and to the cell's best setting among `best_among` (default:
    all; 95% paired bootstrap over users of seed-averaged recall)."""
    rng = np.random.default_rng(19)
    out: dict[str, Any] = {}
    for split, result in splits.items():
        per_user = result["per_user"]
        cells: dict[str, Any] = {}
        for name in RECOMMENDERS:
            if name not in per_user["transfer"]:  # the new-items split measures the overall cost only
                continue
            reference = per_user["transfer"][name]
            cell: dict[str, Any] = {"transfer": float(np.nanmean(reference))}
            if name == "als":
                cell["inject_knn"] = float(np.nanmean(per_user["inject_knn"]["als"]))
            best = max(best_among or labels, key=lambda arm: float(np.nanmean(per_user[arm][name])))
            cell["best"] = best
            for arm in labels:
                difference = paired_bootstrap(per_user[arm][name], reference, rng, resamples)
                cell[arm] = {"mean": difference.first_mean, "minus_transfer": difference.as_dict(),
                             "ratio_to_transfer": difference.first_mean / difference.second_mean,
                             "minus_best": paired_bootstrap(per_user[arm][name], per_user[best][name], rng,
                                                            resamples).as_dict()}
            cells[name] = cell
        if "cold_full" in per_user["transfer"]:  # ALS, full catalogue: the pseudo-cold items among every item
            reference = per_user["transfer"]["cold_full"]
            cells["cold_full"] = {"transfer": float(np.nanmean(reference))}
            for arm in labels:
                difference = paired_bootstrap(per_user[arm]["cold_full"], reference, rng, resamples)
                cells["cold_full"][arm] = {"mean": difference.first_mean, "minus_transfer": difference.as_dict()}
        if "none" in per_user:  # ALS overall (full catalogue, warm items) against no rows, on the seeds that emitted
            measured = {arm: [None if np.isnan(vector).all() else vector for vector in vectors]  # refused: None
                        for arm, vectors in result["overall_by_seed"].items()}
            cells["overall"] = {"none": float(np.nanmean(per_user["none"]["overall"]))}
            for arm in ["transfer", *labels]:
                paired = common_seeds(measured[arm], measured["none"])
                if paired is None:  # refused on every seed: nothing delivered, no cost measured, never within budget
                    cells["overall"][arm] = {"mean": float("nan"), "ratio_to_none": float("nan"), "seeds": []}
                    continue
                seeds, mine, none = paired
                difference = paired_bootstrap(mine, none, rng, resamples)
                cells["overall"][arm] = {"mean": difference.first_mean, "minus_none": difference.as_dict(),
                                         "ratio_to_none": difference.first_mean / difference.second_mean,
                                         "seeds": seeds}
        out[split] = cells
    return out


def refused_cost(recall: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A refused call's figures: its cold items score 0 (nothing was delivered), but its overall cost is NaN, not
    0: no rows were added, so nothing was measured, and a budget must not favour the settings the gate refuses."""
    return {**recall, "overall": np.full_like(recall["overall"], np.nan)} if "overall" in recall else recall


def _mean(vector: np.ndarray) -> float | None:
    """The mean over users with a figure; None when none has one (a refused call's overall cost), as
    `cold_report` writes an unmeasured mean."""
    return float(np.nanmean(vector)) if np.isfinite(vector).any() else None


def within_budget(summary: dict[str, Any], arm: str) -> bool:
    """Whether `arm`'s ALS overall recall is within `OVERALL_BUDGET` of no rows on every split that measures it
    (an arm refused on every seed has no ratio and is never within)."""
    return all(summary[s]["overall"][arm]["ratio_to_none"] >= 1.0 - OVERALL_BUDGET for s in summary
               if "overall" in summary[s])


def choose(summary: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """Admissible: a setting whose interval against the cell's best setting reaches 0 in every (split,
    recommender) cell (never measurably below the best anywhere) and, where measured, whose ALS overall recall
    is within `OVERALL_BUDGET` of no rows on every split (the issue's budget). The choice: the admissible setting
    with the highest mean ratio to transfer over the cells; with none admissible, the highest worst-case ratio
    among those within the budget (all settings when none is) that never fall below neighbour transfer (worst-case
    ratio >= 1: our rows must not lose to a rule with no model); with none of those either, nothing is chosen
    (None: keep the current default). The temperature grid of 2026-12-07 showed why: with the budget counting
    only the calls that emitted, the one setting within it was 0.7x transfer on ALS (tail split)."""
    cells = [summary[s][r] for s in summary for r in RECOMMENDERS if r in summary[s]]
    within = [arm for arm in labels if within_budget(summary, arm)]
    if not cells:  # only the new-items split ran: costs, nothing to choose by
        return {"rule": "no pseudo-cold split ran: nothing chosen", "chosen": None, "within_overall_budget": within}
    ratios = {arm: [cell[arm]["ratio_to_transfer"] for cell in cells] for arm in labels}
    mean = {arm: float(np.mean(values)) for arm, values in ratios.items()}
    worst = {arm: min(values) for arm, values in ratios.items()}
    admissible = [arm for arm in within if all(cell[arm]["minus_best"]["high"] >= 0 for cell in cells)]
    fallback = [arm for arm in within or labels if worst[arm] >= 1.0]
    chosen = max(admissible, key=mean.__getitem__) if admissible else \
        max(fallback, key=worst.__getitem__) if fallback else None
    return {"rule": "admissible: the 95% interval of (setting - the cell's best setting) reaches 0 in every split x "
                    f"recommender cell and ALS overall recall within {OVERALL_BUDGET:.0%} of no rows on every split; "
                    "of those the highest mean ratio to neighbour transfer (none admissible: the highest worst-case "
                    "ratio among those within the overall budget, all settings when none is, that is >= 1; none "
                    "such: nothing chosen, keep the default)", "chosen": chosen, "admissible": admissible,
            "within_overall_budget": within, "mean_ratio": mean, "worst_ratio": worst}


def choose_weight(summary: dict[str, Any], arms: dict[float, str]) -> dict[str, Any]:
    """The weight of the chosen setting's rows (`arms`: weight -> that setting's label at it): of the weights
    whose ALS overall recall is within `OVERALL_BUDGET` of no rows on every split that measures it, the one
    whose pseudo-cold items are found most often in the full catalogue (mean "cold_full" Recall@k over the
    pseudo-cold splits: the issue's "cold items visible"); none within the budget: the smallest weight."""
    visible = [summary[s]["cold_full"] for s in summary if "cold_full" in summary[s]]
    within = [w for w, arm in arms.items() if within_budget(summary, arm)]
    visibility = {w: float(np.mean([cell[arm]["mean"] for cell in visible])) if visible else float("nan")
                  for w, arm in arms.items()}
    chosen = max(within, key=visibility.__getitem__) if within and visible else min(arms)
    return {"rule": f"of the weights whose ALS overall recall is within {OVERALL_BUDGET:.0%} of no rows on every "
                    "split, the highest mean full-catalogue Recall@k of the pseudo-cold items (none within: the "
                    "smallest weight)", "chosen": chosen, "within_overall_budget": within,
            "full_catalogue_cold": visibility,
            "overall_ratio_to_none": {w: {s: summary[s]["overall"][arm]["ratio_to_none"] for s in summary
                                          if "overall" in summary[s]} for w, arm in arms.items()}}


def rows_arg(text: str) -> Rows:
    """`--rows`: "auto" or a whole number >= 1."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 or auto, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tailsynth.evaluate.bench.cold_choice",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="run directory written by tailsynth train")
    parser.add_argument("--items", type=int, default=150, help="pseudo-cold items per split (default 150)")
    parser.add_argument("--rows", type=rows_arg, default=50,
                        help="rows per cold item, or auto (each item's predicted popularity, as gen cold-start "
                             "--per-item auto; default 50)")
    parser.add_argument("--rows-scale", type=float, default=None,
                        help="with --rows auto: rows per predicted interaction (gen.cold_start's auto_scale; default "
                             "its own)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=list(Grid.temperatures))
    parser.add_argument("--shortlists", type=int, nargs="+", default=list(Grid.shortlists))
    parser.add_argument("--evidence", type=float, nargs="+", default=list(Grid.evidence))
    parser.add_argument("--activity-powers", type=float, nargs="+", default=list(Grid.activity_powers))
    parser.add_argument("--first-buyers", type=int, nargs="+", choices=(0, 1),
                        default=[int(NEW_ITEMS_LIKE_FIRST_BUYERS)],
                        help="TasteSettings.like_first_buyers off (0) / on (1): users raked to one-off buyers' mix")
    parser.add_argument("--mix-by-group", type=int, nargs="+", choices=(0, 1, 2),
                        default=[int(NEW_ITEMS_MIX_BY_GROUP)],
                        help="the users' mix: one target (0), each feature group its own (1, TasteSettings."
                             "mix_by_group), each unit the gate judges its own (2, and mix_units)")
    parser.add_argument("--user-caps", type=int, nargs="+", default=[NEW_ITEMS_PER_USER_CAP],
                        help="TasteSettings.per_user_cap values (most rows per user; default gen.cold_start's)")
    parser.add_argument("--weights", type=float, nargs="+", default=list(Grid.weights),
                        help="confidence of a generated row (a real row: 1), each measured on the same rows; with "
                             "several, the chosen setting's weight is chosen too (`choose_weight`)")
    parser.add_argument("--gated", action="store_true",
                        help="the default gated call (fidelity gate, taste test) against the gate half of the holdout")
    parser.add_argument("--splits", nargs="+", choices=(*SPLITS, NEW_ITEMS), default=[*SPLITS, NEW_ITEMS],
                        help=f"pseudo-cold splits, and {NEW_ITEMS} (with --gated, on a bundle with new items: the "
                             "overall cost of rows for those items)")
    parser.add_argument("--seeds", type=int, default=1, help="N seeds of generation and the recommenders")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first of the N seeds (default 0: seeds 0..N-1); a fresh block replicates a result")
    parser.add_argument("--pass-rate", type=int, default=0,
                        help=f"also the gated new-items call's rows on N seeds from {PASS_SEEDS_FROM} (`pass_rates`)")
    add_gate_option(parser, "every gated call (pseudo-cold splits, new items, pass rate)")
    parser.add_argument("--threads", type=int, default=1, help="torch and implicit threads (default 1)")
    parser.add_argument("--out", help="result JSON (default <run>/cold_choice.json)")
    args = parser.parse_args(argv)
    if args.gate and not (args.gated or args.pass_rate):
        parser.error(f"--gate {' '.join(args.gate)}: only gated calls read it; add --gated or --pass-rate N")
    if args.rows_scale is not None and (args.rows != "auto" or not args.rows_scale > 0):
        parser.error(f"--rows-scale {args.rows_scale:g}: expected a number > 0, with --rows auto")
    auto_scale = AUTO_SCALE if args.rows_scale is None else args.rows_scale
    from pathlib import Path

    from tailsynth import gen
    from tailsynth.train.bundle_writer import package_versions

    torch.set_num_threads(args.threads)
    started = time.monotonic()
    bundle = gen.load(args.bundle, device="cpu")
    try:  # None: the bundle's own gate settings, as gen.cold_start's default call
        gate = bundle_gate(bundle, parse_overrides(args.gate), where=f"{bundle.path} gate config")
    except ConfigError as exc:
        parser.error(str(exc))
    grid = Grid(tuple(args.temperatures), tuple(args.shortlists), tuple(args.evidence), tuple(args.activity_powers),
                tuple(bool(f) for f in args.first_buyers), tuple(args.user_caps), tuple(args.weights),
                tuple(args.mix_by_group))
    if len(set(grid.weights)) != len(grid.weights) or min(grid.weights) <= 0:
        parser.error(f"--weights: expected distinct positive numbers, got {args.weights}")
    recommender = RecommenderConfig(threads=args.threads)
    labels = grid.labels()
    settings_labels = grid.labels(1.0 if 1.0 in grid.weights else grid.weights[0])  # the settings, chosen at it
    splits = {split: run_split(bundle, split, grid, n_items=args.items, rows=args.rows, seeds=args.seeds,
                               recommender=recommender, gated=args.gated, first_seed=args.first_seed, gate=gate,
                               auto_scale=auto_scale)
              for split in args.splits if split in SPLITS}
    if NEW_ITEMS in args.splits and args.gated:  # ungated rows are not what the product emits
        new = run_new_items(bundle, grid, rows=args.rows, seeds=args.seeds, recommender=recommender,
                            first_seed=args.first_seed, gate=gate, auto_scale=auto_scale)
        if new is not None:
            splits[NEW_ITEMS] = new
    summary = summarise(splits, labels, best_among=settings_labels)
    choice = choose(summary, settings_labels)
    weight_choice = None
    if len(grid.weights) > 1 and choice["chosen"] is not None:
        setting = grid.settings()[settings_labels.index(choice["chosen"])]
        weight_choice = choose_weight(summary, {w: label(setting, w) for w in grid.weights})
    passing = pass_rates(bundle, grid, rows=args.rows, calls=args.pass_rate, gate=gate, auto_scale=auto_scale) \
        if args.pass_rate else None
    result = {"bundle": str(bundle.path), "config": {**vars(args), "recommender": vars(recommender),
                                                     "min_buyers": MIN_BUYERS},
              "seeds": list(range(args.first_seed, args.first_seed + args.seeds)), "training_seed": bundle.seed,
              "versions": package_versions(),
              "splits": {s: {"info": r["info"], "per_seed": r["per_seed"]} for s, r in splits.items()},
              "summary": summary, "choice": choice, "weight_choice": weight_choice, "pass_rate": passing,
              "seconds": time.monotonic() - started}
    out = Path(args.out) if args.out else bundle.path.parent / "cold_choice.json"
    write_json(out, result)
    print(f"wrote {out}; chosen: {choice['chosen']}"
          + (f", weight {weight_choice['chosen']:g}" if weight_choice else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
