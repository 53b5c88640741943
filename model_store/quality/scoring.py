"""From model outputs to scores in [0, 1]: background table, position formula, visual and total.

All configs are frozen dataclasses with ``to_dict``/``from_dict`` so a deployment can override them
(the scorer echoes the weights it used in every result).

- Background: ``score = sum_c p(c) * table[scene][c]``, the table row of the event's scene (the
  ``default`` row when the scene is absent or unknown), expected over the class probabilities, so a
  confident prediction gives exactly the table entry.
- Position (see ``position_score``): ``geometry = fill * centring * border``, then
  ``score = prob * geometry * (f + (1 - f) * p_subject) + (1 - prob) * neutral``.
- Visual: ``w_aesthetic * aesthetic + w_noise * noise`` (weights normalised to sum 1).
- Total: ``w_b * background + w_p * position + w_v * visual`` (weights normalised to sum 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model_store.vocabulary import BACKGROUND_CLASSES

DEFAULT_ROW = "default"
_DEFAULT_TABLE: dict[str, dict[str, float]] = {
    DEFAULT_ROW: {"white": 0.95, "black": 0.65, "solid": 0.75, "gradient": 0.7, "life_scene": 0.45},
    "digital": {"white": 1.0, "black": 0.75, "solid": 0.6, "gradient": 0.6, "life_scene": 0.3},
    "apparel": {"white": 0.95, "black": 0.6, "solid": 0.75, "gradient": 0.65, "life_scene": 0.6},
    "food": {"white": 0.55, "black": 0.5, "solid": 0.85, "gradient": 0.75, "life_scene": 0.95},
    "home": {"white": 0.85, "black": 0.55, "solid": 0.75, "gradient": 0.7, "life_scene": 0.8},
}


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def _normalised(values: tuple[float, ...], what: str) -> tuple[float, ...]:
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"{what} weights must be >= 0 with a positive sum, got {values}")
    total = sum(values)
    return tuple(v / total for v in values)


@dataclass(frozen=True)
class BackgroundScoreTable:
    """Score of each background class per application scene; every row covers every class."""

    rows: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: _DEFAULT_TABLE)

    def __post_init__(self) -> None:
        if DEFAULT_ROW not in self.rows:
            raise ValueError(f"the table needs a {DEFAULT_ROW!r} row")
        for scene, row in self.rows.items():
            missing = set(BACKGROUND_CLASSES) - set(row)
            bad = {k: v for k, v in row.items() if not 0.0 <= v <= 1.0}
            if missing or bad:
                raise ValueError(f"row {scene!r}: missing classes {sorted(missing)}, out of [0, 1]: {bad}")

    def row(self, scene: str | None) -> Mapping[str, float]:
        return self.rows.get(scene or DEFAULT_ROW, self.rows[DEFAULT_ROW])

    def score(self, probabilities: Mapping[str, float], scene: str | None) -> float:
        row = self.row(scene)
        return _clip01(sum(p * row[c] for c, p in probabilities.items()))

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {scene: dict(row) for scene, row in self.rows.items()}


@dataclass(frozen=True)
class PositionScoreConfig:
    target_fill: float = 0.85  # long side of the box, as a frame fraction, that counts as "fills it"
    border_margin: float = 0.01  # a box edge this close to the frame edge counts as touching it
    touch_penalty: float = 0.25  # factor lost per touching side (a cut product touches 1-2 sides)
    subject_floor: float = 0.5  # f: weight kept when the model says non-subject with certainty
    neutral: float = 0.5  # where an unsure box (low coordinate probability) pulls the score

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def position_geometry(box: tuple[float, float, float, float], config: PositionScoreConfig) -> float:
    """fill * centring * border, from the box alone (each factor in [0, 1])."""
    x0, y0, x1, y1 = box
    fill = min(1.0, max(x1 - x0, y1 - y0) / config.target_fill)
    centring = 1.0 - math.hypot((x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5) / math.sqrt(0.5)
    touching = sum(edge <= config.border_margin for edge in (x0, y0, 1.0 - x1, 1.0 - y1))
    border = (1.0 - config.touch_penalty) ** touching
    return _clip01(fill * centring * border)


def position_score(
    box: tuple[float, float, float, float],
    probability: float,
    subject_prob: float,
    config: PositionScoreConfig,
) -> float:
    """Confidence-weighted geometry, scaled down when the model calls the position non-subject."""
    f = config.subject_floor
    judged = position_geometry(box, config) * (f + (1.0 - f) * subject_prob)
    return _clip01(probability * judged + (1.0 - probability) * config.neutral)


@dataclass(frozen=True)
class VisualScoreConfig:
    aesthetic: float = 0.5
    noise: float = 0.5

    def weights(self) -> tuple[float, float]:
        return _normalised((self.aesthetic, self.noise), "visual")  # type: ignore[return-value]

    def score(self, aesthetic: float, noise: float) -> float:
        wa, wn = self.weights()
        return _clip01(wa * aesthetic + wn * noise)

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TotalWeights:
    background: float = 0.3
    position: float = 0.35
    visual: float = 0.35

    def normalised(self) -> TotalWeights:
        return TotalWeights(*_normalised((self.background, self.position, self.visual), "total"))

    def total(self, background: float, position: float, visual: float) -> float:
        w = self.normalised()
        return _clip01(w.background * background + w.position * position + w.visual * visual)

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ScoringConfig:
    """Everything that turns model outputs into scores; not part of any model's weights."""

    background_table: BackgroundScoreTable = field(default_factory=BackgroundScoreTable)
    position: PositionScoreConfig = field(default_factory=PositionScoreConfig)
    visual: VisualScoreConfig = field(default_factory=VisualScoreConfig)
    weights: TotalWeights = field(default_factory=TotalWeights)

    def to_dict(self) -> dict[str, Any]:
        return {
            "background_table": self.background_table.to_dict(), "position": self.position.to_dict(),
            "visual": self.visual.to_dict(), "weights": self.weights.to_dict(),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoringConfig:
        return cls(
            BackgroundScoreTable(data["background_table"]) if "background_table" in data else BackgroundScoreTable(),
            PositionScoreConfig(**data.get("position", {})),
            VisualScoreConfig(**data.get("visual", {})),
            TotalWeights(**data.get("weights", {})),
        )
