"""BatchHandler's guarantees as pure logic: a stand-in pipeline and publisher, no broker.

What is checked: any exception met while handling one event costs that event only (a dead
letter with a code), a retry re-sends only unacknowledged messages, a message Kafka refuses
for good is answered by a small dead letter, and a letter never outgrows the broker's limit.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Sequence

from processors.errors import InputRejected, ProcessingError, TransientFailure
from processors.knn_vote import CategoryVote
from processors.requests import Enrichment, ImageRequest, Outcome
from streams.events import DeadLetter, ImageEnriched
from streams.metrics import WorkerMetrics
from streams.retry import Backoff
from streams.worker import BatchHandler, HandlerLimits, Outgoing, RawEvent, Topics
from tests.support.events import encode, submitted

TOPICS = Topics(enriched="out", dlq="dlq")


class StandInPipeline:
    """Enriches every request, but raises for the whole batch when it holds a product named ``boom``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def process_batch(self, requests: Sequence[ImageRequest]) -> list[Outcome]:
        self.batches.append([r.product_id for r in requests])
        if any(r.product_id == "boom" for r in requests):
            raise RuntimeError("a bug that only this product triggers")
        return [
            Enrichment(r, "m", "1", CategoryVote(label="shoes", vote_share=1.0, votes={"shoes": 1}, k=1), (), 8, 8)
            for r in requests
        ]


class ScriptedPublisher:
    """Answers each send from a script keyed by the message's Kafka key; records every attempt."""

    def __init__(self, script: dict[bytes, list[ProcessingError | None]] | None = None) -> None:
        self.script = script or {}
        self.sent: list[Outgoing] = []

    async def publish(self, messages: Sequence[Outgoing]) -> list[ProcessingError | None]:
        self.sent.extend(messages)
        return [
            self.script.get(m.key or b"", [None]).pop(0) if self.script.get(m.key or b"") else None for m in messages
        ]


def handler(publisher: ScriptedPublisher, pipeline: StandInPipeline | None = None, cap: int = 1024) -> BatchHandler:
    return BatchHandler(
        pipeline or StandInPipeline(),  # type: ignore[arg-type]
        publisher,
        TOPICS,
        WorkerMetrics(),
        Backoff(0.001, 0.002),
        HandlerLimits(dlq_max_copied_value=cap),
    )


def raw(offset: int, value: bytes, key: bytes | None = None) -> RawEvent:
    return RawEvent("images", 0, offset, key if key is not None else f"k{offset}".encode(), value)


def image_event(product_id: str) -> bytes:
    return encode(submitted(product_id, image_url="https://img.example.com/x.jpg"))


def by_topic(messages: list[Outgoing]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"out": [], "dlq": []}
    for m in messages:
        out[m.topic].append(json.loads(m.value))
    return out


def test_a_bug_for_one_event_dead_letters_it_and_enriches_its_batch_mates() -> None:
    publisher, pipeline = ScriptedPublisher(), StandInPipeline()
    events = [raw(i, image_event(pid)) for i, pid in enumerate(["a", "boom", "b", "c"])]
    asyncio.run(handler(publisher, pipeline).handle_images(events))
    got = by_topic(publisher.sent)
    assert sorted(ImageEnriched.model_validate_json(json.dumps(r)).product_id for r in got["out"]) == ["a", "b", "c"]
    (letter,) = [DeadLetter.model_validate_json(json.dumps(r)) for r in got["dlq"]]
    assert (letter.error_code, letter.stage, letter.product_id) == ("internal_error", "process", "boom")
    assert "RuntimeError" in letter.message
    assert pipeline.batches[0] == ["a", "boom", "b", "c"]  # one batch first, then each alone


def test_a_json_integer_beyond_python_limits_is_a_dead_letter_not_a_crash() -> None:
    publisher = ScriptedPublisher()
    huge = b'{"schema_version": 1, "event_id": ' + b"9" * 5000 + b"}"
    asyncio.run(handler(publisher).handle_images([raw(0, huge), raw(1, image_event("fine"))]))
    got = by_topic(publisher.sent)
    assert [r["error_code"] for r in got["dlq"]] == ["invalid_json"]
    assert [r["product_id"] for r in got["out"]] == ["fine"]


def test_a_dead_letter_copies_at_most_the_cap_and_keeps_size_and_digest() -> None:
    publisher = ScriptedPublisher()
    value = b"\x00\xff" * 600_000  # 1.2 MB of non-UTF-8: base64 alone would exceed the 1 MB limit
    asyncio.run(handler(publisher, cap=4096).handle_images([raw(0, value)]))
    (letter,) = [DeadLetter.model_validate_json(json.dumps(r)) for r in by_topic(publisher.sent)["dlq"]]
    assert letter.error_code == "invalid_utf8" and letter.original_truncated
    assert base64.b64decode(letter.original_value_b64) == value[:4096]
    assert letter.original_value_size == len(value)
    assert letter.original_value_sha256 == hashlib.sha256(value).hexdigest()
    assert len(publisher.sent[0].value) < 10_000


def test_a_retry_resends_only_what_the_broker_did_not_acknowledge() -> None:
    outage = TransientFailure("kafka_produce_failed", "broker away", stage="publish")
    publisher = ScriptedPublisher({b"k1": [outage, outage, None]})
    events = [raw(i, image_event(f"p{i}")) for i in range(3)]
    asyncio.run(handler(publisher).handle_images(events))
    keys = [m.key for m in publisher.sent]
    assert keys.count(b"k0") == 1 and keys.count(b"k2") == 1  # acknowledged once, never sent again
    assert keys.count(b"k1") == 3


def test_an_output_kafka_refuses_for_good_is_answered_by_a_small_dead_letter() -> None:
    too_large = InputRejected("output_too_large", "MessageSizeTooLargeError", stage="publish")
    publisher = ScriptedPublisher({b"k0": [too_large]})
    asyncio.run(handler(publisher).handle_images([raw(0, image_event("p0")), raw(1, image_event("p1"))]))
    got = by_topic(publisher.sent[2:])  # after the first attempt: only the replacement
    (letter,) = [DeadLetter.model_validate_json(json.dumps(r)) for r in got["dlq"]]
    assert (letter.error_code, letter.stage, letter.product_id) == ("output_too_large", "publish", "p0")
    assert letter.original_value_b64 == "" and letter.original_truncated
    assert len(publisher.sent) == 3  # p1 once, p0 once, its letter once: no retry loop


def test_a_refused_fallback_letter_is_dropped_and_counted_instead_of_looping() -> None:
    too_large = InputRejected("output_too_large", "MessageSizeTooLargeError", stage="publish")
    publisher = ScriptedPublisher({b"k0": [too_large, too_large, too_large]})
    h = handler(publisher)
    asyncio.run(h.handle_images([raw(0, b"{broken")]))
    assert len(publisher.sent) == 2
    assert h.metrics.output_dropped.labels(error_code="output_too_large")._value.get() == 1
