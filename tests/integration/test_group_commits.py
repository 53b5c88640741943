"""The lag gauge's commits come from the broker's group coordinator, read with a real admin client."""

from __future__ import annotations

import socket
import uuid

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


async def test_an_unreachable_broker_reads_none_within_the_timeout_and_the_next_read_tries_again() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    made = []

    def make() -> AIOKafkaAdminClient:
        made.append(1)
        return AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=1000)

    commits = GroupCommits("nobody", make, timeout_s=3)
    partitions = {TopicPartition("images", 0)}
    assert await commits.read(partitions) is None
    assert await commits.read(partitions) is None
    assert len(made) == 2  # a failed client is dropped, not reused
    await commits.close()
