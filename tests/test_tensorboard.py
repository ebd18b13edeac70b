"""Report images and TensorBoard output (evaluate/images.py, evaluate/tensorboard.py), read back from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from evaluate.fidelity import fidelity_report
from evaluate.images import REAL_COLOUR, SYNTH_COLOUR, heatmap, overlay_histogram
from evaluate.tensorboard import log_measures, write_report

COLUMNS = {"price": "numerical", "quantity": "numerical", "country": "categorical", "when": "datetime"}



def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "price": rng.normal(10 + shift, 2, rows),
        "quantity": rng.integers(1, 12, rows),
        "country": rng.choice(["uk", "fr", "de"], rows, p=[0.7, 0.2, 0.1]),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, rows), unit="s"),
        "pop_bucket": rng.choice(["head", "tail"], rows, p=[0.7, 0.3]),
    })


def test_overlay_histogram_shapes_and_colours() -> None:
    real = pd.Series(np.zeros(100))
    synth = pd.Series(np.ones(100))
    image = overlay_histogram(real, synth, "numerical", width=200, height=120)
    assert image.shape == (120, 200, 3) and image.dtype == np.uint8
    pixels = {tuple(p) for p in image.reshape(-1, 3)}
    # Disjoint values: each colour shows alone (blended once over white), and the background stays white.
    assert tuple(np.round(255 * 0.45 + REAL_COLOUR * 0.55).astype(int)) in pixels
    assert tuple(np.round(255 * 0.45 + SYNTH_COLOUR * 0.55).astype(int)) in pixels
    assert (255, 255, 255) in pixels and (0, 0, 0) in pixels  # background and axes
    categories = overlay_histogram(pd.Series(["a", "b", None]), pd.Series(["a", "c"]), "categorical")
    assert categories.shape == (200, 320, 3) and categories.dtype == np.uint8
    when = pd.Series(pd.to_datetime(["2020-01-01", "2020-02-01"]))
    assert overlay_histogram(when, when, "datetime").shape == (200, 320, 3)


def test_heatmap_colours() -> None:
    image = heatmap(np.array([[1.0, -1.0], [0.0, np.nan]]), cell=5)
    assert image.shape == (10, 10, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [178, 24, 43]  # most positive: red
    assert image[0, 9].tolist() == [33, 102, 172]  # most negative: blue
    assert image[9, 0].tolist() == [255, 255, 255]  # zero: white
    assert image[9, 9].tolist() == [160, 160, 160]  # NaN: grey


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
    write_report(tmp_path, report, holdout, synth, COLUMNS, step=7, extra_text="run: demo")

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

    images = set(tags["images"])
    expected = {f"hist/{group}/{column}" for group in ("overall", "head", "tail") for column in COLUMNS}
    assert expected | {"corr_diff/overall"} <= images
    first = events.Images("hist/tail/price")[0]
    assert (first.width, first.height) == (320, 200)

    text_tags = [tag for tag in tags["tensors"] if tag.startswith("summary")]
    assert len(text_tags) == 1
    text = events.Tensors(text_tags[0])[0].tensor_proto.string_val[0].decode()
    assert "# Fidelity report" in text and "## Bucket tail" in text and "run: demo" in text
