"""After a scenario: read every topic from the beginning and the Milvus rows, and count what happened.

Why re-read instead of trusting the live tail: the verdict must come from what the broker
and Milvus hold at the end, matched input by input (source partition and offset).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.chaos.workload import expected_outcome, outcome_matches


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    ts: float  # Kafka timestamp, seconds
    key: bytes | None
    value: bytes | None

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.value or b"")
        except (ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}


@dataclass
class Fault:
    """One injected fault: ``at`` when it hit, ``back_at`` when the broker came back (broker faults)."""

    kind: str  # kill | broker | join
    at: float
    worker: str | None = None
    back_at: float | None = None


async def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Record]:
    """Every record of ``topic``, from the first offset up to the end offsets seen at start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        parts: set[int] | None = None
        while not parts and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - the one way to refresh its cluster view
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await asyncio.sleep(0.2)
        if not parts:  # never an empty read: that would pass for "nothing lost"
            raise RuntimeError(f"no partitions of {topic} after {timeout}s")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Record] = []
        while True:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                return out
            if time.monotonic() > deadline:  # a partial read would pass for lost events
                raise TimeoutError(f"reading {topic}: at {positions}, end {list(ends.values())} after {timeout}s")
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for tp, records in batch.items():
                out.extend(
                    Record(topic, tp.partition, r.offset, r.timestamp / 1000.0, r.key, r.value)
                    for r in records
                    if r.offset < ends[tp]
                )
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), 10)


def milvus_rows(uri: str, collection: str, prefix: str, attempts: int = 4) -> list[dict[str, Any]]:
    """Every gallery row whose product id starts with ``prefix`` (duplicates included, if any).

    Retried: a loaded 2-core machine sometimes refuses one connection to the Milvus server.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _query_rows(uri, collection, prefix)
        except Exception:
            if attempt == attempts:
                raise
            time.sleep(3.0 * attempt)
    raise AssertionError("unreachable")


def _query_rows(uri: str, collection: str, prefix: str) -> list[dict[str, Any]]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    try:
        client.load_collection(collection)
        return list(
            client.query(
                collection,
                filter=f'product_id like "{prefix}%"',
                output_fields=["product_id", "category", "label_source"],
                limit=16384,
            )
        )
    finally:
        client.close()


@dataclass
class Topics:
    images: str
    enriched: str
    dlq: str
    labels: str


@dataclass
class Evidence:
    """What the auditor read, plus what the scenario knows about its own inputs and faults."""

    topics: Topics
    images: list[Record]
    labels: list[Record]
    enriched: list[Record]
    dlq: list[Record]
    rows: list[dict[str, Any]]
    faults: list[Fault]
    kinds: Mapping[tuple[int, int], str] = field(default_factory=dict)  # (partition, offset) -> sent kind


def _source_key(data: dict[str, Any]) -> tuple[str, int, int] | None:
    src = data.get("source")
    if not isinstance(src, dict):
        return None
    return src.get("topic"), src.get("partition"), src.get("offset")


def audit(ev: Evidence) -> dict[str, Any]:
    """All figures of one scenario run as a JSON-ready dict."""
    t = ev.topics
    outputs: dict[tuple[int, int], list[tuple[str, Record, dict[str, Any]]]] = defaultdict(list)
    label_letters: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)  # label -> its dead letters
    for kind, records in (("enriched", ev.enriched), ("dlq", ev.dlq)):
        for r in records:
            data = r.json()
            key = _source_key(data)
            if key is None:
                continue
            if key[0] == t.images:
                outputs[(key[1], key[2])].append((kind, r, data))
            elif key[0] == t.labels and kind == "dlq":
                label_letters[(key[1], key[2])].append(data)
    produced = len(ev.images)
    with_output = [r for r in ev.images if (r.partition, r.offset) in outputs]
    lost = [r for r in ev.images if (r.partition, r.offset) not in outputs]
    copies = [len(outputs[(r.partition, r.offset)]) for r in with_output]
    enriched_products = {
        data.get("product_id") for outs in outputs.values() for kind, _, data in outs if kind == "enriched"
    }
    row_ids = [str(row["product_id"]) for row in ev.rows]
    codes = Counter(str(r.json().get("error_code")) for r in ev.dlq)
    figures: dict[str, Any] = {
        "produced": produced,
        "with_output": len(with_output),
        "lost": len(lost),
        "lost_by_kind": dict(Counter(ev.kinds.get((r.partition, r.offset), "resent") for r in lost)),
        "duplicate_outputs": sum(c - 1 for c in copies),
        "duplicated_events": sum(1 for c in copies if c > 1),
        "max_copies": max(copies, default=0),
        "enriched_products": len(enriched_products),
        "milvus_rows": len(row_ids),
        "milvus_distinct": len(set(row_ids)),
        "duplicate_rows": len(row_ids) - len(set(row_ids)),
        "missing_rows": len(enriched_products - set(row_ids)),
        "dlq_codes": dict(sorted(codes.items())),
        "hostile": _hostile(ev, outputs),
    }
    figures["hostile_unexpected"] = {
        kind: {"expected": expected_outcome(kind), "got": got}
        for kind, got in figures["hostile"].items()
        if kind != "resent" and not all(outcome_matches(expected_outcome(kind), g) for g in got)
    }
    figures["labels"] = _labels(ev, enriched_products, label_letters)
    figures["faults"] = [_fault_figures(f, _window_end(f, ev.faults), ev, outputs) for f in ev.faults]
    return figures


def _hostile(ev: Evidence, outputs: Mapping[tuple[int, int], list]) -> dict[str, dict[str, int]]:
    """Per hostile kind, how its inputs ended: enriched, dlq:<code> or lost."""
    verdicts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in ev.images:
        kind = ev.kinds.get((r.partition, r.offset), "resent")
        if kind == "good":
            continue
        outs = outputs.get((r.partition, r.offset), [])
        if not outs:
            verdicts[kind]["lost"] += 1
        for out_kind, _, data in outs:
            verdicts[kind]["enriched" if out_kind == "enriched" else f"dlq:{data.get('error_code')}"] += 1
    return {k: dict(v) for k, v in sorted(verdicts.items())}


def _labels(
    ev: Evidence, enriched_products: set[Any], letters: Mapping[tuple[int, int], list[dict[str, Any]]]
) -> dict[str, Any]:
    """A confirmed label of an imaged product must end as its row's ``confirmed`` category."""
    final: dict[str, tuple[str, Record]] = {}
    for r in sorted(ev.labels, key=lambda r: (r.partition, r.offset)):
        data = r.json()
        if isinstance(data.get("product_id"), str) and isinstance(data.get("category"), str):
            final[data["product_id"]] = (data["category"], r)
    rows = {str(row["product_id"]): row for row in ev.rows}
    result: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for pid, (category, rec) in final.items():
        if pid not in enriched_products:
            result["no_image"] += 1
            continue
        row = rows.get(pid)
        if row and row["label_source"] == "confirmed" and row["category"] == category:
            result["kept"] += 1
            continue
        codes = {d.get("error_code") for d in letters.get((rec.partition, rec.offset), [])}
        why = "dead_lettered" if codes else ("missing_row" if row is None else "downgraded")
        result[why] += 1
        if len(examples) < 5:
            examples.append({"product_id": pid, "why": why, "codes": sorted(map(str, codes)), "row": row})
    lost = result["dead_lettered"] + result["downgraded"] + result["missing_row"]
    return {"sent": len(ev.labels), "products": len(final), "lost": lost, **result, "examples": examples}


def _window_end(fault: Fault, faults: list[Fault]) -> float | None:
    """A fault's effects are charged to it until the next kill or broker fault (a join is one of its effects)."""
    later = [f.at for f in faults if f.at > fault.at and f.kind != "join"]
    return min(later, default=None)


def longest_stall(inputs: list[tuple[float, float]], outputs: list[float], start: float, end: float | None) -> float:
    """Longest time in [start, end] that partition work waited with no output at all on the partition.

    ``inputs``: (input timestamp, first output timestamp) of each answered input; a stall
    before an output counts from the later of the previous output and the oldest input it
    answered that was waiting, so a busy backlog is not a stall, silence with work waiting is.
    """
    stall, prev = 0.0, start
    window = [(i, first) for i, first in inputs if first >= start]
    for t in sorted(o for o in outputs if o >= start and (end is None or o <= end)):
        waiting = [i for i, first in window if i < t and first >= t]
        if waiting:
            stall = max(stall, t - max(prev, min(waiting)))
        prev = t
    if end is not None:
        waiting = [i for i, first in window if i < end and first > end]
        if waiting:
            stall = max(stall, end - max(prev, min(waiting)))
    return stall


def _fault_figures(
    fault: Fault, end: float | None, ev: Evidence, outputs: Mapping[tuple[int, int], list]
) -> dict[str, Any]:
    """Gaps after one fault, from Kafka timestamps.

    ``first_output_s``: fault -> the next record on the enriched topic (any partition).
    ``recovery_s``: fault -> every input partition with work pending at or after the fault
    has an output again (max over those partitions); None when one never did.
    ``longest_gap_s``: the longest silence of any partition with work waiting, from the
    fault until the next fault (so a rebalance freeze a while after a crash is charged to it).
    """
    start = fault.back_at or fault.at
    after = [r.ts for r in ev.enriched if r.ts >= fault.at]
    pending: set[int] = set()
    answered: dict[int, list[tuple[float, float]]] = defaultdict(list)
    stamps_by_partition: dict[int, list[float]] = defaultdict(list)
    for r in ev.images:
        stamps = [out.ts for _, out, _ in outputs.get((r.partition, r.offset), [])]
        if r.ts >= fault.at or (stamps and min(stamps) >= fault.at):
            pending.add(r.partition)
        if stamps:
            answered[r.partition].append((r.ts, min(stamps)))
            stamps_by_partition[r.partition].extend(stamps)
    per_partition: dict[int, float | None] = {}
    for p in sorted(pending):
        stamps = [t for t in stamps_by_partition[p] if t >= start]
        per_partition[p] = round(min(stamps) - fault.at, 2) if stamps else None
    values = list(per_partition.values())
    recovery = None if None in values else round(max(values, default=0.0), 2)
    stall = max((longest_stall(answered[p], stamps_by_partition[p], fault.at, end) for p in pending), default=0.0)
    return {
        "kind": fault.kind,
        "worker": fault.worker,
        "at": round(fault.at, 3),
        "down_s": round(fault.back_at - fault.at, 2) if fault.back_at else None,
        "first_output_s": round(min(after) - fault.at, 2) if after else None,
        "recovery_s": recovery,
        "recovery_after_back_s": round(recovery - (start - fault.at), 2) if recovery is not None else None,
        "longest_gap_s": None if recovery is None else round(max(stall, recovery), 2),
        "per_partition_s": {str(k): v for k, v in per_partition.items()},
    }


async def collect(bootstrap: str, topics: Topics) -> dict[str, list[Record]]:
    names = {"images": topics.images, "labels": topics.labels, "enriched": topics.enriched, "dlq": topics.dlq}
    read = await asyncio.gather(*(read_topic(bootstrap, n) for n in names.values()))
    return dict(zip(names, read, strict=True))
