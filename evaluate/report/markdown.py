"""A fidelity report as Markdown: per section a table "measure | synthetic | real-vs-real floor".

Accepts a `fidelity.fidelity_report` dict (optionally with a "gate" section added by the gate) or a bare
`fidelity.measure` dict. Pure string building; writing the file is the caller's job (`evaluate.atomic`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


from tailsynth.evaluate.measures.scalars import number, numeric_leaves

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

UNGATED_HEADING = "## Ungated: the model's raw output"
UNGATED_NOTE = ("Rows sampled straight from the conditioned generator, no filter applied: what `gen sample` "
                "returns without the gate.")
GATED_HEADING = "## Gated: the rows the gate accepted"
GATED_NOTE = ("Rows that passed the gate's filters, judged by its final test against the bucket's held-out rows "
              "(the gate's own sample: at most 20,000 rows per side, held-out rows the privacy rule would "
              "refuse set aside). The floor is the gate's real-vs-real reading of the same held-out rows.")
FIGURES_NOTE = ("Grey: real held-out rows; orange: ungated synthetic rows; green: gated rows (buckets whose gate "
                "passed). Bar heights are shares of each side's rows; numerical bins span the real rows' central 99% (values outside "
                "fall in the end bins); panel titles give each side's KS distance "
                "(numerical, datetime) or TVD (categorical) to the real rows.")


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


def _section(title: str, synth: dict[str, Any] | None, floor: dict[str, Any] | None, level: str = "##") -> list[str]:
    lines = [f"{level} {title}", ""]
    if synth is None:
        return lines + ["Not measured for the synthetic rows (see skipped buckets).", ""]
    lines += _measure_table(synth, floor) + [""]
    if synth.get("columns"):
        lines += _column_table(synth, floor) + [""]
    return lines


def _gate_lines(gate: Any, order: list[str]) -> list[str]:
    if isinstance(gate, dict) and gate and all(isinstance(v, dict) and "after" in v for v in gate.values()):
        return _gate_tables({bucket: gate[bucket] for bucket in _ordered(gate, order)})
    leaves = list(numeric_leaves(gate))
    lines = ["## Gate", ""]
    if not leaves:
        return lines + [f"{_cell(gate)}", ""]
    lines += ["| gate measure | value |", "|---|---:|"]
    lines += [f"| {tag} | {_cell(value)} |" for tag, value in leaves]
    return lines + [""]


def _rejections(rejected: Any) -> str:
    if not isinstance(rejected, dict):
        return _cell(rejected)
    return ", ".join(f"{_count(count)} by {reason}" for reason, count in rejected.items()) or "none"


def _count(value: Any) -> str:
    """A row count with thousands separators (n/a when missing)."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _cell(value)


def _gate_tables(gate: dict[str, dict]) -> list[str]:
    """Per bucket: the verdict, its reasons, and the gated rows' headline measures beside the gate's floor.

    Only measures of the rows the gate accepted appear here; the raw output is in the ungated tables above.
    """
    lines = [GATED_HEADING, "", GATED_NOTE, ""]
    for bucket, outcome in gate.items():
        verdict = "passed" if outcome.get("passed") else f"refused ({outcome.get('verdict', 'failed')})"
        lines += [f"### Gated {bucket}: {verdict}", "",
                  f"{_count(outcome.get('accepted'))} of {_count(outcome.get('candidates'))} candidates passed the "
                  f"filters (requested {_count(outcome.get('requested_rows'))}); rejected: "
                  f"{_rejections(outcome.get('rejected'))}.", ""]
        lines += [f"- {reason}" for reason in outcome.get("failures") or []]
        after, floor = outcome.get("after") or {}, outcome.get("floor") or {}
        if all(value is None for value in after.values()):
            lines += ["", "No gated rows were measured: the gate stopped before its final test.", ""]
            continue
        labels = dict(MEASURES)
        lines += ["", "| measure | gated rows | real-vs-real floor |", "|---|---:|---:|"]
        lines += [f"| {labels.get(name, name)} | {_cell(after.get(name))} | {_cell(floor.get(name))} |"
                  for name in after]
        lines.append("")
    return lines


def _ordered(keys: Any, order: list[str]) -> list[str]:
    """`keys` with the names in `order` first, in that order (head, torso, tail), then any others as given."""
    keys = list(keys)
    return [name for name in order if name in keys] + [name for name in keys if name not in order]


def _figure_lines(figures: Mapping[str, str]) -> list[str]:
    lines = ["## Figures", "", FIGURES_NOTE, ""]
    for caption, path in figures.items():
        lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
    return lines


def report_markdown(report: dict[str, Any], title: str, figures: Mapping[str, str] | None = None) -> str:
    """Readable Markdown: the overall table, one per bucket, skipped buckets, the gate's numbers, figures.

    With a "gate" section the raw-output measures and the gated ones go under separate headings
    ("Ungated: ..." and "Gated: ..."). Buckets follow report["bucket_order"] (e.g. head, torso, tail) when
    given. `figures` maps a caption to an image path relative to the Markdown file.
    """
    if "overall" not in report:  # a bare measure dict
        return "\n".join([f"# {title}", ""] + _section("Overall", report, None))
    floor = report.get("floor") or {}
    compared = report.get("compared_to", "real")
    lines = [f"# {title}", "", f"Synthetic rows compared against the {compared} rows."]
    if floor:
        lines.append("The floor column compares the real training rows with the real holdout rows.")
    if report.get("auc_note"):
        lines.append(str(report["auc_note"]))
    lines.append("")
    gated = "gate" in report
    level = "###" if gated else "##"
    if gated:
        lines += [UNGATED_HEADING, "", UNGATED_NOTE, ""]
    lines += _section("Overall", report["overall"], floor.get("overall"), level)
    order = [str(name) for name in report.get("bucket_order") or []]
    buckets = _ordered([*report.get("by_bucket", {}), *(b for b in floor.get("by_bucket", {})
                                                       if b not in report.get("by_bucket", {}))], order)
    for bucket in buckets:
        synth, real = report.get("by_bucket", {}).get(bucket), floor.get("by_bucket", {}).get(bucket)
        lines += _section(f"Bucket {bucket}", synth, real, level)
    skipped = {**{f"floor {k}": v for k, v in floor.get("skipped", {}).items()}, **report.get("skipped", {})}
    if skipped:
        lines += [f"{level} Skipped buckets", ""] + [f"- {bucket}: {reason}" for bucket, reason in skipped.items()] + [""]
    if gated:
        lines += _gate_lines(report["gate"], order)
    if figures:
        lines += _figure_lines(figures)
    quality = report.get("sdmetrics_quality")
    if quality:
        lines += ["## SDMetrics QualityReport (cross-check; 1 = identical)", "",
                  f"- overall score: {number(quality.get('score'))}"]
        lines += [f"- {name}: {number(value)}" for name, value in (quality.get("properties") or {}).items()] + [""]
    return "\n".join(lines)
