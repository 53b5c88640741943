"""Create the service's topics up front with the configured partition count."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.settings import Settings


async def ensure_topics(settings: Settings, replication: int = 1) -> list[str]:
    names = [settings.topic_images, settings.topic_enriched, settings.topic_dlq, settings.topic_labels]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(n, num_partitions=settings.topic_partitions, replication_factor=replication) for n in missing]
            )
        return missing
    finally:
        await admin.close()
