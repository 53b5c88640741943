"""The five fault scenarios of issue 18. Each drives real workers on its own topics, bounded in time.

A scenario only injects faults and sends input; ``infra.chaos.suite`` runs it under a hard
deadline and hands what the topics and Milvus hold to the auditor.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.chaos import workload
from infra.chaos.audit import Fault, milvus_rows
from infra.chaos.sizes import Sizes
from infra.chaos.stack import PARTITIONS, Stack
from infra.chaos.traffic import Feeder, Tail, wait_recovered
from infra.chaos.workload import Msg
from infra.harness.worker_process import WorkerEnv, WorkerProcess


@dataclass
class Run:
    """One scenario's live state: its env, clients, faults and notes."""

    name: str
    stack: Stack
    env: WorkerEnv
    sizes: Sizes
    rng: random.Random
    prefix: str
    deadline: float  # monotonic
    feeder: Feeder
    tail: Tail
    faults: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    confirmed: dict[str, str] = field(default_factory=dict)  # labels whose product gets an image

    @property
    def images(self) -> str:
        return self.env.topics["images"]

    @property
    def labels(self) -> str:
        return self.env.topics["labels"]

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    async def start_workers(self, *names: str) -> list[WorkerProcess]:
        workers = [self.stack.worker(self.env, n).launch() for n in names]
        await asyncio.gather(*(asyncio.to_thread(w.wait_ready, min(240.0, self.left())) for w in workers))
        return workers

    async def until_sent(self, count: int) -> None:
        while self.feeder.count(self.images) < count:
            await asyncio.sleep(0.02)

    async def recovered(self, since: float) -> None:
        waited = await wait_recovered(self.feeder, self.tail, self.images, since, self.sizes.recovery_cap_s)
        if waited is None:
            self.notes.append(f"no recovery within {self.sizes.recovery_cap_s:.0f}s of the fault at {since:.1f}")

    async def settle(self, stream: asyncio.Task[None] | None = None) -> None:
        """Wait for the stream to be sent, every image input to have an output, and labels to be committed."""
        if stream is not None:
            await stream
        cap = max(0.0, self.left() - 5.0)
        if await wait_recovered(self.feeder, self.tail, self.images, 0.0, cap, settle=True) is None:
            self.notes.append("not every image input had an output by the deadline")
        if self.feeder.count(self.labels):
            while self.left() > 5.0 and not await self._labels_settled():
                await asyncio.sleep(1.0)
        await asyncio.sleep(2.0)  # late duplicates still count

    async def _labels_settled(self) -> bool:
        """Every label is committed, or every label of an imaged product already shows in its row.

        The second way out spares waiting for labels held for products that never get an image;
        it is only asked once every upload has its output, so no later upload can change a row.
        """
        if await committed(self.env, self.labels) >= self.feeder.count(self.labels):
            return True
        rows = await asyncio.to_thread(milvus_rows, self.stack.milvus_uri, self.stack.collection, self.prefix)
        got = {str(r["product_id"]): (r["label_source"], r["category"]) for r in rows}
        return all(got.get(pid) == ("confirmed", category) for pid, category in self.confirmed.items())


async def create_topics(env: WorkerEnv) -> None:
    """The scenario's topics with ``PARTITIONS`` partitions, before anything is sent to them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in env.topics.values()])
    finally:
        await admin.close()


async def committed(env: WorkerEnv, topic: str) -> int:
    """Sum of the group's committed offsets on ``topic`` (0 when the broker is unreachable)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    try:
        await admin.start()
        offsets = await admin.list_consumer_group_offsets(env.group)
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0)
    except Exception:
        return 0
    finally:
        await admin.close()


def paced(run: Run, count: int, rate: float, tag: str = "") -> list[tuple[float, Msg]]:
    """``count`` good uploads of distinct products, ``rate`` a second."""
    return [(i / rate, workload.good(run.images, f"{run.prefix}{tag}{i}", i)) for i in range(count)]


# --------------------------------------------------------------------------- scenarios


async def kill_restart(run: Run) -> None:
    """kill -9 of the only worker at seeded points of the stream, restarted at once each time.

    The stream holds at the next kill point until the last kill has recovered (or the cap
    passed), so every kill hits a flowing stream.
    """
    s = run.sizes
    (worker,) = await run.start_workers("w1")
    low, high = int(0.1 * s.kill_events), int(0.9 * s.kill_events)
    points = sorted(run.rng.sample(range(low, high), s.kills))
    holds = {p: asyncio.Event() for p in points[1:]}
    stream = asyncio.create_task(run.feeder.run(paced(run, s.kill_events, s.rate), run.deadline, holds))
    for k, point in enumerate(points):
        await run.until_sent(point)
        await asyncio.sleep(run.rng.uniform(0.0, 1.0))  # anywhere in a micro-batch
        at = time.time()
        worker.kill()
        run.faults.append(Fault("kill", at, worker.name))
        worker.launch()  # the same name, port and instance id: a supervisor's restart
        await asyncio.to_thread(worker.wait_ready, min(240.0, run.left()))
        await run.recovered(at)
        if k + 1 < len(points):
            holds[points[k + 1]].set()
    await run.settle(stream)


async def broker_restart(run: Run) -> None:
    """The broker stops (controlled shutdown) mid-stream and comes back on the same ports."""
    if not run.stack.owns_broker:
        run.skipped = "the broker is external (KAFKA_BOOTSTRAP_SERVERS): it cannot be restarted"
        return
    s = run.sizes
    await run.start_workers("w1")
    stream = asyncio.create_task(run.feeder.run(paced(run, s.broker_events, s.rate), run.deadline))
    await run.until_sent(run.rng.randint(int(0.3 * s.broker_events), int(0.6 * s.broker_events)))
    stopped, back = await asyncio.to_thread(run.stack.restart_broker, run.rng.uniform(*s.broker_down_s))
    run.faults.append(Fault("broker", stopped, back_at=back))
    await run.recovered(stopped)
    await run.settle(stream)


async def group_kill_join(run: Run) -> None:
    """Two workers in one group; one is SIGKILLed, a third joins a few seconds later (not restarted)."""
    s = run.sizes
    _, victim = await run.start_workers("w1", "w2")
    stream = asyncio.create_task(run.feeder.run(paced(run, s.group_events, s.rate), run.deadline))
    await run.until_sent(run.rng.randint(int(0.2 * s.group_events), int(0.4 * s.group_events)))
    at = time.time()
    victim.kill()
    run.faults.append(Fault("kill", at, victim.name))
    await asyncio.sleep(run.rng.uniform(2.0, 8.0))
    joiner = run.stack.worker(run.env, "w3").launch()
    await asyncio.to_thread(joiner.wait_ready, min(240.0, run.left()))
    run.faults.append(Fault("join", time.time(), joiner.name))
    await run.recovered(at)
    await run.settle(stream)


async def label_race(run: Run) -> None:
    """Confirmed labels sent with (or before) their images; some products get a second image at label time.

    A label lands between -1.5 s and +4 s of its product's first image; 40 % of the products
    upload a second image within 0.3 s of the label (the read-decide-write race); 5 % of the
    labels name products that never get an image (they must be dead-lettered, not lost).
    """
    s, rng = run.sizes, run.rng
    await run.start_workers("w1")
    schedule: list[tuple[float, Msg]] = []
    for i in range(s.label_products):
        pid = f"{run.prefix}{i}"
        t = i / s.label_rate + 2.0
        label_at = max(0.0, t + rng.uniform(-1.5, 4.0))
        orphan = rng.random() < 0.05
        if not orphan:
            schedule.append((t, workload.good(run.images, pid, i)))
            if rng.random() < 0.4:
                schedule.append((max(0.0, label_at + rng.uniform(-0.3, 0.3)), workload.good(run.images, pid, i + 7)))
        category = workload.random_category(rng)
        schedule.append((label_at, workload.label(run.labels, pid, category)))
        if not orphan:
            run.confirmed[pid] = category
    schedule.sort(key=lambda item: item[0])
    await run.settle(asyncio.create_task(run.feeder.run(schedule, run.deadline)))


async def poison_mix(run: Run) -> None:
    """Good uploads interleaved with every hostile value of the corpus, on every partition."""
    s, rng = run.sizes, run.rng
    await run.start_workers("w1")
    items: list[Msg] = []
    for i in range(s.poison_good):
        items.append(workload.good(run.images, f"{run.prefix}good-{i}", i, partition=i % PARTITIONS))
    for p in range(PARTITIONS):
        pid = f"{run.prefix}bad-{p}"
        for kind, value in workload.hostile_values(pid, rng).items():
            items.append(Msg(run.images, f"{pid}-{kind}".encode(), value, p, kind))
    rng.shuffle(items)
    schedule = [(i / s.rate, m) for i, m in enumerate(items)]
    await run.settle(asyncio.create_task(run.feeder.run(schedule, run.deadline)))


SCENARIOS: dict[str, Callable[[Run], Awaitable[None]]] = {
    "kill": kill_restart,
    "broker": broker_restart,
    "group": group_kill_join,
    "labels": label_race,
    "poison": poison_mix,
}
