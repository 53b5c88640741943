"""Create the service's topics up front with the configured partitions, replication and min ISR."""

from __future__ import annotations

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from streams.kafka_clients import admin
from streams.settings import Settings

COMPACT = {"cleanup.policy": "compact"}


def topic_configs(settings: Settings) -> dict[str, str]:
    """Topic-level configs of created topics (min.insync.replicas only when set)."""
    if settings.topic_min_insync_replicas is None:
        return {}
    return {"min.insync.replicas": str(settings.topic_min_insync_replicas)}


def compacted_topics(settings: Settings) -> frozenset[str]:
    """Topics whose latest record per key is the state (docs/rollout.md): a re-index replays them.

    Images, gallery and labels are keyed by product_id, so compaction keeps the latest image,
    gallery item and trusted label of every product; the models topic keeps the latest activation.
    """
    return frozenset({settings.topic_images, settings.topic_gallery, settings.topic_labels, settings.topic_models})


def new_topics(settings: Settings, names: list[str]) -> list[NewTopic]:
    """The models topic is one compacted partition (its latest activation is the state); the rest are partitioned.

    The gallery topic has the images topic's partition count, so a product's gallery item and
    its images land in partitions of the same number (same key, same default partitioner).
    """
    configs = topic_configs(settings)
    compacted = compacted_topics(settings)
    out = []
    for name in names:
        partitions = 1 if name == settings.topic_models else settings.topic_partitions
        extra = COMPACT if name in compacted else {}
        out.append(NewTopic(name, partitions, settings.topic_replication_factor, topic_configs={**configs, **extra}))
    return out


def service_topics(settings: Settings) -> list[str]:
    return [settings.topic_images, settings.topic_enriched, settings.topic_dlq, settings.topic_labels,
            settings.topic_models, settings.topic_gallery]  # fmt: skip


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the service's topics (or ``names``) that are missing; returns them. Existing ones are left as they are."""
    names = service_topics(settings) if names is None else names
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
