"""Broker-agnostic inputs and outputs of the enrichment pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

from model_store.quality.results import QualityResult
from processors.errors import InputRejected
from processors.knn_vote import CategoryVote, Neighbour


@dataclass(frozen=True)
class ImageRequest:
    event_id: str
    product_id: str
    seller_id: str
    image_url: str | None = None
    image_b64: str | None = None
    scene: str | None = None
    category_hint: str | None = None


@dataclass(frozen=True)
class Enrichment:
    request: ImageRequest
    model_id: str
    model_version: str
    vote: CategoryVote
    similar: tuple[Neighbour, ...]
    image_width: int
    image_height: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    quality: QualityResult | None = None


@dataclass(frozen=True)
class Rejection:
    request: ImageRequest
    error: InputRejected


Outcome = Enrichment | Rejection
