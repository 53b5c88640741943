"""Architecture names recorded in manifests, and the one place that turns them back into modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from model_store.quality.background_model import BackgroundNet
from model_store.quality.position_model import PositionNet
from model_store.quality.visual_model import VisualNet

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "seed004-background-bottleneck": BackgroundNet,
    "seed004-position-csp-detector": PositionNet,
    "seed004-visual-conv-flatten": VisualNet,
}
KIND_TO_ARCHITECTURE = {
    "quality-background": "seed004-background-bottleneck",
    "quality-position": "seed004-position-csp-detector",
    "quality-visual": "seed004-visual-conv-flatten",
}


class UnknownArchitectureError(LookupError):
    """A manifest names an architecture this code does not know."""


def build(architecture: str, config: Mapping[str, Any]) -> nn.Module:
    """A fresh module of ``architecture`` with the constructor arguments in ``config``."""
    factory = ARCHITECTURES.get(architecture)
    if factory is None:
        raise UnknownArchitectureError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    return factory(**dict(config))
