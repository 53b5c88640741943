"""What the local broker's CPU costs per event at the stream bench's two rates.

``PYTHONPATH=. python research/experiments/broker_request_cost.py [--rate 140] [--seconds 15] [--rounds 2]``

Why: at half load ``catalog bench stream`` saw the "rest" of the machine (the broker, mostly) use
as much CPU as at full load, or more, for half the events. This starts a broker on 127.0.0.1,
warms it up, then paces 3 KB records at ``--rate`` and at twice that (acks=all, linger 5 ms, as
the bench's producer sends), with and without a consumer reading them, and prints the broker's
and this client's cores (``/proc``) per step, every round. Stops the broker it started.
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
from infra.kafka.runner import BrokerConfig, KafkaBroker

TOPIC = "broker-cost"
PAYLOAD = b"x" * 3000  # about one seller upload of the bench, base64


async def _paced(producer: AIOKafkaProducer, rate: float, seconds: float) -> None:
    start = time.monotonic()
    pending = []
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(await producer.send(TOPIC, PAYLOAD, key=str(i).encode()))
    await asyncio.gather(*pending)


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
    rows: list[dict[str, object]] = []
    try:
        await _paced(producer, 2 * rate, seconds)  # the broker's JIT warms up on the same requests
        for r in range(rounds):
            rows.append(await _step(f"round {r + 1}: idle", broker_pid, asyncio.sleep(seconds / 2)))
            rows.append(
                await _step(f"round {r + 1}: {rate:g}/s, no consumer", broker_pid, _paced(producer, rate, seconds))
            )
            consumer = AIOKafkaConsumer(
                TOPIC, bootstrap_servers=bootstrap, group_id=f"cost-{r}", auto_offset_reset="latest"
            )
            await consumer.start()
            reader = asyncio.create_task(_drain(consumer))
            try:
                await asyncio.sleep(3)  # joined and fetching
                for each in (rate, 2 * rate):
                    name = f"round {r + 1}: {each:g}/s, one consumer"
                    rows.append(await _step(name, broker_pid, _paced(producer, each, seconds)))
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
