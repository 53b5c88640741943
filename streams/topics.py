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


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the four topics that are missing; returns their names. Existing topics are left as they are."""
    names = [settings.topic_images, settings.topic_enriched, settings.topic_dlq, settings.topic_labels]
    client = admin(settings, request_timeout_ms=int(settings.startup_timeout_s * 1000))
    await client.start()
    try:
        existing = set(await client.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            configs = topic_configs(settings)
            response = await client.create_topics(
                [
                    NewTopic(
                        n,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication_factor,
                        topic_configs=configs,
                    )
                    for n in missing
                ]
            )
            for topic, code, *message in response.topic_errors:
                if code and code != TopicAlreadyExistsError.errno:  # a second worker may have just made it
                    raise for_code(code)(f"create topic {topic}: {message}")
        return missing
    finally:
        await client.close()
