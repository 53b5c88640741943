"""Units of the product position detector, seed 004 figs. 6 to 11 (YOLOv5-style).

- ``CBL`` (fig. 6): Conv + BN + LeakyReLU.
- ``Focus`` (fig. 7): slice the input into its four pixel phases, Concat them on channels
  (n x n x 3 -> n/2 x n/2 x 12) and apply a CBL.
- ``SPP`` (fig. 8): a CBL, max-pool pyramid (stride 1, several kernel sizes) Concat, CBL.
- ``ResUnit`` (fig. 10): CBL 1x1 -> CBL 3x3, Add to the input.
- ``CSP1`` (fig. 9): CBL -> X ResUnits -> Conv on one path, a Conv on the other, Concat -> BN ->
  LeakyReLU -> CBL.
- ``CSP2`` (fig. 11): as CSP1 with the X ResUnits replaced by 2X CBLs (no residual Add).

Down-sampling is done by the stride-2 CBL placed before each CSP unit, as in YOLOv5.
"""

from __future__ import annotations

import torch
from torch import nn

LEAK = 0.1


class CBL(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(LEAK, inplace=True),
        )


class Focus(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__()
        self.cbl = CBL(4 * cin, cout, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sliced = [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]]
        return self.cbl(torch.cat(sliced, dim=1))


class SPP(nn.Module):
    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...] = (3, 5, 7)) -> None:
        super().__init__()
        hidden = cin // 2
        self.reduce = CBL(cin, hidden)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.fuse = CBL(hidden * (len(kernels) + 1), cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.reduce(x)
        return self.fuse(torch.cat([h, *(pool(h) for pool in self.pools)], dim=1))


class ResUnit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(CBL(channels, channels), CBL(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _CSP(nn.Module):
    def __init__(self, cin: int, cout: int, inner: nn.Module, hidden: int) -> None:
        super().__init__()
        self.enter = CBL(cin, hidden)
        self.inner = inner
        self.exit_conv = nn.Conv2d(hidden, hidden, 1, bias=False)
        self.bypass = nn.Conv2d(cin, hidden, 1, bias=False)
        self.merge = nn.Sequential(nn.BatchNorm2d(2 * hidden), nn.LeakyReLU(LEAK, inplace=True))
        self.out = CBL(2 * hidden, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.exit_conv(self.inner(self.enter(x)))
        return self.out(self.merge(torch.cat([y, self.bypass(x)], dim=1)))


class CSP1(_CSP):
    """CSP1_X: X residual units on the main path."""

    def __init__(self, cin: int, cout: int, x: int = 1) -> None:
        hidden = cout // 2
        super().__init__(cin, cout, nn.Sequential(*(ResUnit(hidden) for _ in range(x))), hidden)


class CSP2(_CSP):
    """CSP2_X: 2X CBLs (1x1 then 3x3, repeated) on the main path, no residual Add."""

    def __init__(self, cin: int, cout: int, x: int = 1) -> None:
        hidden = cout // 2
        layers = [CBL(hidden, hidden, 1 if i % 2 == 0 else 3) for i in range(2 * x)]
        super().__init__(cin, cout, nn.Sequential(*layers), hidden)
