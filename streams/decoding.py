"""Bytes from Kafka -> validated event, or an ``InputRejected`` with a precise code."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from processors.errors import InputRejected

M = TypeVar("M", bound=BaseModel)
_CUSTOM_CODES = {"image_missing", "image_ambiguous"}


def _code_for(error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    kind = first["type"]
    where = ".".join(str(p) for p in first["loc"]) or "<root>"
    if kind == "json_invalid":
        return "invalid_json", first["msg"]
    if kind in _CUSTOM_CODES:
        return kind, first["msg"]
    if where == "schema_version":
        return "schema_version_unsupported", f"schema_version: {first['msg']}"
    if kind == "missing":
        return "field_missing", f"{where}: required field is missing"
    if kind == "extra_forbidden":
        return "field_unknown", f"{where}: unknown field"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return "not_an_object", "the value must be a JSON object"
    return "field_invalid", f"{where}: {first['msg']}"


def parse_event(model: type[M], raw: bytes | None, stage: str = "validate") -> M:
    if raw is None or len(raw) == 0:
        raise InputRejected("empty_message", "the message value is empty", stage=stage)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRejected("invalid_utf8", f"value is not UTF-8: {exc}", stage=stage) from exc
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputRejected("invalid_json", f"value is not JSON: {exc.msg} at {exc.pos}", stage=stage) from exc
    except RecursionError as exc:
        raise InputRejected("invalid_json", "value is nested too deeply", stage=stage) from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits (CPython's int limit)
        raise InputRejected("invalid_json", f"value is not acceptable JSON: {str(exc)[:200]}", stage=stage) from exc
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        code, message = _code_for(exc)
        raise InputRejected(code, message, stage=stage) from exc
    except (ValueError, RecursionError) as exc:  # the validator's own limits, never a crash of the batch
        raise InputRejected("field_invalid", f"value cannot be validated: {str(exc)[:200]}", stage=stage) from exc


def peek_ids(raw: bytes | None) -> tuple[str | None, str | None]:
    """Best-effort ids of a rejected value, so the dead letter says whose event it was."""
    try:
        data = json.loads(raw or b"")
    except (ValueError, RecursionError, TypeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    event_id, product_id = data.get("event_id"), data.get("product_id")
    return (
        event_id if isinstance(event_id, str) else None,
        product_id if isinstance(product_id, str) else None,
    )
