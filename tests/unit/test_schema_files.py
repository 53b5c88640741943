"""The committed JSON Schema files are the event contract; they must match the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.events import EVENT_MODELS
from streams.schema_files import SCHEMA_DIR, check_schemas, render, write_schemas


def test_committed_schemas_match_the_models() -> None:
    assert check_schemas() == [], "run write_schemas() and review the contract change"


def test_every_event_has_a_committed_file() -> None:
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.v1.json")) == sorted(f"{n}.v1.json" for n in EVENT_MODELS)


@pytest.mark.parametrize("name", sorted(EVENT_MODELS))
def test_render_is_json_schema_with_ids(name: str) -> None:
    text = render(name)
    assert text.endswith("\n")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"catalog-enrich/{name}.v1.json"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False  # extra="forbid" is part of the contract
    assert "schema_version" in schema["properties"]


def test_render_is_deterministic() -> None:
    assert render("ImageSubmitted") == render("ImageSubmitted")


def test_image_submitted_required_fields() -> None:
    schema = json.loads(render("ImageSubmitted"))
    assert set(schema["required"]) == {"event_id", "product_id", "seller_id", "submitted_at"}
    assert {"image_url", "image_b64", "scene", "category_hint"} <= set(schema["properties"])


def test_label_confirmed_required_fields() -> None:
    schema = json.loads(render("LabelConfirmed"))
    assert set(schema["required"]) == {"product_id", "category", "source"}


def test_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        render("NoSuchEvent")


def test_written_files_pass_the_check(tmp_path: Path) -> None:
    paths = write_schemas(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{n}.v1.json" for n in EVENT_MODELS)
    assert check_schemas(tmp_path) == []


def test_check_reports_drifted_and_missing_files(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    drifted = tmp_path / "ImageSubmitted.v1.json"
    drifted.write_text(drifted.read_text().replace('"seller_id"', '"vendor_id"'))
    (tmp_path / "DeadLetter.v1.json").unlink()
    assert sorted(check_schemas(tmp_path)) == ["DeadLetter", "ImageSubmitted"]


def test_check_of_an_empty_directory_reports_every_event(tmp_path: Path) -> None:
    assert check_schemas(tmp_path) == list(EVENT_MODELS)
