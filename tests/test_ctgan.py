"""Conditional CTGAN: gradient penalty and condition loss values, a Lightning smoke fit, conditional
generation (valid rows, adherence, seeds, modes) and batched `generate_rows`."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tailsynth.models.condition import ConditionSpec, TrainingSampler
from tailsynth.models.config import CTGANConfig
from tailsynth.models.ctgan import CTGANModule
from tailsynth.models.errors import ConfigError
from tailsynth.models.layout import ColumnLayout, SpanInfo
from tailsynth.models.losses import condition_loss, gradient_penalty
from tailsynth.models.sampling import generate_rows
from helpers import fit_batches

LAYOUT = (
    ColumnLayout("pop_bucket", "categorical", 0, (SpanInfo(3, "softmax"),), ("head", "torso", "tail")),
    ColumnLayout("quantity", "numerical", 3, (SpanInfo(1, "tanh"), SpanInfo(3, "softmax"))),
    ColumnLayout("colour", "categorical", 7, (SpanInfo(4, "softmax"),), tuple("abcd")),
)
WIDTH = 11
SPEC = ConditionSpec.from_layout(LAYOUT, ["colour"])
TINY = CTGANConfig(embedding_dim=8, generator_dims=(16, 16), critic_dims=(16, 16), pac=2)


def make_table(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Encoded rows X [n, 11] and their condition codes [n, 2]; quantity's alpha depends on the bucket."""
    buckets = torch.multinomial(torch.tensor([0.6, 0.3, 0.1]), n, replacement=True, generator=generator)
    colour = torch.randint(0, 4, (n,), generator=generator)
    alpha = (buckets.float() - 1) * 0.5 + 0.1 * torch.randn(n, generator=generator)
    mode = torch.randint(0, 3, (n,), generator=generator)
    pieces = [F.one_hot(buckets, 3), alpha.clamp(-1, 1)[:, None], F.one_hot(mode, 3), F.one_hot(colour, 4)]
    x = torch.cat([piece.float() for piece in pieces], dim=1)
    return x, torch.stack([buckets, colour], dim=1)


def make_batches(count: int, batch_size: int = 16, seed: int = 0) -> list[tuple[Tensor, ...]]:
    """Batches (real, cond, codes, mask) as the DataModule will yield them, drawn by the TrainingSampler."""
    generator = torch.Generator().manual_seed(seed)
    x, codes = make_table(400, generator)
    sampler = TrainingSampler(codes, SPEC, "uniform", 0.5)
    batches = []
    for _ in range(count):
        row_idx, cond, drawn, mask = sampler.draw(batch_size, generator)
        batches.append((x[row_idx], cond, drawn, mask))
    return batches


def build(config, seed: int = 0) -> CTGANModule:  # noqa: ANN001
    """A module whose initial weights come from `seed` (initialisation uses the global RNG)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return CTGANModule(LAYOUT, SPEC, config)





class LinearPackCritic(nn.Module):
    """score = w . packed rows with a fixed weight vector: its gradient norm per pack is ||w|| everywhere."""

    def __init__(self, weight: Tensor, pac: int) -> None:
        super().__init__()
        self.weight, self.pac = weight, pac

    def forward(self, rows: Tensor) -> Tensor:
        return rows.reshape(rows.shape[0] // self.pac, -1) @ self.weight


@pytest.mark.parametrize(("scale", "expected"), [(1.0, 0.0), (3.0, 10.0 * (3.0 - 1.0) ** 2)])
def test_gradient_penalty_known_values(scale: float, expected: float) -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(2 * 5, generator=generator)
    critic = LinearPackCritic(scale * weight / weight.norm(), pac=2)
    real, fake = torch.randn(8, 5, generator=generator), torch.randn(8, 5, generator=generator)
    penalty = gradient_penalty(critic, real, fake, pac=2, weight=10.0, generator=generator)
    assert penalty.ndim == 0
    assert abs(float(penalty) - expected) < 1e-4


def test_gradient_penalty_trains_the_critic_only() -> None:
    critic = nn.Sequential(nn.Flatten(0), nn.Unflatten(0, (4, 10)), nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 1))
    real = torch.randn(8, 5)
    fake = torch.randn(8, 5, requires_grad=True)
    penalty = gradient_penalty(critic, real, fake, pac=2, weight=10.0)
    penalty.backward()
    assert float(penalty.detach()) > 0
    assert fake.grad is None  # interpolates are detached from the generator's graph
    # create_graph=True: the penalty reaches every parameter its input gradient depends on (all but the
    # output bias, which shifts scores without changing their gradient).
    hidden, output = critic[2], critic[4]
    assert all(p.grad is not None for p in (hidden.weight, hidden.bias, output.weight))
    assert output.bias.grad is None


def test_condition_loss_averages_shown_entries_only() -> None:
    generator = torch.Generator().manual_seed(1)
    raw = torch.randn(6, WIDTH, generator=generator)
    codes = torch.stack(
        [torch.randint(0, 3, (6,), generator=generator), torch.randint(0, 4, (6,), generator=generator)], dim=1
    )
    mask = torch.tensor([[True, True], [True, False], [True, False], [True, True], [True, False], [True, False]])
    bucket = F.cross_entropy(raw[:, 0:3], codes[:, 0], reduction="none")
    colour = F.cross_entropy(raw[:, 7:11], codes[:, 1], reduction="none")
    expected = (bucket.sum() + colour[mask[:, 1]].sum()) / 8
    assert torch.allclose(condition_loss(raw, SPEC, codes, mask), expected)
    # Whatever the generator says about masked colour entries does not matter.
    scrambled = raw.clone()
    scrambled[~mask[:, 1], 7:11] = torch.randn(4, 4, generator=generator) * 10
    assert torch.allclose(condition_loss(scrambled, SPEC, codes, mask), expected)


def test_batch_size_must_be_a_multiple_of_pac() -> None:
    with pytest.raises(ConfigError, match="batch_size=15 is not a multiple of model.ctgan.pac=2"):
        CTGANModule(LAYOUT, SPEC, TINY, batch_size=15)
    module = build(TINY)
    with pytest.raises(ConfigError, match="not a multiple"):
        fit_batches(module, make_batches(1, batch_size=15))


def test_smoke_fit_changes_parameters_and_logs_finite_losses() -> None:
    module = build(TINY)
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    trainer = fit_batches(module, make_batches(3))
    for name in ("loss/generator", "loss/critic", "loss/gradient_penalty", "loss/condition"):
        assert torch.isfinite(trainer.callback_metrics[f"{name}_epoch"]), name
    assert "lr/generator" in trainer.callback_metrics
    for prefix in ("generator.", "critic."):
        moved = [not torch.equal(p, before[n]) for n, p in module.named_parameters() if n.startswith(prefix)]
        assert all(moved), prefix
    assert module.hparams["model"] == "ctgan" and module.hparams["width"] == WIDTH
    assert module.hparams["generator_dims"] == [16, 16]
    # No index buffers in the weights; the generator's moving average is there (bundles sample from it).
    assert all(key.startswith(("generator.", "generator_ema.", "critic.")) for key in module.state_dict())
    moved = [not torch.equal(p, before[n.replace("generator_ema.", "generator.")])
             for n, p in module.generator_ema.named_parameters(prefix="generator_ema")]
    assert all(moved) and not any(p.requires_grad for p in module.generator_ema.parameters())


@pytest.fixture(scope="module")
def trained() -> CTGANModule:
    """A generator trained for 300 steps: enough to learn to copy its condition into the bucket slice."""
    config = CTGANConfig(
        embedding_dim=8, generator_dims=(16, 16), critic_dims=(16, 16), pac=2, generator_lr=2e-3, critic_lr=2e-3
    )
    module = build(config, seed=3)
    fit_batches(module, make_batches(300, batch_size=32, seed=3), seed=3)
    return module


def check_rows(rows: Tensor) -> None:
    """Softmax spans are exact one-hots and the tanh scalar is within [-1, 1]."""
    for start, stop in ((0, 3), (4, 7), (7, 11)):
        block = rows[:, start:stop]
        assert bool(((block == 0) | (block == 1)).all())
        assert torch.equal(block.sum(dim=1), torch.ones(rows.shape[0]))
    assert bool((rows[:, 3].abs() <= 1).all())


def test_generated_rows_are_valid_and_honour_the_condition(trained: CTGANModule) -> None:
    codes = torch.stack([torch.arange(3).repeat_interleave(200), torch.zeros(600, dtype=torch.long)], dim=1)
    mask = torch.tensor([True, False]).repeat(600, 1)
    rows = trained.generate(SPEC.vector(codes, mask), generator=torch.Generator().manual_seed(0))
    assert rows.shape == (600, WIDTH)
    check_rows(rows)
    agree = (SPEC.codes_from_encoded(rows)[:, 0] == codes[:, 0]).float()
    # Chance is 1/3; the condition loss drives this close to 1. Each bucket must be honoured, tail included.
    for bucket in range(3):
        assert float(agree[codes[:, 0] == bucket].mean()) > 0.8, bucket


def test_same_seed_same_rows_and_modes_restored(trained: CTGANModule) -> None:
    cond = SPEC.vector(torch.tensor([[2, 1]] * 8), torch.ones(8, 2, dtype=torch.bool))
    trained.train()
    running_mean = trained.generator.blocks[0].norm.running_mean.clone()
    first = trained.generate(cond, generator=torch.Generator().manual_seed(7))
    again = trained.generate(cond, generator=torch.Generator().manual_seed(7))
    other = trained.generate(cond, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert trained.training and trained.generator.blocks[0].norm.training
    assert torch.equal(trained.generator.blocks[0].norm.running_mean, running_mean)  # eval(): stats untouched
    assert trained.generate(cond[:1]).shape == (1, WIDTH)  # BatchNorm in train mode would refuse one row


def test_generate_rows_batches_in_order(trained: CTGANModule) -> None:
    generator = torch.Generator().manual_seed(4)
    codes = torch.stack(
        [torch.randint(0, 3, (25,), generator=generator), torch.randint(0, 4, (25,), generator=generator)], dim=1
    )
    mask = torch.rand(25, 2, generator=generator) < 0.7
    mask[:, 0] = True
    rows = generate_rows(trained, SPEC, codes, mask, batch_size=10, generator=torch.Generator().manual_seed(5))
    # The same generator consumed batch by batch (10, 10, 5) reproduces it exactly.
    reference_generator = torch.Generator().manual_seed(5)
    pieces = [
        trained.generate(SPEC.vector(codes[s : s + 10], mask[s : s + 10]), reference_generator) for s in (0, 10, 20)
    ]
    assert torch.equal(rows, torch.cat(pieces))
    check_rows(rows)
    with pytest.raises(ValueError, match=r"'colour': codes must lie in \[0, 4\)"):
        generate_rows(trained, SPEC, torch.stack([codes[:, 0], codes[:, 1] + 4], 1), mask)
    with pytest.raises(ValueError, match=r"shape \[n, 2\]"):
        generate_rows(trained, SPEC, codes[:, :1], mask[:, :1])


def test_generate_samples_from_the_moving_average(trained: CTGANModule) -> None:
    """Perturbing the trained generator leaves generated rows unchanged: `generate` reads the average."""
    cond = SPEC.vector(torch.tensor([[2, 1]] * 8), torch.ones(8, 2, dtype=torch.bool))
    before = trained.generate(cond, generator=torch.Generator().manual_seed(7))
    saved = {name: p.detach().clone() for name, p in trained.generator.named_parameters()}
    with torch.no_grad():
        for p in trained.generator.parameters():
            p.add_(1.0)
    try:
        assert torch.equal(trained.generate(cond, generator=torch.Generator().manual_seed(7)), before)
    finally:
        with torch.no_grad():
            for name, p in trained.generator.named_parameters():
                p.copy_(saved[name])


def test_without_averaging_generate_reads_the_trained_generator() -> None:
    module = build(replace(TINY, ema_decay=0.0))
    assert module.generator_ema is None
    assert all(key.startswith(("generator.", "critic.")) for key in module.state_dict())
    cond = SPEC.vector(torch.tensor([[2, 1]] * 8), torch.ones(8, 2, dtype=torch.bool))
    before = module.generate(cond, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        module.generator.output.bias.add_(1.0)
    assert not torch.equal(module.generate(cond, generator=torch.Generator().manual_seed(7)), before)


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_ema_decay_outside_its_range_is_a_config_error(decay: float) -> None:
    with pytest.raises(ConfigError, match="ema_decay"):
        replace(TINY, ema_decay=decay)
