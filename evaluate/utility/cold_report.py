"""The cold-start study's and the tail's figures with paired-bootstrap intervals, the targets and the
recommendation: plain data for utility.json, and Markdown lines for utility.md.

Per arm, recommender and figure: the mean over seeds of the per-seed mean recall (± std over seeds), and a
per-user vector averaged over seeds, which `intervals.paired_bootstrap` compares between arms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tailsynth.evaluate.utility.cold_study import COLD_ARMS, RECOMMENDERS
from tailsynth.evaluate.utility.intervals import RESAMPLES, common_seeds, paired_bootstrap
from tailsynth.evaluate.utility.protocols import PROTOCOL_FIGURES

FIGURE_NAMES = {"cold_only": "cold-only", "full_cold": "full catalogue, cold", "full_overall": "full catalogue, overall"}
OURS = (("ours", "demographic"), ("ours_ungated", "demographic_ungated"), ("ours_weighted", "demographic"))
"""Our arms and the demographic arm judged like them (gated / ungated; the weighted arm holds the gated rows)."""
COLD_PAIRS = (
    ("als", "cold_only", "transfer", "demographic"), ("item_knn", "cold_only", "transfer", "demographic"),
    ("als", "cold_only", "inject_knn", "inject_ridge"), ("als", "cold_only", "inject_knn", "transfer"),
    ("als", "full_overall", "transfer", "none"), ("als", "full_overall", "demographic", "none"),
    ("als", "full_overall", "inject_knn", "none"), ("item_knn", "full_overall", "transfer", "none"),
    *((r, f, mine, other) for mine, demographic in OURS for r, f, other in (
        ("als", "cold_only", "inject_knn"), ("als", "cold_only", "transfer"), ("als", "cold_only", demographic),
        ("item_knn", "cold_only", "transfer"), ("item_knn", "cold_only", demographic),
        ("als", "full_cold", "transfer"), ("item_knn", "full_cold", "transfer"),
        ("als", "full_overall", "none"), ("item_knn", "full_overall", "none"))),
)
TAIL_PAIRS = (("i", "e"), ("b", "e"), ("b", "a"), ("b", "d"), ("e", "a"), ("d", "a"), ("i", "a"))
"""(first, second) tail arms compared on tail and overall Recall (ALS)."""


def cold_summary(per_seed: dict[str, list[dict[str, Any]]], chance: float, rng: np.random.Generator,
                 resamples: int = RESAMPLES) -> dict[str, Any]:
    """{"arms", "comparisons", "chance_cold_only"} from `cold_study.cold_seed` outcomes by arm, then seed."""
    arms: dict[str, Any] = {}
    vectors: dict[tuple[str, str, str], list[np.ndarray | None]] = {}
    for arm, outcomes in per_seed.items():
        measured = [o for o in outcomes if o["status"] == "ok"]
        entry: dict[str, Any] = {"label": COLD_ARMS[arm], "seeds_measured": len(measured),
                                 "rows_added": [o.get("rows", {}).get("added") for o in outcomes],
                                 "activity_lift": [((o.get("rows") or {}).get("hits") or {}).get("activity_lift")
                                                   for o in outcomes],
                                 "generation": [o.get("generation") for o in outcomes]}
        if not measured:
            arms[arm] = {**entry, "status": outcomes[0]["status"], "reason": _reason(outcomes[0])}
            continue
        if len(measured) < len(outcomes):
            entry["reason"] = f"{len(outcomes) - len(measured)} seed(s) not measured: " + \
                _reason(next(o for o in outcomes if o["status"] != "ok"))
        entry["status"], entry["figures"] = "ok", {}
        for recommender in measured[0]["per_user"]:
            entry["figures"][recommender] = {}
            for figure in PROTOCOL_FIGURES:
                per_user = [o["per_user"][recommender][figure] for o in measured]
                means = [float(np.nanmean(v)) if np.isfinite(v).any() else None for v in per_user]
                present = [m for m in means if m is not None]
                entry["figures"][recommender][figure] = {
                    "mean": float(np.mean(present)) if present else None,
                    "std": float(np.std(present, ddof=1)) if len(present) > 1 else None,
                    "values": means, "users": int(np.isfinite(per_user[0]).sum())}
                vectors[(arm, recommender, figure)] = [o["per_user"][recommender][figure] if o["status"] == "ok"
                                                       else None for o in outcomes]
        arms[arm] = entry
    comparisons = []
    for recommender, figure, first, second in COLD_PAIRS:
        if (first, recommender, figure) in vectors and (second, recommender, figure) in vectors:
            paired = common_seeds(vectors[(first, recommender, figure)], vectors[(second, recommender, figure)])
            if paired is None:
                continue
            seeds, mine, theirs = paired
            difference = paired_bootstrap(mine, theirs, rng, resamples)
            comparisons.append({"recommender": recommender, "figure": figure, "first": first, "second": second,
                                "seeds": seeds, **difference.as_dict()})
    return {"arms": arms, "comparisons": comparisons, "chance_cold_only": chance}


def tail_intervals(per_user: dict[str, list[dict[str, np.ndarray] | None]], tail: str, rng: np.random.Generator,
                   resamples: int = RESAMPLES) -> list[dict[str, Any]]:
    """TAIL_PAIRS on the tail and overall groups: per_user[arm][seed] = {group: [users]} (None: unmeasured)."""
    out = []
    for first, second in TAIL_PAIRS:
        if first not in per_user or second not in per_user:
            continue
        for group in (tail, "overall"):
            paired = common_seeds([s and s[group] for s in per_user[first]], [s and s[group] for s in per_user[second]])
            if paired is None:
                continue
            seeds, mine, theirs = paired
            difference = paired_bootstrap(mine, theirs, rng, resamples)
            out.append({"group": group, "first": first, "second": second, "seeds": seeds, **difference.as_dict()})
    return out


def _reason(outcome: dict[str, Any]) -> str:
    """An unmeasured outcome's reason, with generation's first refusal message when there is one."""
    failures = (outcome.get("generation") or {}).get("failures") or []
    return outcome.get("reason", "") + (f"; first refusal: {failures[0]}" if failures else "")


def cold_targets(cold: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's cold targets for each of our arms present (gated, ungated): {"claim", "met" (True / False /
    None: not measured), "detail"}."""
    checks: list[dict[str, Any]] = []
    for mine, demographic in OURS:
        if mine in cold["arms"]:
            checks += _targets_of(cold, mine, demographic)
    return checks


def _targets_of(cold: dict[str, Any], mine: str, demographic: str) -> list[dict[str, Any]]:
    chance = cold["chance_cold_only"]
    checks = []

    def figure(arm: str, recommender: str, name: str) -> float | None:
        arm_entry = cold["arms"].get(arm) or {}
        return (((arm_entry.get("figures") or {}).get(recommender) or {}).get(name) or {}).get("mean")

    def check(claim: str, met: bool | None, detail: str) -> None:
        checks.append({"claim": f"{mine}: {claim}", "met": met, "detail": detail})

    ours, ceiling = figure(mine, "als", "cold_only"), figure("inject_knn", "als", "cold_only")
    both = ours is not None and ceiling is not None and ceiling > 0
    check("ALS cold-only >= 90% of content-kNN injection", (ours / ceiling >= 0.9) if both else None,
          f"{ours:.4f} vs {ceiling:.4f} ({ours / ceiling:.0%})" if both else "not measured")
    for recommender in RECOMMENDERS:
        value = figure(mine, recommender, "cold_only")
        check(f"{recommender} cold-only >= 3x chance", None if value is None else value >= 3 * chance,
              "not measured" if value is None else f"{value:.4f} = {value / chance:.2f}x chance {chance:.4f}")
    paired = _find(cold["comparisons"], "als", "full_overall", mine, "none")  # on the seeds both were measured
    if paired is not None and paired["second_mean"]:
        overall, base = paired["first_mean"], paired["second_mean"]
    else:
        overall, base = figure(mine, "als", "full_overall"), figure("none", "als", "full_overall")
    check("ALS full catalogue: overall Recall within 2% of no rows",
          None if overall is None or not base else overall / base >= 0.98,
          "not measured" if overall is None or not base else f"{overall:.4f} vs {base:.4f} ({overall / base - 1:+.1%})"
          + (f", seeds {_seeds(paired)}" if paired is not None else ""))
    above_transfer = []
    for recommender in RECOMMENDERS:
        for second in (demographic, "transfer"):
            entry = _find(cold["comparisons"], recommender, "cold_only", mine, second)
            rule = "interval above 0" if second == demographic else "interval reaches 0 or above"
            if entry is None:
                check(f"{recommender} cold-only vs {second} ({rule})", None, "not measured")
                continue
            met = entry["low"] > 0 if second == demographic else entry["high"] >= 0
            if second == "transfer":
                above_transfer.append(entry["low"] > 0)
            check(f"{recommender} cold-only vs {second} ({rule})", met, _difference(entry))
    check("above neighbour transfer on at least one recommender (interval excludes 0)",
          any(above_transfer) if above_transfer else None,
          f"{sum(above_transfer)} of {len(above_transfer)} recommenders" if above_transfer else "not measured")
    return checks


def recommendation(payload: dict[str, Any]) -> list[str]:
    """Plain sentences: which lever wins on the tail, what our rows reach on cold items, with the figures."""
    lines = []
    tail, arms = payload["tail"], payload["arms"]
    measured = {k: a["metrics"]["recall"] for k, a in arms.items() if a["status"] == "ok" and k in "abdei"}
    if "a" in measured and measured["a"]["overall"]["mean"]:
        budget = 0.98 * measured["a"]["overall"]["mean"]
        allowed = {k: m for k, m in measured.items() if (m["overall"]["mean"] or 0) >= budget}
        best = max(allowed, key=lambda k: allowed[k][tail]["mean"] or -1.0)
        lines.append(f"- Tail: the lever that wins within a 2% overall-Recall budget is ({best}) "
                     f"{arms[best]['label']}: tail Recall@{_k(payload)} {allowed[best][tail]['mean']:.4f} vs real "
                     f"only {measured['a'][tail]['mean']:.4f}.")
        for entry in payload.get("tail_intervals", []):
            if entry["group"] == tail and (entry["first"], entry["second"]) in (("i", "e"), ("b", "e")):
                lines.append(f"  - ({entry['first']}) vs ({entry['second']}) on the tail: {_difference(entry)}.")
    cold = payload.get("cold")
    if cold and cold.get("arms"):
        for mine, _ in OURS:
            lines += _cold_lines(cold, mine, _k(payload))
        lines += _cold_levers(cold)
    return lines or ["- nothing measured to recommend from."]


def _cold_levers(cold: dict[str, Any]) -> list[str]:
    """The best cold lever per recommender on cold-only Recall (mean over seeds), and its runner-up."""
    lines = []
    for recommender in RECOMMENDERS:
        figures = {arm: e["figures"][recommender]["cold_only"]["mean"] for arm, e in cold["arms"].items()
                   if e["status"] == "ok" and recommender in e["figures"]}
        ranked = sorted(figures, key=lambda arm: -figures[arm])
        if len(ranked) < 2:
            continue
        best, second = ranked[:2]
        entry = _find(cold["comparisons"], recommender, "cold_only", best, second)
        if entry is None:  # compared the other way round: the same interval, negated
            flipped = _find(cold["comparisons"], recommender, "cold_only", second, best)
            entry = flipped and {**flipped, "first_mean": flipped["second_mean"], "second_mean": flipped["first_mean"],
                                 "difference": -flipped["difference"], "low": -flipped["high"], "high": -flipped["low"]}
        versus = f"; vs {second} {_difference(entry)}" if entry else f"; {second} {figures[second]:.4f}"
        lines.append(f"- Cold lever on {recommender}: {best} ({COLD_ARMS[best]}), cold-only "
                     f"{figures[best]:.4f}{versus}.")
    return lines


def _cold_lines(cold: dict[str, Any], mine: str, k: int) -> list[str]:
    """What arm `mine` reaches on cold items, against transfer and the injection ceiling."""
    arm = cold["arms"].get(mine)
    if arm is None:
        return []
    chance, name = cold["chance_cold_only"], COLD_ARMS[mine]
    if arm["status"] != "ok":
        return [f"- Cold items, {name}: not measured ({arm['status']}: {arm.get('reason', '')})."]
    als, knn = arm["figures"]["als"]["cold_only"]["mean"], arm["figures"]["item_knn"]["cold_only"]["mean"]
    lines = [f"- Cold items, {name}: cold-only Recall@{k} {als:.4f} on ALS ({als / chance:.1f}x chance "
             f"{chance:.3f}) and {knn:.4f} on item-kNN ({knn / chance:.1f}x)."]
    for recommender in RECOMMENDERS:
        entry = _find(cold["comparisons"], recommender, "cold_only", mine, "transfer")
        if entry:
            lines.append(f"  - {recommender}: vs neighbour transfer {_difference(entry)}.")
    ceiling = _find(cold["comparisons"], "als", "cold_only", mine, "inject_knn")
    if ceiling:
        lines.append(f"  - ALS: vs content-kNN injection {_difference(ceiling)}.")
    return lines


def cold_markdown(payload: dict[str, Any]) -> list[str]:
    """utility.md's cold study, tail intervals, targets and recommendation sections."""
    cold, k = payload.get("cold"), _k(payload)
    lines: list[str] = []
    if cold:
        chance = cold["chance_cold_only"]
        lines += ["## Cold start: two protocols, two recommenders", "",
                  f"Cold-only chance (k / #cold items) = {chance:.4f}. Mean ± std over seeds of Recall@{k}; "
                  "inject arms are ALS only (item-kNN takes no vector).", "",
                  "| arm | rows added (seed 0) | " + " | ".join(f"{r} {FIGURE_NAMES[f]}" for r in RECOMMENDERS
                                                                for f in PROTOCOL_FIGURES) + " |",
                  "|---|---|" + "---|" * (len(RECOMMENDERS) * len(PROTOCOL_FIGURES))]
        for arm, entry in cold["arms"].items():
            if entry["status"] != "ok":
                lines.append(f"| {arm}: {entry['label']} | - | {entry['status']}: {entry.get('reason', '')} |")
                continue
            cells = [_cell((entry["figures"].get(r) or {}).get(f)) for r in RECOMMENDERS for f in PROTOCOL_FIGURES]
            added = entry["rows_added"][0] if entry["rows_added"] else None
            seeds = "" if entry["seeds_measured"] == len(entry["rows_added"]) else \
                f" ({entry['seeds_measured']}/{len(entry['rows_added'])} seeds)"
            lines.append(f"| {arm}: {entry['label']}{seeds} | {'-' if added is None else f'{added:,}'} | "
                         + " | ".join(cells) + " |")
        partial = [f"{a}: {e['reason']}" for a, e in cold["arms"].items() if e["status"] == "ok" and e.get("reason")]
        if partial:
            lines += ["", "Arms not measured on every seed: " + "; ".join(partial)]
        lifts = {a: e["activity_lift"] for a, e in cold["arms"].items() if any(v is not None for v in e["activity_lift"])}
        if lifts:
            lines += ["", "Generated pairs found among scored held-out pairs, vs activity-weighted random users "
                      "(by seed): " + "; ".join(f"{a} " + ", ".join("-" if v is None else f"{v:.2f}x" for v in values)
                                                for a, values in lifts.items())]
        lines += ["", f"Paired bootstrap over users ({payload['settings'].get('resamples', RESAMPLES)} resamples, "
                  "95% interval) of seed-averaged per-user Recall:", "",
                  "| recommender | figure | difference | mean | 95% interval | users | seeds |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {c['recommender']} | {FIGURE_NAMES[c['figure']]} | {c['first']} - {c['second']} | "
                  f"{c['difference']:+.4f} | [{c['low']:+.4f}, {c['high']:+.4f}] | {c['users']:,} | {_seeds(c)} |"
                  for c in cold["comparisons"]]
    if payload.get("tail_intervals"):
        lines += ["", "## Tail arms: paired bootstrap (ALS)", "",
                  "| group | difference | mean | 95% interval | users | seeds |", "|---|---|---|---|---|---|"]
        lines += [f"| {c['group']} | ({c['first']}) - ({c['second']}) | {c['difference']:+.4f} | "
                  f"[{c['low']:+.4f}, {c['high']:+.4f}] | {c['users']:,} | {_seeds(c)} |" for c in payload["tail_intervals"]]
    if cold and cold.get("targets"):
        lines += ["", "## Cold targets (a benchmark, not a test)", ""]
        lines += [f"- {t['claim']}: **{ {True: 'met', False: 'NOT met', None: 'not measured'}[t['met']] }** "
                  f"({t['detail']})" for t in cold["targets"]]
    lines += ["", "## Recommendation for this data", ""] + recommendation(payload)
    return lines


def _find(comparisons: list[dict[str, Any]], recommender: str, figure: str, first: str,
          second: str) -> dict[str, Any] | None:
    return next((c for c in comparisons if (c["recommender"], c["figure"], c["first"], c["second"])
                 == (recommender, figure, first, second)), None)


def _difference(entry: dict[str, Any]) -> str:
    return (f"{entry['first_mean']:.4f} vs {entry['second_mean']:.4f}, difference {entry['difference']:+.4f} "
            f"[95% {entry['low']:+.4f}, {entry['high']:+.4f}]")


def _seeds(entry: dict[str, Any]) -> str:
    return ", ".join(str(s) for s in entry.get("seeds", [])) or "-"


def _cell(summary: dict[str, Any] | None) -> str:
    if not summary or summary.get("mean") is None:
        return "-"
    return f"{summary['mean']:.4f}" + (f" ± {summary['std']:.4f}" if summary.get("std") is not None else "")


def _k(payload: dict[str, Any]) -> int:
    return payload["settings"]["recommender"]["k"]
