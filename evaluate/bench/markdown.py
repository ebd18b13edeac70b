"""The benchmark report as Markdown: ours and SDV side by side, with SDV/ours ratios (>1: ours is better).

Times, seconds per epoch and memory show SDV/ours (how many times longer SDV takes); throughput shows
ours/SDV. Fidelity rows show both values and the real-vs-real floor; they have no ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tailsynth.evaluate.bench.settings import PAIRS

# (label, how to read the value from a system's result, ratio: "sdv/ours", "ours/sdv" or None, and
# optionally another reader for the ratio's inputs)
Row = tuple  # (str, Callable, str | None[, Callable])


def _get(*keys: str) -> Callable[[dict[str, Any]], Any]:
    def read(result: dict[str, Any]) -> Any:
        value: Any = result
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return read


ROWS: tuple[Row, ...] = (
    ("batch size", _get("settings", "batch_size"), None),
    ("training rows", _get("train_rows"), None),
    ("SDV preprocessing (s)", _get("preprocess_s"), None),
    ("encoder fit + transform (s)", _get("encoder_s"), "sdv/ours"),
    ("seconds / epoch (mean)", _get("seconds_per_epoch"), "sdv/ours"),
    ("median seconds / epoch", _get("median_seconds_per_epoch"), "sdv/ours"),
    ("training rows / s", _get("train_rows_per_s"), "ours/sdv"),
    ("training total (s)", _get("train_s"), "sdv/ours"),
    ("sample 100k rows (s)", _get("sample_s"), "sdv/ours"),
    # Its ratio only when both returned every row asked for: a timed-out reject loop is no speed.
    ("sample 10k tail rows (s)", _get("tail_s"), "sdv/ours", _get("tail_s_full")),
    ("tail rows returned", _get("tail_rows_returned"), None),
    ("s per 1k tail rows returned", _get("tail_s_per_1k_returned"), "sdv/ours"),
    ("peak RSS (MiB)", _get("peak_rss_mib"), "sdv/ours"),
    ("peak GPU (MiB)", _get("peak_gpu_mib"), "sdv/ours"),
    ("tail mean KS (vs all holdout tail)", _get("tail_fidelity", "mean_ks"), None),
    ("tail mean TVD", _get("tail_fidelity", "mean_tvd"), None),
    ("tail discriminator AUC", _get("tail_fidelity", "auc"), None),
    ("tail mean KS (monitor-sized)", _get("tail_fidelity_monitor", "mean_ks"), None),
    ("tail AUC (monitor-sized)", _get("tail_fidelity_monitor", "auc"), None),
)


ALL_ROWS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("batch size", _get("settings", "batch_size")),
    ("training rows", _get("train_rows")),
    ("epochs trained (rows trained / training rows)", _get("epochs_trained")),
    ("training total (s)", _get("train_s")),
    ("s per 1,000 rows trained", _get("s_per_1k_rows_trained")),
    ("sample 100k rows (s)", _get("sample_s")),
    ("sample 10k tail rows (s)", _get("tail_s")),
    ("tail rows returned", _get("tail_rows_returned")),
    ("peak RSS (MiB)", _get("peak_rss_mib")),
    ("tail mean KS (lower is better)", _get("tail_fidelity", "mean_ks")),
    ("tail mean TVD", _get("tail_fidelity", "mean_tvd")),
    ("tail discriminator AUC (0.5 = real)", _get("tail_fidelity", "auc")),
)
"""The every-system table: one column per system, ours, SDV's and TabularARGN's alike."""


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _ratio(ours: Any, sdv: Any, direction: str | None) -> str:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (ours, sdv))
    if direction is None or not numbers:
        return ""
    numerator, denominator = (sdv, ours) if direction == "sdv/ours" else (ours, sdv)
    return f"{numerator / denominator:.2f}×" if denominator > 0 else ""


def _cell(result: dict[str, Any] | None, read: Callable[[dict[str, Any]], Any]) -> str:
    if result is None:
        return "not run"
    if result.get("status") != "ok":
        return str(result.get("status", "error"))
    return fmt(read(result))


def _value(result: dict[str, Any] | None, read: Callable[[dict[str, Any]], Any]) -> Any:
    return read(result) if result is not None and result.get("status") == "ok" else None


def comparison_table(report: dict[str, Any]) -> list[str]:
    systems = report.get("systems", {})
    pairs = [(o, p) for o, p in PAIRS if o in systems or p in systems]
    header = "| measure | " + " | ".join(f"{o} | {p} | SDV/ours" for o, p in pairs) + " |"
    lines = [header, "|---|" + "---:|---:|---:|" * len(pairs)]
    for label, read, direction, *rest in ROWS:
        ratio_read = rest[0] if rest else read
        cells = []
        for ours, peer in pairs:
            ours_text, peer_text = _cell(systems.get(ours), read), _cell(systems.get(peer), read)
            ours_value, peer_value = _value(systems.get(ours), ratio_read), _value(systems.get(peer), ratio_read)
            cells += [ours_text, peer_text, _ratio(ours_value, peer_value, direction)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def systems_table(report: dict[str, Any]) -> list[str]:
    """Every system side by side (no ratios: read them against the column you compare with)."""
    systems = report.get("systems", {})
    names = list(systems)
    lines = ["| measure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, read in ALL_ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(systems[name], read) for name in names) + " |")
    return lines


def _floor_lines(report: dict[str, Any]) -> list[str]:
    floor = report.get("floor") or {}
    if "tail" not in floor:
        return [f"Real-vs-real floor: {floor.get('status', 'not measured')}."]
    full, small = floor["tail"], floor["tail_monitor"]
    return [
        f"Real-vs-real floor (training tail rows vs holdout tail rows): mean KS {fmt(full.get('mean_ks'))}, "
        f"TVD {fmt(full.get('mean_tvd'))}, AUC {fmt(full.get('auc'))} at {fmt(full.get('rows_synth'))} rows; "
        f"monitor-sized ({fmt(small.get('rows_synth'))} rows): mean KS {fmt(small.get('mean_ks'))}, "
        f"AUC {fmt(small.get('auc'))}.",
    ]


def _reach_lines(report: dict[str, Any]) -> list[str]:
    lines = ["| ours | to match | target KS / AUC | epoch | train s | SDV train s / ours | SDV total s / ours |",
             "|---|---|---|---:|---:|---:|---:|"]
    for name, result in report.get("systems", {}).items():
        for peer, entry in (result.get("reach") or {}).items():
            target = f"{fmt(entry.get('target_mean_ks'))} / {fmt(entry.get('target_auc'))}"
            if entry.get("epoch") is None:
                lines.append(f"| {name} | {peer} | {target} | never | — | — | — |")
                continue
            lines.append(f"| {name} | {peer} | {target} | {entry['epoch']} | {fmt(entry['train_seconds'])} | "
                         f"{fmt(entry.get('speedup_train'))}× | {fmt(entry.get('speedup_total'))}× |")
    return lines if len(lines) > 2 else []


def _encoder_lines(report: dict[str, Any]) -> list[str]:
    encoder = report.get("encoder")
    if encoder is None:
        return []
    lines = ["", "## Encoder (ours vs rdt ClusterBasedNormalizer)", ""]
    if encoder.get("status") != "ok":
        return lines + [f"{encoder.get('status')}: {encoder.get('error', '')}"]
    lines += ["| key | value |", "|---|---|"]
    for key, value in _flatten(encoder.get("result", {})).items():
        lines.append(f"| {key} | {fmt(value)} |")
    return lines


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix or "value": data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
    return flat


def _budget_text(report: dict[str, Any]) -> str:
    if report.get("budget_s") is not None:
        return f"equal wall time: {fmt(float(report['budget_s']))} s of training per system"
    return f"{report.get('epochs')} epoch(s)"


def render_markdown(report: dict[str, Any]) -> str:
    machine, data = report.get("machine", {}), report.get("data", {})
    lines = [
        f"# tailsynth vs SDV {machine.get('versions', {}).get('sdv') or '(not installed)'} — "
        f"setting \"{report.get('setting')}\"",
        "",
        f"- data: {data.get('source')}, {fmt(data.get('train_rows'))} training rows, "
        f"{fmt(data.get('holdout_rows'))} holdout rows; buckets (train) {data.get('train_buckets')}",
        f"- {_budget_text(report)}, device {report.get('device')}, seed {report.get('seed')}",
        f"- machine: {machine.get('cpu_model')}, {machine.get('cpus_usable')} usable CPU(s) of "
        f"{machine.get('cpu_count')}, GPU {machine.get('gpu') or 'none'}, load average at start "
        f"{machine.get('load_average_at_start')}",
        f"- torch {machine.get('versions', {}).get('torch')}, ctgan {machine.get('versions', {}).get('ctgan')}, "
        f"rdt {machine.get('versions', {}).get('rdt')}, python {machine.get('python')}",
        f"- command: `{machine.get('command')}`",
        "",
        "## Every system",
        "",
        *systems_table(report),
        "",
        *_floor_lines(report),
        "",
        "## Ours and SDV, pair by pair",
        "",
        "Ratios: times and memory SDV/ours, throughput ours/SDV (above 1: ours is better).",
        "",
        *comparison_table(report),
    ]
    reach = _reach_lines(report)
    if reach:
        lines += ["", "## Time for ours to reach SDV's final tail fidelity (monitor-sized measure)", "", *reach]
    errors = [f"- {name}: {r.get('error')}" for name, r in report.get("systems", {}).items() if r.get("error")]
    if errors:
        lines += ["", "## Errors", "", *errors]
    lines += _encoder_lines(report)
    return "\n".join(lines) + "\n"

