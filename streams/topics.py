"""Create the service's topics up front with the configured partitions, replication and min ISR."""

from __future__ import annotations

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from streams.kafka_clients import admin
from streams.settings import Settings


def topic_configs(settings: Settings) -> dict[str, str]:
    """Topic-level configs of created topics (min.insync.replicas only when set)."""
    if settings.topic_min_insync_replicas is None:
        return {}
    return {"min.insync.replicas": str(settings.topic_min_insync_replicas)}


def new_topics(settings: Settings, names: list[str]) -> list[NewTopic]:
    """The models topic is one compacted partition (its latest activation is the state); the rest are partitioned."""
    configs = topic_configs(settings)
    out = []
    for name in names:
        if name == settings.topic_models:
            out.append(NewTopic(name, 1, settings.topic_replication_factor, topic_configs={
                **configs, "cleanup.policy": "compact"}))  # fmt: skip
        else:
            out.append(
                NewTopic(name, settings.topic_partitions, settings.topic_replication_factor, topic_configs=configs)
            )
    return out


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the service's topics that are missing; returns their names. Existing topics are left as they are."""
    names = [settings.topic_images, settings.topic_enriched, settings.topic_dlq, settings.topic_labels,
             settings.topic_models]  # fmt: skip
    client = admin(settings, request_timeout_ms=int(settings.startup_timeout_s * 1000))
    await client.start()
    try:
        existing = set(await client.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            response = await client.create_topics(new_topics(settings, missing))
            for topic, code, *message in response.topic_errors:
                if code and code != TopicAlreadyExistsError.errno:  # a second worker may have just made it
                    raise for_code(code)(f"create topic {topic}: {message}")
        return missing
    finally:
        await client.close()
