"""Conditional TVAE: the vectorised loss against a span-by-span reference, a Lightning smoke fit, sigma
clamping, and conditional generation (valid rows, adherence, seeds, modes)."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from tailsynth.models.condition import ConditionSpec, TrainingSampler
from tailsynth.models.config import TVAEConfig
from tailsynth.models.layout import ColumnLayout, SpanInfo, all_spans
from tailsynth.models.losses import vae_loss
from tailsynth.models.sampling import generate_rows
from tailsynth.models.tvae import TVAEModule
from helpers import fit_batches

LAYOUT = (
    ColumnLayout("pop_bucket", "categorical", 0, (SpanInfo(3, "softmax"),), ("head", "torso", "tail")),
    ColumnLayout("quantity", "numerical", 3, (SpanInfo(1, "tanh"), SpanInfo(3, "softmax"), SpanInfo(2, "softmax"))),
    ColumnLayout("colour", "categorical", 9, (SpanInfo(4, "softmax"),), tuple("abcd")),
    ColumnLayout("price", "numerical", 13, (SpanInfo(1, "tanh"), SpanInfo(2, "softmax"))),
)
WIDTH = 16
ONE_HOT_BLOCKS = ((0, 3), (4, 7), (7, 9), (9, 13), (14, 16))
TANH_COLUMNS = (3, 13)
SPEC = ConditionSpec.from_layout(LAYOUT, ["colour"])
TINY = TVAEConfig(embedding_dim=8, compress_dims=(16, 16), decompress_dims=(16, 16))



def make_batches(count: int, batch_size: int = 16, seed: int = 0) -> list[tuple[Tensor, ...]]:
    """Batches (real, cond, codes, mask) from a 400-row table whose quantity alpha depends on the bucket."""
    generator = torch.Generator().manual_seed(seed)
    n = 400
    buckets = torch.multinomial(torch.tensor([0.6, 0.3, 0.1]), n, replacement=True, generator=generator)
    colour = torch.randint(0, 4, (n,), generator=generator)
    alpha = ((buckets.float() - 1) * 0.5 + 0.1 * torch.randn(n, generator=generator)).clamp(-1, 1)
    pieces = [F.one_hot(buckets, 3), alpha[:, None], F.one_hot(torch.randint(0, 3, (n,), generator=generator), 3)]
    pieces += [F.one_hot(torch.randint(0, 2, (n,), generator=generator), 2), F.one_hot(colour, 4)]
    price = torch.rand(n, 1, generator=generator) * 2 - 1
    pieces += [price, F.one_hot(torch.randint(0, 2, (n,), generator=generator), 2)]
    x = torch.cat([piece.float() for piece in pieces], dim=1)
    sampler = TrainingSampler(torch.stack([buckets, colour], 1), SPEC, "uniform", 0.5)
    batches = []
    for _ in range(count):
        row_idx, cond, codes, mask = sampler.draw(batch_size, generator)
        batches.append((x[row_idx], cond, codes, mask))
    return batches


def build(config, seed: int = 0) -> TVAEModule:  # noqa: ANN001
    """A module whose initial weights come from `seed` (initialisation uses the global RNG)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return TVAEModule(LAYOUT, SPEC, config)




def reference_vae_loss(raw, x, sigmas, spans, mu, logvar, factor):  # noqa: ANN001, ANN201
    """TVAE's loss written span by span, the slow obvious way."""
    terms, start = [], 0
    for span in spans:
        stop = start + span.dim
        if span.activation == "tanh":
            std = sigmas[start]
            terms.append(((x[:, start] - torch.tanh(raw[:, start])) ** 2 / 2 / std**2).sum())
            terms.append(torch.log(std) * x.shape[0])
        else:
            terms.append(F.cross_entropy(raw[:, start:stop], x[:, start:stop].argmax(dim=1), reduction="sum"))
        start = stop
    kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())
    return sum(terms) * factor / x.shape[0], kl / x.shape[0]


def test_vae_loss_matches_the_span_by_span_reference() -> None:
    generator = torch.Generator().manual_seed(0)
    x = make_batches(1, batch_size=12)[0][0]
    raw = torch.randn(12, WIDTH, generator=generator)
    sigmas = torch.rand(WIDTH, generator=generator) * 0.5 + 0.05
    mu, logvar = torch.randn(12, 8, generator=generator), torch.randn(12, 8, generator=generator)
    recon, kl = vae_loss(raw, x, sigmas, all_spans(LAYOUT), mu, logvar, loss_factor=2.0)
    expected_recon, expected_kl = reference_vae_loss(raw, x, sigmas, all_spans(LAYOUT), mu, logvar, 2.0)
    assert torch.allclose(recon, expected_recon) and torch.allclose(kl, expected_kl)
    zero_recon, zero_kl = vae_loss(raw, x, sigmas, all_spans(LAYOUT), torch.zeros(12, 8), torch.zeros(12, 8), 2.0)
    assert float(zero_kl) == 0.0  # the posterior equals the prior


def test_smoke_fit_changes_parameters_and_logs_finite_losses() -> None:
    module = build(TINY)
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    trainer = fit_batches(module, make_batches(3))
    for name in ("loss/reconstruction", "loss/kl", "loss/total"):
        assert torch.isfinite(trainer.callback_metrics[f"{name}_epoch"]), name
    assert all(not torch.equal(p, before[n]) for n, p in module.named_parameters())
    assert module.hparams["model"] == "tvae" and module.hparams["cond_width"] == 7


def test_sigmas_are_clamped_after_each_step() -> None:
    module = build(TVAEConfig(embedding_dim=8, compress_dims=(16,), decompress_dims=(16,), lr=1e-4))
    with torch.no_grad():
        module.decoder.sigma.copy_(torch.linspace(0.001, 3.0, WIDTH))  # partly outside [0.01, 1]
    fit_batches(module, make_batches(2))
    sigma = module.decoder.sigma.detach()
    low, high = torch.tensor(0.01), torch.tensor(1.0)  # the float32 bounds clamp_ uses
    assert bool((sigma >= low).all() and (sigma <= high).all())
    # Adam moves each value by about lr per step, so without the clamp they would still be near 0.001 / 3.
    assert float(sigma.min()) == pytest.approx(0.01, abs=1e-3)
    assert float(sigma.max()) == pytest.approx(1.0, abs=1e-3)


@pytest.fixture(scope="module")
def trained() -> TVAEModule:
    """A TVAE trained for 300 steps: enough for its decoder to copy the condition into the bucket slice."""
    module = build(TVAEConfig(embedding_dim=8, compress_dims=(16, 16), decompress_dims=(16, 16), lr=1e-2), seed=3)
    fit_batches(module, make_batches(300, batch_size=32, seed=3), seed=3)
    return module


def check_rows(rows: Tensor) -> None:
    """Softmax spans are exact one-hots and the tanh scalars are within [-1, 1]."""
    for start, stop in ONE_HOT_BLOCKS:
        block = rows[:, start:stop]
        assert bool(((block == 0) | (block == 1)).all())
        assert torch.equal(block.sum(dim=1), torch.ones(rows.shape[0]))
    assert bool((rows[:, list(TANH_COLUMNS)].abs() <= 1).all())


def test_generated_rows_are_valid_and_honour_the_condition(trained: TVAEModule) -> None:
    codes = torch.stack([torch.arange(3).repeat_interleave(200), torch.arange(600) % 4], dim=1)
    mask = torch.tensor([True, True]).repeat(600, 1)
    mask[::2, 1] = False
    rows = generate_rows(trained, SPEC, codes, mask, batch_size=256, generator=torch.Generator().manual_seed(0))
    assert rows.shape == (600, WIDTH)
    check_rows(rows)
    generated = SPEC.codes_from_encoded(rows)
    # Chance is 1/3 (bucket) and 1/4 (colour); the conditioned decoder reproduces its condition.
    for bucket in range(3):
        assert float((generated[:, 0] == bucket)[codes[:, 0] == bucket].float().mean()) > 0.8, bucket
    assert float((generated[:, 1] == codes[:, 1])[mask[:, 1]].float().mean()) > 0.6
    # quantity's alpha is centred on -0.5, 0, 0.5 by bucket in the data; the decoder follows (loosely).
    for bucket, centre in enumerate((-0.5, 0.0, 0.5)):
        assert abs(float(rows[codes[:, 0] == bucket, 3].mean()) - centre) < 0.2, bucket
    # Continuous outputs carry the learned sigma noise: they are not all equal for one condition.
    assert float(rows[codes[:, 0] == 2, 3].std()) > 0


def test_same_seed_same_rows_and_modes_restored(trained: TVAEModule) -> None:
    cond = SPEC.vector(torch.tensor([[1, 3]] * 8), torch.ones(8, 2, dtype=torch.bool))
    trained.train()
    first = trained.generate(cond, generator=torch.Generator().manual_seed(7))
    again = trained.generate(cond, generator=torch.Generator().manual_seed(7))
    other = trained.generate(cond, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert trained.training and trained.decoder.training
    with pytest.raises(ValueError, match=r"shape \[b, 7\]"):
        trained.generate(cond[:, :5])


def grouped_gather_vae_loss(raw, x, sigmas, plan, mu, logvar, factor):  # noqa: ANN001, ANN201
    """The loss as it was computed before the single grouped gather: one gather of raw and x per width."""
    batch = raw.shape[0]
    sigma = sigmas[plan.tanh_index]
    error = x[:, plan.tanh_index] - torch.tanh(raw[:, plan.tanh_index])
    recon = (error**2 / (2 * sigma**2)).sum() + batch * torch.log(sigma).sum()
    for dim in plan.group_dims:
        index = plan.group(dim).flatten()
        targets = x[:, index].reshape(-1, dim).argmax(dim=1)
        recon = recon + F.cross_entropy(raw[:, index].reshape(-1, dim), targets, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())
    return recon * factor / batch, kl / batch


def test_vae_loss_and_its_gradient_equal_the_per_group_gather_version_on_a_fixed_batch() -> None:
    from tailsynth.models.activation import SpanPlan

    plan = SpanPlan(all_spans(LAYOUT))
    generator = torch.Generator().manual_seed(1)
    x = make_batches(1, batch_size=32, seed=1)[0][0]
    sigmas = torch.rand(WIDTH, generator=generator) * 0.5 + 0.05
    mu, logvar = torch.randn(32, 8, generator=generator), torch.randn(32, 8, generator=generator)
    raw = torch.randn(32, WIDTH, generator=generator)
    results = []
    for loss in (vae_loss, grouped_gather_vae_loss):
        leaf = raw.clone().requires_grad_(True)
        recon, kl = loss(leaf, x, sigmas, plan, mu, logvar, 2.0)
        (recon + kl).backward()
        results.append((recon.detach(), kl, leaf.grad))
    (recon, kl, grad), (old_recon, old_kl, old_grad) = results
    assert torch.equal(recon, old_recon) and torch.equal(kl, old_kl)
    assert torch.allclose(grad, old_grad, rtol=0, atol=1e-7)
