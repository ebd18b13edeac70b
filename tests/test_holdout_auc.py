"""The cheap one-network AUC (evaluate/holdout_auc.py) that the report tables and the training monitor use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailsynth.evaluate.measures.detection import RowDiscriminator
from tailsynth.evaluate.measures.holdout_auc import MIN_ROWS, holdout_auc

COLUMNS = {"price": "numerical", "country": "categorical"}


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"price": rng.normal(10 + shift, 2, rows),
                         "country": rng.choice(["uk", "fr", "de"], rows, p=[0.6, 0.3, 0.1])})


def test_same_distribution_reads_near_half_and_a_shift_reads_high() -> None:
    rng = np.random.default_rng(0)
    real = _table(rng, 900)
    same = holdout_auc(real, _table(rng, 900), COLUMNS, seed=1)
    shifted = holdout_auc(real, _table(rng, 900, shift=4.0), COLUMNS, seed=1)
    assert same is not None and abs(same - 0.5) < 0.08, same
    assert shifted is not None and shifted > 0.9, shifted


def test_seeded_and_none_for_tiny_tables() -> None:
    rng = np.random.default_rng(2)
    real, synth = _table(rng, 300), _table(rng, 300, shift=1.0)
    assert holdout_auc(real, synth, COLUMNS, seed=3) == holdout_auc(real, synth, COLUMNS, seed=3)
    assert holdout_auc(real.head(MIN_ROWS - 1), synth, COLUMNS) is None
    with pytest.raises(ValueError, match="test_share"):
        holdout_auc(real, synth, COLUMNS, test_share=1.0)


def test_fits_one_network_on_the_fit_part_only(monkeypatch: pytest.MonkeyPatch) -> None:
    fitted: list[tuple[int, int]] = []
    original = RowDiscriminator.fit

    def counting(self: RowDiscriminator, real: pd.DataFrame, synth: pd.DataFrame) -> RowDiscriminator:
        fitted.append((len(real), len(synth)))
        return original(self, real, synth)

    monkeypatch.setattr(RowDiscriminator, "fit", counting)
    rng = np.random.default_rng(4)
    holdout_auc(_table(rng, 300), _table(rng, 600), COLUMNS, seed=0)
    assert fitted == [(200, 400)]  # one network, two thirds of each side; the other third scores it


def test_one_network_reads_every_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """holdout_auc_by_group: overall equals holdout_auc; a group whose synthetic rows are shifted reads high,
    an unchanged group near 0.5, a group with too few scored rows None; one network in all."""
    from tailsynth.evaluate.measures.holdout_auc import holdout_auc_by_group

    rng = np.random.default_rng(5)
    real = pd.concat([_table(rng, 900).assign(bucket="a"), _table(rng, 900).assign(bucket="b"),
                      _table(rng, 12).assign(bucket="c")], ignore_index=True)
    synth = pd.concat([_table(rng, 900).assign(bucket="a"), _table(rng, 900, shift=4.0).assign(bucket="b"),
                       _table(rng, 12).assign(bucket="c")], ignore_index=True)
    fits = []
    original = RowDiscriminator.fit
    monkeypatch.setattr(RowDiscriminator, "fit", lambda self, r, s: fits.append(1) or original(self, r, s))
    overall, by_group = holdout_auc_by_group(real, synth, COLUMNS, "bucket", seed=1)
    assert len(fits) == 1
    assert overall == holdout_auc(real, synth, COLUMNS, seed=1)
    assert abs(by_group["a"] - 0.5) < 0.1 and by_group["b"] > 0.9 and by_group["c"] is None, by_group
