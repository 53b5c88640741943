"""A small replayable log for re-index tests: image events, gallery items and bad records on real topics."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaProducer
from PIL import Image

from model_store.datasets.fashion_mnist import CLASS_NAMES, load_fashion_mnist
from processors.gallery import png_bytes
from processors.samples import plain_pixels
from streams.settings import Settings
from tests.kafka_backend import create_topics, unique_topic
from tests.support.events import image_bytes, submitted

COMPACT = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    key: bytes
    value: bytes


@dataclass
class ReplayLog:
    """What was published, and what a complete re-index must produce from it."""

    images: dict[str, bytes] = field(default_factory=dict)  # product -> latest image bytes (encoded file)
    gallery: dict[str, tuple[np.ndarray, str]] = field(default_factory=dict)  # product -> (pixels, category)
    hints: dict[str, str] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)  # key -> expected failure code
    messages: list[Message] = field(default_factory=list)

    @property
    def products(self) -> set[str]:
        return set(self.images) | set(self.gallery)


def fmnist_pixels(first: int, count: int, size: int = 64) -> tuple[np.ndarray, list[str]]:
    data = load_fashion_mnist("test")
    labels = [CLASS_NAMES[int(c)] for c in data.labels[first : first + count]]
    return plain_pixels(data.images[first : first + count], size), labels


def rollout_settings(bootstrap: str, milvus_uri: str, partitions: int, **overrides: object) -> Settings:
    """Settings on topics, group and collections of the test's own."""
    tag = uuid.uuid4().hex[:10]
    return Settings(
        kafka_bootstrap=bootstrap,
        app_id=f"test-{tag}",
        topic_images=unique_topic("images"),
        topic_gallery=unique_topic("gallery"),
        topic_labels=unique_topic("labels"),
        topic_models=unique_topic("models"),
        topic_partitions=partitions,
        milvus_uri=milvus_uri,
        milvus_collection_prefix=f"r{tag}",
        private_host_allowlist=["127.0.0.1"],
        fetch_timeout_s=1.0,
        fetch_attempts=1,
        torch_threads=1,
        **overrides,
    )


async def create_log_topics(settings: Settings, gallery_partitions: int | None = None) -> None:
    await create_topics(settings.kafka_bootstrap, [settings.topic_images], settings.topic_partitions, COMPACT)
    await create_topics(
        settings.kafka_bootstrap, [settings.topic_gallery], gallery_partitions or settings.topic_partitions, COMPACT
    )


def add_images(log: ReplayLog, settings: Settings, ids: Sequence[str], first_item: int, partitions: int) -> None:
    """One JPEG upload per id, on partition ``i % partitions`` (a later call re-uploads: the newest wins)."""
    pixels, _ = fmnist_pixels(first_item, len(ids))
    for i, (pid, px) in enumerate(zip(ids, pixels, strict=True)):
        data = image_bytes(px)
        hint = log.hints.get(pid)
        event = submitted(pid, image_b64=base64.b64encode(data).decode(), **({"category_hint": hint} if hint else {}))
        log.images[pid] = data
        log.messages.append(Message(settings.topic_images, i % partitions, pid.encode(), _json(event)))


def add_gallery(log: ReplayLog, settings: Settings, ids: Sequence[str], first_item: int, partitions: int) -> None:
    from streams.events import GalleryItem

    pixels, labels = fmnist_pixels(first_item, len(ids))
    for i, (pid, px, label) in enumerate(zip(ids, pixels, labels, strict=True)):
        item = GalleryItem(product_id=pid, seller_id="catalog", image_b64=base64.b64encode(png_bytes(px)).decode(),
                           category=label, source="test", loaded_at=datetime.now(UTC))  # fmt: skip
        log.gallery[pid] = (px, label)
        log.messages.append(Message(settings.topic_gallery, i % partitions, pid.encode(),
                                    item.model_dump_json().encode()))  # fmt: skip


def add_bad(log: ReplayLog, settings: Settings, gone_url: str) -> None:
    """An undecodable image, a value that is not JSON, a gone URL and a gallery item missing fields."""
    undecodable = submitted("bad-image", image_b64=base64.b64encode(b"certainly not an image").decode())
    cases = [
        (settings.topic_images, b"bad-json", b"{not json", "invalid_json"),
        (settings.topic_images, b"bad-image", _json(undecodable), "image_undecodable"),
        (settings.topic_images, b"gone-url", _json(submitted("gone-url", image_url=gone_url)), "fetch_http_status"),
        (settings.topic_gallery, b"bad-gallery", b'{"schema_version": 1}', "field_missing"),
    ]
    for topic, key, value, code in cases:
        log.bad[key.decode()] = code
        log.messages.append(Message(topic, 0, key, value))


async def publish(bootstrap: str, messages: Sequence[Message]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4_000_000)
    await producer.start()
    try:
        futures = [await producer.send(m.topic, m.value, key=m.key, partition=m.partition) for m in messages]
        for f in futures:
            await f
    finally:
        await producer.stop()


def decoded_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def chunked(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _json(payload: dict) -> bytes:
    import json

    return json.dumps(payload).encode()


def gone_file(root: Path, name: str) -> Path:
    """A file served by the image server now, deleted by the test before the re-index."""
    path = root / name
    path.write_bytes(image_bytes(fmnist_pixels(0, 1)[0][0]))
    return path
