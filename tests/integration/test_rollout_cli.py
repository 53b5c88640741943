"""The operator's side of a rollout: gallery load publishes the gallery, rollout status, collections and drop.

Real broker, real Milvus Lite; the commands run as ``catalog`` would run them.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer
from PIL import Image
from pymilvus import MilvusClient

from model_store.activation_log import ActivationLogEntry
from model_store.registry import ModelRegistry
from processors.embedding import EmbedderConfig, TorchEmbedder
from processors.samples import fashion_mnist_samples
from processors.vector_index import VectorIndex, alias_name, collection_name
from streams.activation import publish_activation
from streams.cli import main
from streams.events import GalleryItem, ModelActivated
from streams.retry import Backoff
from streams.rollout import build_reindexer
from streams.rollout.collections import apply_retention, ref_collection
from streams.rollout.offsets import reindex_group_id
from streams.rollout.runner import run_until_caught_up
from streams.settings import Settings
from tests.support.rollout import ReplayLog, add_images, create_log_topics, publish, rollout_settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
NEW_REF = "student-gamma0@2"


def _activation(s: Settings, ref: str = NEW_REF, previous: str | None = "student@17") -> ModelActivated:
    manifest = ModelRegistry().load_manifest(ref)
    return ModelActivated(model_ref=ref, sha256=manifest.files["weights.pt"],
                          collection=collection_name(s.milvus_collection_prefix, manifest.name, manifest.version),
                          activated_at=datetime.now(UTC), activated_by="test", previous_ref=previous)  # fmt: skip


def _env(s: Settings) -> dict[str, str]:
    keys = ["kafka_bootstrap", "app_id", "topic_images", "topic_gallery", "topic_labels", "topic_models",
            "topic_partitions", "milvus_uri", "milvus_collection_prefix"]  # fmt: skip
    return {f"CATALOG_{k.upper()}": str(getattr(s, k)) for k in keys}


async def test_gallery_load_publishes_every_item_losslessly(
    kafka_bootstrap_servers: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = rollout_settings(kafka_bootstrap_servers, str(tmp_path / "milvus.db"), partitions=2)
    monkeypatch.setenv("CATALOG_TORCH_THREADS", "1")
    code, out, err = await _in_thread(monkeypatch, capsys, s, "gallery", "load", "--limit", "120")
    assert code == 0, err[-2000:]
    loaded = json.loads(out)
    assert (loaded["loaded"], loaded["published"], loaded["rows_total"]) == (120, 120, 120)
    assert loaded["topic"] == s.topic_gallery

    samples = fashion_mnist_samples("train", 120, 64)
    items = await _read_all(s.kafka_bootstrap, s.topic_gallery, 120)
    assert sorted(items) == sorted(samples.product_ids)
    for pid, pixels, category in zip(samples.product_ids, samples.pixels, samples.categories, strict=True):
        item = items[pid]
        assert (item.category, item.seller_id) == (category, "catalog")
        with Image.open(io.BytesIO(base64.b64decode(item.image_b64))) as img:
            np.testing.assert_array_equal(np.asarray(img.convert("RGB")), pixels)

    monkeypatch.setenv("CATALOG_STARTUP_TIMEOUT_S", "3")
    offline = s.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    code, _, err = await _in_thread(monkeypatch, capsys, offline, "gallery", "load", "--limit", "5")
    assert code == 2 and "--no-publish" in err and "Traceback" not in err


async def _read_all(bootstrap: str, topic: str, count: int) -> dict[str, GalleryItem]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    got: dict[str, GalleryItem] = {}
    try:
        while len(got) < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
            for records in batch.values():
                for r in records:
                    got[r.key.decode()] = GalleryItem.model_validate_json(r.value)
    finally:
        await consumer.stop()
    return got


async def test_rollout_status_reports_progress_and_switched_partitions(
    kafka_bootstrap_servers: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = rollout_settings(kafka_bootstrap_servers, str(tmp_path / "milvus.db"), partitions=2, rollout_batch_size=16)
    await create_log_topics(s)
    log = ReplayLog()
    add_images(log, s, [f"s-{i}" for i in range(30)], first_item=800, partitions=2)
    await publish(s.kafka_bootstrap, log.messages)

    code, out, _ = await _in_thread(monkeypatch, capsys, s, "rollout", "status")
    assert code == 0 and json.loads(out)["activation"] is None  # nothing activated yet

    act = _activation(s)
    await publish_activation(s, act)
    code, out, _ = await _in_thread(monkeypatch, capsys, s, "rollout", "status")
    before = json.loads(out)
    assert (before["records_done"], before["lag"]["total"], before["switched_partitions"]) == (0, 30, [])
    assert before["activation"]["model_ref"] == NEW_REF
    assert before["group"] == reindex_group_id(s.app_id, act.collection, act.activated_at)

    model = TorchEmbedder.from_config(EmbedderConfig(model_ref=NEW_REF, torch_threads=1))
    r = build_reindexer(s, act, embedder=model)
    await r.start()
    try:
        await run_until_caught_up(r, [0, 1], Backoff(0.1, 0.5))
        await r.catch_up_partition(0, 15)
    finally:
        await r.stop()
    code, out, err = await _in_thread(monkeypatch, capsys, s, "rollout", "status", "--follow", "--interval", "0.2")
    after = json.loads(out)
    assert code == 0 and "re-index" in err  # the progress bar, on stderr
    assert (after["records_done"], after["lag"]["total"], after["switched_partitions"]) == (30, 0, [0])
    assert after["caught_up"] and not after["complete"]


async def _in_thread(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], s: Settings, *argv: str):  # noqa: ANN202
    """The command runs its own event loop (asyncio.run), so off this test's loop."""
    for key, value in _env(s).items():
        monkeypatch.setenv(key, value)
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_collections_listing_drop_guards_and_retention(
    kafka_bootstrap_servers: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = rollout_settings(kafka_bootstrap_servers, str(tmp_path / "milvus.db"), partitions=1)
    prefix = s.milvus_collection_prefix
    act = _activation(s)
    old, new = ref_collection(prefix, "student@17"), act.collection
    junk, older = f"{prefix}_junk_1", ref_collection(prefix, "lite0-imagenet@1")
    for name in (old, new, junk, older):
        index = VectorIndex(s.index_config(), name, 256, alias=alias_name(prefix) if name == old else None)
        index.ensure_collection()
        index.close()
    await publish_activation(s, act)

    code, out, _ = await _in_thread(monkeypatch, capsys, s, "gallery", "collections")
    listed = {c["name"]: c for c in json.loads(out)["collections"]}
    assert code == 0 and set(listed) == {old, new, junk, older}
    assert (listed[old]["model"], listed[old]["alias_target"], listed[old]["active"]) == ("student@17", True, False)
    assert (listed[new]["model"], listed[new]["active"], listed[new]["rows"]) == (NEW_REF, True, 0)
    assert listed[junk]["model"] is None

    for name, code_expected, says in [(new, 2, "active model"), (old, 2, "alias"), (junk, 1, "--yes")]:
        code, _, err = await _in_thread(monkeypatch, capsys, s, "gallery", "drop", "--collection", name)
        assert code == code_expected and says in err, err
    code, out, _ = await _in_thread(monkeypatch, capsys, s, "gallery", "drop", "--collection", junk, "--yes")
    assert code == 0 and json.loads(out)["dropped"] == junk

    client = MilvusClient(uri=s.milvus_uri)
    try:
        history = [ActivationLogEntry("student@17", "0" * 64, old, "2024-05-01T00:00:00Z", "t", "lite0-imagenet@1",
                                      s.topic_models, 0, 0)]  # fmt: skip
        assert apply_retention(client, prefix, 0, act, history) == []  # the default keeps all
        assert apply_retention(client, prefix, 1, act, history) == [older]
        assert set(client.list_collections()) >= {old, new} and older not in client.list_collections()
    finally:
        client.close()
