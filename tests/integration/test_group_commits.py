"""The lag gauge's commits come from the broker's group coordinator, read with a real admin client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from streams.consumer_lag import GroupCommits, PartitionLag, committed_lag
from tests.kafka_backend import TopicFactory

pytestmark = pytest.mark.integration


async def test_commits_are_read_per_partition_and_a_partition_never_committed_reads_none(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory("group-commits", partitions=2)
    group = f"lag-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    try:
        for i in range(7):
            await producer.send_and_wait(topic, f"v{i}".encode(), partition=0)
    finally:
        await producer.stop()
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap_servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([first, second])
        await consumer.commit({first: OffsetAndMetadata(5, "")})
    finally:
        await consumer.stop()

    commits = GroupCommits(group, lambda: AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers), timeout_s=30)
    try:
        read = await commits.read({first, second})
        assert read == {(topic, 0): 5, (topic, 1): None}
        highwater = {first: 7, second: 0}.get
        assert committed_lag({first, second}, highwater, read) == [PartitionLag(topic, 0, 2)]
        assert await commits.read(set()) == {}
    finally:
        await commits.close()


async def test_a_refused_connection_reads_none_and_the_next_read_tries_a_new_client() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    made: list[AIOKafkaAdminClient] = []

    def make() -> AIOKafkaAdminClient:
        made.append(AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=1000))
        return made[-1]

    commits = GroupCommits("nobody", make, timeout_s=3)
    partitions = {TopicPartition("images", 0)}
    assert await commits.read(partitions) is None
    assert await commits.read(partitions) is None
    assert len(made) == 2 and all(admin._closed for admin in made)  # none left open
    await commits.close()


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts connections and never answers: a broker that hangs."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


async def test_a_broker_that_never_answers_reads_none_within_the_timeout_and_no_client_stays_open() -> None:
    made: list[AIOKafkaAdminClient] = []
    with silent_listener() as port:

        def make() -> AIOKafkaAdminClient:
            made.append(AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=60_000))
            return made[-1]

        commits = GroupCommits("nobody", make, timeout_s=1.5)
        started = time.monotonic()
        assert await commits.read({TopicPartition("images", 0)}) is None
        assert time.monotonic() - started < 10  # the read's own timeout, not the client's 60 s
        assert len(made) == 1 and made[0]._closed

        await commits.close()


async def test_closing_while_a_read_starts_its_client_closes_that_client(kafka_bootstrap_servers: str) -> None:
    made: list[AIOKafkaAdminClient] = []

    def make() -> AIOKafkaAdminClient:
        made.append(AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers))
        return made[-1]

    group, partitions = f"lag-{uuid.uuid4().hex[:8]}", {TopicPartition("images", 0)}
    await coordinator_answers(kafka_bootstrap_servers, group)  # else the read fails on its own, proving nothing
    commits = GroupCommits(group, make, timeout_s=30)
    reading = asyncio.create_task(commits.read(partitions))
    await asyncio.sleep(0)  # the read is inside the client's start()
    await commits.close()  # shutdown: before the client is kept
    assert await reading is None
    assert len(made) == 1 and made[0]._closed
    assert await commits.read(partitions) is None and len(made) == 1  # no client after close


async def coordinator_answers(bootstrap: str, group: str, within_s: float = 60.0) -> None:
    """A fresh broker creates its offsets topic on the first group request: wait until reads succeed."""
    probe = GroupCommits(group, lambda: AIOKafkaAdminClient(bootstrap_servers=bootstrap), timeout_s=10)
    deadline = time.monotonic() + within_s
    try:
        while await probe.read({TopicPartition("images", 0)}) is None:
            assert time.monotonic() < deadline, "the group coordinator never answered"
            await asyncio.sleep(0.5)
    finally:
        await probe.close()


async def test_a_partition_of_a_topic_the_group_never_read_has_no_commit(kafka_bootstrap_servers: str) -> None:
    commits = GroupCommits(
        f"lag-{uuid.uuid4().hex[:8]}",
        lambda: AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers),
        timeout_s=30,
    )
    topic = f"never-{uuid.uuid4().hex[:6]}"
    try:
        assert await commits.read([TopicPartition(topic, 3)]) == {(topic, 3): None}
    finally:
        await commits.close()
