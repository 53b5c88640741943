"""Image quality models of seed 004: background, product position and visual experience.

Serving uses ``QualityModels.load(...).score_batch(uint8 NHWC or PIL images, scenes)``; see
``scorer``. Training: ``python -m model_store.quality.train``; benchmark:
``python -m model_store.quality.benchmark``; design and figures: docs/quality.md.
"""

from model_store.quality.results import BackgroundResult, PositionResult, QualityResult, VisualResult, Weights
from model_store.quality.scorer import DEFAULT_REFS, QualityInputError, QualityModels
from model_store.quality.scoring import (
    BackgroundScoreTable,
    PositionScoreConfig,
    ScoringConfig,
    TotalWeights,
    VisualScoreConfig,
)

__all__ = [
    "DEFAULT_REFS", "BackgroundResult", "BackgroundScoreTable", "PositionResult", "PositionScoreConfig",
    "QualityInputError", "QualityModels", "QualityResult", "ScoringConfig", "TotalWeights", "VisualResult",
    "VisualScoreConfig", "Weights",
]  # fmt: skip
