"""A steady stream of image events in a background thread, and a reader that keeps each output's position and time.

For rollout tests: the worker must keep enriching while the model changes, so the input arrives at
a fixed rate for the whole test, and the gaps between outputs are measured from their timestamps.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


@dataclass(frozen=True)
class Output:
    partition: int
    offset: int
    timestamp_ms: int
    value: dict

    @property
    def model(self) -> str:
        m = self.value.get("model") or {}
        return f"{m.get('id')}@{m.get('version')}"

    @property
    def source(self) -> tuple[int, int]:
        """(input partition, input offset) the output answers."""
        s = self.value["source"]
        return int(s["partition"]), int(s["offset"])


@dataclass
class SteadyProducer:
    """Sends ``messages`` (key, value) to ``topic`` at ``rate`` per second from a thread of its own."""

    bootstrap: str
    topic: str
    messages: Sequence[tuple[bytes, bytes]]
    rate: float
    sent: int = 0
    sent_at: list[float] = field(default_factory=list)  # wall-clock time of each send (epoch seconds)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-producer", daemon=True)

    def start(self) -> SteadyProducer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the producer sent {self.sent}/{len(self.messages)} within {timeout}s")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread by join()
            self.error = exc

    async def _produce(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", max_request_size=4_000_000)
        await producer.start()
        try:
            start = time.monotonic()
            for i, (key, value) in enumerate(self.messages):
                if self._stop.is_set():
                    return
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await producer.send_and_wait(self.topic, value, key=key)
                self.sent += 1
                self.sent_at.append(time.time())
        finally:
            await producer.stop()


async def read_outputs(
    bootstrap: str, topic: str, done: Callable[[list[Output]], bool], timeout: float
) -> list[Output]:
    """Every record of ``topic`` from the beginning, until ``done`` holds or the timeout passed."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    got: list[Output] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done(got):
            batch = await consumer.getmany(timeout_ms=300)
            for tp, records in batch.items():
                got.extend(Output(tp.partition, r.offset, r.timestamp, json.loads(r.value)) for r in records)
    finally:
        await consumer.stop()
    return got


def longest_gap_s(outputs: Sequence[Output], start_s: float, end_s: float) -> float:
    """The longest time without any output between ``start_s`` and ``end_s`` (epoch seconds), ends included."""
    times = sorted(o.timestamp_ms / 1000 for o in outputs if start_s <= o.timestamp_ms / 1000 <= end_s)
    points = [start_s, *times, end_s]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def model_runs(outputs: Sequence[Output]) -> dict[int, list[str]]:
    """Per input partition, the models of its outputs in input-offset order, consecutive repeats merged."""
    by_partition: dict[int, list[Output]] = {}
    for o in outputs:
        by_partition.setdefault(o.source[0], []).append(o)
    runs: dict[int, list[str]] = {}
    for p, outs in by_partition.items():
        seq: list[str] = []
        for o in sorted(outs, key=lambda o: (o.source[1], o.timestamp_ms)):
            if not seq or seq[-1] != o.model:
                seq.append(o.model)
        runs[p] = seq
    return runs
