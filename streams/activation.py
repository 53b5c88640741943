"""Select the embedding model every worker serves: verify it, publish a ModelActivated, read the latest back.

Why a library module: the console, ``catalog models activate`` and (next) the workers at start-up all
go through these functions, so an activation is verified and keyed the same way everywhere. The
models topic is compacted with one partition and one key (``active``), so its latest record is the
state; reading it to its end gives the model in force.

Nothing is published for a model that fails verification: an unknown reference, a built-in model
(no registry artifact to pin), a non-embedding architecture, a missing file or a checksum mismatch
raises ``ActivationRefused`` before any Kafka client is built.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from pydantic import ValidationError

from model_store.activation_log import ACTIVATION_LOG_FILE, ActivationLogEntry, append_activation
from processors.vector_index import collection_name
from streams.events import ACTIVATION_KEY, ModelActivated, utc_now
from streams.kafka_clients import admin, consumer, producer
from streams.settings import Settings
from streams.topics import new_topics

if TYPE_CHECKING:
    from model_store.registry import Manifest, ModelRegistry

WEIGHTS_FILE = "weights.pt"


class ActivationRefused(Exception):
    """The activation was not published; ``code`` says why (a console shows ``message`` as it is)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class ActivationRecord:
    """A ModelActivated as it sits on the models topic."""

    event: ModelActivated
    topic: str
    partition: int
    offset: int


def registry_root(settings: Settings) -> Path:
    """The registry the console and the activate command read (the shipped one unless configured)."""
    if settings.registry_dir is not None:
        return Path(settings.registry_dir)
    from model_store.registry import DEFAULT_ROOT

    return DEFAULT_ROOT


def activation_log_path(settings: Settings) -> Path:
    return Path(settings.activation_log) if settings.activation_log else registry_root(settings) / ACTIVATION_LOG_FILE


def open_registry(settings: Settings) -> ModelRegistry:
    from model_store.registry import ModelRegistry

    return ModelRegistry(registry_root(settings))


def verified_manifest(registry: ModelRegistry, ref: str) -> Manifest:
    """The manifest of an embedding model whose every file matches its recorded sha256."""
    from model_store.embedding_loading import EMBEDDING_ARCH
    from model_store.embedding_models import BASELINE_REF
    from model_store.registry import ArtifactMissingError, ChecksumMismatchError, RegistryError, parse_ref

    try:
        parse_ref(ref)
    except ValueError as exc:
        raise ActivationRefused("bad_ref", str(exc)) from exc
    if ref == BASELINE_REF:
        raise ActivationRefused(
            "builtin_model", f"{ref} is built in code and has no registry artifact whose sha256 could be pinned"
        )
    if not registry.exists(ref):
        raise ActivationRefused("unknown_model", f"no model {ref!r} in the registry {registry.root}")
    manifest = registry.load_manifest(ref)
    if manifest.architecture != EMBEDDING_ARCH:
        raise ActivationRefused(
            "not_embedding", f"{manifest.ref} is a {manifest.architecture or 'model'!r}, not an embedding model"
        )
    if WEIGHTS_FILE not in manifest.files:
        raise ActivationRefused("artifact_missing", f"{manifest.ref}: the manifest lists no {WEIGHTS_FILE}")
    try:
        registry.verify(manifest.ref)
    except ChecksumMismatchError as exc:
        raise ActivationRefused("checksum_mismatch", str(exc)) from exc
    except ArtifactMissingError as exc:
        raise ActivationRefused("artifact_missing", str(exc)) from exc
    except RegistryError as exc:
        raise ActivationRefused("artifact_invalid", str(exc)) from exc
    return manifest


def build_activation(
    settings: Settings,
    manifest: Manifest,
    activated_by: str,
    previous_ref: str | None,
    now: datetime | None = None,
) -> ModelActivated:
    """The event for a verified manifest: its weights' digest and the collection its vectors go to."""
    try:
        return ModelActivated(
            model_ref=manifest.ref,
            sha256=manifest.files[WEIGHTS_FILE],
            collection=collection_name(settings.milvus_collection_prefix, manifest.name, manifest.version),
            activated_at=now or utc_now(),
            activated_by=activated_by,
            previous_ref=previous_ref,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ActivationRefused("invalid_activation", problems) from exc


async def ensure_models_topic(settings: Settings) -> None:
    """Create the compacted one-partition models topic if it is missing (auto-creation would not compact it)."""
    client = admin(settings, request_timeout_ms=int(settings.startup_timeout_s * 1000))
    try:
        await client.start()
        if settings.topic_models in set(await client.list_topics()):
            return
        response = await client.create_topics(new_topics(settings, [settings.topic_models]))
        for topic, code, *message in response.topic_errors:
            if code and code != TopicAlreadyExistsError.errno:
                raise for_code(code)(f"create topic {topic}: {message}")
    finally:
        await client.close()


async def publish_activation(settings: Settings, event: ModelActivated) -> ActivationRecord:
    """Publish under key ``active`` and return where the broker stored it, after its acks=all acknowledgement."""
    await ensure_models_topic(settings)
    client = producer(settings, acks="all", enable_idempotence=True)
    try:
        await client.start()
        meta = await client.send_and_wait(
            settings.topic_models, value=event.model_dump_json().encode("utf-8"), key=ACTIVATION_KEY
        )
    finally:
        await client.stop()
    return ActivationRecord(event, meta.topic, meta.partition, meta.offset)


async def read_latest_activation(settings: Settings, timeout_s: float = 10.0) -> ActivationRecord | None:
    """The newest ``active`` record of the models topic, read to its end; None when the topic is empty or absent.

    A tombstone (null value) as the newest record means "no activation". A newest value that is not a
    valid ModelActivated raises ``ActivationRefused("invalid_activation")``: falling back to an older
    record would silently serve a model nobody selected last.
    """
    return await asyncio.wait_for(_read_latest(settings), timeout_s)


async def _partitions(settings: Settings, topic: str) -> list[int]:
    """The topic's partitions, or [] when it does not exist (asked without creating it)."""
    client = admin(settings, request_timeout_ms=int(settings.startup_timeout_s * 1000))
    try:
        await client.start()
        if topic not in set(await client.list_topics()):
            return []
        (described,) = await client.describe_topics([topic])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await client.close()


async def _read_latest(settings: Settings) -> ActivationRecord | None:
    topic = settings.topic_models
    numbers = await _partitions(settings, topic)
    if not numbers:
        return None
    partitions = [TopicPartition(topic, p) for p in numbers]
    client = consumer(settings, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest")
    try:
        await client.start()
        client.assign(partitions)
        await client.seek_to_beginning(*partitions)
        end = await client.end_offsets(partitions)
        latest: tuple[int, int, int, bytes | None] | None = None  # (timestamp, partition, offset, value)
        while [tp for tp in partitions if await client.position(tp) < end[tp]]:
            batch = await client.getmany(*partitions, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < end[tp] and record.key == ACTIVATION_KEY:
                        candidate = (record.timestamp, tp.partition, record.offset, record.value)
                        latest = candidate if latest is None or candidate[:3] > latest[:3] else latest
    finally:
        await client.stop()
    if latest is None:
        return None
    _, partition, offset, value = latest
    if value is None:
        return None
    try:
        event = ModelActivated.model_validate_json(value)
    except ValidationError as exc:
        raise ActivationRefused(
            "invalid_activation", f"the latest record of {topic} (offset {offset}) is not a ModelActivated: {exc}"
        ) from exc
    return ActivationRecord(event, topic, partition, offset)


async def active_ref(settings: Settings, timeout_s: float = 10.0) -> tuple[str, ActivationRecord | None]:
    """The model in force: the latest activation on the topic, else ``CATALOG_MODEL_REF``."""
    record = await read_latest_activation(settings, timeout_s)
    return (record.event.model_ref if record else settings.model_ref), record


async def activate(settings: Settings, ref: str, activated_by: str, timeout_s: float = 30.0) -> ActivationRecord:
    """Verify ``ref``, publish its activation (previous_ref = the model in force) and append it to the log.

    Raises ``ActivationRefused`` with nothing published for a bad model, and ``kafka_unavailable``
    when the broker does not answer or acknowledge within ``timeout_s``.
    """
    manifest = verified_manifest(open_registry(settings), ref)
    try:
        previous, _ = await active_ref(settings, timeout_s)
        event = build_activation(settings, manifest, activated_by, previous)
        record = await asyncio.wait_for(publish_activation(settings, event), timeout_s)
    except (TimeoutError, KafkaError, OSError) as exc:
        raise ActivationRefused(
            "kafka_unavailable", f"Kafka at {settings.kafka_bootstrap} did not answer: {type(exc).__name__} {exc}"
        ) from exc
    append_activation(activation_log_path(settings), log_entry(record))
    return record


def log_entry(record: ActivationRecord) -> ActivationLogEntry:
    e = record.event
    return ActivationLogEntry(
        model_ref=e.model_ref,
        sha256=e.sha256,
        collection=e.collection,
        activated_at=e.activated_at.isoformat(),
        activated_by=e.activated_by,
        previous_ref=e.previous_ref,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )
