"""Edge decoding of event values: every refusal maps to one exact ``error_code``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from processors.errors import InputRejected
from streams.decoding import parse_event, peek_ids
from streams.events import ImageSubmitted, LabelConfirmed

SUBMITTED: dict[str, Any] = {
    "event_id": "evt-1",
    "product_id": "prod-1",
    "seller_id": "seller-1",
    "image_url": "https://img.example.com/a.jpg",
    "submitted_at": "2024-05-01T12:00:00Z",
}
CONFIRMED: dict[str, Any] = {"product_id": "prod-1", "category": "shoes", "source": "moderation"}
BOTH = pytest.mark.parametrize(
    ("model", "base"),
    [(ImageSubmitted, SUBMITTED), (LabelConfirmed, CONFIRMED)],
    ids=["submitted", "confirmed"],
)


def encode(value: object) -> bytes:
    return json.dumps(value).encode()


def rejection(model: type[BaseModel], raw: bytes | None, stage: str = "validate") -> InputRejected:
    with pytest.raises(InputRejected) as info:
        parse_event(model, raw, stage=stage)
    return info.value


# --- valid events ---------------------------------------------------------------------------------


def test_image_submitted_round_trip() -> None:
    event = parse_event(ImageSubmitted, encode({**SUBMITTED, "scene": "digital", "category_hint": "phones"}))
    assert event.schema_version == 1
    assert (event.event_id, event.product_id, event.seller_id) == ("evt-1", "prod-1", "seller-1")
    assert event.image_url == SUBMITTED["image_url"] and event.image_b64 is None
    assert (event.scene, event.category_hint) == ("digital", "phones")
    assert event.submitted_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_event(ImageSubmitted, event.model_dump_json().encode()) == event


def test_image_submitted_accepts_base64_instead_of_url() -> None:
    raw = {k: v for k, v in SUBMITTED.items() if k != "image_url"} | {"image_b64": "iVBORw0KGgo="}
    event = parse_event(ImageSubmitted, encode(raw))
    assert event.image_b64 == "iVBORw0KGgo=" and event.image_url is None


def test_label_confirmed_round_trip() -> None:
    event = parse_event(LabelConfirmed, encode(CONFIRMED), stage="labels")
    assert (event.product_id, event.category, event.source) == ("prod-1", "shoes", "moderation")
    assert event.event_id is None and event.confirmed_at is None
    assert parse_event(LabelConfirmed, event.model_dump_json().encode()) == event


def test_events_are_frozen() -> None:
    event = parse_event(LabelConfirmed, encode(CONFIRMED))
    with pytest.raises(ValueError, match="frozen"):
        event.category = "hats"  # type: ignore[misc]


# --- refusals shared by both contracts --------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("raw", [None, b""], ids=["none", "zero-bytes"])
def test_empty_message(model: type[BaseModel], base: dict, raw: bytes | None) -> None:
    assert rejection(model, raw).error_code == "empty_message"


@BOTH
def test_invalid_utf8(model: type[BaseModel], base: dict) -> None:
    assert rejection(model, b'{"product_id": "\xff\xfe"}').error_code == "invalid_utf8"


@BOTH
@pytest.mark.parametrize("raw", [b"{", b"   ", b"not json", b'{"a": 1,}', b"\xef\xbb\xbf{}"])
def test_invalid_json(model: type[BaseModel], base: dict, raw: bytes) -> None:
    assert rejection(model, raw).error_code == "invalid_json"


@BOTH
@pytest.mark.parametrize("raw", [b"null", b"[1, 2]", b'"text"', b"42", b"true"])
def test_not_an_object(model: type[BaseModel], base: dict, raw: bytes) -> None:
    error = rejection(model, raw)
    assert error.error_code == "not_an_object"


@BOTH
def test_field_missing_names_the_field(model: type[BaseModel], base: dict) -> None:
    error = rejection(model, encode({k: v for k, v in base.items() if k != "product_id"}))
    assert error.error_code == "field_missing"
    assert error.message.startswith("product_id")


@BOTH
def test_field_unknown_names_the_field(model: type[BaseModel], base: dict) -> None:
    error = rejection(model, encode({**base, "prodcut_id": "typo"}))
    assert error.error_code == "field_unknown"
    assert error.message.startswith("prodcut_id")


@BOTH
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("product_id", 123),  # strict: no int -> str coercion
        ("product_id", ""),
        ("product_id", "has space"),
        ("product_id", "x" * 257),
        ("product_id", None),
    ],
    ids=["int", "empty", "space", "too-long", "null"],
)
def test_field_invalid(model: type[BaseModel], base: dict, field: str, value: object) -> None:
    error = rejection(model, encode({**base, field: value}))
    assert error.error_code == "field_invalid"
    assert error.message.startswith(f"{field}:")


@BOTH
@pytest.mark.parametrize("version", [0, 2, "1", None, 1.5])
def test_schema_version_unsupported(model: type[BaseModel], base: dict, version: object) -> None:
    error = rejection(model, encode({**base, "schema_version": version}))
    assert error.error_code == "schema_version_unsupported"


@BOTH
def test_explicit_schema_version_one_is_accepted(model: type[BaseModel], base: dict) -> None:
    assert parse_event(model, encode({**base, "schema_version": 1})).schema_version == 1  # type: ignore[attr-defined]


@BOTH
def test_stage_is_carried_and_refusal_is_not_retryable(model: type[BaseModel], base: dict) -> None:
    error = rejection(model, b"", stage="labels")
    assert error.stage == "labels"
    assert error.retryable is False


# --- refusals specific to ImageSubmitted ----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("submitted_at", "yesterday"),
        ("submitted_at", 1.5e20),
        ("seller_id", ["s"]),
        ("scene", ""),
        ("category_hint", "x" * 129),
        ("image_url", ""),
    ],
)
def test_image_submitted_field_invalid(field: str, value: object) -> None:
    error = rejection(ImageSubmitted, encode({**SUBMITTED, field: value}))
    assert error.error_code == "field_invalid"
    assert error.message.startswith(f"{field}:")


def test_image_missing() -> None:
    error = rejection(ImageSubmitted, encode({k: v for k, v in SUBMITTED.items() if k != "image_url"}))
    assert error.error_code == "image_missing"


def test_image_missing_when_both_are_null() -> None:
    error = rejection(ImageSubmitted, encode({**SUBMITTED, "image_url": None, "image_b64": None}))
    assert error.error_code == "image_missing"


def test_image_ambiguous() -> None:
    error = rejection(ImageSubmitted, encode({**SUBMITTED, "image_b64": "iVBORw0KGgo="}))
    assert error.error_code == "image_ambiguous"


def test_field_errors_win_over_image_checks() -> None:
    raw = {k: v for k, v in SUBMITTED.items() if k not in {"image_url", "seller_id"}}
    assert rejection(ImageSubmitted, encode(raw)).error_code == "field_missing"


# --- hostile payloads the two JSON parsers disagree on ---------------------------------------------


@BOTH
def test_deeply_nested_value_is_refused_not_crashing(model: type[BaseModel], base: dict) -> None:
    assert rejection(model, b"[" * 100_000).error_code == "invalid_json"


def test_json_that_only_pydantic_refuses_is_invalid_json() -> None:
    assert rejection(ImageSubmitted, b'{"event_id": "\\ud800"}').error_code == "invalid_json"


# --- peek_ids ---------------------------------------------------------------------------------------


def test_peek_ids_reads_both_ids() -> None:
    assert peek_ids(encode(SUBMITTED)) == ("evt-1", "prod-1")


def test_peek_ids_from_an_otherwise_invalid_event() -> None:
    assert peek_ids(encode({"event_id": "e", "bogus": 1})) == ("e", None)


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"\xff\xfe", b"{", b"[1]", b'"x"', b"null", encode({"event_id": 1, "product_id": ["p"]})],
)
def test_peek_ids_is_best_effort(raw: bytes | None) -> None:
    assert peek_ids(raw) == (None, None)


def test_peek_ids_keeps_only_string_ids() -> None:
    assert peek_ids(encode({"event_id": 7, "product_id": "p"})) == (None, "p")


def test_peek_ids_survives_deep_nesting() -> None:
    assert peek_ids(b"[" * 100_000) == (None, None)
