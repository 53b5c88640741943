"""Start-up follows the log: which model a starting worker serves, and whether a rollout is to be resumed.

- No activation on the models topic: ``CATALOG_MODEL_REF``.
- The latest activation is valid and its rollout is done (the alias points at its collection, or
  its re-index group says every partition switched and nothing lags): its model alone. A rollout
  that finished without moving the alias (a crash in between) gets the alias moved here.
- Its rollout is not done: the model it replaced serves the unswitched partitions, its own model
  the switched ones, and the re-index goes on (``RolloutController.start``).
- The latest activation is invalid (not a ModelActivated, an unknown model, a checksum that does
  not match): one log line, and the worker serves its ``previous_ref`` (or ``CATALOG_MODEL_REF``).

Reads are bounded by ``startup_timeout_s``; a broker that does not answer is a start-up failure.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog
from aiokafka import TopicPartition

from streams.activation import ActivationRefused, read_latest_activation
from streams.events import ModelActivated
from streams.kafka_clients import consumer
from streams.rollout.alias import open_client, point_alias
from streams.rollout.collections import alias_target, models_by_collection
from streams.rollout.offsets import read_group_offsets, reindex_group_id, topic_partitions
from streams.rollout.status import RolloutStatus
from streams.rollout.validation import Refusal, check_activation, usable_ref
from streams.settings import Settings

log = structlog.get_logger("catalog.rollout")


@dataclass(frozen=True)
class StartPlan:
    serve_ref: str  # the model of every partition that is not switched (all of them without a rollout)
    source: str  # what decided it, for the start-up log line
    resume: ModelActivated | None = None  # an unfinished rollout: its model serves the switched partitions
    follow_from: dict[int, int] | None = None  # models-topic offsets to follow activations from
    refusals: list[Refusal] = field(default_factory=list)  # the latest activation, refused at start


async def models_end_offsets(settings: Settings) -> dict[int, int]:
    """Where the models topic ends now: activations from here on are followed while serving."""
    topic = settings.topic_models
    partitions = (await topic_partitions(settings, [topic])).get(topic, ())
    if not partitions:
        return {}
    probe = consumer(settings, group_id=None, enable_auto_commit=False)
    await probe.start()
    try:
        ends = await probe.end_offsets([TopicPartition(topic, p) for p in partitions])
    finally:
        await probe.stop()
    return {tp.partition: n for tp, n in ends.items()}


def _alias_target(settings: Settings) -> str | None:
    client = open_client(settings)
    try:
        return alias_target(client, settings.milvus_collection_prefix)
    finally:
        client.close()


def _move_alias(settings: Settings, collection: str) -> None:
    client = open_client(settings)
    try:
        point_alias(client, settings.milvus_collection_prefix, collection)
    finally:
        client.close()


async def rollout_complete(settings: Settings, activation: ModelActivated) -> bool:
    """Every images partition of the activation's re-index group switched and nothing lags."""
    group = reindex_group_id(settings.app_id, activation.collection, activation.activated_at)
    offsets = await read_group_offsets(settings, group, [settings.topic_images, settings.topic_gallery])
    return RolloutStatus(activation, offsets, settings.topic_images, settings.topic_gallery).complete


async def plan_start(settings: Settings) -> StartPlan:
    """Read the latest activation (and, for an activation of another model, the rollout's state)."""
    return await asyncio.wait_for(_plan(settings), settings.startup_timeout_s)


async def _plan(settings: Settings) -> StartPlan:
    follow_from = await models_end_offsets(settings)  # before the read: nothing published in between is missed
    try:
        record = await read_latest_activation(settings, settings.startup_timeout_s)
    except ActivationRefused as exc:
        refusal = Refusal(exc.code, exc.message)
        return StartPlan(settings.model_ref, "CATALOG_MODEL_REF (the latest activation is invalid)", None,
                         follow_from, [refusal])  # fmt: skip
    if record is None:
        return StartPlan(settings.model_ref, "CATALOG_MODEL_REF (no activation yet)", None, follow_from)
    a = record.event
    try:
        await asyncio.to_thread(check_activation, settings, a)
    except Refusal as refusal:
        if await asyncio.to_thread(usable_ref, settings, a.previous_ref):
            assert a.previous_ref is not None
            return StartPlan(a.previous_ref, f"previous_ref of the refused activation at offset {record.offset}",
                             None, follow_from, [refusal])  # fmt: skip
        return StartPlan(settings.model_ref, f"CATALOG_MODEL_REF (activation at offset {record.offset} refused)",
                         None, follow_from, [refusal])  # fmt: skip
    alone = StartPlan(a.model_ref, f"activation at offset {record.offset}", None, follow_from)
    if (a.previous_ref or settings.model_ref) == a.model_ref:
        return alone
    target = await asyncio.to_thread(_alias_target, settings)
    if target == a.collection:
        return alone
    if await rollout_complete(settings, a):
        await asyncio.to_thread(_move_alias, settings, a.collection)  # finished, but the alias was not moved yet
        return alone
    previous = await asyncio.to_thread(old_model, settings, a, target)
    return StartPlan(previous, f"unfinished rollout of the activation at offset {record.offset}", a, follow_from)


def old_model(settings: Settings, a: ModelActivated, alias_target: str | None) -> str:
    """The model of the unswitched partitions of an unfinished rollout.

    The alias names the last collection a rollout completed (it moves only at the end), so its
    model is what the old side served; ``previous_ref`` is what the activator believed, which an
    activation published during another rollout gets wrong. Without an alias: ``previous_ref``,
    else ``CATALOG_MODEL_REF``.
    """
    from model_store.embedding_models import available_models

    by_collection = models_by_collection(settings.milvus_collection_prefix, available_models())
    candidates = [by_collection.get(alias_target or ""), a.previous_ref, settings.model_ref]
    for ref in candidates:
        if ref is not None and ref != a.model_ref and usable_ref(settings, ref):
            if ref != a.previous_ref:
                log.warning("rollout_previous_ref_ignored", previous_ref=a.previous_ref, serving=ref,
                            alias_target=alias_target)  # fmt: skip
            return ref
    return settings.model_ref
