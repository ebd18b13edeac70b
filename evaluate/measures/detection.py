"""Classifier two-sample test (C2ST): can a small network tell synthetic rows from real ones?

`discriminator_auc` is the table-level measure (cross-validated ROC AUC; 0.5 = indistinguishable, 1 =
every row gives itself away). `RowDiscriminator` is the same network trained once on all rows, used by the
gate to score and drop individual candidate rows that look fake. Both featurise rows with
`TableFeaturizer`, fitted on the real rows only, so the synthetic side never shapes the features.

Randomness comes from the `seed` argument alone (a `torch.Generator` for weights and batch order, a numpy
`Generator` for subsampling), so CPU results are reproducible without touching global RNG state.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from scipy import special
from sklearn.metrics import roc_auc_score
from torch import nn

from tailsynth.evaluate.measures.metrics import ColumnTypes, category_labels, check_columns, numeric_values

QUANTILE_KNOTS = 1024
HIDDEN = 64
BATCH = 1024
MIN_STEPS = 150
"""Small tables get more epochs so the network still takes this many optimiser steps per fit."""


class TableFeaturizer:
    """Rows → float32 features, fitted on the real rows.

    Numerical and datetime columns (seconds) give three features each: the value standardised by real's
    mean/std and clipped to ±10 (so one extreme value cannot dominate training), the value's quantile under
    real's distribution (so heavy-tailed columns still separate), and a null indicator (nulls get 0 in the
    other two). Categorical columns are one-hot over real's `max_categories` most frequent values (nulls
    included as a value) plus one "other" slot for anything else.
    """

    def __init__(self, columns: ColumnTypes, *, max_categories: int = 100) -> None:
        self.columns = dict(columns)
        self.max_categories = max_categories
        self.numeric_: dict[str, tuple[float, float, np.ndarray]] = {}
        self.categories_: dict[str, pd.Index] = {}
        self.fitted_ = False

    def fit(self, real: pd.DataFrame) -> TableFeaturizer:
        if not self.columns:
            raise ValueError("TableFeaturizer needs at least one column to judge")
        check_columns(real, self.columns, "real")
        for column, sdtype in self.columns.items():
            if sdtype == "categorical":
                # Most frequent first, ties by label: value_counts orders ties differently across pandas
                # versions, and the column order feeds the seeded discriminator (same seed, same rows).
                counts = pd.Series(category_labels(real[column]), dtype=object).value_counts(sort=False)
                counts = counts.iloc[np.lexsort((np.asarray(counts.index.astype(str)), -counts.to_numpy()))]
                self.categories_[column] = pd.Index(counts.index[: self.max_categories], dtype=object)
            else:
                values = numeric_values(real[column])
                values = values[~np.isnan(values)]
                if values.size == 0:
                    values = np.zeros(1)
                std = float(values.std())
                knots = np.quantile(values, np.linspace(0.0, 1.0, QUANTILE_KNOTS))
                self.numeric_[column] = (float(values.mean()), std if std > 0 else 1.0, knots)
        self.fitted_ = True
        return self

    @property
    def width(self) -> int:
        """Number of features per row."""
        return 3 * len(self.numeric_) + sum(len(cats) + 1 for cats in self.categories_.values())

    def transform(self, table: pd.DataFrame) -> torch.Tensor:
        """float32 tensor [len(table), width] on the CPU."""
        if not self.fitted_:
            raise ValueError("TableFeaturizer.transform called before fit")
        check_columns(table, self.columns, "input")
        blocks = []
        for column, sdtype in self.columns.items():
            if sdtype == "categorical":
                blocks.append(self._one_hot(table[column], self.categories_[column]))
            else:
                blocks.append(self._numeric(table[column], *self.numeric_[column]))
        return torch.from_numpy(np.concatenate(blocks, axis=1).astype(np.float32))

    @staticmethod
    def _numeric(series: pd.Series, mean: float, std: float, knots: np.ndarray) -> np.ndarray:
        values = numeric_values(series)
        null = np.isnan(values)
        filled = np.where(null, mean, values)
        scaled = np.clip((filled - mean) / std, -10.0, 10.0)
        # Mid-rank among the knots, so a value repeated in real (ties) maps to the middle of its range.
        rank = np.searchsorted(knots, filled, side="left") + np.searchsorted(knots, filled, side="right")
        quantile = rank / (2.0 * knots.size)
        return np.stack([np.where(null, 0.0, scaled), np.where(null, 0.0, quantile), null], axis=1)

    @staticmethod
    def _one_hot(series: pd.Series, categories: pd.Index) -> np.ndarray:
        codes = categories.get_indexer(category_labels(series))
        codes[codes < 0] = len(categories)  # the "other" slot
        out = np.zeros((len(series), len(categories) + 1))
        out[np.arange(len(series)), codes] = 1.0
        return out


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC: P(score of a positive > score of a negative), ties counted half (scikit-learn's
    `roc_auc_score`).

    labels: [n] of 0/1 (or bool); scores: [n]. This wrapper only checks the input first, so a one-class
    sample (a gate unit with no real or no synthetic rows) is a ValueError that says how many of each it got,
    NaN scores give NaN, and infinite scores keep their place in the order.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype="float64")
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-d of the same length")
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"roc_auc needs both classes; got {positives} positives and {negatives} negatives")
    if np.isnan(scores).any():
        return float("nan")  # no order, no AUC (the gate reads NaN as not passed)
    if not np.isfinite(scores).all():  # scikit-learn refuses infinities; only the order matters
        finite = scores[np.isfinite(scores)]
        low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
        scores = np.where(scores == np.inf, high + 1.0, np.where(scores == -np.inf, low - 1.0, scores))
    return float(roc_auc_score(labels, scores))


# ---------------------------------------------------------------------------------------------------------
# the network and its training


def _network(width: int, generator: torch.Generator) -> nn.Module:
    """MLP width → 64 → 64 → 1 (logit of "synthetic"), initialised from `generator` (PyTorch's bounds)."""
    net = nn.Sequential(
        nn.Linear(width, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1)
    )
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return net


def _train(
    features: torch.Tensor, labels: torch.Tensor, *, epochs: int, generator: torch.Generator, device: torch.device
) -> nn.Module:
    """Fit the MLP with Adam on minibatches of `BATCH` rows; features [n, width], labels [n] float 0/1.

    Runs `epochs` epochs, or more when a small table would otherwise get fewer than `MIN_STEPS` steps.
    Batch order is drawn on the CPU from `generator`, so CPU runs are reproducible for a seed.
    """
    net = _network(features.shape[1], generator).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-5)
    features, labels = features.to(device), labels.to(device)
    rows = features.shape[0]
    batches = math.ceil(rows / BATCH)
    epochs = max(epochs, math.ceil(MIN_STEPS / batches))
    loss_fn = nn.BCEWithLogitsLoss()
    net.train()
    for _ in range(epochs):
        order = torch.randperm(rows, generator=generator).to(device)
        for index in order.split(BATCH):
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(net(features[index]).squeeze(1), labels[index])
            loss.backward()
            optimiser.step()
    net.eval()
    return net


@torch.no_grad()
def _logits(net: nn.Module, features: torch.Tensor, device: torch.device) -> np.ndarray:
    """[n] logits, computed in chunks so large tables stay within memory."""
    parts = [net(chunk.to(device)).squeeze(1).cpu() for chunk in features.split(65_536)]
    return torch.cat(parts).double().numpy() if parts else np.zeros(0)


def torch_device(device: str | torch.device | None) -> torch.device:
    """The given device, or the GPU when there is one and no device was named."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _balanced(
    real: pd.DataFrame, synth: pd.DataFrame, max_rows: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same number of rows from each side (at most `max_rows`), drawn without replacement."""
    rows = min(len(real), len(synth), max_rows)
    real_rows = real.iloc[np.sort(rng.choice(len(real), rows, replace=False))]
    synth_rows = synth.iloc[np.sort(rng.choice(len(synth), rows, replace=False))]
    return real_rows, synth_rows


def discriminator_auc(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    columns: ColumnTypes,
    *,
    folds: int = 3,
    seed: int = 0,
    max_rows: int = 20_000,
    epochs: int = 30,
    device: str | torch.device | None = None,
) -> float:
    """Mean held-out ROC AUC of an MLP telling synthetic (1) from real (0) rows, over stratified folds.

    Both sides are subsampled to the same size (≤ `max_rows`); each side's rows are dealt into `folds`
    folds at random; per fold the network trains on the rest and scores the held-out rows. 0.5 means the
    tables are indistinguishable to it. Raises ValueError when a side has fewer than 2 rows per fold.
    """
    _check_sides(real, synth, columns, folds, "discriminator_auc")
    rng = np.random.default_rng(seed)
    real_rows, synth_rows = _balanced(real, synth, max_rows, rng)
    real_logits, synth_logits, real_folds, synth_folds = _cross_fit(
        real_rows, synth_rows, columns, folds=folds, rng=rng, seed=seed, epochs=epochs, device=device)
    labels = np.repeat([0.0, 1.0], len(real_rows))
    logits, fold_of = np.concatenate([real_logits, synth_logits]), np.concatenate([real_folds, synth_folds])
    return float(np.mean([roc_auc(labels[fold_of == fold], logits[fold_of == fold]) for fold in range(folds)]))


def cross_fitted_logits(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    columns: ColumnTypes,
    *,
    folds: int = 3,
    seed: int = 0,
    epochs: int = 30,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold logits of "synthetic" for every given row: ([len(real)], [len(synth)]).

    The same network and folds as `discriminator_auc`, but on all the rows given (the caller sizes the
    sides) and returning each row's score from the fold that did not train on it, so one fit can be
    judged on any subset of rows (e.g. per item group: `roc_auc` over that group's real and synthetic rows).
    """
    _check_sides(real, synth, columns, folds, "cross_fitted_logits")
    real_logits, synth_logits, _, _ = _cross_fit(real, synth, columns, folds=folds, rng=np.random.default_rng(seed),
                                                 seed=seed, epochs=epochs, device=device)
    return real_logits, synth_logits


def _check_sides(real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes, folds: int, name: str) -> None:
    check_columns(real, columns, "real")
    check_columns(synth, columns, "synthetic")
    if folds < 2 or min(len(real), len(synth)) < 2 * folds:
        raise ValueError(f"{name} needs folds >= 2 and >= {2 * folds} rows per side; "
                         f"got folds={folds}, {len(real)} real and {len(synth)} synthetic rows")


def _cross_fit(
    real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes, *, folds: int, rng: np.random.Generator,
    seed: int, epochs: int, device: str | torch.device | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold logits of both sides and their fold numbers (stratified: each side dealt round-robin)."""
    generator = torch.Generator().manual_seed(seed)
    device = torch_device(device)
    featurizer = TableFeaturizer(columns).fit(real)
    features = torch.cat([featurizer.transform(real), featurizer.transform(synth)])
    labels = np.r_[np.zeros(len(real)), np.ones(len(synth))]
    fold_of = np.concatenate([rng.permutation(len(real)) % folds, rng.permutation(len(synth)) % folds])
    logits = np.empty(len(labels))
    for fold in range(folds):
        train, test = fold_of != fold, fold_of == fold
        net = _train(features[train], torch.from_numpy(labels[train]).float(), epochs=epochs,
                     generator=generator, device=device)
        logits[test] = _logits(net, features[test], device)
    rows = len(real)
    return logits[:rows], logits[rows:], fold_of[:rows], fold_of[rows:]


class RowDiscriminator:
    """Real-vs-synthetic classifier trained once, then used to score new rows (the gate's row filter).

    Trained on a balanced subsample (≤ `max_rows` per side), so `prob_fake` is the probability of being
    synthetic under equal priors: 0.5 is the natural threshold.
    """

    def __init__(
        self,
        columns: ColumnTypes,
        *,
        seed: int = 0,
        epochs: int = 30,
        device: str | torch.device | None = None,
        max_rows: int = 20_000,
    ) -> None:
        self.columns = dict(columns)
        self.seed = seed
        self.epochs = epochs
        self.device = torch_device(device)
        self.max_rows = max_rows
        self.featurizer: TableFeaturizer | None = None
        self.net: nn.Module | None = None

    def fit(self, real: pd.DataFrame, synth: pd.DataFrame) -> RowDiscriminator:
        check_columns(real, self.columns, "real")
        check_columns(synth, self.columns, "synthetic")
        if min(len(real), len(synth)) == 0:
            raise ValueError(f"RowDiscriminator.fit got {len(real)} real and {len(synth)} synthetic rows")
        real_rows, synth_rows = _balanced(real, synth, self.max_rows, np.random.default_rng(self.seed))
        self.featurizer = TableFeaturizer(self.columns).fit(real_rows)
        features = torch.cat([self.featurizer.transform(real_rows), self.featurizer.transform(synth_rows)])
        labels = torch.cat([torch.zeros(len(real_rows)), torch.ones(len(synth_rows))])
        generator = torch.Generator().manual_seed(self.seed)
        self.net = _train(features, labels, epochs=self.epochs, generator=generator, device=self.device)
        return self

    def prob_fake(self, table: pd.DataFrame) -> np.ndarray:
        """[len(table)] float64 probabilities that each row is synthetic."""
        if self.featurizer is None or self.net is None:
            raise ValueError("RowDiscriminator.prob_fake called before fit")
        logits = _logits(self.net, self.featurizer.transform(table), self.device)
        return special.expit(logits)
