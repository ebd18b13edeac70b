"""`tailsynth evaluate report` and `tailsynth evaluate fidelity`: full fidelity reports for people and CI.

`report` loads a trained run, samples every bucket (raw and through the gate), measures the raw rows against
the real holdout next to the real-vs-real floor, draws one figure per column (a panel per bucket, gated rows
beside ungated ones where the gate passed) and the correlation-difference heatmap, and writes them as
TensorBoard scalars/images/text into the run's `tb/` folder, as PNGs in `report_figures/`, and as
`report.json` and `report.md` (which links the PNGs) in the run directory. Cost: the gate's own work plus one
discriminator network per bucket, one overall and one for the real-vs-real floor of every bucket, and one
scan of the training rows for every table's DCR sample. This is command-line glue: the measures themselves
(`evaluate.fidelity`) never import the model packages.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tailsynth.evaluate.measures import privacy
from tailsynth.models.atomic import write_json, write_text, write_with
from tailsynth.evaluate.measures.fidelity import fidelity_report
from tailsynth.evaluate.measures.holdout_auc import holdout_auc, holdout_auc_by_group
from tailsynth.evaluate.report.images import Panel, png_bytes, report_figures, to_rgb
from tailsynth.evaluate.report.markdown import report_markdown
from tailsynth.evaluate.measures.metrics import ColumnTypes
from tailsynth.evaluate.report.sdmetrics_check import quality_report
from tailsynth.evaluate.report.tensorboard import write_report

BUCKET = "pop_bucket"
FIGURES_DIR = "report_figures"
DCR_ROWS = 500
"""Rows per table's DCR median. All tables' samples share one scan of the training rows (`_fill_dcr`): a
scan's cost is dominated by reading the training rows, so it hardly grows with the sample."""
AUC_NOTE = ("Discriminator AUC of the ungated tables: one network per table pair, fitted on two thirds of each "
            "side and scored on the other third. The real-vs-real floor is one such network (training vs held-out "
            "rows of every bucket), its bucket figures read from that bucket's scored rows. The gated tables use "
            f"the gate's own cross-validated AUC. Median distances to the closest training record are over {DCR_ROWS} "
            "sampled rows per table.")


def report_command(bundle: str, rows: int, seed: int) -> int:
    from tailsynth import gen  # the CLI may use the model packages; the measures above do not

    started = time.perf_counter()
    loaded = gen.load(bundle)
    run_dir = loaded.path.parent
    train, holdout = loaded.table("train"), loaded.table("holdout")
    buckets = _bucket_order(loaded)
    # The bucket column is judged by no test: every bucket is sampled at the same size by construction.
    columns = {name: kind for name, kind in loaded.columns.items() if name != BUCKET}
    seconds: dict[str, float] = {}
    raw, gated, gate_section = {}, {}, {}
    for bucket in buckets:
        began = time.perf_counter()
        raw[bucket] = gen.sample(loaded, rows, {BUCKET: bucket}, seed=seed)
        result = gen.sample_gated(loaded, rows, {BUCKET: bucket}, seed=seed)
        gate_section[bucket] = _gate_summary(result.report)
        if result.passed and result.rows is not None:
            gated[bucket] = result.rows
        seconds[f"sample_and_gate_{bucket}"] = time.perf_counter() - began
        print(f"gate {bucket}: {'passed' if result.passed else 'refused'} "
              f"({gate_section[bucket]['accepted'] or 0:,}/{gate_section[bucket]['candidates'] or 0:,} candidates "
              f"accepted) in {seconds[f'sample_and_gate_{bucket}']:.1f}s", flush=True)
    synth = pd.concat([raw[bucket] for bucket in buckets], ignore_index=True)
    began = time.perf_counter()
    # AUCs and DCRs are filled in below: one network per table pair instead of three folds, and one scan
    # of the training rows for every table's DCR sample instead of one scan per table.
    report = fidelity_report(train, synth, columns, holdout=holdout, by=BUCKET, seed=seed, auc=False, dcr_rows=0)
    _fill_auc(report, train, holdout, synth, columns, seed)
    _fill_dcr(report, train, holdout, synth, columns, seed)
    report["auc_note"] = AUC_NOTE
    report["bucket_order"] = buckets
    report["gate"] = gate_section
    # The ecosystem's standard reading beside ours (None without the sdv extra); the gate never uses it.
    report["sdmetrics_quality"] = quality_report(holdout, synth, columns)
    seconds["measures"] = time.perf_counter() - began
    print(f"measured the ungated rows in {seconds['measures']:.1f}s", flush=True)

    began = time.perf_counter()
    images = {tag: to_rgb(figure) for tag, figure in
              report_figures(_panels(holdout, raw, gated, buckets), columns).items()}
    links = _write_pngs(run_dir / FIGURES_DIR, images)
    seconds["figures"] = time.perf_counter() - began
    print(f"drew {len(images)} figures into {run_dir / FIGURES_DIR} in {seconds['figures']:.1f}s", flush=True)

    report.update(bundle=str(loaded.path), seed=seed, config=loaded.config,
                  versions=loaded.manifest["meta"]["versions"])
    title = f"Fidelity report: {run_dir.name}"
    write_report(run_dir / "tb", report, images, step=0, title=title,
                 extra_text=f"report of {loaded.path} with {rows:,} rows per bucket, seed {seed}")
    seconds["total"] = time.perf_counter() - started
    report["seconds"] = seconds
    write_json(run_dir / "report.json", report)
    write_text(run_dir / "report.md", report_markdown(report, title=title, figures=links))
    print(f"wrote {run_dir / 'report.json'}, {run_dir / 'report.md'} (figures in {run_dir / FIGURES_DIR}) and "
          f"TensorBoard logs in {run_dir / 'tb'}{_cost(seconds['total'], loaded.manifest)}")
    return 0


def _bucket_order(loaded) -> list[str]:
    """The configured bucket names in their order (head, torso, tail) that the encoder knows, then any others."""
    known = [str(b) for b in loaded.encoder.column(BUCKET).categories]
    configured = [str(b) for b in ((loaded.config.get("data") or {}).get("buckets") or {}).get("names") or ()]
    return [b for b in configured if b in known] + [b for b in known if b not in configured]


def _fill_auc(report: dict, train: pd.DataFrame, holdout: pd.DataFrame, synth: pd.DataFrame,
              columns: ColumnTypes, seed: int) -> None:
    """One-network AUCs (`holdout_auc`): the overall table and each measured bucket, one network each; the
    floor (train vs holdout) one network for overall and every bucket (`holdout_auc_by_group`): 2 + buckets
    networks in all, where a network per floor bucket too would fit 2 + 2 x buckets."""
    def rows(table: pd.DataFrame, bucket: str) -> pd.DataFrame:
        return table[table[BUCKET].astype(str) == bucket]

    report["overall"]["auc"] = holdout_auc(holdout, synth, columns, seed=seed)
    for bucket, measures in report["by_bucket"].items():
        measures["auc"] = holdout_auc(rows(holdout, bucket), rows(synth, bucket), columns, seed=seed)
    floor = report.get("floor") or {}
    if not floor.get("overall"):
        return
    floor["overall"]["auc"], by_bucket = holdout_auc_by_group(train, holdout, columns, BUCKET, seed=seed)
    for bucket, measures in floor.get("by_bucket", {}).items():
        measures["auc"] = by_bucket.get(bucket)


def _fill_dcr(report: dict, train: pd.DataFrame, holdout: pd.DataFrame, synth: pd.DataFrame,
              columns: ColumnTypes, seed: int) -> None:
    """dcr_median of every table pair (synthetic rows overall and per bucket; for the floor, held-out rows),
    each over a seeded sample of at most `DCR_ROWS` rows, all measured in ONE `privacy.dcr` pass.

    A row's distance to its closest training record does not depend on which other rows share the pass, so
    this equals one `dcr` call per table; it scans the training rows once instead of eight times.
    """
    rng = np.random.default_rng(seed)
    floor = report.get("floor") or {}
    targets = [(report["overall"], synth)]
    targets += [(measures, synth[synth[BUCKET].astype(str) == bucket]) for bucket, measures in report["by_bucket"].items()]
    if floor.get("overall"):
        targets.append((floor["overall"], holdout))
    targets += [(measures, holdout[holdout[BUCKET].astype(str) == bucket])
                for bucket, measures in floor.get("by_bucket", {}).items()]
    samples = [rows.iloc[np.sort(rng.choice(len(rows), DCR_ROWS, replace=False))] if len(rows) > DCR_ROWS else rows
               for _, rows in targets]
    distances = privacy.dcr(pd.concat(samples, ignore_index=True), train, columns)
    bounds = np.cumsum([0] + [len(sample) for sample in samples])
    for (measures, _), start, stop in zip(targets, bounds[:-1], bounds[1:]):
        measures["dcr_median"] = float(np.median(distances[start:stop])) if stop > start else None


def _panels(holdout: pd.DataFrame, raw: dict[str, pd.DataFrame], gated: dict[str, pd.DataFrame],
            buckets: list[str]) -> list[Panel]:
    """Overall, then one panel per bucket with held-out rows; gated rows where that bucket's gate passed
    (overall only when every bucket's did, so the mixture matches the ungated one)."""
    overall = {"ungated": pd.concat([raw[b] for b in buckets], ignore_index=True)}
    if buckets and all(b in gated for b in buckets):
        overall["gated"] = pd.concat([gated[b] for b in buckets], ignore_index=True)
    panels = [Panel("overall", holdout, overall)]
    for bucket in buckets:
        real = holdout[holdout[BUCKET].astype(str) == bucket]
        if len(real):
            sides = {"ungated": raw[bucket], **({"gated": gated[bucket]} if bucket in gated else {})}
            panels.append(Panel(bucket, real, sides))
    return panels


def _write_pngs(folder: Path, images: dict[str, np.ndarray]) -> dict[str, str]:
    """Write each image as a PNG in `folder` (stale PNGs of an earlier report removed); caption -> link."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    links = {}
    for tag, image in images.items():
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", tag.replace("/", "_")) + ".png"
        data = png_bytes(image)
        write_with(folder / name, lambda tmp, data=data: tmp.write_bytes(data))
        caption = tag.split("/", 1)[1] if tag.startswith("hist/") else "correlation difference"
        links[caption] = f"{folder.name}/{name}"
    return links


def _cost(total: float, manifest: dict) -> str:
    """' (N s, X% of the training's M s)' when the bundle recorded its training time."""
    train_s = ((manifest.get("meta") or {}).get("timings") or {}).get("train_s")
    if not train_s:
        return f" ({total:.1f}s)"
    return f" ({total:.1f}s, {100 * total / train_s:.0f}% of the {train_s:.1f}s the bundle's training took)"


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
