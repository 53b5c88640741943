"""Event contracts (DESIGN.md section 3), validated strictly at the edge.

Values are UTF-8 JSON with a ``schema_version``. Unknown fields are refused, so a
producer's typo is caught instead of silently ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

Id = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ImageSubmitted(_Strict):
    """A seller uploaded one product image. Exactly one of ``image_url`` / ``image_b64``."""

    schema_version: Literal[1] = 1
    event_id: Id
    product_id: Id
    seller_id: Id
    image_url: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    image_b64: Annotated[str, StringConstraints(min_length=1)] | None = None
    scene: Label | None = Field(None, description="application scene, e.g. digital, food, apparel")
    category_hint: Label | None = None
    submitted_at: datetime

    @model_validator(mode="after")
    def _exactly_one_image(self) -> ImageSubmitted:
        if self.image_url is None and self.image_b64 is None:
            raise PydanticCustomError("image_missing", "one of image_url or image_b64 is required")
        if self.image_url is not None and self.image_b64 is not None:
            raise PydanticCustomError("image_ambiguous", "give image_url or image_b64, not both")
        return self


class ModelRef(_Strict):
    id: str
    version: str


class Neighbour(_Strict):
    product_id: str
    category: str
    score: float


class CategoryResult(_Strict):
    label: str | None = Field(description="voted category; null when the trusted gallery is empty")
    vote_share: float = Field(ge=0.0, le=1.0)
    votes: dict[str, int]
    k: int = Field(ge=0)
    neighbours: list[Neighbour]


class BackgroundQuality(_Strict):
    label: str
    probability: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=0.0, le=1.0)


class PositionQuality(_Strict):
    category: Literal["subject", "non_subject"]
    box: tuple[float, float, float, float]
    probability: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=0.0, le=1.0)


class VisualQuality(_Strict):
    aesthetic: float = Field(ge=0.0, le=1.0)
    noise: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=0.0, le=1.0)


class QualityWeights(_Strict):
    background: float
    position: float
    visual: float


class Quality(_Strict):
    background: BackgroundQuality
    position: PositionQuality
    visual: VisualQuality
    total: float = Field(ge=0.0, le=1.0)
    weights: QualityWeights


class SourceRef(_Strict):
    topic: str
    partition: int
    offset: int


class ImageEnriched(_Strict):
    schema_version: Literal[1] = 1
    event_id: str
    product_id: str
    seller_id: str
    scene: str | None = None
    category_hint: str | None = None
    model: ModelRef
    category: CategoryResult
    similar_items: list[Neighbour]
    quality: Quality | None = Field(description="null until the quality models are deployed; never a placeholder")
    image: dict[str, int] = Field(description="decoded width and height")
    timings: dict[str, float] = Field(description="per-stage milliseconds of the micro-batch")
    source: SourceRef | None = None
    processed_at: datetime


class DeadLetter(_Strict):
    """An input the worker refused, with everything needed to understand and replay it."""

    schema_version: Literal[1] = 1
    error_code: str
    message: str
    stage: str
    source: SourceRef
    original_key_b64: str | None
    original_value_b64: str = Field(description="the original value, or its first bytes when truncated")
    original_value_size: int | None = Field(None, ge=0, description="bytes of the original value")
    original_value_sha256: str | None = Field(None, description="hex digest of the whole original value")
    original_truncated: bool = Field(
        False, description="true when key or value were cut to keep the dead letter under the broker's size limit"
    )
    event_id: str | None = None
    product_id: str | None = None
    failed_at: datetime


class LabelConfirmed(_Strict):
    schema_version: Literal[1] = 1
    product_id: Id
    category: Label
    source: Label = Field(description="who confirmed it, e.g. moderation, back_office")
    event_id: Id | None = None
    confirmed_at: datetime | None = None


EVENT_MODELS: dict[str, type[BaseModel]] = {
    "ImageSubmitted": ImageSubmitted,
    "ImageEnriched": ImageEnriched,
    "DeadLetter": DeadLetter,
    "LabelConfirmed": LabelConfirmed,
}


def utc_now() -> datetime:
    return datetime.now(UTC)
