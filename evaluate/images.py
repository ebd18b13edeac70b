"""Report images drawn with numpy alone (matplotlib is not a dependency): uint8 RGB arrays [H, W, 3].

`overlay_histogram` draws real (blue) and synthetic (orange) histograms as translucent bars over shared
bins or categories, so where they overlap the colour mixes and where they differ one colour shows alone.
`heatmap` draws a matrix with a diverging blue-white-red map (e.g. the correlation difference). No text:
the TensorBoard tag and the report's text name what is drawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluate.metrics import SdType, category_labels, frequencies, numeric_values

REAL_COLOUR = np.array([31, 119, 180], dtype=np.float64)  # blue
SYNTH_COLOUR = np.array([255, 127, 14], dtype=np.float64)  # orange
ALPHA = 0.55
MARGIN = 12
NUMERIC_BINS = 40
MAX_CATEGORIES = 30


def _numeric_shares(real: pd.Series, synth: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Shares of non-null values in shared bins over real+synth's 0.5–99.5% range (outliers in end bins)."""
    real_values, synth_values = numeric_values(real), numeric_values(synth)
    real_values, synth_values = real_values[~np.isnan(real_values)], synth_values[~np.isnan(synth_values)]
    both = np.concatenate([real_values, synth_values])
    if both.size == 0:
        return np.zeros(1), np.zeros(1)
    low, high = np.quantile(both, [0.005, 0.995])
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, NUMERIC_BINS + 1)

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.histogram(np.clip(values, low, high), bins=edges)[0].astype(np.float64)
        return counts / max(values.size, 1)

    return shares(real_values), shares(synth_values)


def _category_shares(real: pd.Series, synth: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Shares of real's most frequent categories (nulls included), then one bar for everything else."""
    real_freq, synth_freq = frequencies(category_labels(real)), frequencies(category_labels(synth))
    order = pd.concat([real_freq, synth_freq], axis=1, keys=["real", "synth"]).fillna(0.0)
    order = order.sort_values(by=["real", "synth"], ascending=False)
    shown = order.iloc[:MAX_CATEGORIES].to_numpy()
    rest = order.iloc[MAX_CATEGORIES:].to_numpy().sum(axis=0, keepdims=True)
    table = np.concatenate([shown, rest]) if len(order) > MAX_CATEGORIES else shown
    if len(table) == 0:
        return np.zeros(1), np.zeros(1)
    return table[:, 0], table[:, 1]


def _blend(image: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Alpha-composite `colour` over `image` (float [H, W, 3]) where `mask` [H, W] is True, in place."""
    image[mask] = image[mask] * (1.0 - ALPHA) + colour * ALPHA


def _bars(shares: np.ndarray, scale: float, width: int, height: int) -> np.ndarray:
    """[height, width] bool mask of a bar chart of `shares` filling the plot area (row 0 at the top)."""
    bins = len(shares)
    bin_of_x = np.minimum((np.arange(width) * bins) // width, bins - 1)
    # A one-pixel gap between bars keeps neighbouring categories apart when there are few of them.
    gap = (np.arange(width) * bins) % width < bins if bins < width // 3 else np.zeros(width, dtype=bool)
    top = height - np.round(shares[bin_of_x] / scale * (height - 1)).astype(int)
    return (np.arange(height)[:, None] >= top[None, :]) & ~gap[None, :]


def overlay_histogram(
    real: pd.Series, synth: pd.Series, sdtype: SdType, *, width: int = 320, height: int = 200
) -> np.ndarray:
    """uint8 [height, width, 3]: real (blue) and synthetic (orange) histograms over shared bins/categories.

    Bar heights are shares of each side's rows (so tables of different sizes compare), scaled so the
    tallest bar of either side fills the plot. Numerical/datetime: 40 bins over the central 99% of the
    pooled values (nulls left out); categorical: real's most frequent categories (nulls as a category),
    plus a last bar for the rest.
    """
    if width < 3 * MARGIN or height < 3 * MARGIN:
        raise ValueError(f"overlay_histogram needs width and height >= {3 * MARGIN}, got {width}x{height}")
    shares_real, shares_synth = (
        _category_shares(real, synth) if sdtype == "categorical" else _numeric_shares(real, synth)
    )
    image = np.full((height, width, 3), 255.0)
    plot_h, plot_w = height - 2 * MARGIN, width - 2 * MARGIN
    scale = max(float(shares_real.max()), float(shares_synth.max()), 1e-12)
    plot = image[MARGIN:MARGIN + plot_h, MARGIN:MARGIN + plot_w]  # a view: blending draws into `image`
    _blend(plot, _bars(shares_real, scale, plot_w, plot_h), REAL_COLOUR)
    _blend(plot, _bars(shares_synth, scale, plot_w, plot_h), SYNTH_COLOUR)
    image[MARGIN:MARGIN + plot_h + 1, MARGIN - 1] = 0.0  # y axis
    image[MARGIN + plot_h, MARGIN - 1:MARGIN + plot_w] = 0.0  # x axis
    return image.round().astype(np.uint8)


def heatmap(matrix: np.ndarray, *, cell: int | None = None, scale: float | None = None) -> np.ndarray:
    """uint8 [n*cell, m*cell, 3] image of a 2-d matrix: blue negative, white 0, red positive; NaN grey.

    `scale` is the magnitude drawn at full colour (default: the largest |value|); `cell` the pixels per
    entry (default: about 240 pixels across, at least 4 per entry).
    """
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"heatmap needs a non-empty 2-d matrix, got shape {values.shape}")
    if scale is None:
        finite = np.abs(values[np.isfinite(values)])
        scale = float(finite.max()) if finite.size else 1.0
    scale = scale if scale > 0 else 1.0
    level = np.clip(np.nan_to_num(values, nan=0.0) / scale, -1.0, 1.0)[..., None]
    white, red, blue = np.array([255.0, 255.0, 255.0]), np.array([178.0, 24.0, 43.0]), np.array([33.0, 102.0, 172.0])
    colours = np.where(level >= 0, white + level * (red - white), white - level * (blue - white))
    colours[np.isnan(values)] = 160.0
    cell = cell if cell is not None else max(4, 240 // max(values.shape))
    pixels = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
    return pixels.round().astype(np.uint8)
