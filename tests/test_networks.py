"""Network shapes and packing, and the span-wise output activation."""

from __future__ import annotations

import pytest
import torch

from tailsynth.models.activation import SpanPlan, activate
from tailsynth.models.layout import SpanInfo
from tailsynth.models.networks import Critic, Generator, VAEDecoder, VAEEncoder

# Mixed widths on purpose, interleaved, so grouping by width has to permute columns back correctly.
SPANS = (
    SpanInfo(1, "tanh"),
    SpanInfo(3, "softmax"),
    SpanInfo(2, "softmax"),
    SpanInfo(3, "softmax"),
    SpanInfo(1, "tanh"),
    SpanInfo(5, "softmax"),
    SpanInfo(2, "softmax"),
)
WIDTH = 17


def span_slices() -> list[tuple[SpanInfo, slice]]:
    out, start = [], 0
    for span in SPANS:
        out.append((span, slice(start, start + span.dim)))
        start += span.dim
    return out


def test_generator_shapes_and_residual_widths() -> None:
    net = Generator(noise_dim=8, cond_dim=4, hidden=(16, 8), out_dim=WIDTH)
    out = net(torch.randn(6, 8), torch.zeros(6, 4))
    assert out.shape == (6, WIDTH)
    # Residual blocks concatenate: the output layer sees 8 + 4 + 16 + 8 features.
    assert net.output.in_features == 36


def test_critic_packs_consecutive_rows() -> None:
    critic = Critic(in_dim=5, hidden=(16, 8), pac=2).eval()  # eval: no dropout, so outputs are comparable
    rows = torch.randn(8, 5)
    scores = critic(rows)
    assert scores.shape == (4,)
    # Pack 0 is rows 0 and 1 side by side; swapping them inside the pack changes its score, not the others.
    swapped = rows[[1, 0, 2, 3, 4, 5, 6, 7]]
    changed = critic(swapped)
    assert not torch.allclose(changed[0], scores[0])
    assert torch.allclose(changed[1:], scores[1:])
    expected = critic.layers(rows.reshape(4, 10)).squeeze(1)
    assert torch.allclose(scores, expected)
    with pytest.raises(ValueError, match="not a multiple of pac=2"):
        critic(torch.randn(7, 5))


def test_vae_shapes_and_sigma_parameter() -> None:
    encoder = VAEEncoder(in_dim=WIDTH + 4, hidden=(16,), latent=6)
    mu, logvar = encoder(torch.randn(5, WIDTH + 4))
    assert mu.shape == logvar.shape == (5, 6)
    decoder = VAEDecoder(latent=10, hidden=(16, 8), out_dim=WIDTH)
    raw, sigmas = decoder(torch.randn(5, 10))
    assert raw.shape == (5, WIDTH)
    assert isinstance(sigmas, torch.nn.Parameter) and sigmas.shape == (WIDTH,)
    assert torch.allclose(sigmas, torch.full((WIDTH,), 0.1))


def test_soft_activation_is_tanh_and_distributions() -> None:
    raw = torch.randn(32, WIDTH, generator=torch.Generator().manual_seed(0)) * 3
    out = activate(raw, SPANS, tau=0.5, generator=torch.Generator().manual_seed(1))
    assert out.shape == raw.shape
    for span, cols in span_slices():
        if span.activation == "tanh":
            assert torch.equal(out[:, cols], torch.tanh(raw[:, cols]))
        else:
            assert bool((out[:, cols] > 0).all())
            assert torch.allclose(out[:, cols].sum(dim=1), torch.ones(32))


def test_hard_activation_gives_exact_one_hots_at_the_dominant_logit() -> None:
    generator = torch.Generator().manual_seed(2)
    raw = torch.randn(64, WIDTH, generator=generator)
    targets = {}
    for span, cols in span_slices():
        if span.activation == "softmax":
            # +50 beats any Gumbel noise (its range is about [-4.5, 17]), so the one-hot must land here.
            targets[cols.start] = torch.randint(0, span.dim, (64,), generator=generator)
            raw[torch.arange(64), cols.start + targets[cols.start]] += 50.0
    out = activate(raw, SPANS, tau=0.2, hard=True, generator=generator)
    for span, cols in span_slices():
        block = out[:, cols]
        if span.activation == "tanh":
            assert bool((block.abs() <= 1).all())
            continue
        assert bool(((block == 0) | (block == 1)).all())
        assert torch.equal(block.sum(dim=1), torch.ones(64))
        assert torch.equal(block.argmax(dim=1), targets[cols.start])


def test_hard_samples_follow_the_softmax_of_the_logits() -> None:
    """Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits), whatever tau."""
    probs = torch.tensor([0.7, 0.2, 0.1])
    raw = probs.log().repeat(20_000, 1)
    out = activate(raw, (SpanInfo(3, "softmax"),), tau=0.2, hard=True, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(out.mean(dim=0), probs, atol=0.015)


def test_activation_is_deterministic_per_generator() -> None:
    raw = torch.randn(16, WIDTH, generator=torch.Generator().manual_seed(4))
    plan = SpanPlan(SPANS)
    first = activate(raw, plan, tau=0.2, hard=True, generator=torch.Generator().manual_seed(5))
    again = activate(raw, plan, tau=0.2, hard=True, generator=torch.Generator().manual_seed(5))
    other = activate(raw, plan, tau=0.2, hard=True, generator=torch.Generator().manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    soft = activate(raw, plan, tau=0.2, generator=torch.Generator().manual_seed(5))
    # The same noise drives the soft and hard versions: their argmaxes agree on every span.
    for span, cols in span_slices():
        if span.activation == "softmax":
            assert torch.equal(soft[:, cols].argmax(dim=1), first[:, cols].argmax(dim=1))


def test_hard_activation_passes_straight_through_gradients() -> None:
    raw = torch.randn(8, WIDTH, requires_grad=True)
    out = activate(raw, SPANS, tau=0.5, hard=True, generator=torch.Generator().manual_seed(7))
    (out * torch.randn(8, WIDTH)).sum().backward()
    assert raw.grad is not None and bool((raw.grad.abs().sum(dim=0) > 0).all())


def test_plan_is_not_in_the_state_dict_and_checks_widths() -> None:
    plan = SpanPlan(SPANS)
    assert plan.width == WIDTH and plan.group_dims == (2, 3, 5)
    assert plan.state_dict() == {}
    with pytest.raises(ValueError, match=r"shape \[b, 17\]"):
        activate(torch.randn(2, 16), plan, tau=0.2)
