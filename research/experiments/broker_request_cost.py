"""What the local broker's CPU costs per event at the stream bench's two rates.

``PYTHONPATH=. python research/experiments/broker_request_cost.py [--rate 140] [--seconds 15] [--rounds 2]``

Why: at half load ``catalog bench stream`` saw the "rest" of the machine (the broker, mostly) use
as much CPU as at full load, or more, for half the events. This starts a broker on 127.0.0.1,
warms it up, then publishes uploads of about 3 KB at ``--rate`` and at twice that with the
bench's own ``publish`` (acks=all, linger 5 ms), with and without a consumer reading them, and
prints the broker's and this client's cores (``/proc``) per step, every round. Stops the broker
it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.bench.cpu import process_cpu_s
from infra.bench.stream_traffic import Uploads, publish
from infra.kafka.runner import BrokerConfig, KafkaBroker

TOPIC = "broker-cost"
IMAGE_B64 = "x" * 3000  # about one seller upload of the bench; the broker never decodes it


async def _step(name: str, broker_pid: int, work: Awaitable[None]) -> dict[str, object]:
    broker0, client0, wall0 = process_cpu_s(broker_pid) or 0.0, time.process_time(), time.monotonic()
    await work
    wall = time.monotonic() - wall0
    row = {
        "step": name,
        "broker_cores": round(((process_cpu_s(broker_pid) or 0.0) - broker0) / wall, 3),
        "client_cores": round((time.process_time() - client0) / wall, 3),
    }
    print(json.dumps(row), flush=True)
    return row


async def _run(bootstrap: str, broker_pid: int, rate: float, seconds: float, rounds: int) -> list[dict[str, object]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 4, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    uploads = Uploads([IMAGE_B64], "broker-cost")

    async def paced(each: float) -> None:  # the bench's own paced publish of ImageSubmitted events
        await publish(producer, TOPIC, uploads, int(each * seconds), rate=each)

    rows: list[dict[str, object]] = []
    try:
        await paced(2 * rate)  # the broker's JIT warms up on the same requests
        for r in range(rounds):
            rows.append(await _step(f"round {r + 1}: idle", broker_pid, asyncio.sleep(seconds / 2)))
            rows.append(await _step(f"round {r + 1}: {rate:g}/s, no consumer", broker_pid, paced(rate)))
            consumer = AIOKafkaConsumer(
                TOPIC, bootstrap_servers=bootstrap, group_id=f"cost-{r}", auto_offset_reset="latest"
            )
            await consumer.start()
            reader = asyncio.create_task(_drain(consumer))
            try:
                await asyncio.sleep(3)  # joined and fetching
                for each in (rate, 2 * rate):
                    name = f"round {r + 1}: {each:g}/s, one consumer"
                    rows.append(await _step(name, broker_pid, paced(each)))
            finally:
                reader.cancel()
                await consumer.stop()
    finally:
        await producer.stop()
    return rows


async def _drain(consumer: AIOKafkaConsumer) -> None:
    while True:
        await consumer.getmany(timeout_ms=200)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=140.0, help="records/s of the slower step (the bench's half load)")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="", help="JSON of every step")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, KafkaBroker(BrokerConfig(data_dir=Path(tmp) / "kafka")) as broker:
        assert broker.pid is not None
        rows = asyncio.run(_run(broker.bootstrap_servers, broker.pid, args.rate, args.seconds, args.rounds))
    if args.out:
        Path(args.out).write_text(
            json.dumps({"rate": args.rate, "seconds": args.seconds, "steps": rows}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
