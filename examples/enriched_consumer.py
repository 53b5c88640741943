"""A downstream service's view of ``catalog.enriched.v1``: read, dedupe by ``event_id``, store.

The workers deliver at least once: after a crash a batch may be enriched again, so the same
``event_id`` can arrive twice. A consumer makes that harmless by deduplicating on ``event_id`` and
by keeping, per product, only the newest enrichment (``processed_at``). This example keeps both in
memory and prints what it would store; a real service does the same with its database's upsert.

It depends on aiokafka only, not on this project:

    python examples/enriched_consumer.py --bootstrap 127.0.0.1:9092 --from-beginning --max-messages 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer


@dataclass
class ProductRecord:
    """What a catalog service stores per product from one enrichment."""

    product_id: str
    event_id: str
    processed_at: str
    model: str
    category: str | None
    vote_share: float
    quality_total: float | None
    similar: list[str]


@dataclass
class EnrichmentStore:
    """Dedupes by event_id (a bounded window) and keeps the newest record per product."""

    window: int = 100_000
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    products: dict[str, ProductRecord] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, value: dict[str, Any]) -> ProductRecord | None:
        """The stored record, or None for a duplicate or an older enrichment of the product."""
        event_id = value["event_id"]
        if event_id in self.seen:
            self.duplicates += 1
            return None
        self.seen[event_id] = None
        if len(self.seen) > self.window:
            self.seen.popitem(last=False)
        record = to_record(value)
        current = self.products.get(record.product_id)
        if current is not None and current.processed_at > record.processed_at:
            return None  # RFC 3339 UTC timestamps written by the workers sort as text
        self.products[record.product_id] = record
        return record


def to_record(value: dict[str, Any]) -> ProductRecord:
    quality = value.get("quality")
    return ProductRecord(
        product_id=value["product_id"],
        event_id=value["event_id"],
        processed_at=value["processed_at"],
        model=f"{value['model']['id']}@{value['model']['version']}",
        category=value["category"]["label"],
        vote_share=value["category"]["vote_share"],
        quality_total=quality["total"] if quality else None,
        similar=[n["product_id"] for n in value["similar_items"]],
    )


def store_all(values: Iterable[bytes], store: EnrichmentStore) -> list[ProductRecord]:
    """Parse and store raw Kafka values; returns the records that were stored."""
    stored = []
    for raw in values:
        record = store.add(json.loads(raw))
        if record is not None:
            stored.append(record)
    return stored


async def consume(bootstrap: str, topic: str, group: str | None, from_beginning: bool, max_messages: int,
                  idle_s: float) -> EnrichmentStore:  # fmt: skip
    store = EnrichmentStore()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=group is not None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )  # fmt: skip
    await consumer.start()
    try:
        read = 0
        while read < max_messages:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000), max_records=max_messages - read)
            if not batch:
                break  # nothing new for idle_s: stop (a service would keep polling)
            for records in batch.values():
                read += len(records)
                for record in store_all([r.value for r in records if r.value is not None], store):
                    print(json.dumps(record.__dict__), flush=True)
    finally:
        await consumer.stop()
    return store


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--topic", default="catalog.enriched.v1")
    p.add_argument("--group", help="consumer group (commits offsets); none: read without committing")
    p.add_argument("--from-beginning", action="store_true")
    p.add_argument("--max-messages", type=int, default=1000)
    p.add_argument("--idle-s", type=float, default=5.0, help="stop after this long without a message")
    args = p.parse_args()
    store = asyncio.run(consume(args.bootstrap, args.topic, args.group, args.from_beginning, args.max_messages,
                                args.idle_s))  # fmt: skip
    print(json.dumps({"products": len(store.products), "duplicates_skipped": store.duplicates}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
