"""Report images and TensorBoard output (evaluate/images.py, evaluate/tensorboard.py), read back from disk."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tailsynth.evaluate.measures.fidelity import fidelity_report
from tailsynth.evaluate.report.images import TOP_CATEGORIES, Panel, column_figure, correlation_figure, png_bytes, report_figures, to_rgb
from tailsynth.evaluate.measures.metrics import column_tests
from tailsynth.evaluate.measures.scalars import log_measures
from tailsynth.evaluate.report.tensorboard import write_report

COLUMNS = {"price": "numerical", "quantity": "numerical", "country": "categorical", "when": "datetime"}



def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "price": rng.normal(10 + shift, 2, rows),
        "quantity": rng.integers(1, 12, rows),
        "country": rng.choice(["uk", "fr", "de"], rows, p=[0.7, 0.2, 0.1]),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, rows), unit="s"),
        "pop_bucket": rng.choice(["head", "tail"], rows, p=[0.7, 0.3]),
    })


def _panels(rng: np.random.Generator) -> list[Panel]:
    real = _table(rng, 300)
    ungated, gated = _table(rng, 400, shift=3.0), _table(rng, 200)
    return [Panel("overall", real, {"ungated": ungated, "gated": gated}),
            Panel("tail", real[real["pop_bucket"] == "tail"], {"ungated": ungated[ungated["pop_bucket"] == "tail"]})]


def test_column_figure_titles_legend_and_size() -> None:
    panels = _panels(np.random.default_rng(0))
    figure = column_figure("price", "numerical", panels)
    axes = figure.axes
    assert len(axes) == 2
    expected = column_tests(panels[0].real[["price"]], panels[0].synthetic["ungated"][["price"]], {"price": "numerical"})
    title = axes[0].get_title()
    assert title.startswith("overall: 300 real rows") and f"KS ungated {expected['distance'][0]:.3f}" in title
    assert "gated" in title.split("ungated")[1] and "tail:" in axes[1].get_title()
    legend = [text.get_text() for text in axes[0].get_legend().get_texts()]
    assert legend == ["real (300)", "ungated (400)", "gated (200)"]
    assert axes[0].get_ylabel() == "share of rows" and axes[0].get_xlabel() == "price"
    image = to_rgb(figure)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    assert image.shape[1] >= 700 and image.shape[0] >= 300, image.shape  # readable, not a thumbnail
    assert len({tuple(p) for p in image[::7, ::7].reshape(-1, 3)}) > 20  # text, axes and bars, not a blank


def test_category_figure_shows_top_categories_then_other() -> None:
    names = [f"country{i:02d}" for i in range(TOP_CATEGORIES + 5)]
    shares = np.linspace(2.0, 1.0, len(names))
    rng = np.random.default_rng(1)
    real = pd.DataFrame({"country": rng.choice(names, 2000, p=shares / shares.sum())})
    synth = pd.DataFrame({"country": ["country00"] * 50 + [None] * 10})
    figure = column_figure("country", "categorical", [Panel("overall", real, {"ungated": synth})])
    labels = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    ranked = real["country"].value_counts().index[:TOP_CATEGORIES].tolist()
    assert labels == ranked + ["other"]
    assert "TVD ungated" in figure.axes[0].get_title()


def test_correlation_figure_names_columns_and_has_a_colour_bar() -> None:
    rng = np.random.default_rng(2)
    real, synth = _table(rng, 200), _table(rng, 200, shift=1.0)
    figure = correlation_figure(real, {"ungated": synth}, COLUMNS)
    assert figure is not None
    heat, colour_bar = figure.axes  # one heatmap panel and its colour bar
    numeric = [name for name, kind in COLUMNS.items() if kind != "categorical"]
    assert [t.get_text() for t in heat.get_xticklabels()] == numeric
    assert [t.get_text() for t in heat.get_yticklabels()] == numeric
    assert colour_bar.get_ylabel() == "corr(synthetic) - corr(real)"
    assert correlation_figure(real, {"ungated": synth}, {"price": "numerical", "country": "categorical"}) is None


def test_png_bytes_round_trip() -> None:
    import matplotlib.image as mimage

    image = to_rgb(column_figure("when", "datetime", _panels(np.random.default_rng(3))))
    decoded = mimage.imread(io.BytesIO(png_bytes(image)), format="png")
    assert decoded.shape[:2] == image.shape[:2]
    assert np.array_equal((decoded[..., :3] * 255).round().astype(np.uint8), image)


class _Recorder:
    def __init__(self) -> None:
        self.scalars: dict[str, float] = {}

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars[tag] = value


def test_log_measures_tags() -> None:
    measures = {
        "rows_real": 10, "mean_ks": 0.1, "mean_tvd": None, "auc": 0.55,
        "columns": [{"column": "price", "sdtype": "numerical", "distance": 0.1, "pvalue": 0.3},
                    {"column": "country", "sdtype": "categorical", "distance": 0.2, "pvalue": None}],
    }
    recorder = _Recorder()
    log_measures(recorder, "fidelity/tail", measures, step=3)
    assert recorder.scalars == {
        "fidelity/tail/rows_real": 10.0, "fidelity/tail/mean_ks": 0.1, "fidelity/tail/auc": 0.55,
        "fidelity/tail/ks/price": 0.1, "fidelity/tail/pvalue/price": 0.3, "fidelity/tail/tvd/country": 0.2,
    }


def test_write_report_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train, holdout, synth = _table(rng, 300), _table(rng, 150), _table(rng, 200, shift=1.0)
    report = fidelity_report(train, synth, COLUMNS, holdout=holdout, auc=False)
    report["gate"] = {"accepted": 180, "by_bucket": {"tail": {"acceptance_rate": 0.75}}, "note": "text"}
    figures = report_figures([Panel("overall", holdout, {"ungated": synth})], COLUMNS)
    images = {tag: to_rgb(figure) for tag, figure in figures.items()}
    write_report(tmp_path, report, images, step=7, extra_text="run: demo")

    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    scalar = {tag: events.Scalars(tag)[-1] for tag in tags["scalars"]}
    assert scalar["overall/mean_ks"].value == pytest.approx(report["overall"]["mean_ks"])
    assert scalar["overall/mean_ks"].step == 7
    assert scalar["overall/ks/price"].value == pytest.approx(report["overall"]["columns"][0]["distance"])
    tail_country = report["by_bucket"]["tail"]["columns"][2]
    assert tail_country["column"] == "country"
    assert scalar["bucket/tail/tvd/country"].value == pytest.approx(tail_country["distance"])
    assert scalar["floor/overall/mean_tvd"].value == pytest.approx(report["floor"]["overall"]["mean_tvd"])
    assert "floor/bucket/head/dcr_median" in scalar
    assert scalar["gate/accepted"].value == 180.0
    assert scalar["gate/by_bucket/tail/acceptance_rate"].value == pytest.approx(0.75)
    assert not any(tag.startswith("gate/note") for tag in scalar)

    assert set(tags["images"]) == {f"hist/{column}" for column in COLUMNS} | {"corr_diff"}
    first = events.Images("hist/price")[0]
    assert (first.height, first.width) == images["hist/price"].shape[:2]

    text_tags = [tag for tag in tags["tensors"] if tag.startswith("summary")]
    assert len(text_tags) == 1
    text = events.Tensors(text_tags[0])[0].tensor_proto.string_val[0].decode()
    assert "# Fidelity report" in text and "## Bucket tail" in text and "run: demo" in text


def test_heavy_tailed_positive_columns_get_a_log_axis_and_others_do_not() -> None:
    rng = np.random.default_rng(5)
    real = pd.DataFrame({"money": rng.lognormal(3, 2, 800), "price": rng.normal(10, 2, 800)})
    synth = pd.DataFrame({"money": rng.lognormal(3, 2, 800), "price": rng.normal(10, 2, 800)})
    # The second panel alone is not heavy-tailed; the axis type is decided once per column, on the first.
    narrow = pd.DataFrame({"money": rng.uniform(10, 20, 300), "price": rng.normal(10, 2, 300)})
    panels = [Panel("overall", real, {"ungated": synth}), Panel("tail", narrow, {"ungated": narrow})]
    money = column_figure("money", "numerical", panels).axes
    price = column_figure("price", "numerical", panels).axes
    assert [ax.get_xscale() for ax in money] == ["log", "log"] and money[0].get_xlabel() == "money (log scale)"
    assert [ax.get_xscale() for ax in price] == ["linear", "linear"] and price[0].get_xlabel() == "price"
