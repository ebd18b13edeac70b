"""Long-tail and cold-start utility: does a recommender trained with our rows recommend the tail better?

    tailsynth evaluate utility --bundle runs/online_retail_tvae [--seeds 3] [--share 0.5] [--out DIR]
    payload = evaluate.utility.run("runs/online_retail_tvae", seeds=3, share=0.5)

One downstream recommender (`implicit` ALS by default, `tailsynth[utility]`) is trained once per arm and
seed on a different training set (`evaluate.utility_arms`: real only, + gated augmentation, + ungated rows,
+ oversampling, tail weights; for the cold-start items: nothing, a content mapping, + synthetic cold-start
rows) and scored on the same held-out real interactions (`evaluate.utility_data`, `evaluate.utility_metrics`).
Writes utility.json, utility.md, utility_recall.png and TensorBoard events (tb/) under `out`, atomically
(the event files excepted: TensorBoard appends them). Seed s drives the recommender's initialisation and
every draw of the arms (generation, subsampling, oversampling), so the spread covers both.

With cold-start items in the bundle, a cold-start study follows (`cold_study`, `--cold-arms`): no rows,
demographic rows, neighbour-transfer rows, our rows (gated, and ungated so the user rules are compared where
the gate refuses), content-kNN and ridge vectors injected into ALS; ALS and item-item cosine kNN; the
cold-only and full-catalogue protocols (`protocols`). Every difference the report states carries a paired
bootstrap interval over users (`intervals`, `cold_report`), and utility.md ends with a recommendation.

Like `evaluate.bench_cold_start`, the generator side (gen, train) is imported inside the functions.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tailsynth.models.atomic import write_json, write_text
from tailsynth.evaluate.utility.arms import (ARMS, COLD_SYNTHETIC, GATED, ORIGINS, UNGATED, AugmentUnavailable, TrainingSet,
                                   augment_request, augment_rows, cold_rows, held_out_hits, oversampled, real_only,
                                   rows_and_weights, tail_weighted, warm_tail_items, with_rows)
from tailsynth.evaluate.utility.cold_report import cold_summary, cold_targets, tail_intervals
from tailsynth.evaluate.utility.cold_study import COLD_ARMS, ColdSettings, cold_seed
from tailsynth.evaluate.utility.content import content_matrix
from tailsynth.evaluate.utility.intervals import RESAMPLES
from tailsynth.evaluate.utility.protocols import cold_only_chance, per_user_recall
from tailsynth.evaluate.utility.data import GATE_SHARE, UtilityData, from_bundle, gate_view
from tailsynth.evaluate.utility.ranking import chance_recall, coverage, ranking_metrics
from tailsynth.evaluate.utility.recommenders import (INSTALL_HINT, Factors, RecommenderConfig, auto_alpha, content_factors, fit_factors,
                                    popularity_ranked, ranked)
from tailsynth.evaluate.utility.report import arm_summary, goal, markdown, recall_figure, write_figure, write_tensorboard
from tailsynth.gen.gate_overrides import bundle_gate


@dataclass(frozen=True)
class UtilitySettings:
    """What a utility run does besides the recommender's own settings."""

    seeds: int = 3
    share: float = 0.5
    """Tail augmentation asks for share x the tail's real training rows (arms b-e)."""
    arms: tuple[str, ...] = tuple(ARMS)
    cold_per_item: int | str = "auto"
    """Rows per cold-start item for (h): a number, or "auto" (drawn from the tail's real item counts)."""
    gate_holdout: float = GATE_SHARE
    """Share of the bundle's holdout rows the gate judges against; the arms are scored on the rest
    (`utility_data.gate_view`). 0: the gate sees the scored rows too (reported as an overlap)."""
    gate: dict[str, Any] = field(default_factory=dict)
    """Overrides of the bundle's gate settings for (b) and (h) (GateConfig field -> value)."""
    cold_gated: bool = True
    """False: (h) uses ungated cold-start rows (reported as such)."""
    recommender: RecommenderConfig = field(default_factory=RecommenderConfig)
    cold_arms: tuple[str, ...] = tuple(COLD_ARMS)
    """Arms of the cold-start study (`cold_study`; none when empty or the bundle has no cold items)."""
    cold_rows: int | str = "auto"
    """Rows per cold item the study's generated arms ask for: "auto" (the product's default call, each item's
    predicted popularity) or a number; fixed in advance, never tuned on the scores."""
    resamples: int = RESAMPLES
    """Paired-bootstrap resamples over users for every difference reported."""


def run(bundle: Any, *, out: str | Path | None = None, settings: UtilitySettings | None = None,
        progress: bool = True, **overrides: Any) -> dict[str, Any]:
    """Run every arm for every seed, write the outputs to `out` (default: <run dir>/utility), return the payload.

    bundle: a run directory or a loaded `gen.Bundle`. overrides: UtilitySettings fields (seeds=, share=, ...).
    """
    from tailsynth import gen

    started = time.monotonic()
    settings = replace(settings or UtilitySettings(), **overrides)
    _check(settings)
    bundle = gen.load(bundle) if isinstance(bundle, (str, Path)) else bundle
    generator, scored, split = gate_view(bundle, settings.gate_holdout)
    data = from_bundle(bundle, holdout=scored)
    data.stats["holdout_split"] = split
    base = real_only(data).matrix(len(data.users), len(data.items))
    alpha = auto_alpha(base) if settings.recommender.alpha == "auto" else float(settings.recommender.alpha)
    request = augment_request(data, settings.share)
    per_seed: dict[str, list[dict[str, Any]]] = {key: [] for key in settings.arms}
    bar = _progress(settings.seeds * len(settings.arms), progress)
    try:
        for seed in range(settings.seeds):
            outcomes = _seed(generator, data, settings, alpha, request, seed, bar)
            for key in settings.arms:
                per_seed[key].append(outcomes[key])
    finally:
        bar.close()
    payload = _payload(bundle, data, settings, alpha, request, per_seed)
    rng = np.random.default_rng(np.random.SeedSequence([19, settings.seeds]))
    per_user = {key: [o.get("per_user") for o in outcomes] for key, outcomes in per_seed.items()}
    payload["tail_intervals"] = tail_intervals(per_user, data.tail, rng, settings.resamples)
    payload["cold"] = cold_study(generator, data, settings, alpha, rng, progress)
    payload["seconds"] = time.monotonic() - started
    write_outputs(payload, Path(out) if out is not None else bundle.path.parent / "utility")
    return payload


def cold_study(bundle: Any, data: UtilityData, settings: UtilitySettings, alpha: float, rng: np.random.Generator,
               progress: bool) -> dict[str, Any] | None:
    """The cold-start study over every seed (`cold_study`, `cold_report`); None when it does not apply."""
    if not settings.cold_arms or not data.cold.any():
        return None
    items = bundle.table("items")
    item_id = bundle.role("item_id")[0]
    try:
        featuriser = bundle.content.features  # the content predictor's own embedding, fitted on warm items
    except Exception:  # a bundle without a content predictor: the same featuriser fitted here on warm items
        featuriser = None
    text = (bundle.config["data"].get("items") or {}).get("text")
    content = content_matrix(items, data, item_id, featuriser=featuriser,
                             feature_columns=[c for c in bundle.role("item_feature") if c in items.columns],
                             text_column=text if text in items.columns else None)
    cold = ColdSettings(arms=settings.cold_arms, rows_per_item=settings.cold_rows,
                        gate=bundle_gate(bundle, settings.gate, where="utility") if settings.cold_gated else False)
    per_seed: dict[str, list[dict[str, Any]]] = {arm: [] for arm in settings.cold_arms}
    bar = _progress(settings.seeds, progress)
    try:
        for seed in range(settings.seeds):
            bar.set_description(f"utility cold study seed {seed}")
            outcomes = cold_seed(bundle, data, content, cold, settings.recommender, alpha, seed)
            for arm in settings.cold_arms:
                per_seed[arm].append(outcomes[arm])
            bar.update(1)
    finally:
        bar.close()
    summary = cold_summary(per_seed, cold_only_chance(int(data.cold.sum()), settings.recommender.k), rng,
                           settings.resamples)
    summary["content"] = "bundle content predictor's featuriser" if featuriser is not None else "fitted here on warm items"
    summary["settings"] = {"rows_per_item": settings.cold_rows, "gated": settings.cold_gated,
                           "knn_neighbours": cold.knn_neighbours}
    summary["targets"] = cold_targets(summary)
    return summary


def write_outputs(payload: dict[str, Any], out: Path) -> None:
    """utility.json, utility.md, utility_recall.png and tb/ under `out`."""
    write_json(out / "utility.json", payload)  # first: the figures survive a failure to draw them
    text = markdown(payload)
    figure = recall_figure(payload)
    write_text(out / "utility.md", text)
    write_figure(figure, out / "utility_recall.png")
    write_tensorboard(out / "tb", payload, figure, text)


# ---------------------------------------------------------------------------------------------------------
# one seed


def _seed(bundle: Any, data: UtilityData, settings: UtilitySettings, alpha: float, request: dict[str, Any],
          seed: int, bar: Any) -> dict[str, dict[str, Any]]:
    """Every requested arm's outcome for `seed`: {"status": "ok", "training", "metrics"} or a status + reason.

    Arms run in letter order: (b) sets the count (c), (d) and (e) add; (f) and (g) reuse (a)'s model.
    """
    state = SeedState(seed, added=request["target_rows"])
    needed = set(settings.arms) | ({"a"} if {"f", "g"} & set(settings.arms) else set()) \
        | ({"b"} if {"c", "i"} & set(settings.arms) else set())
    outcomes: dict[str, dict[str, Any]] = {}
    for key in sorted(needed):
        bar.set_description(f"utility seed {seed} arm {key}")
        arm_started = time.monotonic()
        try:
            training, generation = training_set(key, bundle, data, settings, request, state)
        except AugmentUnavailable as exc:
            outcomes[key] = {"status": "unavailable", "reason": str(exc)}
        except _Skip as exc:
            outcomes[key] = {"status": exc.status, "reason": exc.reason, "generation": exc.generation}
        else:
            if key in ("a", "f", "g"):
                state.factors_a = state.factors_a or _fit(data, training, settings.recommender, alpha, seed)
                factors = state.factors_a
                if key == "g":
                    factors = content_factors(data, factors, settings.recommender.ridge)
            else:
                factors = _fit(data, training, settings.recommender, alpha, seed)
            metrics, per_user = _measure(data, factors, settings.recommender.k)
            outcomes[key] = {"status": "ok", "training": _training(data, training, generation),
                             "metrics": metrics, "per_user": per_user}
        outcomes[key]["seconds"] = time.monotonic() - arm_started
        if key in settings.arms:
            bar.update(1)
    return outcomes


@dataclass
class SeedState:
    """What later arms of one seed take from earlier ones."""

    seed: int
    added: int
    """Rows (d) and (e) add: (b)'s usable rows once (b) ran, else the requested count."""
    gated: int | None = None
    """(b)'s usable row count, which (c) matches; None until (b) emitted rows."""
    factors_a: Factors | None = None
    gated_set: TrainingSet | None = None
    """(b)'s training set, which (i) reweights."""
    rngs: tuple[np.random.Generator, ...] = ()

    def __post_init__(self) -> None:
        self.rngs = tuple(np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(2))


def training_set(key: str, bundle: Any, data: UtilityData, settings: UtilitySettings, request: dict[str, Any],
                  state: SeedState) -> tuple[TrainingSet, dict[str, Any]]:
    """Arm `key`'s training set and what its generation reported; _Skip when it cannot be built."""
    columns = (bundle.role("user_id")[0], bundle.role("item_id")[0])
    gate = bundle_gate(bundle, settings.gate, where="utility")
    if key in ("a", "f", "g"):
        return real_only(data), {}
    if key == "d":
        return oversampled(data, state.added, state.rngs[1]), {}
    if key == "e":
        return tail_weighted(data, state.added), {}
    if key == "b":
        rows, generation = augment_rows(bundle, data.tail, request["per_item"], state.seed, gate)
        if rows is None or len(rows) == 0:
            raise _Skip("refused", f"gen.augment emitted no rows ({generation.get('verdict')})", generation)
        training, generation["use"] = with_rows(data, rows, GATED, warm_tail_items(data), columns)
        state.gated = state.added = generation["use"]["added"]
        state.gated_set = training
        return training, generation
    if key == "i":
        if state.gated_set is None:
            raise _Skip("skipped", "needs (b)'s rows, and (b) emitted no rows")
        return rows_and_weights(data, state.gated_set, state.added), {}
    if key == "c":
        if state.gated is None:
            raise _Skip("skipped", "needs (b)'s row count, and (b) emitted no rows")
        rows, generation = augment_rows(bundle, data.tail, request["per_item"], state.seed, False)
        training, generation["use"] = with_rows(data, rows, UNGATED, warm_tail_items(data), columns,
                                                keep=state.gated, rng=state.rngs[0])
        return training, generation
    if not data.cold.any():
        raise _Skip("skipped", "the bundle holds no cold-start items (train it with data.split.cold_items)")
    rows, generation = cold_rows(bundle, data, settings.cold_per_item, state.seed,
                                 gate if settings.cold_gated else False)
    if rows is None:
        raise _Skip("refused", f"gen.cold_start emitted no rows ({generation.get('verdict')})", generation)
    training, generation["use"] = with_rows(data, rows, COLD_SYNTHETIC, data.cold, columns)
    return training, generation


class _Skip(Exception):
    """An arm that cannot run for this seed: status (refused / skipped), the reason, what generation said."""

    def __init__(self, status: str, reason: str, generation: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.generation = status, reason, generation or {}


def _fit(data: UtilityData, training: TrainingSet, config: RecommenderConfig, alpha: float, seed: int) -> Factors:
    return fit_factors(training.matrix(len(data.users), len(data.items)), config, alpha, seed)


def _measure(data: UtilityData, factors: Factors, k: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(the metrics by group, per-user Recall@k [eval users] of "overall" and the tail for the bootstrap)."""
    top = ranked(data, factors, k)
    groups = data.group_masks()
    scores = ranking_metrics(top, data.relevant, groups, k)
    per_user = {g: per_user_recall(top, data.relevant, groups[g]) for g in ("overall", data.tail)}
    return ({"recall": {g: s["recall"] for g, s in scores.items()}, "ndcg": {g: s["ndcg"] for g, s in scores.items()},
             "coverage": coverage(top, groups), "users": {g: s["users"] for g, s in scores.items()}}, per_user)


def _training(data: UtilityData, training: TrainingSet, generation: dict[str, Any]) -> dict[str, Any]:
    return {"rows": training.counts(), "total_weight": float(training.weights.sum()), "generation": generation,
            "held_out_hits": held_out_hits(data, training)}


# ---------------------------------------------------------------------------------------------------------
# the payload


def _payload(bundle: Any, data: UtilityData, settings: UtilitySettings, alpha: float, request: dict[str, Any],
             per_seed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    arms = {key: arm_summary(ARMS[key], outcomes) for key, outcomes in per_seed.items()}
    groups = list(data.group_masks())
    popular = popularity_ranked(data, settings.recommender.k)
    popularity = ranking_metrics(popular, data.relevant, data.group_masks(), settings.recommender.k)
    references = {
        "popularity": {"recall": {g: {"mean": s["recall"]} for g, s in popularity.items()},
                       "ndcg": {g: {"mean": s["ndcg"]} for g, s in popularity.items()}},
        "random ranking": {"recall": {g: {"mean": v} for g, v in
                                      chance_recall(data.relevant, data.excluded, data.group_masks(),
                                                    settings.recommender.k).items()}},
    }
    return {
        "bundle": str(bundle.path), "settings": {**asdict(settings), "arms": list(settings.arms)},
        "alpha": alpha, "tail": data.tail, "groups": groups, "origins": list(ORIGINS), "data": data.stats,
        "augment_request": request, "arms": arms, "references": references,
        "goal": goal(arms, data.tail, references["random ranking"]["recall"].get("cold", {}).get("mean")),
        "provenance": bundle.provenance(),
    }


# ---------------------------------------------------------------------------------------------------------
# command line


def _check(settings: UtilitySettings) -> None:
    unknown_cold = [arm for arm in settings.cold_arms if arm not in COLD_ARMS]
    if unknown_cold:
        raise ValueError(f"cold arms: expected names among {list(COLD_ARMS)}, got {list(settings.cold_arms)}")
    if (settings.cold_rows != "auto" and (not isinstance(settings.cold_rows, int) or settings.cold_rows < 1)) \
            or settings.resamples < 1:
        raise ValueError(f"cold rows ('auto' or a number) and resamples must be at least 1 (got {settings.cold_rows}, {settings.resamples})")
    unknown = [key for key in settings.arms if key not in ARMS]
    if unknown or not settings.arms:
        raise ValueError(f"arms: expected letters among {list(ARMS)}, got {list(settings.arms)}")
    if settings.seeds < 1:
        raise ValueError(f"seeds: expected at least 1, got {settings.seeds}")
    if settings.recommender.k < 1 or settings.recommender.factors < 1 or settings.recommender.iterations < 1:
        raise ValueError("k, factors and iterations must be at least 1")


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm  # a dependency of implicit, so present with tailsynth[utility]

    return tqdm(total=total, unit="arm", disable=not enabled, leave=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tailsynth.gen.gate_overrides import add_gate_option  # light: no torch, no gate code

    defaults, model = UtilitySettings(), RecommenderConfig()
    parser.add_argument("--bundle", required=True, help="run directory written by tailsynth train")
    parser.add_argument("--seeds", type=int, default=defaults.seeds,
                        help=f"seeds per arm: generation and recommender (default {defaults.seeds})")
    parser.add_argument("--share", type=float, default=defaults.share,
                        help="tail augmentation rows requested, as a share of the tail's real training rows")
    parser.add_argument("--out", default=None, help="output folder (default: <run dir>/utility)")
    parser.add_argument("--arms", default="".join(defaults.arms), help=f"arm letters to run (default: all, {''.join(ARMS)})")
    parser.add_argument("--model", choices=("als", "bpr"), default=model.model,
                        help=f"implicit's recommender (default {model.model})")
    parser.add_argument("--factors", type=int, default=model.factors, help=f"latent factors (default {model.factors})")
    parser.add_argument("--iterations", type=int, default=model.iterations,
                        help=f"training iterations (default {model.iterations})")
    parser.add_argument("--regularization", type=float, default=model.regularization,
                        help=f"L2 regularisation (default {model.regularization})")
    parser.add_argument("--alpha", default=model.alpha, help="ALS confidence per interaction, or 'auto'")
    parser.add_argument("--k", type=int, default=model.k, help="list length of Recall@k / NDCG@k / coverage")
    parser.add_argument("--threads", type=int, default=model.threads, help="implicit's threads (0: all cores)")
    parser.add_argument("--cold-per-item", default=defaults.cold_per_item, help="rows per cold-start item, or 'auto'")
    add_gate_option(parser, "(b) and (h)")
    parser.add_argument("--cold-ungated", action="store_true", help="(h) and the cold study with ungated rows")
    parser.add_argument("--cold-arms", default=",".join(defaults.cold_arms),
                        help=f"cold-study arms, comma-separated ('' skips the study; default {','.join(COLD_ARMS)})")
    parser.add_argument("--cold-rows", default=defaults.cold_rows,
                        help="rows per cold item the study's generated arms ask for, or 'auto' (each item's "
                             f"predicted popularity, as gen cold-start; default {defaults.cold_rows})")
    parser.add_argument("--resamples", type=int, default=defaults.resamples,
                        help=f"paired-bootstrap resamples over users (default {defaults.resamples})")
    parser.add_argument("--gate-holdout", type=float, default=defaults.gate_holdout,
                        help="share of the holdout the gate judges against; the arms are scored on the rest")
    parser.add_argument("--device", default=None, help="generator device (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _whole(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{flag}: expected a whole number or 'auto', got {value!r}") from None


def command(args: argparse.Namespace) -> int:
    import importlib.util

    from tailsynth import gen
    from tailsynth.gen.gate_overrides import parse_overrides

    if importlib.util.find_spec("implicit") is None:
        raise ValueError(INSTALL_HINT)
    alpha = args.alpha if args.alpha == "auto" else float(args.alpha)
    cold_per_item, cold_rows = (value if value == "auto" else _whole(value, flag)
                                for value, flag in ((args.cold_per_item, "--cold-per-item"), (args.cold_rows, "--cold-rows")))
    gate = parse_overrides(args.gate)
    recommender = RecommenderConfig(model=args.model, factors=args.factors, iterations=args.iterations,
                                    regularization=args.regularization, alpha=alpha, k=args.k, threads=args.threads)
    settings = UtilitySettings(seeds=args.seeds, share=args.share, arms=tuple(args.arms.replace(",", "")), cold_per_item=cold_per_item,
                               gate=gate, cold_gated=not args.cold_ungated, gate_holdout=args.gate_holdout,
                               recommender=recommender,
                               cold_arms=tuple(a for a in args.cold_arms.split(",") if a), cold_rows=cold_rows,
                               resamples=args.resamples)
    bundle = gen.load(args.bundle, device=args.device)
    out = Path(args.out) if args.out else bundle.path.parent / "utility"
    payload = run(bundle, out=out, settings=settings, progress=not args.no_progress)
    print(markdown(payload))
    print(f"wrote {out / 'utility.json'}, utility.md, utility_recall.png and tb/")
    return 0
