"""A fidelity report as Markdown: per section a table "measure | synthetic | real-vs-real floor".

Accepts a `fidelity.fidelity_report` dict (optionally with a "gate" section added by the gate) or a bare
`fidelity.measure` dict. Pure string building; writing the file is the caller's job (`evaluate.atomic`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

MEASURES = (
    ("rows_real", "rows (real side)"),
    ("rows_synth", "rows (compared side)"),
    ("mean_ks", "mean KS distance (numerical)"),
    ("mean_tvd", "mean TVD (categorical)"),
    ("corr_diff", "mean abs. correlation difference"),
    ("contingency_distance", "mean pairwise contingency TVD"),
    ("auc", "discriminator AUC (0.5 = indistinguishable)"),
    ("copy_rate", "exact copies of training rows"),
    ("dcr_median", "median distance to closest training record"),
)


def number(value: Any) -> float | None:
    """A finite float for int/float-like values (bools count as 0/1), else None."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(float(value)):
        return float(value)
    return None


def numeric_leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, float]]:
    """("a/b/0/c", value) for every numeric leaf of nested dicts/lists (bools as 0/1; NaN/None skipped)."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield from numeric_leaves(child, (*path, str(key)))
    elif isinstance(node, (list, tuple)):
        for index, child in enumerate(node):
            yield from numeric_leaves(child, (*path, str(index)))
    else:
        value = number(node)
        if value is not None and path:
            yield "/".join(path), value


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _measure_table(synth: dict[str, Any], floor: dict[str, Any] | None) -> list[str]:
    lines = ["| measure | synthetic | real-vs-real floor |", "|---|---:|---:|"]
    for key, label in MEASURES:
        if key in synth or (floor and key in floor):
            floor_value = _cell(floor.get(key)) if floor else "—"
            lines.append(f"| {label} | {_cell(synth.get(key))} | {floor_value} |")
    return lines


def _column_table(synth: dict[str, Any], floor: dict[str, Any] | None) -> list[str]:
    floor_rows = {row["column"]: row for row in (floor or {}).get("columns", ())}
    lines = [
        "| column | sdtype | test | distance | p-value | floor distance | floor p-value |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in synth.get("columns", ()):
        other = floor_rows.get(row["column"], {})
        lines.append(
            f"| {_cell(row['column'])} | {row['sdtype']} | {row['test']} | {_cell(row.get('distance'))} | "
            f"{_cell(row.get('pvalue'))} | {_cell(other.get('distance'))} | {_cell(other.get('pvalue'))} |"
        )
    return lines


def _section(title: str, synth: dict[str, Any] | None, floor: dict[str, Any] | None) -> list[str]:
    lines = [f"## {title}", ""]
    if synth is None:
        return lines + ["Not measured for the synthetic rows (see skipped buckets).", ""]
    lines += _measure_table(synth, floor) + [""]
    if synth.get("columns"):
        lines += _column_table(synth, floor) + [""]
    return lines


def _gate_lines(gate: Any) -> list[str]:
    if isinstance(gate, dict) and gate and all(isinstance(v, dict) and "after" in v for v in gate.values()):
        return _gate_tables(gate)
    leaves = list(numeric_leaves(gate))
    lines = ["## Gate", ""]
    if not leaves:
        return lines + [f"{_cell(gate)}", ""]
    lines += ["| gate measure | value |", "|---|---:|"]
    lines += [f"| {tag} | {_cell(value)} |" for tag, value in leaves]
    return lines + [""]


def _gate_tables(gate: dict[str, dict]) -> list[str]:
    """Per bucket: the verdict, its reasons, and each headline measure before/after gating beside the floor."""
    lines = ["## Gate", ""]
    for bucket, outcome in gate.items():
        verdict = "passed" if outcome.get("passed") else f"refused ({outcome.get('verdict', 'failed')})"
        lines += [f"### {bucket}: {verdict}", "",
                  f"accepted {_cell(outcome.get('accepted'))} of {_cell(outcome.get('candidates'))} candidates "
                  f"(requested {_cell(outcome.get('requested_rows'))}); rejected {outcome.get('rejected')}", ""]
        lines += [f"- {reason}" for reason in outcome.get("failures") or []]
        lines += ["", "| measure | before gating | after gating | real-vs-real floor |", "|---|---:|---:|---:|"]
        names = list((outcome.get("after") or {}).keys())
        for name in names:
            row = [_cell((outcome.get(stage) or {}).get(name)) for stage in ("before", "after", "floor")]
            lines.append(f"| {name} | " + " | ".join(row) + " |")
        lines.append("")
    return lines


def report_markdown(report: dict[str, Any], title: str) -> str:
    """Readable Markdown: the overall table, one per bucket, skipped buckets, and the gate's numbers."""
    if "overall" not in report:  # a bare measure dict
        return "\n".join([f"# {title}", ""] + _section("Overall", report, None))
    floor = report.get("floor") or {}
    compared = report.get("compared_to", "real")
    lines = [f"# {title}", "", f"Synthetic rows compared against the {compared} rows."]
    if floor:
        lines.append("The floor column compares the real training rows with the real holdout rows.")
    lines.append("")
    lines += _section("Overall", report["overall"], floor.get("overall"))
    buckets = list(report.get("by_bucket", {}))
    buckets += [b for b in floor.get("by_bucket", {}) if b not in buckets]
    for bucket in buckets:
        synth, real = report.get("by_bucket", {}).get(bucket), floor.get("by_bucket", {}).get(bucket)
        lines += _section(f"Bucket {bucket}", synth, real)
    skipped = {**{f"floor {k}": v for k, v in floor.get("skipped", {}).items()}, **report.get("skipped", {})}
    if skipped:
        lines += ["## Skipped buckets", ""] + [f"- {bucket}: {reason}" for bucket, reason in skipped.items()] + [""]
    if "gate" in report:
        lines += _gate_lines(report["gate"])
    quality = report.get("sdmetrics_quality")
    if quality:
        lines += ["## SDMetrics QualityReport (cross-check; 1 = identical)", "",
                  f"- overall score: {number(quality.get('score'))}"]
        lines += [f"- {name}: {number(value)}" for name, value in (quality.get("properties") or {}).items()] + [""]
    return "\n".join(lines)
