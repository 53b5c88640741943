"""The model-soup probe averages parameters and BN statistics, and keeps integer buffers."""

from __future__ import annotations

import torch
from torch import nn

from research.experiments.model_soup import uniform_soup


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    net[1].running_mean.normal_()
    net[1].num_batches_tracked.fill_(seed + 10)
    return net


def test_uniform_soup_is_the_mean() -> None:
    nets = [_net(s) for s in (0, 1, 2)]
    states = [{k: v.clone() for k, v in n.state_dict().items()} for n in nets]
    soup = uniform_soup(nets).state_dict()
    for key in ("0.weight", "0.bias", "1.running_mean", "1.running_var", "1.weight"):
        assert torch.allclose(soup[key], sum(s[key] for s in states) / 3)
    assert int(soup["1.num_batches_tracked"]) == 10
    assert not torch.allclose(soup["0.weight"], states[0]["0.weight"])
