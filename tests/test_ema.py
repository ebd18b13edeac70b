"""The generator's moving average: the update rule, its warm-up, and integer buffers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tailsynth.models.ema import averaged_copy, ema_decay, update_average


def small_net(seed: int) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_update_is_a_lerp_of_parameters_and_float_buffers() -> None:
    net = small_net(0)
    average = averaged_copy(net)
    assert not any(p.requires_grad for p in average.parameters())
    old = {k: v.clone() for k, v in average.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net[1].running_mean.fill_(2.0)
    net[1].num_batches_tracked.fill_(7)
    update_average(average, net, 0.9)
    new, current = average.state_dict(), net.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.running_mean"):
        torch.testing.assert_close(new[key], 0.9 * old[key] + 0.1 * current[key])
    assert int(new["1.num_batches_tracked"]) == 7  # integers are copied, not averaged


def test_decay_zero_copies_the_network() -> None:
    net, average = small_net(0), small_net(1)
    update_average(average, net, 0.0)
    for a, b in zip(average.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("updates", "expected"), [(0, 0.1), (10, 11 / 20), (100_000, 0.999)])
def test_warm_up_shortens_the_horizon_of_the_first_updates(updates: int, expected: float) -> None:
    assert ema_decay(0.999, updates) == pytest.approx(expected)
