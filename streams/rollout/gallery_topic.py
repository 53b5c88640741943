"""Publish a loaded gallery to the compacted gallery topic, so a rollout can re-embed it.

``catalog gallery load`` publishes first and upserts second: every gallery row that reaches a
collection is then already in the log, and a re-index of the log misses none of them. Each item
goes out as a ``GalleryItem`` (PNG, lossless, so a replay embeds exactly the loaded pixels) keyed
by its product id.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter, ValidationError

from processors.gallery import LabelledImages, png_bytes
from streams.events import GalleryItem, Id, Label, utc_now
from streams.kafka_clients import producer
from streams.settings import Settings
from streams.topics import ensure_topics

CHUNK = 512
_ID = TypeAdapter(Id)
_LABEL = TypeAdapter(Label)


@dataclass(frozen=True)
class PublishReport:
    items: int
    seconds: float
    value_bytes: int

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


def check_publishable(samples: LabelledImages, seller_id: str, source: str) -> None:
    """Refuse, before anything is sent, ids and labels the GalleryItem contract would refuse."""
    for what, adapter, values in (
        ("seller id", _ID, [seller_id]),
        ("source", _LABEL, [source]),
        ("product id", _ID, samples.product_ids),
        ("category", _LABEL, samples.categories),
    ):
        for value in values:
            try:
                adapter.validate_python(value, strict=True)
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"]
                raise ValueError(f"{what} {value!r} cannot go to the gallery topic: {reason}") from exc


def encode_items(
    samples: LabelledImages, part: slice, seller_id: str, source: str, loaded_at: datetime
) -> list[tuple[bytes, bytes]]:
    """(key, value) of each item in ``part``; CPU-bound (PNG), run it in a thread."""
    out = []
    for pid, pixels, category in zip(
        samples.product_ids[part], samples.pixels[part], samples.categories[part], strict=True
    ):
        event = GalleryItem(
            product_id=pid,
            seller_id=seller_id,
            image_b64=base64.b64encode(png_bytes(pixels)).decode("ascii"),
            category=category,
            source=source,
            loaded_at=loaded_at,
        )
        out.append((pid.encode(), event.model_dump_json().encode()))
    return out


async def publish_gallery(
    settings: Settings,
    samples: LabelledImages,
    source: str,
    seller_id: str = "catalog",
    progress: Callable[[int], None] | None = None,
) -> PublishReport:
    """Send every item with acks=all and wait for all acknowledgements; the next chunk encodes meanwhile."""
    check_publishable(samples, seller_id, source)
    budget = settings.startup_timeout_s  # an unreachable broker fails here, before any item is encoded
    await asyncio.wait_for(ensure_topics(settings, [settings.topic_gallery]), budget)
    client = producer(settings, linger_ms=20, max_batch_size=1 << 20, enable_idempotence=True)
    await asyncio.wait_for(client.start(), budget)
    start = time.perf_counter()
    size = 0
    loaded_at = utc_now()
    try:
        in_flight: Sequence[asyncio.Future] = []
        n = len(samples.product_ids)
        for first in range(0, n, CHUNK):
            part = slice(first, min(n, first + CHUNK))
            messages = await asyncio.to_thread(encode_items, samples, part, seller_id, source, loaded_at)
            await _acknowledged(in_flight, progress)
            in_flight = [await client.send(settings.topic_gallery, value=v, key=k) for k, v in messages]
            size += sum(len(v) for _, v in messages)
        await _acknowledged(in_flight, progress)
    finally:
        await client.stop()
    return PublishReport(len(samples.product_ids), time.perf_counter() - start, size)


async def _acknowledged(futures: Sequence[asyncio.Future], progress: Callable[[int], None] | None) -> None:
    if futures:
        await asyncio.gather(*futures)
        if progress is not None:
            progress(len(futures))
