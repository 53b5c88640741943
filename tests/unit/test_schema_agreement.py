"""The published JSON Schema files and the worker's parser give the same verdict on every value.

Each corpus value is judged twice: by ``jsonschema`` (draft 2020-12, with its format checker, so
``date-time`` is checked) against the committed file, and by ``streams.decoding.parse_event``.
The corpus is hand-written edge cases with the verdict they must get, plus every field (nested
ones too) of a valid event of each type set to each value of a palette of awkward values, removed,
or joined by an unknown field.

The JSON side first parses strictly: ``NaN``/``Infinity``, integers beyond CPython's digit limit
and lone surrogates are not interoperable JSON (RFC 8259 sections 6 and 8.2), and the worker
refuses them as ``invalid_json``/``field_invalid``, so both sides count them as rejected.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel

from processors.errors import InputRejected
from streams.decoding import parse_event
from streams.events import EVENT_MODELS
from streams.schema_files import SCHEMA_DIR
from tests.support.raw_json import RAW, to_text

SUBMITTED: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "evt-1",
    "product_id": "prod-1",
    "seller_id": "seller-1",
    "image_url": "https://img.example.com/a.jpg",
    "scene": "apparel",
    "category_hint": "shoes",
    "submitted_at": "2024-05-01T12:00:00Z",
}
CONFIRMED: dict[str, Any] = {
    "schema_version": 1,
    "product_id": "prod-1",
    "category": "shoes",
    "source": "moderation",
    "event_id": "evt-9",
    "confirmed_at": "2024-05-01T12:00:00.250+02:00",
}
SOURCE = {"topic": "catalog.images.v1", "partition": 3, "offset": 120}
NEIGHBOUR = {"product_id": "p-2", "category": "shoes", "score": 0.91}
ENRICHED: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "evt-1",
    "product_id": "prod-1",
    "seller_id": "seller-1",
    "scene": None,
    "category_hint": "shoes",
    "model": {"id": "student", "version": "17"},
    "category": {"label": "shoes", "vote_share": 0.75, "votes": {"shoes": 3, "bags": 1}, "k": 4,
                 "neighbours": [NEIGHBOUR]},
    "similar_items": [NEIGHBOUR],
    "quality": {
        "background": {"label": "white", "probability": 0.9, "score": 0.8},
        "position": {"category": "subject", "box": [0.1, 0.2, 0.8, 0.9], "probability": 0.7, "score": 0.6},
        "visual": {"aesthetic": 0.5, "noise": 0.1, "score": 0.7},
        "total": 0.7,
        "weights": {"background": 0.3, "position": 0.3, "visual": 0.4},
    },
    "image": {"width": 640, "height": 480},
    "timings": {"intake": 12.5, "embed": 40},
    "source": SOURCE,
    "processed_at": "2024-05-01T12:00:01.123456Z",
}  # fmt: skip
DEAD: dict[str, Any] = {
    "schema_version": 1,
    "error_code": "image_undecodable",
    "message": "payload is not a recognisable image",
    "stage": "intake",
    "source": SOURCE,
    "original_key_b64": "cHJvZC0x",
    "original_value_b64": "e30=",
    "original_value_size": 2,
    "original_value_sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "original_truncated": False,
    "event_id": "evt-1",
    "product_id": None,
    "failed_at": "2024-05-01T12:00:02+00:00",
}
ACTIVATED: dict[str, Any] = {
    "schema_version": 1,
    "model_ref": "fused-clothing-shoes@1",
    "sha256": "a0ea4a02fbdd73647dc1d40219e6fd40c5a821f0fce70409d342e760370ed3af",
    "collection": "catalog_fused_clothing_shoes_1",
    "activated_at": "2024-05-01T12:00:03Z",
    "activated_by": "console:alice",
    "previous_ref": "student@17",
}
GALLERY_ITEM: dict[str, Any] = {
    "schema_version": 1,
    "product_id": "fmnist-train-7",
    "seller_id": "catalog",
    "image_b64": "iVBORw0KGgo=",
    "category": "sneaker",
    "source": "fashion-mnist:train",
    "loaded_at": "2024-05-01T12:00:04.5+01:00",
}
VALID = {
    "ImageSubmitted": SUBMITTED,
    "LabelConfirmed": CONFIRMED,
    "ImageEnriched": ENRICHED,
    "DeadLetter": DEAD,
    "ModelActivated": ACTIVATED,
    "GalleryItem": GALLERY_ITEM,
}

PALETTE: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 3.0, 1.5, -0.0, 2**63, 10**30, -(10**30), 1e308, 1e-300,
    RAW + "1e999", RAW + "-1e999", RAW + "NaN", RAW + "Infinity", RAW + "1" + "0" * 4400, RAW + "1.0e2",
    "", " ", "a", "a\n", "\na", "a b", "a\tb", "\u00e9", "\U0001f600", "\x00", "\x7f", "\u2028", "\ud800",
    "x" * 129, "x" * 257, "x" * 4097, "1",
    "2024-05-01T12:00:00Z", "2024-05-01T12:00:00", "2024-05-01", "2024-05-01T12:00:00z",
    "2024-05-01t12:00:00Z", "2024-05-01 12:00:00Z", "2024-05-01T12:00Z", "2024-02-30T00:00:00Z",
    "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2024-05-01T23:59:60Z", "2024-05-01T12:00:00+24:00",
    "2024-05-01T12:00:00+23:59", "2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00.1234567891Z",
    "2024-05-01T12:00:00Z\n", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59",
    "2024-05-01T12:00:00.Z", "+2024-05-01T12:00:00Z", "2024-05-01T12:00:00\u0660Z",
    [], {}, ["a"], {"a": 1}, [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3], {"shoes": 1.0}, {"": -1},
    "subject", "non_subject",
]  # fmt: skip

# (name, event type, value, verdict the contract gives it)
EDGE_CASES: list[tuple[str, str, Any, bool]] = [
    ("valid-url", "ImageSubmitted", SUBMITTED, True),
    ("valid-b64", "ImageSubmitted", {**SUBMITTED, "image_url": None, "image_b64": "iVBORw0KGgo="}, True),
    ("both-images", "ImageSubmitted", {**SUBMITTED, "image_b64": "iVBORw0KGgo="}, False),
    ("neither-image", "ImageSubmitted", {k: v for k, v in SUBMITTED.items() if k != "image_url"}, False),
    ("both-null", "ImageSubmitted", {**SUBMITTED, "image_url": None, "image_b64": None}, False),
    ("id-trailing-newline", "ImageSubmitted", {**SUBMITTED, "event_id": "evt-1\n"}, False),
    ("id-inner-space", "ImageSubmitted", {**SUBMITTED, "product_id": "prod 1"}, False),
    ("id-unicode", "ImageSubmitted", {**SUBMITTED, "seller_id": "s\u00e9ller"}, False),
    ("version-true", "ImageSubmitted", {**SUBMITTED, "schema_version": True}, False),
    ("sha-upper", "ModelActivated", {**ACTIVATED, "sha256": ACTIVATED["sha256"].upper()}, False),
    ("sha-short", "ModelActivated", {**ACTIVATED, "sha256": ACTIVATED["sha256"][:-1]}, False),
    ("sha-newline", "ModelActivated", {**ACTIVATED, "sha256": ACTIVATED["sha256"][:-1] + "\n"}, False),
    ("first-activation", "ModelActivated", {**ACTIVATED, "previous_ref": None}, True),
    ("no-previous", "ModelActivated", {k: v for k, v in ACTIVATED.items() if k != "previous_ref"}, False),
    ("gallery-valid", "GalleryItem", GALLERY_ITEM, True),
    ("gallery-slash-id", "GalleryItem", {**GALLERY_ITEM, "product_id": "sneaker/IMG_0001"}, True),
    ("gallery-space-id", "GalleryItem", {**GALLERY_ITEM, "product_id": "sneaker/IMG 0001"}, False),
    ("gallery-empty-image", "GalleryItem", {**GALLERY_ITEM, "image_b64": ""}, False),
    ("gallery-no-image", "GalleryItem", {k: v for k, v in GALLERY_ITEM.items() if k != "image_b64"}, False),
    ("gallery-null-category", "GalleryItem", {**GALLERY_ITEM, "category": None}, False),
    ("gallery-url-instead", "GalleryItem", {**GALLERY_ITEM, "image_url": "https://img.example.com/a.png"}, False),
    ("gallery-naive-date", "GalleryItem", {**GALLERY_ITEM, "loaded_at": "2024-05-01T12:00:04"}, False),
    ("version-float-one", "ImageSubmitted", {**SUBMITTED, "schema_version": 1.0}, True),
    ("version-string", "ImageSubmitted", {**SUBMITTED, "schema_version": "1"}, False),
    ("version-two", "ImageSubmitted", {**SUBMITTED, "schema_version": 2}, False),
    ("no-version", "ImageSubmitted", {k: v for k, v in SUBMITTED.items() if k != "schema_version"}, True),
    ("naive-date", "ImageSubmitted", {**SUBMITTED, "submitted_at": "2024-05-01T12:00:00"}, False),
    ("date-only", "ImageSubmitted", {**SUBMITTED, "submitted_at": "2024-05-01"}, False),
    ("date-number", "ImageSubmitted", {**SUBMITTED, "submitted_at": 1714564800}, False),
    ("date-space", "ImageSubmitted", {**SUBMITTED, "submitted_at": "2024-05-01 12:00:00Z"}, False),
    ("date-newline", "ImageSubmitted", {**SUBMITTED, "submitted_at": "2024-05-01T12:00:00Z\n"}, False),
    ("date-feb-30", "ImageSubmitted", {**SUBMITTED, "submitted_at": "2024-02-30T12:00:00Z"}, False),
    ("date-leap-second", "ImageSubmitted", {**SUBMITTED, "submitted_at": "2016-12-31T23:59:60Z"}, False),
    ("date-offset", "ImageSubmitted", {**SUBMITTED, "submitted_at": "2024-05-01T12:00:00.5-07:00"}, True),
    ("date-nanos", "ImageSubmitted", {**SUBMITTED, "submitted_at": "2024-05-01T12:00:00.123456789Z"}, True),
    ("extra-field", "ImageSubmitted", {**SUBMITTED, "priority": 1}, False),
    ("scene-null", "ImageSubmitted", {**SUBMITTED, "scene": None}, True),
    ("label-emoji", "LabelConfirmed", {**CONFIRMED, "category": "\U0001f45f"}, True),
    ("label-no-date", "LabelConfirmed", {k: v for k, v in CONFIRMED.items() if k != "confirmed_at"}, True),
    ("label-naive-date", "LabelConfirmed", {**CONFIRMED, "confirmed_at": "2024-05-01T12:00:00"}, False),
    ("label-null-date", "LabelConfirmed", {**CONFIRMED, "confirmed_at": None}, True),
    ("enriched-valid", "ImageEnriched", ENRICHED, True),
    ("enriched-no-quality", "ImageEnriched", {**ENRICHED, "quality": None}, True),
    ("enriched-huge-int", "ImageEnriched", {**ENRICHED, "image": {"width": 10**30}}, True),
    ("enriched-integral-float", "ImageEnriched", {**ENRICHED, "image": {"width": 640.0}}, True),
    ("enriched-bool-int", "ImageEnriched", {**ENRICHED, "image": {"width": True}}, False),
    ("dead-valid", "DeadLetter", DEAD, True),
    ("not-an-object", "ImageSubmitted", [SUBMITTED], False),
    ("null", "LabelConfirmed", None, False),
]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unicode_only(value: Any) -> bool:
    """False when a string holds a lone surrogate (not a Unicode scalar value: not interoperable)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_unicode_only(k) and _unicode_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_unicode_only(v) for v in value)
    return True


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.v1.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def schema_verdict(name: str, text: str) -> bool:
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except ValueError:  # not JSON, NaN/Infinity, an integer over CPython's digit limit
        return False
    return _unicode_only(doc) and validator(name).is_valid(doc)


def worker_verdict(name: str, text: str) -> bool:
    model: type[BaseModel] = EVENT_MODELS[name]
    try:
        parse_event(model, text.encode("utf-8", "surrogatepass"))
    except InputRejected:
        return False
    return True


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path in a JSON value, parents before children."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def with_value(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


def generated_corpus() -> list[tuple[str, str, str]]:
    """(case id, event type, JSON text): every path of every valid event set to every palette value."""
    cases: list[tuple[str, str, str]] = []
    for name, base in VALID.items():
        for path in paths(base):
            where = ".".join(map(str, path))
            for i, value in enumerate(PALETTE):
                cases.append((f"{name}:{where}={i}", name, to_text(with_value(base, path, value), i % 2 == 0)))
            if isinstance(path[-1], str):
                cases.append((f"{name}:{where}:deleted", name, to_text(with_value(base, path, None, delete=True))))
        for path in [(), *(p for p in paths(base) if isinstance(_at(base, p), dict))]:
            extra = {**_at(base, path), "unknown": 1}
            doc = with_value(base, path, extra) if path else extra
            cases.append((f"{name}:{'.'.join(map(str, path))}+unknown", name, to_text(doc)))
        text = to_text(base)
        cases.append((f"{name}:duplicate-key-last-bad", name, text[:-1] + ', "schema_version": 2}'))
        cases.append((f"{name}:duplicate-key-last-good", name, '{"schema_version": 2, ' + text[1:]))
        cases.append((f"{name}:trailing-garbage", name, text + " x"))
        cases.append((f"{name}:trailing-newline", name, text + "\n"))
        cases.append((f"{name}:utf8-bom", name, "\ufeff" + text))
    return cases


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


# keywords of draft 2020-12 (core, applicator, validation, format, meta-data) pydantic may emit
KNOWN_KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "title", "description", "default", "type", "enum", "const",
    "properties", "additionalProperties", "required", "items", "prefixItems", "minItems", "maxItems",
    "anyOf", "oneOf", "allOf", "not", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "format", "propertyNames", "minProperties", "maxProperties",
}  # fmt: skip


def keywords(schema: Any, under_properties: bool = False) -> set[str]:
    """Every keyword used in ``schema`` (names of properties and $defs excluded)."""
    if isinstance(schema, list):
        return set().union(*(keywords(s) for s in schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    found = set() if under_properties else set(schema)
    for key, child in schema.items():
        if under_properties:
            found |= keywords(child)
        elif key in ("properties", "$defs"):
            found |= keywords(child, under_properties=True)
        elif key not in ("default", "const", "enum", "description", "title"):
            found |= keywords(child)
    return found


@pytest.mark.parametrize("name", sorted(EVENT_MODELS))
def test_schema_files_use_only_keywords_validators_know(name: str) -> None:
    """A constraint pydantic cannot express leaks as an unknown keyword (e.g. "ge") that validators ignore."""
    schema = json.loads((SCHEMA_DIR / f"{name}.v1.json").read_text())
    assert keywords(schema) <= KNOWN_KEYWORDS


def test_format_checker_checks_date_time() -> None:
    """Without rfc3339-validator, jsonschema skips "date-time" silently and this suite would prove less."""
    assert "date-time" in FormatChecker().checkers


@pytest.mark.parametrize(("case", "name", "value", "expected"), EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_edge_cases_get_the_contracts_verdict_from_both(case: str, name: str, value: Any, expected: bool) -> None:
    text = to_text(value)
    assert (schema_verdict(name, text), worker_verdict(name, text)) == (expected, expected)


def test_schema_files_and_worker_agree_on_the_generated_corpus() -> None:
    corpus = generated_corpus()
    disagreements = []
    accepted = 0
    for case, name, text in corpus:
        by_schema, by_worker = schema_verdict(name, text), worker_verdict(name, text)
        accepted += by_worker
        if by_schema != by_worker:
            disagreements.append(f"{case}: schema {by_schema}, worker {by_worker}: {text[:160]}")
    assert len(corpus) > 3000
    assert 0.05 < accepted / len(corpus) < 0.95  # the corpus exercises both verdicts
    assert not disagreements, f"{len(disagreements)} disagreements:\n" + "\n".join(disagreements[:40])
