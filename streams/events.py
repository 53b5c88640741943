"""Event contracts (DESIGN.md section 3), validated strictly at the edge.

Values are UTF-8 JSON with a ``schema_version``. Unknown fields are refused, so a
producer's typo is caught instead of silently ignored.

The published JSON Schema files are generated from these models and must give the same verdict
as the worker on every value (``tests/unit/test_schema_agreement.py``). Hence the types below:
patterns without anchors that ECMA-262, Python ``re`` and Rust ``regex`` read alike (a ``$``
also matches before a final newline in Python), RFC 3339 timestamps with a time zone and
nothing else, integers as JSON Schema counts them (``1.0`` is one, ``true`` is not) and finite
numbers only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError


@dataclass(frozen=True, eq=False)
class _SchemaKeywords:
    """Extra JSON Schema keywords for a constraint the model checks in code, so the file states it too."""

    keywords: dict[str, Any]

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), **self.keywords}


_ID_FORBIDDEN = r"[^\x21-\x7e]"  # any character that is not printable ASCII (space excluded)
_TIMESTAMP = (
    r"^(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
_TIMESTAMP_FORBIDDEN = r"[^0-9TZ:.+-]"  # with it, Python's "$ before a final newline" cannot matter
_FLOAT_MAX = 1.7976931348623157e308  # JSON numbers beyond it (1e999) would be infinities


def _printable_ascii(value: str) -> str:
    if re.search(_ID_FORBIDDEN, value):
        raise PydanticCustomError("id_charset", "ids are printable ASCII without spaces (0x21-0x7e)")
    return value


_HEX_FORBIDDEN = r"[^0-9a-f]"


def _lower_hex(value: str) -> str:
    if re.search(_HEX_FORBIDDEN, value):
        raise PydanticCustomError("hex_charset", "a sha256 digest is 64 lowercase hexadecimal digits")
    return value


def _rfc3339(value: object) -> object:
    """RFC 3339 text with a time zone (Z or +hh:mm), 1-9 fractional digits, no leap second."""
    if isinstance(value, datetime):  # built in Python by the worker itself, not read from JSON
        return value
    if not isinstance(value, str) or re.search(_TIMESTAMP_FORBIDDEN, value) or not re.search(_TIMESTAMP, value):
        raise PydanticCustomError(
            "datetime_rfc3339", "must be an RFC 3339 date-time with a time zone, e.g. 2024-05-01T12:00:00Z"
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:  # a day the month does not have
        raise PydanticCustomError("datetime_rfc3339", "not a calendar date: {error}", {"error": str(exc)}) from exc


def _integral(value: object) -> object:
    """JSON Schema counts 3.0 as the integer 3 (and true as no number): accept what it accepts."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _version(value: object) -> object:
    if isinstance(value, bool):  # True == 1 in Python, but true is not the number 1 in JSON
        raise PydanticCustomError("literal_error", "schema_version must be the number 1, not a boolean")
    return _integral(value)


Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    AfterValidator(_printable_ascii),
    _SchemaKeywords({"not": {"pattern": _ID_FORBIDDEN}}),
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Sha256 = Annotated[
    str,
    StringConstraints(min_length=64, max_length=64),
    AfterValidator(_lower_hex),
    _SchemaKeywords({"not": {"pattern": _HEX_FORBIDDEN}}),
]
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    _SchemaKeywords({"pattern": _TIMESTAMP, "not": {"pattern": _TIMESTAMP_FORBIDDEN}}),
]
Int = Annotated[int, BeforeValidator(_integral)]
Count = Annotated[int, Ge(0), BeforeValidator(_integral)]  # Ge first: pydantic states it as "minimum" then
Real = Annotated[float, Ge(-_FLOAT_MAX), Le(_FLOAT_MAX)]
SchemaVersion = Annotated[Literal[1], BeforeValidator(_version)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class ImageSubmitted(_Strict):
    """A seller uploaded one product image. Exactly one of ``image_url`` / ``image_b64``."""

    # the file states "exactly one, and not null" too (the model checks it in _exactly_one_image)
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["image_url"], "properties": {"image_url": {"type": "string"}}},
                {"required": ["image_b64"], "properties": {"image_b64": {"type": "string"}}},
            ]
        }
    )

    schema_version: SchemaVersion = 1
    event_id: Id
    product_id: Id
    seller_id: Id
    image_url: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    image_b64: Annotated[str, StringConstraints(min_length=1)] | None = None
    scene: Label | None = Field(None, description="application scene, e.g. digital, food, apparel")
    category_hint: Label | None = None
    submitted_at: Timestamp

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
    score: Real


class CategoryResult(_Strict):
    label: str | None = Field(description="voted category; null when the trusted gallery is empty")
    vote_share: float = Field(ge=0.0, le=1.0)
    votes: dict[str, Int]
    k: Count
    neighbours: list[Neighbour]


class BackgroundQuality(_Strict):
    label: str
    probability: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=0.0, le=1.0)


class PositionQuality(_Strict):
    category: Literal["subject", "non_subject"]
    box: tuple[Real, Real, Real, Real]
    probability: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=0.0, le=1.0)


class VisualQuality(_Strict):
    aesthetic: float = Field(ge=0.0, le=1.0)
    noise: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=0.0, le=1.0)


class QualityWeights(_Strict):
    background: Real
    position: Real
    visual: Real


class Quality(_Strict):
    background: BackgroundQuality
    position: PositionQuality
    visual: VisualQuality
    total: float = Field(ge=0.0, le=1.0)
    weights: QualityWeights


class SourceRef(_Strict):
    topic: str
    partition: Int
    offset: Int


class ImageEnriched(_Strict):
    schema_version: SchemaVersion = 1
    event_id: str
    product_id: str
    seller_id: str
    scene: str | None = None
    category_hint: str | None = None
    model: ModelRef
    category: CategoryResult
    similar_items: list[Neighbour]
    quality: Quality | None = Field(description="null until the quality models are deployed; never a placeholder")
    image: dict[str, Int] = Field(description="decoded width and height")
    timings: dict[str, Real] = Field(description="per-stage milliseconds of the micro-batch")
    source: SourceRef | None = None
    processed_at: Timestamp


class DeadLetter(_Strict):
    """An input the worker refused, with everything needed to understand and replay it."""

    schema_version: SchemaVersion = 1
    error_code: str
    message: str
    stage: str
    source: SourceRef
    original_key_b64: str | None
    original_value_b64: str = Field(description="the original value, or its first bytes when truncated")
    original_value_size: Count | None = Field(None, description="bytes of the original value")
    original_value_sha256: str | None = Field(None, description="hex digest of the whole original value")
    original_truncated: bool = Field(
        False, description="true when key or value were cut to keep the dead letter under the broker's size limit"
    )
    event_id: str | None = None
    product_id: str | None = None
    failed_at: Timestamp


class LabelConfirmed(_Strict):
    schema_version: SchemaVersion = 1
    product_id: Id
    category: Label
    source: Label = Field(description="who confirmed it, e.g. moderation, back_office")
    event_id: Id | None = None
    confirmed_at: Timestamp | None = None


class ModelActivated(_Strict):
    """A person selected the embedding model every worker must serve.

    Keyed ``active`` on the compacted models topic, so the latest activation is always in the log:
    a worker that starts reads it instead of trusting a stale environment default.
    """

    schema_version: SchemaVersion = 1
    model_ref: Id = Field(description="registry reference name@version of the model to serve")
    sha256: Sha256 = Field(description="sha256 of the model's weights file, as its manifest records it")
    collection: Id = Field(description="Milvus collection that holds this model's vectors")
    activated_at: Timestamp
    activated_by: Label = Field(description="who selected it (console user, or the command line user)")
    previous_ref: Id | None = Field(description="the model served before this activation; null for the first")


class GalleryItem(_Strict):
    """One trusted gallery image as ``catalog gallery load`` loaded it, replayable by a re-index.

    Keyed ``product_id`` on the compacted gallery topic, so the log keeps the latest image and
    category of every gallery product: a new model's collection is rebuilt from it.
    """

    schema_version: SchemaVersion = 1
    product_id: Id
    seller_id: Id
    image_b64: Annotated[str, StringConstraints(min_length=1)] = Field(description="the image (PNG), base64")
    category: Label = Field(description="the trusted category (label_source confirmed)")
    source: Label = Field(description="where the item came from, e.g. fashion-mnist:train or folder:<name>")
    loaded_at: Timestamp


ACTIVATION_KEY = b"active"  # the one key of the models topic: compaction keeps the latest activation

EVENT_MODELS: dict[str, type[BaseModel]] = {
    "ImageSubmitted": ImageSubmitted,
    "ImageEnriched": ImageEnriched,
    "DeadLetter": DeadLetter,
    "LabelConfirmed": LabelConfirmed,
    "ModelActivated": ModelActivated,
    "GalleryItem": GalleryItem,
}


def utc_now() -> datetime:
    return datetime.now(UTC)
