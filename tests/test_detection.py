"""The classifier two-sample test of evaluate/detection.py: AUC maths, features, and the trained network."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from tailsynth.evaluate.measures.detection import RowDiscriminator, TableFeaturizer, discriminator_auc, roc_auc

COLUMNS = {"price": "numerical", "country": "categorical", "when": "datetime"}



def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "price": rng.normal(10 + shift, 2, rows),
        "country": rng.choice(["uk", "fr", "de"], rows, p=[0.6, 0.3, 0.1]),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, rows), unit="s"),
    })


def test_roc_auc_is_the_mann_whitney_u_statistic_on_random_and_tied_scores() -> None:
    # roc_auc is scikit-learn's; this pins the meaning the gate relies on (ties count half) to an independent
    # definition, scipy's U statistic over positives x negatives.
    from scipy import stats

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    for scores in (rng.normal(labels * 0.7, 1.0), rng.integers(0, 4, 500).astype(float) + labels):  # + many ties
        positives, negatives = scores[labels == 1], scores[labels == 0]
        u_statistic = stats.mannwhitneyu(positives, negatives).statistic
        assert roc_auc(labels, scores) == pytest.approx(u_statistic / (positives.size * negatives.size))


def test_roc_auc_hand_cases() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([1.0, 1.0, 1.0, 1.0])) == 0.5
    # Pairs (pos, neg): (0.5 vs 0.2) win, (0.5 vs 0.5) tie = 1/2 -> (1 + 0.5) / 2.
    assert roc_auc(np.array([1, 0, 0]), np.array([0.5, 0.2, 0.5])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([-np.inf, np.inf, 0.1, 0.3])) == 1.0  # order kept
    assert roc_auc(np.array([0, 1, 1]), np.array([np.inf, np.inf, 0.0])) == pytest.approx(0.25)  # inf ties inf
    assert math.isnan(roc_auc(np.array([0, 1]), np.array([0.1, np.nan])))
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.array([1, 1]), np.array([0.1, 0.2]))


def test_featurizer_layout_nulls_and_unseen_categories() -> None:
    real = pd.DataFrame({"price": [1.0, 2.0, 3.0, None], "country": ["uk", "fr", "uk", None],
                         "when": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"])})
    featurizer = TableFeaturizer(COLUMNS).fit(real)
    # price: 3 features; country: uk, then the ties fr and <null> by label ("<" sorts before "f") + other;
    # when: 3 features.
    assert featurizer.width == 3 + 4 + 3
    new = pd.DataFrame({"price": [None, 2.0], "country": ["de", "fr"], "when": pd.to_datetime(["2020-01-02", None])})
    features = featurizer.transform(new)
    assert features.dtype == torch.float32 and features.shape == (2, 10)
    assert features[0, :3].tolist() == [0.0, 0.0, 1.0]  # null: zeros and the indicator
    assert features[1, 0].item() == pytest.approx(0.0)  # 2.0 is real's mean
    assert features[0, 3:7].tolist() == [0.0, 0.0, 0.0, 1.0]  # "de" was never seen: the other slot
    assert features[1, 3:7].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert features[1, 9].item() == 1.0  # the missing datetime
    with pytest.raises(ValueError, match="before fit"):
        TableFeaturizer(COLUMNS).transform(new)


def test_auc_near_half_for_one_distribution_and_high_for_a_shift() -> None:
    rng = np.random.default_rng(1)
    same = discriminator_auc(_table(rng, 800), _table(rng, 800), COLUMNS, seed=0)
    shifted = discriminator_auc(_table(rng, 800), _table(rng, 800, shift=6.0), COLUMNS, seed=0)
    assert 0.4 < same < 0.6
    assert shifted > 0.9


def test_auc_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(2)
    real, synth = _table(rng, 300), _table(rng, 400, shift=0.5)
    first = discriminator_auc(real, synth, COLUMNS, seed=3, epochs=5)
    assert first == discriminator_auc(real, synth, COLUMNS, seed=3, epochs=5)
    with pytest.raises(ValueError, match="rows per side"):
        discriminator_auc(real.iloc[:4], synth, COLUMNS)


def test_row_discriminator_scores_fake_rows_higher() -> None:
    rng = np.random.default_rng(4)
    real, synth = _table(rng, 1000), _table(rng, 1000, shift=4.0)
    discriminator = RowDiscriminator(COLUMNS, seed=0, epochs=10).fit(real, synth)
    fresh_real, fresh_fake = _table(rng, 200), _table(rng, 200, shift=4.0)
    prob_real, prob_fake = discriminator.prob_fake(fresh_real), discriminator.prob_fake(fresh_fake)
    assert prob_real.shape == (200,) and prob_real.dtype == np.float64
    assert ((prob_real >= 0) & (prob_real <= 1)).all()
    assert (prob_fake > 0.5).mean() > 0.8 and (prob_real < 0.5).mean() > 0.8
    with pytest.raises(ValueError, match="before fit"):
        RowDiscriminator(COLUMNS).prob_fake(fresh_real)
