"""Report figures drawn with matplotlib's non-interactive Agg canvas.

Figures are built as `matplotlib.figure.Figure` with a `FigureCanvasAgg` attached, never through pyplot:
no window opens, no figure stays registered, and a caller's own backend choice is left alone.

`column_figure` draws one column with one panel per group (overall, then each bucket in the caller's
order). Each panel compares the real rows (grey, filled) with every synthetic side it is given, e.g. the
model's raw "ungated" output (orange) and the rows the gate "gated" through (green), and its title gives
each side's distance to the real rows: the KS distance for numerical/datetime columns, the TVD for
categorical ones (`evaluate.metrics.column_tests`, so the figure and the report's tables agree).
Numerical/datetime: step histograms of row shares over bins spanning the real rows' central 99% (values
outside counted in the end bins; a log axis for positive heavy-tailed columns); categorical: grouped bars over real's
`TOP_CATEGORIES` most frequent categories plus "other". `correlation_figure` draws corr_synth - corr_real of
the numerical/datetime columns, with their names and a colour bar.

`to_rgb` renders a figure once into the uint8 [H, W, 3] array TensorBoard takes; `png_bytes` encodes that
array, so the PNG beside report.md and the TensorBoard image are the same pixels, drawn once.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import matplotlib.dates as mdates
import matplotlib.image as mimage
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tailsynth.evaluate.measures.metrics import SdType, category_labels, column_tests, correlation_difference, numeric_values

REAL_COLOUR = "#7f7f7f"
SIDE_COLOURS = {"ungated": "#ff7f0e", "gated": "#2ca02c"}
"""Colours of the synthetic sides by legend label; other labels take the fallback cycle below."""
FALLBACK_COLOURS = ("#1f77b4", "#d62728", "#9467bd", "#8c564b")
NUMERIC_BINS = 40
TOP_CATEGORIES = 12
LOG_SPREAD = 30.0
"""A positive column whose 99.5th percentile exceeds this multiple of its median is drawn on a log axis."""
LABEL_CHARS = 16
DPI = 100
PANEL_INCHES = (3.8, 3.3)


@dataclass(frozen=True)
class Panel:
    """One group's rows: the real rows and each synthetic side by its legend label ("ungated", "gated")."""

    name: str
    real: pd.DataFrame
    synthetic: Mapping[str, pd.DataFrame]


def _colour(label: str, index: int) -> str:
    return SIDE_COLOURS.get(label, FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)])


def _distance(real: pd.Series, synth: pd.Series, sdtype: SdType) -> float | None:
    """The report's per-column distance (KS with the null gap folded in, or TVD); None when a side is empty."""
    if len(real) == 0 or len(synth) == 0:
        return None
    table = column_tests(real.to_frame("value"), synth.to_frame("value"), {"value": sdtype})
    distance = float(table["distance"].iloc[0])
    return distance if np.isfinite(distance) else None


def _panel_title(panel: Panel, column: str, sdtype: SdType) -> str:
    """'<group>: <n> real rows' and one 'KS <side> 0.123' (or TVD) entry per synthetic side."""
    kind = "TVD" if sdtype == "categorical" else "KS"
    parts = []
    for label, rows in panel.synthetic.items():
        distance = _distance(panel.real[column], rows[column], sdtype)
        parts.append(f"{label} {distance:.3f}" if distance is not None else f"{label} n/a")
    return f"{panel.name}: {len(panel.real):,} real rows\n{kind} " + ", ".join(parts)


def _log_axis(real: pd.Series, sdtype: SdType) -> bool:
    """Whether a column is drawn on a log axis: numerical, positive, 99.5th percentile > LOG_SPREAD x median.

    Decided once per column (on the overall real rows), so every panel of a figure has the same axis type.
    """
    if sdtype != "numerical":
        return False
    values = numeric_values(real)
    values = values[~np.isnan(values)]
    if values.size == 0 or not values.min() > 0:
        return False
    return bool(np.quantile(values, 0.995) / max(float(np.median(values)), 1e-12) > LOG_SPREAD)


def _numeric_panel(ax: Axes, panel: Panel, column: str, sdtype: SdType, log_scale: bool) -> None:
    """Step histograms of row shares over 40 bins spanning real's 0.5-99.5% range (values beyond: end bins)."""
    sides = {"real": numeric_values(panel.real[column])}
    sides.update({label: numeric_values(rows[column]) for label, rows in panel.synthetic.items()})
    values = {label: v[~np.isnan(v)] for label, v in sides.items()}
    # The bins span the REAL rows' central 99% (pooled values when real has none): a synthetic side that
    # strays far would otherwise squash the real distribution into one bar; its strays pile up in the end bins.
    basis = values["real"] if values["real"].size else np.concatenate(list(values.values()))
    if basis.size == 0:
        ax.text(0.5, 0.5, "no non-null values", ha="center", va="center", transform=ax.transAxes)
        return
    low, high = np.quantile(basis, [0.005, 0.995])
    if not high > low:
        low, high = low - 0.5, high + 0.5
    # Positive, heavy-tailed columns (money, counts) get log-spaced bins on a log axis; linear bins would
    # put nearly every row into the first bar. (A bucket whose real rows include 0 falls back to linear.)
    log_scale = log_scale and low > 0
    edges = np.geomspace(low, high, NUMERIC_BINS + 1) if log_scale else np.linspace(low, high, NUMERIC_BINS + 1)
    # Datetimes are epoch seconds here; matplotlib's date axis wants days, and then labels them as dates.
    x_edges = mdates.date2num(edges.astype("datetime64[s]")) if sdtype == "datetime" else edges
    for index, (label, side) in enumerate(values.items()):
        shares = np.histogram(np.clip(side, low, high), bins=edges)[0] / max(side.size, 1)
        if label == "real":
            ax.stairs(shares, x_edges, fill=True, color=REAL_COLOUR, alpha=0.45, label=f"real ({side.size:,})")
        else:
            ax.stairs(shares, x_edges, color=_colour(label, index - 1), linewidth=1.6,
                      label=f"{label} ({side.size:,})")
    if sdtype == "datetime":
        locator = mdates.AutoDateLocator(maxticks=5)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if log_scale:
        ax.set_xscale("log")
    ax.set_xlabel(f"{column} (log scale)" if log_scale else column)


def _short(label: object) -> str:
    text = str(label)
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _category_panel(ax: Axes, panel: Panel, column: str) -> None:
    """Grouped bars of row shares: real's most frequent categories (nulls as "<null>"), then "other"."""
    sides = {"real": panel.real[column]}
    sides.update({label: rows[column] for label, rows in panel.synthetic.items()})
    shares = {label: pd.Series(category_labels(s), dtype=object).value_counts(normalize=True)
              for label, s in sides.items()}
    ranking = shares["real"] if len(shares["real"]) else next(iter(shares.values()))
    shown = list(ranking.index[:TOP_CATEGORIES])
    names = [_short(name) for name in shown]
    table = np.array([[share.get(name, 0.0) for name in shown] for share in shares.values()]).reshape(len(shares), -1)
    if any(len(share.index.difference(shown)) for share in shares.values()):
        table = np.concatenate([table, 1.0 - table.sum(axis=1, keepdims=True)], axis=1)
        names.append("other")
    positions = np.arange(len(names))
    width = 0.8 / len(shares)
    for index, (label, row) in enumerate(zip(shares, table)):
        colour = REAL_COLOUR if label == "real" else _colour(label, index - 1)
        count = len(sides[label])
        ax.bar(positions + (index - (len(shares) - 1) / 2) * width, row, width=width, color=colour,
               alpha=0.75 if label == "real" else 0.9, label=f"{label} ({count:,})")
    ax.set_xticks(positions, names, rotation=45, ha="right", fontsize=7)


def column_figure(column: str, sdtype: SdType, panels: list[Panel]) -> Figure:
    """One row of panels, one per group, for one column, each with its legend (sides and row counts)."""
    if not panels:
        raise ValueError(f"column_figure({column!r}) needs at least one panel")
    # Fixed margins in inches instead of constrained layout, whose solver is a large share of the drawing time.
    left, right, gap, top = 0.65, 0.15, 0.6, 0.8
    bottom = 0.95 if sdtype == "categorical" else 0.55  # rotated category labels need the room
    plot_w, plot_h = PANEL_INCHES[0] - gap, PANEL_INCHES[1] - 1.35
    width = left + right + len(panels) * plot_w + (len(panels) - 1) * gap
    height = bottom + top + plot_h
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                           wspace=gap / plot_w)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    log_scale = _log_axis(panels[0].real[column], sdtype)
    for ax, panel in zip(axes, panels):
        if sdtype == "categorical":
            _category_panel(ax, panel, column)
        else:
            _numeric_panel(ax, panel, column, sdtype, log_scale)
        ax.set_title(_panel_title(panel, column, sdtype), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("share of rows")  # on the first panel only: the panels share its meaning
    for ax in axes:  # every panel: sides and row counts differ (gated rows only where that gate passed)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # headroom, so the legend does not cover the tallest bars
        ax.legend(fontsize=7, loc="upper right")
    figure.suptitle(f"{column} ({sdtype}): real held-out rows vs synthetic", fontsize=11)
    return figure


def correlation_figure(real: pd.DataFrame, synthetic: Mapping[str, pd.DataFrame], columns: Mapping[str, SdType]) -> Figure | None:
    """corr_synth - corr_real per synthetic side (red: the synthetic pair is more correlated); None with <2
    numerical/datetime columns or no synthetic side."""
    differences = {label: correlation_difference(real, rows, columns) for label, rows in synthetic.items()}
    differences = {label: found for label, found in differences.items() if not found[1].empty}
    if not differences:
        return None
    names = list(next(iter(differences.values()))[1].columns)
    side = max(4.2, 0.45 * len(names) + 2.2)
    figure = Figure(figsize=(side * len(differences) + 1.0, side), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(differences), squeeze=False)[0]
    image = None
    for ax, (label, (mean_abs, matrix)) in zip(axes, differences.items()):
        values = matrix.to_numpy(dtype=np.float64)
        image = ax.imshow(values, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
        ticks = np.arange(len(names))
        ax.set_xticks(ticks, [_short(n) for n in names], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(ticks, [_short(n) for n in names], fontsize=8)
        if len(names) <= 10:  # numbers stay legible only in a small grid
            for (row, col), value in np.ndenumerate(values):
                ax.text(col, row, f"{value:+.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(value) > 0.6 else "black")
        ax.set_title(f"{label}: mean |difference| {mean_abs:.3f}", fontsize=10)
    figure.colorbar(image, ax=list(axes), shrink=0.8, label="corr(synthetic) - corr(real)")
    figure.suptitle("Correlation difference (Pearson, numerical and datetime columns)", fontsize=11)
    return figure


def report_figures(panels: list[Panel], columns: Mapping[str, SdType]) -> dict[str, Figure]:
    """{"hist/<column>": column figure for every judged column, "corr_diff": heatmap of the first panel}.

    The first panel is the overall one by convention; the correlation figure uses its rows.
    """
    figures: dict[str, Figure] = {f"hist/{column}": column_figure(column, sdtype, panels)
                                  for column, sdtype in columns.items()}
    heat = correlation_figure(panels[0].real, panels[0].synthetic, columns) if panels else None
    if heat is not None:
        figures["corr_diff"] = heat
    return figures


def to_rgb(figure: Figure) -> np.ndarray:
    """uint8 [H, W, 3]: the figure rendered once by the Agg canvas."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of a uint8 [H, W, 3] image."""
    buffer = io.BytesIO()
    mimage.imsave(buffer, image, format="png")
    return buffer.getvalue()
