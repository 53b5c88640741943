"""The console server as the console's integration tests start it: on a models topic of its own.

The topic (one partition, compacted, as the deployment's) is created first and deleted after the
server stopped; the activation log and Milvus Lite file live in the test's ``work`` folder.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.kafka_backend import create_topics, delete_topics, unique_topic
from tests.support.console import ConsoleServer


@contextlib.contextmanager
def console_on_own_topic(
    bootstrap: str, work: Path, registry: Path, extra_env: dict[str, str]
) -> Iterator[tuple[ConsoleServer, str]]:
    """A started ``ConsoleServer`` on ``registry`` and the models topic it follows; ``extra_env`` is added last."""
    topic = unique_topic("console-models")
    asyncio.run(create_topics(bootstrap, [topic], 1, {"cleanup.policy": "compact"}))
    env = {
        "CATALOG_KAFKA_BOOTSTRAP": bootstrap,
        "CATALOG_TOPIC_MODELS": topic,
        "CATALOG_REGISTRY_DIR": str(registry),
        "CATALOG_ACTIVATION_LOG": str(work / "activations.jsonl"),
        "CATALOG_MILVUS_URI": str(work / "milvus.db"),
        **extra_env,
    }
    try:
        with ConsoleServer(env, work / "console") as console:
            yield console, topic
    finally:
        asyncio.run(delete_topics(bootstrap, [topic]))
