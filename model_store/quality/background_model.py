"""Background recognition network of seed 004, figs. 2 to 4.

- ``Bottleneck3x3`` (fig. 3): a main branch DW_3x3 -> Conv_1x1 -> BN -> ReLU -> DW_3x3 -> Conv_1x1
  -> BN (MaxPooling when it downsamples) and an edge (shortcut) branch AvgPooling -> DW_3x3 ->
  Conv_1x1 -> BN, joined by Add: three DW_3x3 layers in all, and the DW + Conv_1x1 on the edge keep
  the gradient flowing.
- ``Bottleneck5x5`` (fig. 4): DW_3x3 -> Conv_1x1 -> BN -> ReLU, then DW_1x5 -> DW_5x1 beside DW_5x5
  (summed: three receptive fields), Conv_1x1 -> BN, AvgPooling when it downsamples; the edge branch
  is AvgPooling -> Conv_1x1 -> BN; Add.
- ``BackgroundNet`` (fig. 2): Input -> Conv stem -> Bottleneck3x3 -> a 3x3 path and a 5x5 path side by
  side -> Concat -> Conv_1x1 -> AvgPooling to a grid -> Flatten -> class output over
  ``BACKGROUND_CLASSES``. The grid is 2x2 by default (so a gradient's direction survives); at 4x4
  each corner cell is a 16-px corner of a 64-px image, which a product that fills the frame leaves
  mostly bare, where a 2x2 cell averages the corner into a quarter of the product.
"""

from __future__ import annotations

import torch
from torch import nn

from model_store.vocabulary import BACKGROUND_CLASSES


def dw(channels: int, kernel: tuple[int, int] | int) -> nn.Conv2d:
    """Depthwise convolution with 'same' padding."""
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    return nn.Conv2d(channels, channels, k, padding=(k[0] // 2, k[1] // 2), groups=channels, bias=False)


def pw_bn(cin: int, cout: int) -> nn.Sequential:
    """Conv_1x1 + BN."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))


def _pool(kind: type[nn.Module], stride: int) -> nn.Module:
    return kind(2) if stride == 2 else nn.Identity()


class Bottleneck3x3(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.main = nn.Sequential(
            dw(cin, 3), pw_bn(cin, cout), nn.ReLU(inplace=True),
            dw(cout, 3), pw_bn(cout, cout), _pool(nn.MaxPool2d, stride),
        )  # fmt: skip
        self.edge = nn.Sequential(_pool(nn.AvgPool2d, stride), dw(cin, 3), pw_bn(cin, cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.main(x) + self.edge(x))


class Bottleneck5x5(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.head = nn.Sequential(dw(cin, 3), pw_bn(cin, cout), nn.ReLU(inplace=True))
        self.separable = nn.Sequential(dw(cout, (1, 5)), dw(cout, (5, 1)))
        self.square = dw(cout, 5)
        self.tail = nn.Sequential(pw_bn(cout, cout), _pool(nn.AvgPool2d, stride))
        self.edge = nn.Sequential(_pool(nn.AvgPool2d, stride), pw_bn(cin, cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.act(self.tail(self.separable(h) + self.square(h)) + self.edge(x))


class BackgroundNet(nn.Module):
    """Logits over ``classes`` for a normalised NCHW batch (any size divisible by 16)."""

    def __init__(self, width: int = 32, classes: tuple[str, ...] = BACKGROUND_CLASSES, grid: int = 2) -> None:
        super().__init__()
        self.classes = tuple(classes)
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(True))
        self.trunk = Bottleneck3x3(w // 2, w, stride=2)
        self.path3 = nn.Sequential(Bottleneck3x3(w, 2 * w, stride=2), Bottleneck3x3(2 * w, 2 * w))
        self.path5 = nn.Sequential(Bottleneck5x5(w, 2 * w, stride=2), Bottleneck5x5(2 * w, 2 * w))
        self.fuse = nn.Sequential(pw_bn(4 * w, 4 * w), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.classify = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(4 * w * grid**2, len(self.classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(self.stem(x))
        h = torch.cat([self.path3(h), self.path5(h)], dim=1)
        return self.classify(self.pool(self.fuse(h)))
