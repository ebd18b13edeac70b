"""The reversible table encoder: behaviour records <-> the models' float matrix, batched on the device.

Continuous columns (numerical, and datetimes as seconds since the epoch) get CTGAN's mode-specific
normalisation: one variational Gaussian mixture per column (`models.gmm`, all columns in ONE batched
fit), and each value becomes `alpha = (x - mean_k) / (4 std_k)` clipped to [-0.99, 0.99] plus the one-hot
of its mode k, drawn with the caller's `torch.Generator` from the posterior over the column's active
modes. That posterior is the plug-in w_k N(x | mean_k, std_k) (rdt uses sklearn's variational
`predict_proba`, and adds 1e-6 to every mode's probability; we do not, so a value is practically never
sent to a mode 4+ stds away and clipped). Columns that had nulls get a 2-way null indicator (index 1 =
null; nulls are encoded at the column's mean, as rdt's `ClusterBasedNormalizer` does). Categorical
columns are one softmax span over the categories seen at fit, most frequent first (ties by label), a
null being a category of its own after them. `layout` describes the spans; every model reads it.

Optionally (`spike_share` > 0), values that alone hold a large share of a column's rows (a quantity of 1)
are "spikes": modes of their own after the Gaussian ones, with alpha 0, fitted out of the mixture, so they
decode exactly (the idea of CTAB-GAN's mixed columns).

Decoding takes the argmax mode and `x = alpha * 4 std_k + mean_k` (alpha clipped to [-1, 1]), or the
spike's value; values are clipped to the range seen at fit and rounded to the decimals seen there (SDV's
`enforce_min_max_values` and `enforce_rounding`, on by default there too); ints are rounded back to their
dtype, datetimes to their unit and time zone, categories to their labels and dtype.
Round trips are exact for categoricals. Continuous values come back to within float32 resolution of
alpha, |error| <= 4 std_k 2^-24 (so ints are exact while std_k < 2^21), except values more than
3.96 std_k from their drawn mode's mean, which the +-0.99 clip moves (CTGAN does the same: it keeps
the tanh output off its asymptotes); with modes drawn from the posterior that is only true outliers.

Transform and decode are vectorised in torch over rows (category lookup by `pd.Index.get_indexer`),
chunked so temporaries stay bounded. Because all continuous columns share one batched tensor EM pass
and modes are drawn for all rows at once, this is faster than rdt's per-column `ClusterBasedNormalizer`
(sklearn EM per column, a Python loop per row to draw modes) + `OneHotEncoder`, which SDV's CTGAN uses;
`evaluate/bench/encoder.py` measures both (figures in evaluate/bench/README.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from tailsynth.models.config import EncoderConfig
from tailsynth.models.encoder_columns import (
    CategoricalColumn,
    ContinuousColumn,
    category_codes,
    continuous_values,
    decode_categorical,
    decode_continuous,
    fit_categorical,
    raw_values,
    spike_values,
    value_decimals,
    value_range,
)
from tailsynth.models.errors import BundleError, EncodingError
from tailsynth.models.gmm import chunk_rows, fit_gmm, mode_cumsum, mode_log_prob
from tailsynth.models.layout import ColumnLayout, SpanInfo

SDTYPES = ("categorical", "numerical", "datetime")
STATE_FORMAT = "tailsynth.table_encoder"
STATE_VERSION = 2
"""2: continuous columns carry spikes, their range and their precision."""
_CLIP = 0.99  # CTGAN's clip of alpha, off the tanh asymptotes

Column = ContinuousColumn | CategoricalColumn
_KINDS = {ContinuousColumn: "continuous", CategoricalColumn: "categorical"}


class TableEncoder:
    """Fitted, reversible encoder of a table into a float32 matrix [n, width] (see module docstring)."""

    def __init__(self, config: EncoderConfig) -> None:
        self.config = config
        self.layout: tuple[ColumnLayout, ...] = ()
        self.width = 0
        self.device = torch.device("cpu")
        self.seed = 0
        self._columns: list[Column] = []

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        table: pd.DataFrame,
        columns: Mapping[str, str],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> TableEncoder:
        """Fit on `table[columns]` (name -> sdtype), in the order of `columns`.

        The mixtures are fitted on a seeded sample of at most `config.fit_sample_rows` rows; the category
        lists and which columns have nulls come from every row (cheap, and transform must accept every
        row of the table it was fitted on).
        """
        _check_columns(table, columns)
        if len(table) == 0 or not columns:
            raise EncodingError(f"cannot fit the encoder on {len(table)} rows and columns {dict(columns)}")
        self.device, self.seed = torch.device(device), int(seed)
        rows = _fit_rows(len(table), self.config.fit_sample_rows, self.seed)
        continuous = [name for name, sdtype in columns.items() if sdtype != "categorical"]
        fitted: dict[str, Column] = self._fit_continuous(table, rows, columns, continuous)
        for name, sdtype in columns.items():
            if sdtype == "categorical":
                fitted[name] = fit_categorical(name, table[name], self.config.max_categories)
        self._set_columns([fitted[name] for name in columns])
        return self

    def _fit_continuous(
        self, table: pd.DataFrame, rows: np.ndarray, sdtypes: Mapping[str, str], names: list[str]
    ) -> dict[str, ContinuousColumn]:
        """One batched mixture fit for every continuous column, on the sampled `rows`."""
        if not names:
            return {}
        raw = np.stack([raw_values(name, sdtypes[name], table[name].iloc[rows]) for name in names])
        chosen = self.config.spike_columns
        spikes = [spike_values(column, self.config.spike_share if chosen is None or name in chosen else 0.0,
                               self.config.max_spikes) for name, column in zip(names, raw)]
        # The mixtures model what the spikes leave; a column that is all spikes keeps every value (its
        # Gaussian modes then go unused, but the fit stays well defined).
        gaussian = ~np.isnan(raw) & ~np.stack([np.isin(column, peaks) for column, peaks in zip(raw, spikes)])
        gaussian |= ~gaussian.any(axis=1, keepdims=True) & ~np.isnan(raw)
        values = torch.from_numpy(raw).to(self.device)
        fit = fit_gmm(
            values,
            torch.from_numpy(gaussian).to(self.device),
            max_modes=self.config.max_modes,
            iterations=self.config.gmm_iterations,
            weight_threshold=self.config.weight_threshold,
            generator=torch.Generator(device=self.device).manual_seed(self.seed),
        )
        fitted = {}
        for index, name in enumerate(names):
            active = fit.active[index]
            # Range and precision come from every row; when the fit sample is every row, reuse it.
            every = raw[index] if len(rows) == len(table) else raw_values(name, sdtypes[name], table[name])
            minimum, maximum = value_range(every)
            fitted[name] = ContinuousColumn(
                name=name,
                sdtype=sdtypes[name],
                dtype=str(table[name].dtype),
                has_nulls=bool(table[name].isna().any()),
                fill=float(fit.center[index]),  # the mean of the fitted values
                center=float(fit.center[index]),
                scale=float(fit.scale[index]),
                means=fit.means[index][active].tolist(),
                stds=fit.stds[index][active].tolist(),
                weights=fit.weights[index][active].tolist(),
                spikes=spikes[index].tolist(),
                minimum=minimum,
                maximum=maximum,
                decimals=value_decimals(every) if _is_float(table[name]) else None,
            )
        return fitted

    def _set_columns(self, columns: list[Column]) -> None:
        self._columns = columns
        self.layout = _build_layout(columns)
        self.width = sum(column.width for column in self.layout)

    def column(self, name: str) -> ColumnLayout:
        """The layout of one column; EncodingError naming the known columns if it is not encoded."""
        for column in self.layout:
            if column.name == name:
                return column
        names = [column.name for column in self.layout]
        raise EncodingError(f"column {name!r} is not encoded; encoded columns: {names}")

    # ------------------------------------------------------------ transform
    @torch.no_grad()
    def transform(
        self,
        table: pd.DataFrame,
        *,
        device: str | torch.device | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Encode `table` (every row, any index) -> float32 [n, width] on `device` (default: fit's).

        `generator` draws each continuous value's mode; None means a fresh one seeded with the fit seed,
        so the same table always encodes the same way.
        """
        self._require_fitted()
        device = torch.device(device) if device is not None else self.device
        _check_columns(table, {column.name: column.sdtype for column in self.layout})
        if generator is None:
            generator = torch.Generator(device=device).manual_seed(self.seed)
        continuous = [c for c in self._columns if isinstance(c, ContinuousColumn)]
        plan = _Plan.build(self, continuous, device)
        pairs = [continuous_values(column, table[column.name]) for column in continuous]
        values = _stack([v for v, _ in pairs], len(table), np.float64)  # [C, n]
        nulls = _stack([null for _, null in pairs], len(table), np.bool_)
        categorical = [c for c in self._columns if isinstance(c, CategoricalColumn)]
        codes = _stack([category_codes(c, table[c.name]) for c in categorical], len(table), np.int64)
        out = torch.zeros(len(table), self.width, dtype=torch.float32, device=device)
        chunk = chunk_rows(device, max(1, len(continuous) * max(plan.max_modes, plan.max_spikes)))
        for lo in range(0, len(table), chunk):
            hot = [plan.cat_start[:, None] + codes[:, lo : lo + chunk].to(device)]
            if continuous:
                x = values[:, lo : lo + chunk].to(device)
                alpha, mode = plan.encode(x, generator)
                out[lo : lo + chunk, plan.alpha_at] = alpha.T.float()
                hot.append(plan.mode_start[:, None] + mode)
                null = nulls[plan.null_rows, lo : lo + chunk].to(device).long()
                hot.append(plan.null_start[:, None] + null)
            out[lo : lo + chunk].scatter_(1, torch.cat(hot).T, 1.0)
        return out

    @torch.no_grad()
    def inverse_transform(self, encoded: torch.Tensor) -> pd.DataFrame:
        """Decode float [n, width] (one-hots or any scores: argmax is taken) -> the original columns."""
        self._require_fitted()
        if encoded.dim() != 2 or encoded.shape[1] != self.width:
            raise EncodingError(f"expected an encoded matrix [n, {self.width}], got {tuple(encoded.shape)}")
        encoded = encoded.detach()
        data = {}
        for layout, column in zip(self.layout, self._columns):
            block = encoded[:, layout.start : layout.stop]
            if isinstance(column, CategoricalColumn):
                data[column.name] = decode_categorical(column, _argmax(block).cpu().numpy())
            else:
                values, null = _decode_modes(column, block)
                data[column.name] = decode_continuous(column, values.cpu().numpy(), null.cpu().numpy())
        return pd.DataFrame(data)

    def codes(self, name: str, values: pd.Series | Sequence) -> torch.Tensor:
        """Category index (span position) of each value of categorical column `name`: long [n].

        EncodingError naming the column and the first unseen labels if any label was not seen at fit.
        """
        column = self._columns[self.layout.index(self.column(name))]
        if not isinstance(column, CategoricalColumn):
            raise EncodingError(f"column {name!r} is {column.sdtype}, not categorical: it has no codes")
        return torch.from_numpy(category_codes(column, values)).to(self.device)

    # ---------------------------------------------------------------- state
    def state(self) -> dict:
        """JSON-serialisable description of the fitted encoder (no pickles); see `from_state`."""
        self._require_fitted()
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
            "columns": [{"kind": _KINDS[type(c)], **dataclasses.asdict(c)} for c in self._columns],
        }

    @classmethod
    def from_state(cls, state: dict, *, device: str | torch.device = "cpu") -> TableEncoder:
        """Rebuild an encoder from `state()` (e.g. after a JSON round trip); BundleError if malformed."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise BundleError(f"not a table encoder state (expected format {STATE_FORMAT!r})")
        if state.get("version") != STATE_VERSION:
            raise BundleError(
                f"table encoder state version {state.get('version')!r}; this tailsynth reads {STATE_VERSION}"
            )
        kinds = {kind: record for record, kind in _KINDS.items()}
        try:
            encoder = cls(EncoderConfig(**state["config"]))
            columns = [
                kinds[fields["kind"]](**{key: value for key, value in fields.items() if key != "kind"})
                for fields in state["columns"]
            ]
            encoder.seed = int(state["seed"])
        except (KeyError, TypeError) as error:
            raise BundleError(f"malformed table encoder state: {error!r}") from error
        encoder.device = torch.device(device)
        encoder._set_columns(columns)
        return encoder

    def _require_fitted(self) -> None:
        if not self.layout:
            raise EncodingError("the table encoder is not fitted: call fit() or from_state() first")


class _Plan:
    """Device tensors of the continuous columns' modes and matrix positions, built per transform.

    C continuous columns padded to K = max_modes: means/stds/log_weights [C, K] (padding: weight 0),
    center/scale [C], n_modes [C]; positions in the encoded row: alpha_at/mode_start [C], null_start for
    the columns listed in null_rows, cat_start for the categorical columns.
    """

    max_modes: int
    max_spikes: int
    spikes: torch.Tensor
    means: torch.Tensor
    stds: torch.Tensor
    log_weights: torch.Tensor
    center: torch.Tensor
    scale: torch.Tensor
    n_modes: torch.Tensor
    alpha_at: torch.Tensor
    mode_start: torch.Tensor
    null_rows: torch.Tensor
    null_start: torch.Tensor
    cat_start: torch.Tensor

    @classmethod
    def build(cls, encoder: TableEncoder, continuous: list[ContinuousColumn], device: torch.device) -> _Plan:
        plan = cls()
        layout = {c.name: c for c in encoder.layout}
        k = plan.max_modes = max((c.n_modes for c in continuous), default=1)
        f64 = dict(dtype=torch.float64, device=device)

        def padded(field: str, fill: float) -> torch.Tensor:  # [C, max_modes]
            rows = [getattr(c, field) + [fill] * (k - c.n_modes) for c in continuous]
            return torch.tensor(rows, **f64).reshape(-1, k)

        plan.means, plan.stds = padded("means", 0.0), padded("stds", 1.0)
        s = plan.max_spikes = max((len(c.spikes) for c in continuous), default=0)
        spikes = [c.spikes + [math.nan] * (s - len(c.spikes)) for c in continuous]  # NaN equals nothing
        plan.spikes = torch.tensor(spikes, **f64).reshape(len(continuous), s)
        plan.log_weights = padded("weights", 0.0).log()  # padding -> -inf: never drawn
        plan.center = torch.tensor([c.center for c in continuous], **f64)
        plan.scale = torch.tensor([c.scale for c in continuous], **f64)
        plan.n_modes = torch.tensor([c.n_modes for c in continuous], device=device)
        longs = dict(dtype=torch.long, device=device)
        plan.alpha_at = torch.tensor([layout[c.name].start for c in continuous], **longs)
        plan.mode_start = plan.alpha_at + 1
        plan.null_rows = torch.tensor([i for i, c in enumerate(continuous) if c.has_nulls], dtype=torch.long)
        null_at = [layout[c.name].start + 1 + c.n_slots for c in continuous if c.has_nulls]
        plan.null_start = torch.tensor(null_at, **longs)
        cats = [layout[c.name].start for c in encoder._columns if isinstance(c, CategoricalColumn)]
        plan.cat_start = torch.tensor(cats, **longs)
        return plan

    def encode(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """x float64 [C, m] -> (alpha float64 [C, m] in [-0.99, 0.99], drawn mode long [C, m])."""
        z = (x - self.center[:, None]) / self.scale[:, None]
        means_z = (self.means - self.center[:, None]) / self.scale[:, None]
        stds_z = self.stds / self.scale[:, None]
        probs = torch.softmax(mode_log_prob(z, means_z, stds_z, self.log_weights), 1)  # [C, K, m]
        u = torch.rand((x.shape[0], 1, x.shape[1]), generator=generator, device=generator.device)
        u = u.to(x.device)  # a CPU generator may drive a GPU transform
        mode = (mode_cumsum(probs, 1) < u).sum(1)  # inverse CDF: one uniform per value
        mode = torch.minimum(mode, self.n_modes[:, None] - 1)  # u above a cumsum rounded below 1
        mean, std = self.means.gather(1, mode), self.stds.gather(1, mode)
        alpha = ((x - mean) / (4.0 * std)).clamp(-_CLIP, _CLIP)
        if self.max_spikes:  # a spike value takes its own slot after the Gaussian modes, alpha 0
            equal = x[:, :, None] == self.spikes[:, None, :]  # [C, m, S]
            hit = equal.any(2)
            mode = torch.where(hit, self.n_modes[:, None] + equal.to(torch.int8).argmax(2), mode)
            alpha = torch.where(hit, 0.0, alpha)
        return alpha, mode


def _decode_modes(column: ContinuousColumn, block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A continuous column's block [n, width] -> (float64 values [n], bool null [n]) on its device."""
    means = torch.tensor(column.means, dtype=torch.float64, device=block.device)
    stds = torch.tensor(column.stds, dtype=torch.float64, device=block.device)
    slot = _argmax(block[:, 1 : 1 + column.n_slots])
    mode = slot.clamp_max(column.n_modes - 1)
    values = block[:, 0].double().clamp(-1.0, 1.0) * 4.0 * stds[mode] + means[mode]
    if column.spikes:
        spikes = torch.tensor(column.spikes, dtype=torch.float64, device=block.device)
        spike = (slot - column.n_modes).clamp_min(0)
        values = torch.where(slot >= column.n_modes, spikes[spike], values)
    if column.has_nulls:
        return values, _argmax(block[:, 1 + column.n_slots :]) == 1
    return values, torch.zeros_like(mode, dtype=torch.bool)


def _argmax(block: torch.Tensor) -> torch.Tensor:
    """Row-wise argmax of [n, k] -> long [n]. `max(1).indices` is faster than `argmax(1)` on a
    strided CPU slice of the encoded matrix."""
    return block.max(1).indices


def _stack(arrays: list[np.ndarray], n: int, dtype: type) -> torch.Tensor:
    """Per-column arrays [n] -> a CPU tensor [len(arrays), n] (also when there are none)."""
    return torch.from_numpy(np.stack(arrays) if arrays else np.zeros((0, n), dtype=dtype))


def _build_layout(columns: list[Column]) -> tuple[ColumnLayout, ...]:
    layout, start = [], 0
    for column in columns:
        if isinstance(column, CategoricalColumn):
            categories = column.categories
            spans: tuple[SpanInfo, ...] = (SpanInfo(len(categories), "softmax"),)
            layout.append(ColumnLayout(column.name, "categorical", start, spans, categories))
        else:
            spans = (SpanInfo(1, "tanh"), SpanInfo(column.n_slots, "softmax"))
            spans += (SpanInfo(2, "softmax"),) if column.has_nulls else ()
            layout.append(ColumnLayout(column.name, column.sdtype, start, spans))
        start = layout[-1].stop
    return tuple(layout)


def _check_columns(table: pd.DataFrame, columns: Mapping[str, str]) -> None:
    """EncodingError for missing columns, unknown sdtypes or id columns."""
    missing = [name for name in columns if name not in table.columns]
    if missing:
        raise EncodingError(f"columns {missing} are not in the table (it has {list(table.columns)[:20]})")
    for name, sdtype in columns.items():
        if sdtype == "id":
            raise EncodingError(
                f"column {name!r} has sdtype 'id': ids are never one-hot encoded; leave it out of the "
                f"encoder's columns (ids are assigned after sampling)"
            )
        if sdtype not in SDTYPES:
            raise EncodingError(f"column {name!r} has sdtype {sdtype!r}; expected one of {SDTYPES}")


def _is_float(series: pd.Series) -> bool:
    """A float numerical column (ints decode by rounding anyway; datetimes keep their own unit)."""
    return pd.api.types.is_float_dtype(series.dtype)


def _fit_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """Positions of a seeded sample of at most `limit` of `n` rows, in table order."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
