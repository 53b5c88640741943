"""Visual-experience network of seed 004 (fig. 12): Conv layers, Flatten, two outputs.

Output1 is the aesthetic sub-score, Output2 the noise sub-score; both are sigmoids in [0, 1].
The noise sub-score is a cleanliness score: 1 = no visible degradation, 0 = heavily degraded
(trained to ``1 - distortion`` of the generator). The first conv runs at full resolution, as
sensor noise and JPEG blocks live in the highest frequencies; Flatten (not global pooling)
keeps where things are, which the composition part of the aesthetic needs.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VisualNet(nn.Module):
    """Returns [N, 2]: column 0 aesthetic, column 1 noise (cleanliness), both in [0, 1]."""

    def __init__(self, width: int = 16, image_size: int = 64) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv(3, w, 1), _conv(w, 2 * w, 2), _conv(2 * w, 2 * w, 1),
            _conv(2 * w, 3 * w, 2), _conv(3 * w, 4 * w, 2), _conv(4 * w, 4 * w, 2),
        )  # fmt: skip
        grid = image_size // 16
        self.flatten = nn.Flatten()
        self.shared = nn.Sequential(nn.Linear(4 * w * grid * grid, 128), nn.ReLU(inplace=True), nn.Dropout(0.1))
        self.aesthetic = nn.Linear(128, 1)  # Output1
        self.noise = nn.Linear(128, 1)  # Output2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.shared(self.flatten(self.features(x)))
        return torch.sigmoid(torch.cat([self.aesthetic(h), self.noise(h)], dim=1).float())
