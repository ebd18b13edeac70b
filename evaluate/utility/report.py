"""The utility benchmark's results: per-arm summaries over seeds, the goal check, and the outputs drawn
from the JSON payload: Markdown table, Recall@k plot, TensorBoard events.

All three read the payload `evaluate.utility.run` builds (and writes as utility.json), so they always show
the same figures. matplotlib is imported inside `recall_figure` (only the plot needs it); the figure is
drawn on an Agg canvas without pyplot, so no global backend state is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tailsynth.evaluate.utility.cold_report import cold_markdown
from tailsynth.models.atomic import write_with

METRICS = ("recall", "ndcg", "coverage")
SHOWN_GROUPS = ("overall", "head", "torso", "tail", "cold")
"""Recall/NDCG columns of the table and bars of the plot, when the payload has them."""


def arm_summary(label: str, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """One arm over the seeds: status, training rows per seed, metrics as `spread` over the measured seeds."""
    measured = [o for o in outcomes if o["status"] == "ok"]
    summary: dict[str, Any] = {"label": label, "seeds_measured": [i for i, o in enumerate(outcomes)
                                                                       if o["status"] == "ok"],
                               "seconds": [o["seconds"] for o in outcomes],
                               "training": [o.get("training") for o in outcomes],
                               "generation": [o.get("generation") or (o.get("training") or {}).get("generation")
                                              for o in outcomes]}
    if not measured:
        first = outcomes[0]
        return {**summary, "status": first["status"], "reason": first.get("reason", ""), "training": []}
    summary["status"] = "ok"
    skipped = [o for o in outcomes if o["status"] != "ok"]
    if skipped:
        summary["reason"] = f"{len(skipped)} seed(s) not measured: {skipped[0]['reason']}"
    summary["metrics"] = {metric: {group: spread([o["metrics"][metric][group] if o["status"] == "ok" else None
                                                  for o in outcomes])  # values by seed, None where unmeasured
                                   for group in measured[0]["metrics"][metric]} for metric in METRICS}
    summary["users"] = measured[0]["metrics"]["users"]
    return summary


def spread(values: list[float | None]) -> dict[str, Any]:
    """mean, std (sample, over seeds; None for one value), min, max and the values; None where unmeasured."""
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    if present.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "values": values}
    return {"mean": float(present.mean()), "std": float(present.std(ddof=1)) if present.size > 1 else None,
            "min": float(present.min()), "max": float(present.max()), "values": values}


def goal(arms: dict[str, Any], tail: str, chance_cold: float | None = None) -> list[dict[str, Any]]:
    """The issue's goal: (b) +10% tail Recall over (a), (c), (d), (e); (b)'s overall Recall within 2% of (a)
    (relative); (h) above (g) on cold-start Recall (with the random-ranking level beside it: above (g) is
    not above chance). Each pair is compared on the means over the seeds both arms were measured on."""
    checks = []
    for other in ("a", "c", "d", "e"):
        checks.append(_compare(arms, "b", other, tail, f"(b) tail Recall >= 1.10 x ({other})",
                               lambda ratio: ratio >= 1.10))
    checks.append(_compare(arms, "b", "a", "overall", "(b) overall Recall within 2% of (a)",
                           lambda ratio: ratio >= 0.98))
    level = "" if chance_cold is None else f"; random ranking {chance_cold:.4f}"
    checks.append(_compare(arms, "h", "g", "cold", "(h) cold-start Recall > (g)", None, level))
    return checks


def _compare(arms: dict[str, Any], first: str, second: str, group: str, claim: str, rule: Any,
             extra: str = "") -> dict[str, Any]:
    """`rule(first / second)` (None: first > second) on the means over their common measured seeds."""
    values = [_values(arms, key, group) for key in (first, second)]
    common = [s for s, (x, y) in enumerate(zip(*values)) if x is not None and y is not None] if all(values) else []
    if not common:
        return {"claim": claim, "met": None, "detail": "not measured"}
    mine, theirs = (float(np.mean([v[s] for s in common])) for v in values)
    met = mine > theirs if rule is None else (bool(rule(mine / theirs)) if theirs else None)
    change = f": {mine / theirs - 1.0:+.1%}" if theirs else ""
    return {"claim": claim, "met": met, "seeds": common,
            "detail": f"{mine:.4f} vs {theirs:.4f}{change} on seed(s) {common}{extra}"}


def _values(arms: dict[str, Any], key: str, group: str) -> list[float | None] | None:
    arm = arms.get(key)
    if not arm or arm["status"] != "ok":
        return None
    return arm["metrics"]["recall"][group]["values"]


def groups_of(payload: dict[str, Any]) -> list[str]:
    present = payload["groups"]
    return [g for g in SHOWN_GROUPS if g in present] + [g for g in present if g not in SHOWN_GROUPS]


def cell(summary: dict[str, Any] | None) -> str:
    """"mean ± std" (std over seeds), "mean" for one seed, "-" when not measured."""
    if not summary or summary.get("mean") is None:
        return "-"
    if summary.get("std") is None:
        return f"{summary['mean']:.4f}"
    return f"{summary['mean']:.4f} ± {summary['std']:.4f}"


def markdown(payload: dict[str, Any]) -> str:
    """utility.md: arm x metric (mean ± std over seeds), training rows by arm, the goal, the settings."""
    k = payload["settings"]["recommender"]["k"]
    groups = groups_of(payload)
    header = ([f"Recall@{k} {g}" for g in groups] + [f"NDCG@{k} {g}" for g in groups]
              + ["coverage", "tail coverage"])
    lines = ["# Utility: does the recommender trained with our rows recommend the tail better?", "",
             f"Bundle `{payload['bundle']}`; {payload['settings']['recommender']['model'].upper()} with "
             f"{payload['settings']['recommender']['factors']} factors, "
             f"{payload['settings']['recommender']['iterations']} iterations; {payload['settings']['seeds']} "
             f"seed(s), mean ± std over seeds; share S = {payload['settings']['share']}.", "",
             "| arm | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for key, arm in payload["arms"].items():
        label = f"({key}) {arm['label']}"
        if arm["status"] != "ok":
            lines.append(f"| {label} | " + " | ".join(["-"] * len(header)) + " |")
            continue
        measured = len(arm["seeds_measured"])
        if measured < payload["settings"]["seeds"]:
            label += f" ({measured}/{payload['settings']['seeds']} seeds)"
        metrics = arm["metrics"]
        cells = ([cell(metrics["recall"].get(g)) for g in groups] + [cell(metrics["ndcg"].get(g)) for g in groups]
                 + [cell(metrics["coverage"].get("overall")), cell(metrics["coverage"].get(payload["tail"]))])
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for name, reference in payload["references"].items():
        cells = ([cell(reference["recall"].get(g)) for g in groups] + [cell(reference.get("ndcg", {}).get(g))
                                                                        for g in groups] + ["-", "-"])
        lines.append(f"| {name} (reference) | " + " | ".join(cells) + " |")
    lines += ["", "Arms not measured: " + ("; ".join(f"({key}) {arm['status']}: {arm.get('reason', '')}"
                                                      for key, arm in payload["arms"].items() if arm["status"] != "ok")
                                           or "none") + ".", ""]
    lines += _training_table(payload) + _generation_lines(payload) + [""] + _goal_lines(payload) + [""]
    lines += _notes(payload)
    lines += [""] + cold_markdown(payload)  # ends with the recommendation
    return "\n".join(lines) + "\n"


def _training_table(payload: dict[str, Any]) -> list[str]:
    origins = payload["origins"]
    lines = ["## Training rows by arm (first measured seed; every seed is in utility.json)", "",
             "| arm | " + " | ".join(origins) + " | total weight |", "|---" * (len(origins) + 2) + "|"]
    for key, arm in payload["arms"].items():
        first = next((entry for entry in arm.get("training", []) if entry), None)
        if first is None:
            continue
        lines.append(f"| ({key}) | " + " | ".join(f"{first['rows'][o]:,}" for o in origins)
                     + f" | {first['total_weight']:,.0f} |")
    return lines


def _generation_lines(payload: dict[str, Any]) -> list[str]:
    """What gen.augment / gen.cold_start said, per generated arm and seed."""
    lines = []
    for key, arm in payload["arms"].items():
        said = [(seed, g) for seed, g in enumerate(arm.get("generation", [])) if g]
        if said:
            parts = [f"seed {seed}: {g.get('verdict')}, {g.get('rows') or 0:,} rows emitted"
                     + (f", {g['use']['added']:,} used" if g.get("use") else "") for seed, g in said]
            lines.append(f"- ({key}) generation: " + "; ".join(parts))
            refusal = next((g["failures"][0] for _, g in said if g.get("failures")), None)
            if refusal:
                lines.append(f"  - ({key}) first refusal message: {refusal}")
        hits = [entry["held_out_hits"] for entry in arm.get("training", []) if entry and entry.get("held_out_hits")]
        if hits:
            first = hits[0]
            lines.append(f"  - ({key}) generated pairs that are scored held-out pairs: {first['hits']:,} of "
                         f"{first['rows']:,} (first measured seed) vs {first['chance']:.1f} expected with uniformly "
                         f"random users, {first['activity_chance']:.1f} with activity-weighted random users; "
                         f"lift by seed {_lifts(hits, 'lift')} (uniform), {_lifts(hits, 'activity_lift')} (activity)")
    added = [_added(entry) for entry in payload["arms"].get("d", {}).get("training", [])]
    if any(n is not None for n in added):
        lines.append("- (d) and (e) rows added by seed: " + ", ".join("-" if n is None else f"{n:,}" for n in added)
                     + " (what (b) emitted on that seed; the requested count where (b) emitted nothing)")
    return [""] + lines if lines else []


def _added(entry: dict[str, Any] | None) -> int | None:
    return None if not entry else entry["rows"]["duplicate"]


def _lifts(hits: list[dict[str, Any]], key: str) -> str:
    return ", ".join(f"{h[key]:.2f}" for h in hits if h.get(key) is not None) or "-"


def _goal_lines(payload: dict[str, Any]) -> list[str]:
    lines = ["## Goal (a benchmark, not a test)", ""]
    for check in payload["goal"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[check["met"]]
        lines.append(f"- {check['claim']}: **{verdict}** ({check['detail']})")
    return lines


def _notes(payload: dict[str, Any]) -> list[str]:
    data = payload["data"]
    return ["## How it was measured", "",
            f"- {data['evaluated_users']:,} users with training rows and held-out items are ranked over the "
            f"{data['warm_items']:,} warm + {data['cold_items']:,} cold-start items, their real training items "
            "excluded (the same for every arm); relevance: their held-out real interactions.",
            f"- overall / head / torso / tail: held-out rows of warm items; cold: the cold-start items' real "
            f"rows (never in any training set). Unusable held-out rows: {data['held_out_rows_unusable']}.",
            _split_line(data.get("holdout_split")),
            "- (f) is (a)'s model: items without training rows get no score, so a pure CF model never ranks "
            "them. (g) is (a)'s model with cold-start item factors mapped from item features (ridge).",
            (f"- ALS confidence alpha = {payload['alpha']:.2f} ({payload['settings']['recommender']['alpha']!r}), "
             "the same for every arm." if payload["settings"]["recommender"]["model"] == "als" else
             "- BPR ignores confidence values (implicit issue #197) and duplicated rows collapse into a pair's "
             "value, so (d) and (e) train exactly what (a) trains."),
            f"- {payload['seconds']:.0f} s in all."]


def _split_line(split: dict[str, Any] | None) -> str:
    if not split:
        return "- the gate and the scoring used the bundle's whole holdout."
    if split["overlap"]:
        return (f"- OVERLAP: the gate judged generated rows against the same {split['scored_rows']:,} held-out rows "
                "the arms are scored on (--gate-holdout 0).")
    return (f"- the bundle's holdout was split once (seeded): {split['gate_rows']:,} rows for the gate to judge "
            f"generated rows against, {split['scored_rows']:,} rows scored here; no scored row informed any arm.")


def recall_figure(payload: dict[str, Any]) -> Any:
    """matplotlib Figure: Recall@k by item group, one bar per measured arm, error bars = std over seeds."""
    from matplotlib.figure import Figure

    groups = groups_of(payload)
    arms = {key: arm for key, arm in payload["arms"].items() if arm["status"] == "ok"}
    figure = Figure(figsize=(2.0 + 1.6 * len(groups), 4.5), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    width = 0.8 / max(len(arms), 1)
    positions = np.arange(len(groups))
    for index, (key, arm) in enumerate(arms.items()):
        summaries = [arm["metrics"]["recall"].get(g) or {} for g in groups]
        means = [s.get("mean") if s.get("mean") is not None else np.nan for s in summaries]
        spreads = [s.get("std") or 0.0 for s in summaries]
        axes.bar(positions + (index - (len(arms) - 1) / 2) * width, means, width, yerr=spreads, capsize=2,
                 label=f"({key}) {arm['label']}")
    axes.set_xticks(positions, groups)
    axes.set_ylabel(f"Recall@{payload['settings']['recommender']['k']}")
    axes.set_title("Recall by item group and arm (mean ± std over seeds)")
    axes.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    return figure


def write_figure(figure: Any, target: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    return write_with(target, lambda tmp: figure.savefig(tmp, format="png"))


def figure_pixels(figure: Any) -> np.ndarray:
    """uint8 [H, W, 3] of the figure drawn on an Agg canvas (for TensorBoard)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_tensorboard(logdir: Path, payload: dict[str, Any], figure: Any, text: str) -> None:
    """Scalars utility/<metric>/<group>/<arm> (mean; step 0) and utility_seed/... (step = seed), the figure
    as image utility/recall_by_group, the Markdown as text utility/summary."""
    from torch.utils.tensorboard import SummaryWriter  # only report writing needs it

    writer = SummaryWriter(log_dir=str(logdir))
    try:
        for key, arm in payload["arms"].items():
            if arm["status"] != "ok":
                continue
            for metric, by_group in arm["metrics"].items():
                for group, summary in by_group.items():
                    if summary.get("mean") is not None:
                        writer.add_scalar(f"utility/{metric}/{group}/{key}", summary["mean"], 0)
                    for seed, value in enumerate(summary.get("values", [])):
                        if value is not None:
                            writer.add_scalar(f"utility_seed/{metric}/{group}/{key}", value, seed)
        writer.add_image("utility/recall_by_group", figure_pixels(figure), 0, dataformats="HWC")
        writer.add_text("utility/summary", text, 0)
        writer.flush()
    finally:
        writer.close()
