"""The batched variational Gaussian mixture (`models.gmm.fit_gmm`): known mixtures are recovered, columns
in one batch do not leak into each other, masks are honoured, degenerate columns give one mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tailsynth.models.gmm import fit_gmm, mode_log_prob


def _two_gaussians(n: int, seed: int) -> np.ndarray:
    """30% N(-5, 1) and 70% N(5, 0.5), shuffled."""
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(-5.0, 1.0, int(0.3 * n)), rng.normal(5.0, 0.5, n - int(0.3 * n))])
    return rng.permutation(values)


def _fit(values: np.ndarray, **kwargs: object):
    tensor = torch.tensor(np.atleast_2d(values), dtype=torch.float64)
    return fit_gmm(tensor, generator=torch.Generator().manual_seed(0), **kwargs)


def _active(fit, column: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means, stds, weights) of the active modes of one column, sorted by mean."""
    active = fit.active[column].numpy()
    means, stds, weights = (t[column].numpy()[active] for t in (fit.means, fit.stds, fit.weights))
    order = np.argsort(means)
    return means[order], stds[order], weights[order]


def test_two_separated_gaussians_with_two_modes_are_recovered() -> None:
    fit = _fit(_two_gaussians(5000, seed=1), max_modes=2)
    means, stds, weights = _active(fit)
    assert len(means) == 2
    np.testing.assert_allclose(means, [-5.0, 5.0], atol=0.06)
    np.testing.assert_allclose(weights, [0.3, 0.7], atol=0.01)
    np.testing.assert_allclose(stds, [1.0, 0.5], rtol=0.1)


def test_ten_mode_fit_puts_the_right_mass_on_each_gaussian() -> None:
    # With K = 10 the Dirichlet-process prior may keep a Gaussian split over a few modes (CTGAN's
    # BayesianGaussianMixture does too); the mass and centre of each side must still be right, and no
    # active mode may sit in the empty gap between the two.
    fit = _fit(_two_gaussians(5000, seed=2), max_modes=10)
    means, _, weights = _active(fit)
    left, right = means < 0, means > 0
    assert np.all(np.abs(means) > 3.0)
    assert weights[left].sum() == pytest.approx(0.3, abs=0.01)
    assert weights[right].sum() == pytest.approx(0.7, abs=0.01)
    assert np.average(means[left], weights=weights[left]) == pytest.approx(-5.0, abs=0.1)
    assert np.average(means[right], weights=weights[right]) == pytest.approx(5.0, abs=0.1)
    assert fit.weights.sum().item() == pytest.approx(1.0)


def test_constant_column_has_one_mode_at_its_value() -> None:
    fit = _fit(np.full(400, 3.3))
    means, stds, weights = _active(fit)
    assert len(means) == 1
    assert means[0] == 3.3  # exactly: a constant column is centred on its value, not on a float mean
    assert 0.0 < stds[0] < 0.01
    assert weights[0] > 0.99


def test_few_distinct_values_get_one_mode_each() -> None:
    rng = np.random.default_rng(3)
    fit = _fit(rng.choice([0.0, 100.0, 200.0], size=3000))
    means, stds, weights = _active(fit)
    np.testing.assert_allclose(means, [0.0, 100.0, 200.0], atol=0.5)
    np.testing.assert_allclose(weights, [1 / 3, 1 / 3, 1 / 3], atol=0.03)
    assert np.all(stds < 5.0)


def test_batched_columns_are_independent_and_masked_entries_ignored() -> None:
    n = 4000
    first = _two_gaussians(n, seed=4)
    second = np.random.default_rng(5).normal(1000.0, 10.0, n)
    valid = np.ones((2, n), dtype=bool)
    valid[1, ::2] = False
    second[::2] = 1e12  # padding: must not pull the second column's fit
    values = torch.tensor(np.stack([first, second]))
    fit = fit_gmm(values, torch.tensor(valid), max_modes=2, generator=torch.Generator().manual_seed(0))
    alone = _fit(first, max_modes=2)
    means, _, weights = _active(fit, 0)
    alone_means, _, alone_weights = _active(alone, 0)
    np.testing.assert_allclose(means, alone_means, atol=0.02)
    np.testing.assert_allclose(weights, alone_weights, atol=0.01)
    second_means, second_stds, second_weights = _active(fit, 1)
    assert np.average(second_means, weights=second_weights) == pytest.approx(1000.0, abs=1.0)
    assert fit.center[1].item() == pytest.approx(1000.0, abs=1.0)
    assert np.all(second_stds < 20.0)


def test_nan_entries_are_treated_as_missing() -> None:
    values = _two_gaussians(3000, seed=6)
    values[::3] = np.nan
    means, _, weights = _active(_fit(values, max_modes=2))
    np.testing.assert_allclose(means, [-5.0, 5.0], atol=0.1)
    np.testing.assert_allclose(weights, [0.3, 0.7], atol=0.03)


def test_same_generator_seed_same_fit_and_empty_column_is_finite() -> None:
    values = torch.tensor(np.stack([_two_gaussians(1000, seed=7), np.full(1000, np.nan)]))
    fits = [fit_gmm(values, generator=torch.Generator().manual_seed(11), iterations=20) for _ in range(2)]
    for name in ("means", "stds", "weights", "active"):
        assert torch.equal(getattr(fits[0], name), getattr(fits[1], name)), name
    empty = fits[0]
    assert empty.active[1].sum() >= 1
    assert torch.isfinite(empty.means[1]).all() and (empty.stds[1] > 0).all()


def test_mode_log_prob_is_the_weighted_normal_density() -> None:
    z = torch.tensor([[0.0, 1.0, -2.0]])
    means, stds = torch.tensor([[0.0, 1.5]]), torch.tensor([[1.0, 0.5]])
    log_weights = torch.log(torch.tensor([[0.25, 0.75]]))
    out = mode_log_prob(z, means, stds, log_weights)
    assert out.shape == (1, 2, 3)
    d = (z[0][None, :] - means[0][:, None]) / stds[0][:, None]
    expected = -0.5 * d**2 - torch.log(stds[0][:, None]) - 0.5 * np.log(2 * np.pi)
    torch.testing.assert_close(out[0], expected + log_weights[0][:, None])
