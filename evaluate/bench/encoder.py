"""Benchmark: our batched table encoder against SDV's rdt transformers on one synthetic behaviour table.

`encoder_benchmark(rows, seed=, device=)` builds a seeded, behaviour-like table (heavy-tailed and
multimodal numbers, a timestamp with daily and weekly cycles, Zipf-like categoricals), then times, in the
same process on the same table:

* ours: `TableEncoder.fit` + `transform` (one batched mixture fit for all continuous columns);
* rdt (what SDV's CTGAN uses): per continuous column `ClusterBasedNormalizer(max_clusters=10,
  weight_threshold=0.005)` fit + transform (timestamps first to float seconds, as SDV's
  `UnixTimestampEncoder` does), per categorical column `OneHotEncoder` fit + transform.

rdt is imported lazily: it is an optional (BSL-licensed) extra. Without it the dict reports our timings
only and says why. This is a benchmark, not a test: `tailsynth evaluate bench` calls it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from tailsynth.models.config import EncoderConfig
from tailsynth.models.encoder import TableEncoder

COLUMNS: dict[str, str] = {
    "quantity": "numerical",
    "unit_price": "numerical",
    "basket_value": "numerical",
    "session_seconds": "numerical",
    "timestamp": "datetime",
    "country": "categorical",
    "device": "categorical",
    "category": "categorical",
    "weekday": "categorical",
}


def behaviour_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """A seeded behaviour-like table of `rows` rows with the sdtypes of `COLUMNS`."""
    rng = np.random.default_rng(seed)
    quantity = np.minimum(rng.zipf(2.2, rows), 500).astype(np.int64)  # heavy tail, mostly 1-3
    tier = rng.choice(3, rows, p=[0.6, 0.3, 0.1])  # cheap / mid / premium items: three price modes
    unit_price = rng.lognormal(np.array([0.3, 2.0, 4.0])[tier], 0.35)
    unit_price[rng.random(rows) < 0.02] = np.nan  # missing prices
    basket = np.where(rng.random(rows) < 0.7, rng.normal(25, 6, rows), rng.normal(120, 30, rows))
    session = rng.lognormal(5.0, 1.2, rows)
    day = rng.integers(0, 365, rows)
    hour = np.where(rng.random(rows) < 0.6, rng.normal(13, 2, rows), rng.normal(20, 1.5, rows)) % 24
    timestamp = pd.Timestamp("2023-01-01") + pd.to_timedelta(day * 86400 + np.rint(hour * 3600), unit="s")
    countries = [f"C{i:02d}" for i in range(30)]
    zipf = 1.0 / np.arange(1, 31)
    return pd.DataFrame(
        {
            "quantity": quantity,
            "unit_price": unit_price,
            "basket_value": basket,
            "session_seconds": session,
            "timestamp": pd.Series(timestamp),
            "country": rng.choice(countries, rows, p=zipf / zipf.sum()),
            "device": rng.choice(["mobile", "desktop", "tablet"], rows, p=[0.6, 0.3, 0.1]),
            "category": rng.choice(50, rows).astype(np.int64),
            "weekday": pd.Series(timestamp).dt.day_name().to_numpy(),
        }
    )


def encoder_benchmark(rows: int = 1_000_000, *, seed: int = 0, device: str = "cpu") -> dict:
    """Seconds of fit and transform, ours and rdt's, on the same `rows`-row table, and the speed-up.

    Returns a JSON-able dict: rows, device, torch_threads, ours {fit_s, transform_s, total_s, fit_rows,
    width}, rdt {...} or rdt_skipped (why), speedup = rdt total / our total.
    """
    table = behaviour_table(rows, seed)
    result: dict = {"rows": rows, "seed": seed, "device": str(device)}
    result["torch_threads"] = torch.get_num_threads()
    result["ours"] = _time_ours(table, COLUMNS, device, seed)
    try:
        import rdt  # noqa: F401  (optional extra)
    except ImportError as error:
        result["rdt_skipped"] = f"rdt is not installed ({error}); reporting our encoder only"
        return result
    result["rdt"] = _time_rdt(table, COLUMNS, seed)
    result["speedup"] = round(result["rdt"]["total_s"] / result["ours"]["total_s"], 2)
    return result


def _time_ours(table: pd.DataFrame, columns: Mapping[str, str], device: str, seed: int) -> dict:
    config = EncoderConfig()
    _sync(device)
    start = time.perf_counter()
    encoder = TableEncoder(config).fit(table, columns, device=device, seed=seed)
    _sync(device)
    fitted = time.perf_counter()
    encoded = encoder.transform(table, generator=torch.Generator(device=device).manual_seed(seed))
    _sync(device)
    done = time.perf_counter()
    return {
        "fit_s": round(fitted - start, 3),
        "transform_s": round(done - fitted, 3),
        "total_s": round(done - start, 3),
        "fit_rows": min(len(table), config.fit_sample_rows),
        "width": int(encoded.shape[1]),
    }


def _time_rdt(table: pd.DataFrame, columns: Mapping[str, str], seed: int) -> dict:
    """rdt's per-column pipeline; the fit of each ClusterBasedNormalizer is seeded via its fit state."""
    from rdt.transformers.categorical import OneHotEncoder
    from rdt.transformers.numerical import ClusterBasedNormalizer

    fit_s = transform_s = 0.0
    width = 0
    for name, sdtype in columns.items():
        start = time.perf_counter()
        data = table[[name]]
        if sdtype == "datetime":  # UnixTimestampEncoder's job in SDV: nanoseconds -> float
            data = pd.DataFrame({name: data[name].astype("int64").astype("float64") / 1e9})
        if sdtype == "categorical":
            transformer = OneHotEncoder()
        else:
            transformer = ClusterBasedNormalizer(max_clusters=10, weight_threshold=0.005)
            transformer.set_random_state(np.random.RandomState(seed), "fit")
            transformer.set_random_state(np.random.RandomState(seed), "transform")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            transformer.fit(data, name)
            fitted = time.perf_counter()
            encoded = transformer.transform(data)
        done = time.perf_counter()
        fit_s, transform_s = fit_s + fitted - start, transform_s + done - fitted
        width += _rdt_width(encoded, sdtype)
    return {
        "fit_s": round(fit_s, 3),
        "transform_s": round(transform_s, 3),
        "total_s": round(fit_s + transform_s, 3),
        "fit_rows": len(table),
        "width": width,
    }


def _rdt_width(encoded: pd.DataFrame, sdtype: str) -> int:
    """Width of rdt's output once its component column is one-hot encoded (as CTGAN does)."""
    if sdtype == "categorical":
        return encoded.shape[1]
    component = [c for c in encoded.columns if c.endswith(".component")][0]
    return 1 + int(encoded[component].nunique()) + (encoded.shape[1] - 2)


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
