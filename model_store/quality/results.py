"""Typed, frozen per-image results of the quality models (every number in [0, 1])."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class BackgroundResult:
    label: str  # one of BACKGROUND_CLASSES
    probability: float  # of that label
    score: float  # expected table score for the scene


@dataclass(frozen=True)
class PositionResult:
    category: Literal["subject", "non_subject"]
    box: tuple[float, float, float, float]  # (x0, y0, x1, y1), frame fractions
    probability: float  # coordinate probability: the model's estimate of the box's IoU
    score: float


@dataclass(frozen=True)
class VisualResult:
    aesthetic: float
    noise: float  # cleanliness: 1 = no visible degradation
    score: float


@dataclass(frozen=True)
class Weights:
    """The normalised weights the total was computed with (echoed in every result)."""

    background: float
    position: float
    visual: float


@dataclass(frozen=True)
class QualityResult:
    background: BackgroundResult
    position: PositionResult
    visual: VisualResult
    total: float
    weights: Weights

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in the shape of ImageEnriched's ``quality`` block (box as a list)."""
        out = dataclasses.asdict(self)
        out["position"]["box"] = list(self.position.box)
        return out
