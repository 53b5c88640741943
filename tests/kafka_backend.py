"""Pick a real Kafka broker for tests, and small admin helpers that talk to it.

Why one place: every test that needs Kafka goes through ``kafka_endpoint()``, so the
choice of backend (already running, Docker, local jars) is made once, and never a mock.

Order: ``KAFKA_BOOTSTRAP_SERVERS`` if set; else testcontainers' Kafka if a Docker engine
answers; else the local jar broker of ``infra.kafka.runner`` in a temp dir on free ports.
``KAFKA_TEST_BACKEND=local|docker`` skips the automatic choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.kafka.runner import BrokerConfig, KafkaBroker

log = logging.getLogger(__name__)

DEFAULT_DOCKER_IMAGE = "confluentinc/cp-kafka:7.6.0"


@dataclass(frozen=True)
class KafkaEndpoint:
    """Where the test broker is, and which backend gave it."""

    bootstrap_servers: str
    backend: str  # "env" | "testcontainers" | "local"
    broker: KafkaBroker | None = None  # local backend only: tests may inspect its log or pid


def _docker_container(image: str) -> Any | None:
    """A started testcontainers KafkaContainer, or None when Docker is absent or fails."""
    try:
        from docker.errors import DockerException
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:
        return None
    try:
        container = KafkaContainer(image).with_kraft()  # raises DockerException at once without Docker
    except DockerException:
        return None
    try:
        container.start()
    except Exception as exc:  # pull or start failed: the local broker is just as real
        log.warning("testcontainers Kafka failed (%s); falling back to the local jar broker", exc)
        with contextlib.suppress(Exception):
            container.stop()
        return None
    return container


@contextlib.contextmanager
def kafka_endpoint(env: Mapping[str, str] | None = None) -> Iterator[KafkaEndpoint]:
    """Yield a running broker's endpoint; stops whatever it started on exit."""
    env = os.environ if env is None else env
    given = env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if given:
        yield KafkaEndpoint(given, "env")
        return
    forced = env.get("KAFKA_TEST_BACKEND", "auto").strip().lower()
    if forced not in {"auto", "docker", "local"}:
        raise ValueError(f"KAFKA_TEST_BACKEND must be auto, docker or local, not {forced!r}")
    container = None
    if forced in {"auto", "docker"}:
        container = _docker_container(env.get("KAFKA_TEST_IMAGE", DEFAULT_DOCKER_IMAGE))
        if container is None and forced == "docker":
            raise RuntimeError("KAFKA_TEST_BACKEND=docker but no Docker engine answered")
    if container is not None:
        try:
            yield KafkaEndpoint(container.get_bootstrap_server(), "testcontainers")
        finally:
            container.stop()
        return
    with tempfile.TemporaryDirectory(prefix="catalog-kafka-") as tmp:
        config = BrokerConfig(data_dir=Path(tmp), stop_with_parent=True)
        with KafkaBroker(config) as broker:
            log.info("local Kafka broker at %s ready in %.1fs", broker.bootstrap_servers, broker.ready_seconds)
            yield KafkaEndpoint(broker.bootstrap_servers, "local", broker)


@contextlib.contextmanager
def kafka_bootstrap(env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Like ``kafka_endpoint`` but yields only the bootstrap address string."""
    with kafka_endpoint(env) as endpoint:
        yield endpoint.bootstrap_servers


def unique_topic(prefix: str = "test") -> str:
    """A topic name no other test (or earlier run on a shared broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def create_topics(
    bootstrap_servers: str,
    names: Sequence[str],
    partitions: int = 1,
    configs: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create topics (replication 1) and wait until every partition has a leader."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import for_code

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        new = [NewTopic(n, partitions, 1, topic_configs=dict(configs or {})) for n in names]
        response = await admin.create_topics(new, timeout_ms=int(timeout * 1000))
        for topic, code, *message in response.topic_errors:
            if code:
                raise for_code(code)(f"create topic {topic}: {message}")
        await asyncio.wait_for(_wait_leaders(admin, list(names), partitions), timeout)
    finally:
        await admin.close()


async def _wait_leaders(admin: Any, names: list[str], partitions: int) -> None:
    while True:
        described = await admin.describe_topics(names)
        ready = [
            t
            for t in described
            if t["error_code"] == 0
            and len(t["partitions"]) == partitions
            and all(p["leader"] >= 0 for p in t["partitions"])
        ]
        if len(ready) == len(names):
            return
        await asyncio.sleep(0.1)


async def delete_topics(bootstrap_servers: str, names: Sequence[str], timeout: float = 30.0) -> None:
    """Delete topics; best effort (a missing topic is not an error)."""
    if not names:
        return
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        await admin.delete_topics(list(names), timeout_ms=int(timeout * 1000))
    finally:
        await admin.close()


class TopicFactory:
    """``await factory("images", partitions=3)`` -> a fresh topic name; remembers what it made."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.created: list[str] = []

    async def __call__(
        self, prefix: str = "test", partitions: int = 1, *, configs: Mapping[str, str] | None = None
    ) -> str:
        name = unique_topic(prefix)
        await create_topics(self.bootstrap_servers, [name], partitions, configs)
        self.created.append(name)
        return name

    async def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            await delete_topics(self.bootstrap_servers, self.created)
        self.created.clear()
