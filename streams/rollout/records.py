"""Consumed records of the images and gallery topics -> what to re-embed, or why a record is skipped.

Pure: no broker, no model. A record that cannot be re-indexed (not a valid event, a tombstone)
becomes a ``Skipped`` with the same code the worker would dead-letter it with, so one bad
record costs only itself and the re-index never stalls on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from processors.errors import InputRejected
from streams.decoding import parse_event, peek_ids
from streams.events import GalleryItem, ImageSubmitted

Kind = Literal["images", "gallery"]
_KIND_ORDER = {"gallery": 0, "images": 1}  # same product, same timestamp: the seller's image is the newer fact


class Record(Protocol):
    """What is read from an aiokafka ``ConsumerRecord``."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class ReplayItem:
    """One image to re-embed, with what the new row needs besides its vector."""

    kind: Kind
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    product_id: str
    seller_id: str
    image_b64: str | None
    image_url: str | None
    trusted_category: str | None = None  # a gallery item's category (confirmed)
    category_hint: str | None = None  # an upload's seller hint


@dataclass(frozen=True)
class Skipped:
    """A record that yields no row: counted by ``code`` and logged, never retried."""

    topic: str
    partition: int
    offset: int
    code: str
    message: str
    product_id: str | None = None


def parse_record(record: Record, kind: Kind) -> ReplayItem | Skipped:
    """Validate one record as its topic's event; a refusal carries the worker's error code."""
    try:
        if kind == "gallery":
            item = parse_event(GalleryItem, record.value, stage="reindex")
            return ReplayItem(
                kind, record.topic, record.partition, record.offset, record.timestamp, item.product_id,
                item.seller_id, item.image_b64, None, trusted_category=item.category,
            )  # fmt: skip
        event = parse_event(ImageSubmitted, record.value, stage="reindex")
        return ReplayItem(
            kind, record.topic, record.partition, record.offset, record.timestamp, event.product_id,
            event.seller_id, event.image_b64, event.image_url, category_hint=event.category_hint,
        )  # fmt: skip
    except InputRejected as exc:
        return Skipped(record.topic, record.partition, record.offset, exc.error_code, exc.message,
                       peek_ids(record.value)[1])  # fmt: skip
    except Exception as exc:  # a parser bug must cost one record, never the re-index
        return Skipped(record.topic, record.partition, record.offset, "internal_error",
                       f"{type(exc).__name__}: {str(exc)[:300]}")  # fmt: skip


def parse_records(records: Iterable[tuple[Record, Kind]]) -> tuple[list[ReplayItem], list[Skipped]]:
    items: list[ReplayItem] = []
    skipped: list[Skipped] = []
    for record, kind in records:
        parsed = parse_record(record, kind)
        (items if isinstance(parsed, ReplayItem) else skipped).append(parsed)  # type: ignore[arg-type]
    return items, skipped


def latest_per_product(items: Sequence[ReplayItem]) -> tuple[list[ReplayItem], list[ReplayItem]]:
    """The newest record of each product in a batch, and the older ones it supersedes.

    Within a topic partition offsets order the records; across topics the producer timestamp
    does. Compaction has not run on the log's head yet, so a batch can hold several images of one
    product: embedding only the newest one saves work and keeps an older one from landing last.
    """
    newest: dict[str, ReplayItem] = {}
    for item in items:
        current = newest.get(item.product_id)
        if current is None or _newer(item, current):
            newest[item.product_id] = item
    kept = set(map(id, newest.values()))
    return list(newest.values()), [i for i in items if id(i) not in kept]


def _newer(a: ReplayItem, b: ReplayItem) -> bool:
    """Offsets order one partition (a product's images share one: the key); timestamps order two topics."""
    if (a.topic, a.partition) == (b.topic, b.partition):
        return a.offset > b.offset
    return (a.timestamp_ms, _KIND_ORDER[a.kind]) > (b.timestamp_ms, _KIND_ORDER[b.kind])
