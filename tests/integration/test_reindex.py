"""The re-index of a rollout on the real broker and a real Milvus (a milvus-lite server).

A compacted log (image uploads, re-uploads, gallery items, bad records) is re-embedded with
another registered student into a new collection: every product arrives with its labels and
the new model's vectors, a killed re-index resumes from its commits, and a partition hands
over exactly at the offset it is given.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
import pytest_asyncio
from aiokafka import TopicPartition

from infra.milvus.lite_server import MilvusLiteServer
from processors.embedding import EmbedderConfig, TorchEmbedder
from processors.label_store import LabelStore, StoredLabel, labels_collection
from processors.vector_index import GalleryItem, VectorIndex, collection_name
from streams.activation import publish_activation
from streams.events import ModelActivated
from streams.retry import Backoff
from streams.rollout import SWITCHED, PartitionReindexer, StepResult, build_reindexer
from streams.rollout.offsets import committed_offsets, read_group_offsets, reindex_group_id
from streams.rollout.runner import run_until_caught_up
from streams.settings import Settings
from tests.support.http_images import ImageHttpServer
from tests.support.rollout import (
    ReplayLog,
    add_bad,
    add_gallery,
    add_images,
    create_log_topics,
    decoded_rgb,
    gone_file,
    publish,
    rollout_settings,
)
from tests.support.worker import catalog_cmd

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
OLD_REF, NEW_REF = "student@17", "student-gamma0@2"
FAST = Backoff(0.1, 0.5)


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A milvus-lite server: the test and a re-index subprocess share it (a Lite file has one owner)."""
    with MilvusLiteServer(tmp_path_factory.mktemp("milvus")) as server:
        yield server.uri


@pytest.fixture(scope="module")
def old_model() -> TorchEmbedder:
    return TorchEmbedder.from_config(EmbedderConfig(model_ref=OLD_REF, torch_threads=1))


@pytest.fixture(scope="module")
def new_model() -> TorchEmbedder:
    return TorchEmbedder.from_config(EmbedderConfig(model_ref=NEW_REF, torch_threads=1))


_ACTIVATIONS: dict[str, ModelActivated] = {}


def activation(settings: Settings) -> ModelActivated:
    """The test's activation of the new model (one per test: its time names the re-index group)."""
    from model_store.registry import ModelRegistry

    if settings.app_id in _ACTIVATIONS:
        return _ACTIVATIONS[settings.app_id]
    manifest = ModelRegistry().load_manifest(NEW_REF)
    return _ACTIVATIONS.setdefault(
        settings.app_id,
        ModelActivated(
            model_ref=NEW_REF,
            sha256=manifest.files["weights.pt"],
            collection=collection_name(settings.milvus_collection_prefix, manifest.name, manifest.version),
            activated_at=datetime.now(UTC),
            activated_by="test",
            previous_ref=OLD_REF,
        ),
    )


def old_collection(settings: Settings) -> str:
    return collection_name(settings.milvus_collection_prefix, "student", "17")


@pytest_asyncio.fixture
async def reindexers(new_model: TorchEmbedder) -> AsyncIterator[list[PartitionReindexer]]:
    """Re-indexers the test builds; each is stopped afterwards."""
    made: list[PartitionReindexer] = []
    yield made
    for r in made:
        await r.stop()


def build(settings: Settings, new_model: TorchEmbedder, made: list[PartitionReindexer]) -> PartitionReindexer:
    r = build_reindexer(settings, activation(settings), old_collection(settings), embedder=new_model)
    made.append(r)
    return r


def rows_of(settings: Settings, ids: list[str]) -> dict[str, dict]:
    index = VectorIndex(settings.index_config(), activation(settings).collection, 256)
    try:
        return index.fetch(ids, with_vectors=True)
    finally:
        index.close()


def all_ids(settings: Settings) -> set[str]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=settings.milvus_uri)
    try:
        name = activation(settings).collection
        client.load_collection(name)
        rows = client.query(name, filter='product_id != ""', output_fields=["product_id"], consistency_level="Strong",
                            limit=16384)  # fmt: skip
        return {r["product_id"] for r in rows}
    finally:
        client.close()


async def test_reindex_rebuilds_every_product_with_labels_and_new_vectors(
    kafka_bootstrap_servers: str,
    milvus_uri: str,
    image_server: ImageHttpServer,
    old_model: TorchEmbedder,
    new_model: TorchEmbedder,
    reindexers: list[PartitionReindexer],
) -> None:
    s = rollout_settings(kafka_bootstrap_servers, milvus_uri, partitions=2, rollout_batch_size=48)
    await create_log_topics(s)
    log = ReplayLog(hints={f"p-{i}": "seller-says" for i in range(10, 15)})
    add_images(log, s, [f"p-{i}" for i in range(200)], first_item=0, partitions=2)
    add_images(log, s, [f"p-{i}" for i in range(10)], first_item=200, partitions=2)  # re-uploads: newest wins
    add_gallery(log, s, [f"g-{i}" for i in range(50)], first_item=300, partitions=2)
    gone = gone_file(image_server.root, "reindex-gone.jpg")
    add_bad(log, s, f"{image_server.base_url}/{gone.name}")
    await publish(s.kafka_bootstrap, log.messages)
    gone.unlink()  # the URL answered at upload time; it is gone by re-index time

    # the old model's collection, as the workers left it: predicted labels with quality, and the label store
    old = VectorIndex(s.index_config(), old_collection(s), old_model.dim)
    old.ensure_collection()
    ids = sorted(log.images)
    vectors = old_model.embed([decoded_rgb(log.images[p]) for p in ids])
    old.upsert(
        [GalleryItem(p, v, "old-guess", "predicted", "seller-1", 1, 0.42) for p, v in zip(ids, vectors, strict=True)]
    )
    store = LabelStore(old, labels_collection(s.milvus_collection_prefix))
    store.ensure_collection()
    store.put([StoredLabel(f"p-{i}", f"cat-{i}", "confirmed", 2) for i in range(20, 40)])
    store.put([StoredLabel("g-0", "relabelled", "confirmed", 2)])
    old.close()

    r = build(s, new_model, reindexers)
    await r.start()
    before = await r.total_lag()
    report = await run_until_caught_up(r, range(2), FAST)
    assert before == len(log.messages) and await r.total_lag() == 0

    assert all_ids(s) == log.products  # bad records, the gone URL's product among them, are not there
    assert report.failed == {code: 1 for code in log.bad.values()}
    for code in log.bad.values():
        assert r.metrics.registry.get_sample_value("catalog_reindex_failed_total", {"code": code}) == 1
    assert report.records == len(log.messages) and report.rows + report.superseded == report.records - len(log.bad)

    rows = rows_of(s, sorted(log.products))
    assert {p: (rows[p]["category"], rows[p]["label_source"]) for p in [f"p-{i}" for i in range(20, 40)]} == {
        f"p-{i}": (f"cat-{i}", "confirmed") for i in range(20, 40)
    }
    assert (rows["g-0"]["category"], rows["g-0"]["label_source"]) == ("relabelled", "confirmed")
    assert all((rows[g]["category"], rows[g]["label_source"]) == (log.gallery[g][1], "confirmed")
               for g in log.gallery if g != "g-0")  # fmt: skip
    assert all((rows[f"p-{i}"]["category"], rows[f"p-{i}"]["label_source"]) == ("seller-says", "seller")
               for i in range(10, 15))  # fmt: skip
    carried = rows["p-50"]
    assert (carried["category"], carried["label_source"]) == ("old-guess", "predicted")
    assert carried["quality_total"] == pytest.approx(0.42)  # stored as float32

    # the vectors are the new model's embedding of the latest image, never the old model's
    expected = new_model.embed([decoded_rgb(log.images[p]) for p in ids])
    stored = np.asarray([rows[p]["embedding"] for p in ids], dtype=np.float32)
    np.testing.assert_allclose(stored, expected, atol=1e-5)
    # the two students are close (cosine ~0.9999), yet every row is far further from the old vector than 1e-5
    assert float(np.min(np.max(np.abs(stored - vectors), axis=1))) > 1e-4
    gallery_ids = sorted(log.gallery)
    np.testing.assert_allclose(
        np.asarray([rows[g]["embedding"] for g in gallery_ids], dtype=np.float32),
        new_model.embed_uint8(np.stack([log.gallery[g][0] for g in gallery_ids])),
        atol=1e-5,
    )


async def test_a_killed_reindex_resumes_from_its_commits_and_loses_nothing(
    kafka_bootstrap_servers: str, milvus_uri: str, new_model: TorchEmbedder, reindexers: list[PartitionReindexer]
) -> None:
    s = rollout_settings(kafka_bootstrap_servers, milvus_uri, partitions=2, rollout_batch_size=8)
    await create_log_topics(s)
    log = ReplayLog()
    add_images(log, s, [f"k-{i}" for i in range(160)], first_item=400, partitions=2)
    add_gallery(log, s, [f"kg-{i}" for i in range(40)], first_item=600, partitions=2)
    await publish(s.kafka_bootstrap, log.messages)
    act = activation(s)
    group = reindex_group_id(s.app_id, act.collection, act.activated_at)
    await publish_activation(s, act)  # the job follows the latest activation, as a worker would

    env = {**os.environ, **{f"CATALOG_{k.upper()}": str(v) for k, v in _env_of(s).items()}}
    job = subprocess.Popen(catalog_cmd("rollout", "reindex"), env=env, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        done = await _wait_for_progress(s, group, at_least=40, timeout=120, job=job)
        os.killpg(job.pid, signal.SIGKILL)  # kill -9 mid-way: whatever it had not committed is redone
        job.wait(10)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(10)
    assert 0 < done < len(log.messages), "the job was not killed mid-way"
    committed = (await read_group_offsets(s, group, [s.topic_images, s.topic_gallery])).done

    r = build(s, new_model, reindexers)
    await r.start()
    report = await run_until_caught_up(r, range(2), FAST)
    assert report.records == len(log.messages) - committed  # resumed at the commits, not from the start
    assert all_ids(s) == log.products and await r.total_lag() == 0


async def _first_step(r: PartitionReindexer, max_records: int, timeout: float = 30.0) -> StepResult:
    """The first batch (an empty step means nothing had been fetched yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await r.step(max_records=max_records)
        if result.records:
            return result
    raise AssertionError("nothing fetched")


def _env_of(s: Settings) -> dict[str, object]:
    keys = ["kafka_bootstrap", "app_id", "topic_images", "topic_gallery", "topic_labels", "topic_models",
            "topic_partitions", "milvus_uri", "milvus_collection_prefix", "rollout_batch_size",
            "torch_threads"]  # fmt: skip
    return {k: getattr(s, k) for k in keys}


async def _wait_for_progress(s: Settings, group: str, at_least: int, timeout: float, job: subprocess.Popen) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.poll() is not None:
            _, err = job.communicate()
            raise AssertionError(f"the re-index job exited early ({job.returncode}): {err.decode()[-2000:]}")
        done = (await read_group_offsets(s, group, [s.topic_images, s.topic_gallery])).done
        if done >= at_least:
            return done
        await asyncio.sleep(0.05)
    raise AssertionError("the re-index job made no progress in time")


async def test_catch_up_partition_stops_exactly_at_the_offset_and_marks_it_switched(
    kafka_bootstrap_servers: str, milvus_uri: str, new_model: TorchEmbedder, reindexers: list[PartitionReindexer]
) -> None:
    s = rollout_settings(kafka_bootstrap_servers, milvus_uri, partitions=2, rollout_batch_size=8)
    await create_log_topics(s)
    log = ReplayLog()
    add_images(log, s, [f"c-{i}" for i in range(40)], first_item=700, partitions=1)  # partition 0: offsets 0..39
    add_gallery(log, s, [f"cg-{i}" for i in range(6)], first_item=750, partitions=1)
    late = ReplayLog()
    add_images(late, s, [f"d-{i}" for i in range(6)], first_item=760, partitions=1)
    for m in late.messages:  # partition 1 holds d-0..d-5 at offsets 0..5
        log.messages.append(type(m)(m.topic, 1, m.key, m.value))
    await publish(s.kafka_bootstrap, log.messages)

    r = build(s, new_model, reindexers)
    await r.start()
    await r.assign([0, 1])
    first = await _first_step(r, 8)
    assert 0 < first.records <= 8
    with pytest.raises(ValueError):
        await r.catch_up_partition(0, 41)  # beyond the end of the partition
    await r.catch_up_partition(0, 25)
    await run_until_caught_up(r, [], FAST)  # partition 1 runs ahead of its switch point meanwhile
    await r.catch_up_partition(1, 3)  # already re-indexed past 3: nothing to do but record the switch

    images0, images1 = TopicPartition(s.topic_images, 0), TopicPartition(s.topic_images, 1)
    commits = await committed_offsets(s, r.group_id, [images0, images1])
    assert commits[images0] == (25, SWITCHED) and commits[images1] == (3, SWITCHED)
    assert await r.switched_partitions() == frozenset({0, 1})
    ids = all_ids(s)
    assert {f"c-{i}" for i in range(25)} <= ids and not ids & {f"c-{i}" for i in range(25, 40)}
    assert {f"cg-{i}" for i in range(6)} <= ids  # the gallery partition was drained before the switch
    assert (await r.step()).records == 0 and await r.total_lag() == 0

    again = build(s, new_model, reindexers)  # a restarted owner: the switch is read back, nothing is re-indexed
    await again.start()
    await again.assign([0, 1])
    assert (await again.step()).records == 0
    assert (await again.catch_up_partition(0, 30)).records == 0
    assert (await committed_offsets(s, r.group_id, [images0]))[images0] == (25, SWITCHED)
    assert not all_ids(s) & {f"c-{i}" for i in range(25, 40)}
