"""Offline front end: the same pipeline on local files, without Kafka."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from processors.pipeline import EnrichmentPipeline
from processors.requests import Enrichment, ImageRequest, Outcome
from streams.output import enriched_event


def file_request(path: Path) -> ImageRequest:
    data = path.read_bytes()
    return ImageRequest(
        event_id=f"file-{hashlib.sha256(data).hexdigest()[:16]}",
        product_id=path.stem,
        seller_id="offline",
        image_b64=base64.b64encode(data).decode(),
    )


async def enrich_files(pipeline: EnrichmentPipeline, paths: Sequence[Path], batch_size: int) -> list[Outcome]:
    await pipeline.start()
    outcomes: list[Outcome] = []
    for start in range(0, len(paths), batch_size):
        outcomes.extend(await pipeline.process_batch([file_request(p) for p in paths[start : start + batch_size]]))
    return outcomes


def outcome_json(outcome: Outcome) -> str:
    if isinstance(outcome, Enrichment):
        return enriched_event(outcome, None).model_dump_json()
    err = outcome.error
    return json.dumps({"product_id": outcome.request.product_id, "error_code": err.error_code, "message": err.message})
