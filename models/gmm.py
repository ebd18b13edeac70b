"""Batched variational Gaussian mixtures for many 1-D columns at once, in torch on the model's device.

CTGAN's mode-specific normalisation (via rdt's `ClusterBasedNormalizer`) fits one scikit-learn
`BayesianGaussianMixture(n_components=10, weight_concentration_prior_type="dirichlet_process",
weight_concentration_prior=1e-3)` per continuous column, one after another, in float64 numpy on the CPU.
`fit_gmm` runs the same variational-Bayes EM (Bishop 2006, §10.2; sklearn's update equations specialised
to one feature) for ALL columns in one set of tensor ops over `[n_cols, K, n]` (K-major, so the softmax
over modes and the sums over rows run along contiguous memory):

* weights: the same truncated Dirichlet-process (stick-breaking) prior of small concentration, so modes
  the data does not need get an expected weight near zero and are dropped by `weight_threshold`;
* means/precisions: a Normal-Wishart prior centred on the column mean with the column variance as the
  covariance prior, one pseudo-observation (`beta0 = nu0 = 1`), as sklearn's defaults;
* init: k-means++ seeding from a `torch.Generator` plus a few Lloyd steps, then hard responsibilities
  (sklearn initialises with a k-means labelling too);
* a fixed number of iterations (no tolerance check: that would need a device sync every iteration).

Like sklearn's, the fitted stds carry the prior's pull (the column variance over N_k + 1 pseudo-counts),
noticeable only for modes with few points; with K = 10 a single Gaussian may stay split over a few
active modes, as it does in CTGAN.

Differences, on purpose: each column is standardised first (float64 statistics) and the EM runs in
float32 in those units, so a timestamp near 1.7e9 s and a price near 1 are equally well conditioned, and
the variance floor (sklearn's `reg_covar`) is relative to the column's spread instead of absolute. One
pass over all columns on a GPU (or a vectorised CPU) replaces `n_cols` sequential sklearn fits; the rows
axis is chunked so memory stays bounded for any `n`.

Constant columns and columns with fewer distinct values than `K` work: k-means++ picks each distinct
value once and the duplicate centres own no points, so they revert to the prior and die.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

_LOG_2PI = math.log(2.0 * math.pi)
_SEED_ROWS = 1 << 16  # rows k-means++ draws its centres from (multinomial over n is the cost)
_TINY = 1e-10  # keeps empty components' divisions finite (sklearn adds 10 * eps to nk for the same reason)


@dataclass(frozen=True)
class MixtureFit:
    """Per-column mixture in the input's units; K = max_modes slots, some inactive.

    means, stds, weights: float64 [n_cols, K]; active: bool [n_cols, K] (weight > weight_threshold, at
    least one per column); center, scale: float64 [n_cols], the standardisation the EM ran in.
    """

    means: Tensor
    stds: Tensor
    weights: Tensor
    active: Tensor
    center: Tensor
    scale: Tensor


@dataclass
class _Posterior:
    """Variational parameters in standardised units, float64 [n_cols, K] each."""

    stick_a: Tensor  # Beta(a, b) of each stick-breaking fraction
    stick_b: Tensor
    mean: Tensor
    mean_precision: Tensor  # beta_k
    dof: Tensor  # nu_k
    scale_inv: Tensor  # W_k^-1 (1-D Wishart), so the mode's variance is scale_inv / dof


def fit_gmm(
    values: Tensor,
    valid: Tensor | None = None,
    *,
    max_modes: int = 10,
    iterations: int = 100,
    weight_threshold: float = 0.005,
    concentration: float = 1e-3,
    var_floor: float = 1e-6,
    generator: torch.Generator | None = None,
    max_elements: int | None = None,
) -> MixtureFit:
    """Fit a K-mode variational mixture to every row of `values` at once.

    values: float [n_cols, n] on any device (one column per row); valid: bool [n_cols, n], False for
    nulls and padding (default: every finite value). `var_floor` is added to each mode's variance in
    standardised units (so the std floor is sqrt(var_floor) column stds). `generator` must live on
    `values.device`; `max_elements` bounds the `[n_cols, K, chunk]` temporaries (default: cache-sized
    on CPU, where fresh large buffers cost page faults; large on accelerators, where launches cost).
    """
    if values.dim() != 2:
        raise ValueError(f"fit_gmm expects values of shape [n_cols, n], got {tuple(values.shape)}")
    if valid is None:
        valid = torch.isfinite(values)
    valid = valid & torch.isfinite(values)
    center, scale, varies, z = _standardise(values, valid)
    n_cols, n = z.shape
    chunk = chunk_rows(values.device, n_cols * max_modes, max_elements)
    # sklearn's covariance prior is the column variance: 1 in standardised units; a constant column
    # gets the floor instead (0 would give empty modes a zero variance and an infinite density).
    prior_var = torch.where(varies, 1.0, var_floor).to(torch.float64)
    shift = _kmeans_init(z, valid, max_modes, generator, chunk)
    post = _m_step(_hard_stats(z, valid, shift, chunk), shift, prior_var, concentration, var_floor)
    for _ in range(iterations):
        shift = post.mean.float()
        stats = _soft_stats(z, valid, post, shift, chunk)
        post = _m_step(stats, shift, prior_var, concentration, var_floor)
    weights = _expected_weights(post)
    active = weights > weight_threshold
    active |= torch.nn.functional.one_hot(weights.argmax(1), max_modes).bool()  # never zero modes
    stds = (post.scale_inv / post.dof).sqrt()
    return MixtureFit(
        means=center[:, None] + scale[:, None] * post.mean,
        stds=scale[:, None] * stds,
        weights=weights,
        active=active,
        center=center,
        scale=scale,
    )


def chunk_rows(device: torch.device, row_elements: int, max_elements: int | None = None) -> int:
    """Rows per chunk so that one `[.., chunk]` temporary of `row_elements` per row holds at most
    `max_elements` (default: 2^19 on CPU, which keeps temporaries in cache; 2^26 elsewhere)."""
    if max_elements is None:
        max_elements = 1 << 19 if torch.device(device).type == "cpu" else 1 << 26
    return max(1, max_elements // max(1, row_elements))


def mode_log_prob(z: Tensor, means: Tensor, stds: Tensor, log_weights: Tensor) -> Tensor:
    """log(w_k N(z | mean_k, std_k)) per mode: z [C, n], parameters [C, K] -> [C, K, n] (float32).

    The plug-in posterior used to draw a row's mode at transform time (softmax over K). Inactive modes
    should carry log_weights = -inf.
    """
    means, stds, log_weights = (t.to(torch.float32) for t in (means, stds, log_weights))
    d = (z.to(torch.float32)[:, None, :] - means[:, :, None]) / stds[:, :, None]
    return (log_weights - stds.log() - 0.5 * _LOG_2PI)[:, :, None] - 0.5 * d * d


def _standardise(values: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Column mean/std of the valid entries (float64 [C]), whether the column varies (bool [C]) and the
    float32 standardised values [C, n] (invalid entries 0).

    A constant (or empty) column is centred on its value exactly (a float64 mean of n equal values can
    be off by an ulp, which would turn it into a column of +-1) with scale 1, so it stays at z = 0.
    """
    x = torch.where(valid, values.to(torch.float64), 0.0)
    first = x.gather(1, valid.to(torch.int8).argmax(1, keepdim=True))  # any valid value, or 0
    varies = (valid & (x != first)).any(1)
    count = valid.sum(1).clamp_min(1).to(torch.float64)
    center = torch.where(varies, x.sum(1) / count, first[:, 0])
    var = (torch.where(valid, x - center[:, None], 0.0) ** 2).sum(1) / count
    scale = torch.where(varies, var.sqrt(), 1.0)
    z = torch.where(valid, (x - center[:, None]) / scale[:, None], 0.0)
    return center, scale, varies, z.to(torch.float32)


def _kmeans_init(
    z: Tensor, valid: Tensor, k: int, generator: torch.Generator | None, chunk: int
) -> Tensor:
    """k-means++ seeding (one D^2 draw per centre, on a shared row subsample) then 10 Lloyd steps on
    every row, all columns at once: float32 [C, K]."""
    n_cols, n = z.shape
    rows = torch.arange(n_cols, device=z.device)
    seed_rows = torch.randperm(n, generator=generator, device=z.device)[:_SEED_ROWS]
    z_s, valid_s = z[:, seed_rows], valid[:, seed_rows]
    empty = (~valid_s.any(1, keepdim=True)).float()
    pick = torch.multinomial(valid_s.float() + empty, 1, generator=generator)
    centres = [z_s[rows, pick[:, 0]]]
    nearest = (z_s - centres[0][:, None]) ** 2
    for _ in range(1, k):
        # D^2 sampling; a column whose points all coincide with a centre draws uniformly (a duplicate
        # centre, which then owns no points because argmin breaks ties towards the first).
        weights = torch.where(valid_s, nearest, 0.0)
        weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, valid_s.float() + empty)
        pick = torch.multinomial(weights, 1, generator=generator)
        centres.append(z_s[rows, pick[:, 0]])
        nearest = torch.minimum(nearest, (z_s - centres[-1][:, None]) ** 2)
    centre = torch.stack(centres, 1)
    for _ in range(10):
        count, first, _ = _hard_stats(z, valid, centre, chunk)
        centre = torch.where(count > 0, centre + first / count.clamp_min(1), centre.double()).float()
    return centre


def _hard_stats(z: Tensor, valid: Tensor, centres: Tensor, chunk: int) -> tuple[Tensor, Tensor, Tensor]:
    """Stats of the nearest-centre labelling (ties go to the first centre) around `centres`.

    Used for the Lloyd steps and as the EM's initial (hard) responsibilities.
    """
    k = centres.shape[1]
    modes = torch.arange(k, device=z.device, dtype=torch.float32)[None, :, None]

    def nearest(d: Tensor, d2: Tensor) -> Tensor:
        # argmin (and integer amin) over a strided dim are much slower than float amin on CPU:
        # take the smallest (float) index among the modes at the minimum distance.
        at_min = d2 == d2.amin(1, keepdim=True)
        first = torch.where(at_min, modes, float(k)).amin(1, keepdim=True)
        return (first == modes).float()

    return _accumulate(z, valid, centres, nearest, chunk)


def _soft_stats(
    z: Tensor, valid: Tensor, post: _Posterior, shift: Tensor, chunk: int
) -> tuple[Tensor, Tensor, Tensor]:
    """E-step: variational responsibilities (sklearn's `_estimate_log_prob` + log weights) as stats."""
    log_weight = _expected_log_weights(post)
    # E[log N(z | mu, lambda)] = const_k - 0.5 * dof_k / scale_inv_k * (z - m_k)^2
    const = (
        log_weight
        - 0.5 * _LOG_2PI
        - 0.5 * post.scale_inv.log()
        + 0.5 * (math.log(2.0) + torch.digamma(0.5 * post.dof) - 1.0 / post.mean_precision)
    ).float()[:, :, None]
    half_precision = (0.5 * post.dof / post.scale_inv).float()[:, :, None]

    def posterior(d: Tensor, d2: Tensor) -> Tensor:
        return torch.softmax(torch.addcmul(const, half_precision, d2, value=-1.0), dim=1)

    return _accumulate(z, valid, shift, posterior, chunk)


def _accumulate(
    z: Tensor,
    valid: Tensor,
    shift: Tensor,
    responsibilities: Callable[[Tensor, Tensor], Tensor],
    chunk: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Sum over valid rows of r, r*d and r*d^2 with d = z - shift_k: float64 [C, K] each.

    `responsibilities(d, d2)` maps [C, K, chunk] distances to responsibilities of the same shape. The
    layout is K-major so the softmax over K and the row sums run along contiguous memory. Statistics are
    taken around the current mode means (`shift`, float32 [C, K]) rather than 0: a tight mode far from
    the column mean would otherwise lose its variance to float32 cancellation in E[z^2] - E[z]^2.
    """
    sums = [torch.zeros(shift.shape, dtype=torch.float64, device=z.device) for _ in range(3)]
    for lo in range(0, z.shape[1], chunk):
        d = z[:, None, lo : lo + chunk] - shift[:, :, None]
        d2 = d * d
        r = responsibilities(d, d2) * valid[:, None, lo : lo + chunk]
        for total, term in zip(sums, (r, r * d, r * d2)):
            total += term.sum(2).double()
    return sums[0], sums[1], sums[2]


def _m_step(
    stats: tuple[Tensor, Tensor, Tensor],
    shift: Tensor,
    prior_var: Tensor,
    concentration: float,
    var_floor: float,
) -> _Posterior:
    """Variational M-step (sklearn `_m_step`, 1-D): stats [C, K] around `shift` -> new posterior."""
    count, first, second = stats
    nk = count + _TINY
    offset = first / nk  # (mean of the mode's points) - shift
    xk = shift.double() + offset
    sk = (second / nk - offset * offset).clamp_min(0.0) + var_floor
    # stick-breaking: a_k = 1 + N_k, b_k = alpha0 + sum_{j>k} N_j
    tail = mode_cumsum(nk.flip(1)).flip(1) - nk
    beta = 1.0 + nk  # prior mean precision 1, prior mean 0 (the standardised column mean)
    return _Posterior(
        stick_a=1.0 + nk,
        stick_b=concentration + tail,
        mean=nk * xk / beta,
        mean_precision=beta,
        dof=1.0 + nk,
        scale_inv=prior_var[:, None] + nk * sk + nk / beta * xk * xk,
    )


def mode_cumsum(x: Tensor, dim: int = 1) -> Tensor:
    """Cumulative sum over the short mode axis (K <= max_modes) as a product with a triangular matrix.

    `torch.cumsum` on CUDA refuses to run under `torch.use_deterministic_algorithms(True)`, which
    Lightning's `deterministic=True` switches on for the whole process, so a second fit or a transform after
    training would fail on a GPU. (x @ T)[..., j] = sum_{k <= j} x[..., k] for T upper-triangular ones.
    """
    k = x.shape[dim]
    triangle = torch.ones((k, k), dtype=x.dtype, device=x.device).triu()
    return torch.movedim(torch.movedim(x, dim, -1) @ triangle, -1, dim)


def _expected_log_weights(post: _Posterior) -> Tensor:
    """E[log pi_k] under the stick-breaking posterior, [C, K]."""
    total = torch.digamma(post.stick_a + post.stick_b)
    log_v = torch.digamma(post.stick_a) - total
    log_rest = torch.digamma(post.stick_b) - total
    before = torch.nn.functional.pad(mode_cumsum(log_rest)[:, :-1], (1, 0))
    return log_v + before


def _expected_weights(post: _Posterior) -> Tensor:
    """sklearn's `weights_` for the Dirichlet-process prior: E[v_k] * prod_{j<k} (1 - E[v_j]), normalised."""
    v = post.stick_a / (post.stick_a + post.stick_b)
    rest = torch.nn.functional.pad(torch.cumprod(1.0 - v, 1)[:, :-1], (1, 0), value=1.0)
    weights = v * rest
    return weights / weights.sum(1, keepdim=True)
