"""`python -m evaluate report` and `python -m evaluate fidelity`: full fidelity reports for people and CI.

`report` loads a trained run, samples every bucket (raw and through the gate), measures both against the
real holdout next to the real-vs-real floor, and writes TensorBoard scalars/images/text into the run's
`tb/` folder plus `report.json` and `report.md` in the run directory. This is command-line glue: the
measures themselves (`evaluate.fidelity`) never import the model packages.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from evaluate.atomic import write_json, write_text
from evaluate.fidelity import fidelity_report
from evaluate.markdown import report_markdown
from evaluate.sdmetrics_check import quality_report
from evaluate.tensorboard import write_report

BUCKET = "pop_bucket"


def report_command(bundle: str, rows: int, seed: int) -> int:
    import gen  # the CLI may use the model packages; the measures above do not

    loaded = gen.load(bundle)
    run_dir = loaded.path.parent
    holdout = loaded.table("holdout")
    buckets = [str(b) for b in loaded.encoder.column(BUCKET).categories]
    raw_parts, gate_section = [], {}
    for bucket in buckets:
        raw_parts.append(gen.sample(loaded, rows, {BUCKET: bucket}, seed=seed))
        result = gen.sample_gated(loaded, rows, {BUCKET: bucket}, seed=seed)
        gate_section[bucket] = _gate_summary(result.report)
        print(f"gate {bucket}: {'passed' if result.passed else 'refused'} "
              f"({gate_section[bucket]['accepted'] or 0:,}/{gate_section[bucket]['candidates'] or 0:,} candidates accepted)")
    synth = pd.concat(raw_parts, ignore_index=True)
    report = fidelity_report(loaded.table("train"), synth, loaded.columns, holdout=holdout, by=BUCKET, seed=seed)
    report["gate"] = gate_section
    # The ecosystem's standard reading beside ours (None without the sdv extra); the gate never uses it.
    report["sdmetrics_quality"] = quality_report(holdout, synth, loaded.columns)
    report["bundle"] = str(loaded.path)
    report["seed"] = seed
    report["config"] = loaded.config
    report["versions"] = loaded.manifest["meta"]["versions"]
    columns = {name: kind for name, kind in loaded.columns.items()}
    write_report(run_dir / "tb", report, holdout, synth, columns, step=0, by=BUCKET,
                 extra_text=f"report of {loaded.path} with {rows:,} rows per bucket, seed {seed}")
    write_json(run_dir / "report.json", report)
    write_text(run_dir / "report.md", report_markdown(report, title=f"Fidelity report: {run_dir.name}"))
    print(f"wrote {run_dir / 'report.json'}, {run_dir / 'report.md'} and TensorBoard logs in {run_dir / 'tb'}")
    return 0


def fidelity_command(args: argparse.Namespace) -> int:
    """Compare any two tables (ours, SDV's, anyone's) given a column-type mapping."""
    columns = _columns(args.columns)
    real = _read(args.real)
    synth = _read(args.synth)
    holdout = _read(args.holdout) if args.holdout else None
    by = args.by if args.by and args.by in real.columns and args.by in synth.columns else None
    report = fidelity_report(real, synth, columns, holdout=holdout, by=by, seed=args.seed)
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


HEADLINE = ("mean_ks", "mean_tvd", "corr_diff", "contingency_distance", "auc")


def _gate_summary(report: dict) -> dict:
    """A bucket's gate outcome: counts, reasons, and headline measures before/after gating and the floor."""
    keys = ("passed", "verdict", "requested_rows", "candidates", "accepted", "acceptance_rate", "rejected", "failures")
    summary = {key: report.get(key) for key in keys}
    summary["failures"] = [f.get("message", str(f)) if isinstance(f, dict) else str(f) for f in summary["failures"] or []]
    for stage in ("before", "after", "floor"):
        measures = report.get(stage) or {}
        summary[stage] = {name: measures.get(name) for name in HEADLINE}
    return summary


def _columns(spec: str) -> dict[str, str]:
    text = Path(spec).read_text() if Path(spec).is_file() else spec
    try:
        columns = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--columns: expected a JSON object of column -> sdtype (or a file holding one): {exc}") from None
    if not isinstance(columns, dict):
        raise ValueError("--columns: expected a JSON object of column -> sdtype")
    return columns


def _read(path: str) -> pd.DataFrame:
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{path}: file not found")
    if file.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(file)
    return pd.read_csv(file)
