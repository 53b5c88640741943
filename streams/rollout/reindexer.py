"""Re-embed the compacted images and gallery topics into a new model's collection, partition by partition.

The protocol is docs/rollout.md. This class is its re-index half: the worker that owns images
partition ``p`` re-indexes ``p`` (and the gallery partitions of the same number) from the
re-index group's committed offsets, and hands ``p`` over with ``catch_up_partition``. Its
guarantees:

- a batch is all or nothing: its offsets are committed only after its rows (and their label
  fixes) are upserted; on any failure, cancellation included, the consumer is rewound to the
  batch's first offsets, so a retry or a restarted process resumes exactly there;
- a record that cannot be re-indexed (invalid event, undecodable image, gone URL) is counted in
  ``catalog_reindex_failed_total{code}``, logged and skipped: it never stalls a partition;
- a switched images partition is never consumed again (paused), so the re-index can never write
  an older image over one the worker wrote with the new model.

Every call that touches the consumer holds one lock, so ``revoke`` waits for a batch in flight
and a rebalance never commits for a partition this process no longer owns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.embedding import TorchEmbedder
from processors.errors import ProcessingError
from processors.intake import ImageIntake
from processors.label_store import LabelStore
from processors.vector_index import VectorIndex
from streams.rollout.metrics import ReindexMetrics
from streams.rollout.offsets import SWITCHED, GroupOffsets, committed_offsets, read_group_offsets, topic_partitions
from streams.rollout.progress import RateMeter, eta_seconds
from streams.rollout.records import Kind, ReplayItem, Skipped, latest_per_product, parse_records
from streams.rollout.rows import label_fixes, new_rows
from streams.settings import Settings

log = structlog.get_logger("catalog.rollout")
T = TypeVar("T")


@dataclass
class StepResult:
    """What one call did: records consumed, rows upserted, records skipped by code."""

    records: int = 0
    rows: int = 0
    superseded: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, other: StepResult) -> StepResult:
        self.records += other.records
        self.rows += other.rows
        self.superseded += other.superseded
        for code, n in other.failed.items():
            self.failed[code] = self.failed.get(code, 0) + n
        self.seconds += other.seconds
        return self


@dataclass(frozen=True)
class ReindexParts:
    """What a re-indexer works with; ``previous`` is the old model's collection (read for labels and quality)."""

    embedder: TorchEmbedder
    index: VectorIndex
    labels: LabelStore
    intake: ImageIntake
    previous: VectorIndex | None = None


class PartitionReindexer:
    """Re-index the owned partitions of the images and gallery topics into ``parts.index``'s collection."""

    def __init__(
        self,
        settings: Settings,
        group_id: str,
        parts: ReindexParts,
        consumer: AIOKafkaConsumer,
        metrics: ReindexMetrics | None = None,
        poll_timeout_ms: int = 200,
    ) -> None:
        self.settings = settings
        self.group_id = group_id
        self.parts = parts
        self.metrics = metrics or ReindexMetrics()
        self.images_topic = settings.topic_images
        self.gallery_topic = settings.topic_gallery
        self._consumer = consumer
        self._poll_ms = poll_timeout_ms
        self._batch = settings.rollout_batch_size
        self._trusted = frozenset(settings.trusted_label_sources)
        self._lock = asyncio.Lock()
        self._owned: frozenset[int] = frozenset()
        self._switched: set[int] = set()
        self._gallery_partitions: tuple[int, ...] = ()
        self._images_partitions: int = 0
        self._rate = RateMeter()
        self._positions: dict[TopicPartition, int] = {}  # next offset to re-index, as last committed here
        self._inference = ThreadPoolExecutor(1, thread_name_prefix="reindex-inference")
        self._index_io = ThreadPoolExecutor(1, thread_name_prefix="reindex-index")
        self._started = False

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Connect, create the new collection (the old one's index parameters) and the label store."""
        await self._consumer.start()
        self._started = True
        await self._index(self._create_collections)
        await self._refresh_topics()

    async def stop(self) -> None:
        """Leave the group's offsets as the last committed batch left them; nothing is committed here."""
        if self._started:
            await self._consumer.stop()
            self._started = False
        await self.parts.intake.aclose()
        self._inference.shutdown(wait=True)
        self._index_io.shutdown(wait=True)
        self.parts.index.close()
        if self.parts.previous is not None:
            self.parts.previous.close()

    def _create_collections(self) -> None:
        self.parts.index.ensure_collection()
        self.parts.labels.ensure_collection()
        previous = self.parts.previous
        if previous is not None and not previous.client.has_collection(previous.collection):
            log.warning("reindex_previous_missing", collection=previous.collection, hint="labels come from the store")
            self.parts = ReindexParts(self.parts.embedder, self.parts.index, self.parts.labels, self.parts.intake)

    async def _refresh_topics(self) -> None:
        """Partition numbers of both topics (the gallery topic may not exist yet: it then has none)."""
        layout = await topic_partitions(self.settings, [self.images_topic, self.gallery_topic])
        self._images_partitions = len(layout.get(self.images_topic, ()))
        self._gallery_partitions = layout.get(self.gallery_topic, ())

    # ----------------------------------------------------------------- ownership

    @property
    def owned(self) -> frozenset[int]:
        return self._owned

    @property
    def index(self) -> VectorIndex:
        """The new model's collection (no alias: the switch moves the alias to it)."""
        return self.parts.index

    @property
    def images_partition_count(self) -> int:
        """Partitions of the images topic as last read (at ``start`` and each ``assign``)."""
        return self._images_partitions

    async def assign(self, partitions: Iterable[int]) -> None:
        """Take over images partitions (and their gallery partitions); switched ones stay paused."""
        async with self._lock:
            await self._refresh_topics()
            await self._reassign(self._owned | set(partitions))

    async def revoke(self, partitions: Iterable[int]) -> None:
        """Give partitions up; waits for a batch in flight, whose commit is then already done."""
        async with self._lock:
            await self._reassign(self._owned - set(partitions))

    def _gallery_of(self, images_partitions: Iterable[int]) -> list[int]:
        """Gallery partition q belongs to the owner of images partition q mod (images partitions)."""
        wanted = set(images_partitions)
        n = self._images_partitions or 1
        return [q for q in self._gallery_partitions if q % n in wanted]

    def _tps(self, images_partitions: Iterable[int]) -> list[TopicPartition]:
        parts = sorted(set(images_partitions))
        return [TopicPartition(self.images_topic, p) for p in parts] + [
            TopicPartition(self.gallery_topic, q) for q in self._gallery_of(parts)
        ]

    async def _reassign(self, owned: set[int] | frozenset[int]) -> None:
        tps = self._tps(owned)
        if not tps:
            self._consumer.unsubscribe()
            self._owned, self._switched = frozenset(), set()
            self.metrics.switched.set(0)
            return
        commits = await committed_offsets(self.settings, self.group_id, tps)  # before assign: pause at once
        self._consumer.assign(tps)  # positions restart from the committed offsets: nothing uncommitted is kept
        self._positions = {tp: n for tp, n in self._positions.items() if tp in tps}
        self._owned = frozenset(owned)
        self._switched = {p for p in owned if commits.get(TopicPartition(self.images_topic, p), (0, ""))[1] == SWITCHED}
        if self._switched:
            self._consumer.pause(*(TopicPartition(self.images_topic, p) for p in self._switched))
        self.metrics.switched.set(len(self._switched))
        log.info("reindex_assigned", group=self.group_id, owned=sorted(owned), switched=sorted(self._switched))

    def _fetchable(self) -> list[TopicPartition]:
        return [tp for tp in self._tps(self._owned) if not self._is_switched(tp)]

    def _is_switched(self, tp: TopicPartition) -> bool:
        return tp.topic == self.images_topic and tp.partition in self._switched

    # ----------------------------------------------------------------- the work

    async def step(self, max_records: int | None = None) -> StepResult:
        """One batch over the owned, unswitched partitions (at most ``max_records``); empty when caught up."""
        async with self._lock:
            fetchable = self._fetchable()
            if not fetchable:
                return StepResult()
            batch = await self._consumer.getmany(
                *fetchable, timeout_ms=self._poll_ms, max_records=max_records or self._batch
            )
            result = await self._run_batch(batch)
            self._observe(result)
            return result

    async def catch_up_partition(self, partition: int, until_offset: int, timeout_s: float = 120.0) -> StepResult:
        """Re-index images ``partition`` exactly up to ``until_offset`` (exclusive), then mark it switched.

        Also drains the gallery partitions of the same number to their end as of this call, so a
        gallery product loaded before the switch is in the new collection when the worker
        starts searching it. Commits ``until_offset`` with metadata ``switched`` and never
        consumes the partition again. Idempotent for an already switched partition.
        """
        async with self._lock:
            if partition not in self._owned:
                raise ValueError(f"images partition {partition} is not assigned to this re-indexer")
            if partition in self._switched:
                return StepResult()
            images = TopicPartition(self.images_topic, partition)
            limits = await self._consumer.end_offsets([images, *self._gallery_tps(partition)])
            if not 0 <= until_offset <= limits[images]:
                raise ValueError(f"until_offset {until_offset} is outside [0, {limits[images]}] of {images}")
            limits[images] = until_offset
            result = await self._drain(limits, time.monotonic() + timeout_s)
            await self._consumer.commit({images: (until_offset, SWITCHED)})
            self._switched.add(partition)
            self._consumer.pause(images)
            self.metrics.switched.set(len(self._switched))
            self._observe(result)
            log.info("reindex_partition_switched", group=self.group_id, partition=partition, offset=until_offset,
                     records=result.records, rows=result.rows)  # fmt: skip
            return result

    def _gallery_tps(self, partition: int) -> list[TopicPartition]:
        return [TopicPartition(self.gallery_topic, q) for q in self._gallery_of([partition])]

    async def _drain(self, limits: Mapping[TopicPartition, int], deadline: float) -> StepResult:
        """Batches until every partition's position reaches its limit; records at or past it are left alone."""
        total = StepResult()
        pending = dict(limits)
        while True:
            for tp in list(pending):
                if await self._consumer.position(tp) >= pending[tp]:
                    del pending[tp]
            if not pending:
                return total
            if time.monotonic() > deadline:
                raise TimeoutError(f"re-index did not reach {pending} in time")
            batch = await self._consumer.getmany(*pending, timeout_ms=self._poll_ms, max_records=self._batch)
            trimmed = {tp: [r for r in records if r.offset < pending[tp]] for tp, records in batch.items()}
            total.add(await self._run_batch(trimmed))

    async def _run_batch(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> StepResult:
        """Index the records, then commit; on any failure rewind to the batch's first offsets and re-raise."""
        batch = {tp: records for tp, records in batch.items() if records}
        if not batch:
            return StepResult()
        start = time.perf_counter()
        try:
            result = await self._index_records([(r, self._kind(tp)) for tp, records in batch.items() for r in records])
            positions = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await self._consumer.commit({tp: (n, "") for tp, n in positions.items()})
        except BaseException:
            for tp, records in batch.items():
                self._consumer.seek(tp, records[0].offset)
            raise
        result.seconds = time.perf_counter() - start
        self._positions.update(positions)
        for tp, records in batch.items():
            self.metrics.records.labels(topic=tp.topic).inc(len(records))
        self.metrics.batch_seconds.observe(result.seconds)
        return result

    def _kind(self, tp: TopicPartition) -> Kind:
        return "gallery" if tp.topic == self.gallery_topic else "images"

    async def _index_records(self, records: Sequence[tuple[Any, Kind]]) -> StepResult:
        items, skipped = parse_records(records)
        fresh, older = latest_per_product(items)
        loaded = await self.parts.intake.load_many([(i.image_b64, i.image_url) for i in fresh])
        good: list[tuple[ReplayItem, Any]] = []
        for item, got in zip(fresh, loaded, strict=True):
            if isinstance(got, ProcessingError):
                skipped.append(Skipped(item.topic, item.partition, item.offset, got.error_code, got.message,
                                       item.product_id))  # fmt: skip
            else:
                good.append((item, got))
        rows = 0
        if good:
            vectors = await asyncio.get_running_loop().run_in_executor(
                self._inference, self.parts.embedder.embed, [d.image for _, d in good]
            )
            rows = await self._index(self._write, [i for i, _ in good], vectors)
        result = StepResult(records=len(records), rows=rows, superseded=len(older))
        for s in skipped:
            result.failed[s.code] = result.failed.get(s.code, 0) + 1
            self.metrics.failed.labels(code=s.code).inc()
            log.warning("reindex_skipped", error_code=s.code, reason=s.message[:300], product_id=s.product_id,
                        topic=s.topic, partition=s.partition, offset=s.offset)  # fmt: skip
        self.metrics.superseded.inc(len(older))
        for item, _ in good:
            self.metrics.rows.labels(topic=item.topic).inc()
        return result

    def _write(self, items: Sequence[ReplayItem], vectors: np.ndarray) -> int:
        """Upsert, then read the label store and rewrite rows it disagrees with (runs on the index thread)."""
        ids = [i.product_id for i in items]
        previous = self.parts.previous.fetch(ids) if self.parts.previous is not None else {}
        rows = new_rows(items, vectors, previous, self._trusted, int(time.time() * 1000))
        self.parts.index.upsert(rows)
        self.parts.index.upsert(label_fixes(rows, self.parts.labels.get(ids)))
        return len(rows)

    async def _index(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._index_io, fn, *args)

    def _observe(self, result: StepResult) -> None:
        """Lag of this process's partitions: the consumer's high watermarks minus what this process committed.

        No broker round trip; a partition not fetched or committed here yet does not count until it is.
        """
        if result.seconds > 0:
            self._rate.observe(result.records, result.seconds)
        lag = {self.images_topic: 0, self.gallery_topic: 0}
        for tp in self._fetchable():
            high, done = self._consumer.highwater(tp), self._positions.get(tp)
            if high is not None and done is not None:
                lag[tp.topic] += max(0, high - done)
        for topic, value in lag.items():
            self.metrics.lag.labels(topic=topic).set(value)
        self.metrics.rate.set(self._rate.rate or 0.0)
        eta = eta_seconds(sum(lag.values()), self._rate.rate)
        self.metrics.eta.set(-1 if eta is None else eta)

    # ----------------------------------------------------------------- the group's state

    async def offsets(self) -> GroupOffsets:
        """The group's progress over every partition of both topics (one snapshot, from the broker)."""
        return await read_group_offsets(self.settings, self.group_id, [self.images_topic, self.gallery_topic])

    async def switched_partitions(self) -> frozenset[int]:
        """Images partitions whose committed metadata says ``switched`` (any owner's, from the broker)."""
        return (await self.offsets()).switched(self.images_topic)

    async def owned_lag(self) -> int:
        """Like ``total_lag`` over this process's partitions only: 0 means they are caught up."""
        mine = set(self._tps(self._owned))
        return sum(p.lag for p in (await self.offsets()).partitions if TopicPartition(p.topic, p.partition) in mine)

    async def total_lag(self) -> int:
        """End offsets minus committed offsets over both topics and all partitions (switched ones count 0)."""
        return (await self.offsets()).lag
