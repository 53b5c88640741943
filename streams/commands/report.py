"""Read the enriched and dead-letter topics and summarise a run against ground truth."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from model_store.vocabulary import DEFAULT_TAXONOMY
from streams.kafka_clients import consumer as kafka_consumer
from streams.settings import Settings


@dataclass
class RunSummary:
    expected: int
    enriched: dict[str, dict] = field(default_factory=dict)
    dead: list[dict] = field(default_factory=list)

    def accuracy(self, truth: dict[str, dict]) -> tuple[float, float]:
        fine = coarse = n = 0
        for event_id, rec in self.enriched.items():
            t = truth.get(event_id)
            if not t:
                continue
            label = rec["category"]["label"]
            n += 1
            fine += label == t["label"]
            coarse += label is not None and DEFAULT_TAXONOMY.get(label) == t["category"]
        return (fine / n if n else 0.0, coarse / n if n else 0.0)

    def quality_summary(self) -> dict:
        """How many events carry a quality block, the mean total, and the background / position mix."""
        blocks = [r["quality"] for r in self.enriched.values() if r.get("quality")]
        if not blocks:
            return {"with_quality": 0}
        backgrounds = Counter(q["background"]["label"] for q in blocks)
        positions = Counter(q["position"]["category"] for q in blocks)
        return {
            "with_quality": len(blocks),
            "mean_total": round(sum(q["total"] for q in blocks) / len(blocks), 3),
            "background": dict(backgrounds.most_common()),
            "position": dict(positions.most_common()),
            "weights": blocks[0]["weights"],
        }

    def throughput(self, truth: dict[str, dict]) -> float | None:
        """Events/s from the first upload's ``submitted_at`` to the last enrichment's ``processed_at``.

        Why not between enrichments: a batch stamps its events within milliseconds, so 300 uploads
        in two batches read as 789 a second. Two clocks, the producer's and the worker's: one
        machine in the demo. None when the truth file has no submission times (written by an
        older ``catalog produce``), nothing was enriched, or the clocks disagree past the span.
        """
        submitted = [datetime.fromisoformat(t["submitted_at"]) for t in truth.values() if t.get("submitted_at")]
        processed = [datetime.fromisoformat(r["processed_at"]) for r in self.enriched.values()]
        if not submitted or not processed:
            return None
        span = (max(processed) - min(submitted)).total_seconds()
        return len(processed) / span if span > 0 else None


async def collect(
    settings: Settings, enriched_topic: str, dlq_topic: str, expected_ids: set[str], timeout_s: float
) -> RunSummary:
    consumer = kafka_consumer(
        settings,
        enriched_topic,
        dlq_topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    summary = RunSummary(expected=len(expected_ids))
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for m in messages:
                    rec = json.loads(m.value)
                    if tp.topic == dlq_topic:
                        summary.dead.append(rec)
                    elif rec["event_id"] in expected_ids:
                        summary.enriched[rec["event_id"]] = rec
            seen = len(summary.enriched) + len({d.get("event_id") for d in summary.dead} & expected_ids)
            if seen >= len(expected_ids):
                break
    finally:
        await consumer.stop()
    return summary


def load_truth(path: Path) -> dict[str, dict]:
    return {rec["event_id"]: rec for rec in map(json.loads, path.read_text().splitlines()) if rec}
