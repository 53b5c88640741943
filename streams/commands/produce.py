"""Stand-in for a seller upload pipeline: publish ImageSubmitted events to the input topic."""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model_store.vocabulary import DEFAULT_TAXONOMY
from processors.gallery import IMAGE_SUFFIXES
from processors.samples import fashion_mnist_samples
from streams.events import ImageSubmitted, utc_now
from streams.kafka_clients import producer as kafka_producer
from streams.settings import Settings


@dataclass(frozen=True)
class Submission:
    event: ImageSubmitted
    truth: str | None = None


def jpeg_b64(pixels: np.ndarray, quality: int = 90) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode()


def generated_submissions(count: int, size: int, style: str, seed: int, split: str = "test") -> Iterator[Submission]:
    samples = fashion_mnist_samples(split, count, size, style, seed)  # type: ignore[arg-type]
    for pid, pixels, category in zip(samples.product_ids, samples.pixels, samples.categories, strict=True):
        event = ImageSubmitted(
            event_id=str(uuid.uuid4()),
            product_id=f"upload-{pid}",
            seller_id=f"seller-{hash(pid) % 50}",
            image_b64=jpeg_b64(pixels),
            submitted_at=utc_now(),
        )
        yield Submission(event, category)


def folder_submissions(root: Path, as_url: bool) -> Iterator[Submission]:
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        ref = (
            {"image_url": path.resolve().as_uri()}
            if as_url
            else {"image_b64": base64.b64encode(path.read_bytes()).decode()}
        )
        truth = path.parent.name if path.parent != root else None
        yield Submission(
            ImageSubmitted(
                event_id=str(uuid.uuid4()),
                product_id=path.stem,
                seller_id="folder",
                submitted_at=utc_now(),
                **ref,  # type: ignore[arg-type]  # image_b64 or image_url: mypy reads a str dict as every field
            ),
            truth,
        )


async def publish(settings: Settings, topic: str, submissions: Iterator[Submission], truth_file: Path | None) -> int:
    """Send all, keyed by product id; write the ground truth (event id -> label, submitted_at) beside."""
    producer = kafka_producer(settings, max_request_size=16_000_000)  # TLS/SASL as the worker; acks=all
    await producer.start()
    sent = 0
    truth_out = truth_file.open("w") if truth_file else None
    try:
        futures = []
        for sub in submissions:
            value = sub.event.model_dump_json(exclude_none=True).encode()
            futures.append(await producer.send(topic, value=value, key=sub.event.product_id.encode()))
            if truth_out and sub.truth:
                coarse = DEFAULT_TAXONOMY.get(sub.truth)
                truth_out.write(
                    json.dumps(
                        {
                            "event_id": sub.event.event_id,
                            "product_id": sub.event.product_id,
                            "label": sub.truth,
                            "category": coarse,
                            "submitted_at": sub.event.submitted_at.isoformat(),
                        }
                    )
                    + "\n"
                )
            sent += 1
        for fut in futures:
            await fut
    finally:
        await producer.stop()
        if truth_out:
            truth_out.close()
    return sent
