"""JSON Schema files of the events, for producers and consumers in other languages."""

from __future__ import annotations

import json
from pathlib import Path

from streams.events import EVENT_MODELS

SCHEMA_DIR = Path(__file__).with_name("schemas")


def render(name: str) -> str:
    schema = EVENT_MODELS[name].model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"catalog-enrich/{name}.v1.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in EVENT_MODELS:
        path = directory / f"{name}.v1.json"
        path.write_text(render(name))
        paths.append(path)
    return paths


def check_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names whose committed file differs from the models: the contract drifted."""
    return [
        n
        for n in EVENT_MODELS
        if not (directory / f"{n}.v1.json").is_file() or (directory / f"{n}.v1.json").read_text() != render(n)
    ]
