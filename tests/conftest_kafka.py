"""Kafka fixtures (a pytest plugin: ``pytest_plugins = ["tests.conftest_kafka"]``).

Why a plugin module: the broker is session-scoped and costly to start, so exactly one
definition of it should exist however the test tree is split.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.kafka_backend import KafkaEndpoint, TopicFactory, kafka_endpoint


@pytest.fixture(scope="session")
def kafka_broker_endpoint() -> Iterator[KafkaEndpoint]:
    """One real broker for the whole session (env var, testcontainers, or local jars)."""
    with kafka_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(kafka_broker_endpoint: KafkaEndpoint) -> str:
    """``host:port`` of the session broker."""
    return kafka_broker_endpoint.bootstrap_servers


@pytest_asyncio.fixture
async def topic_factory(kafka_bootstrap_servers: str) -> AsyncIterator[TopicFactory]:
    """Creates uniquely named topics for one test and deletes them afterwards."""
    factory = TopicFactory(kafka_bootstrap_servers)
    yield factory
    await factory.cleanup()
