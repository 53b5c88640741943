"""Pure pieces of the rollout re-index: offsets arithmetic, record parsing, row labels, retention, topics."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest
from aiokafka import TopicPartition
from PIL import Image

from model_store.activation_log import ActivationLogEntry
from processors.gallery import LabelledImages
from processors.label_store import StoredLabel
from processors.vector_index import GalleryItem as Row
from streams.events import GalleryItem, ModelActivated
from streams.rollout.collections import (
    drop_refusal,
    protected_collections,
    ref_collection,
    retention_victims,
    served_history,
)
from streams.rollout.gallery_topic import check_publishable, encode_items
from streams.rollout.offsets import SWITCHED, GroupOffsets, PartitionOffsets, combine, reindex_group_id
from streams.rollout.progress import RateMeter, eta_seconds
from streams.rollout.records import ReplayItem, Skipped, latest_per_product, parse_record
from streams.rollout.rows import label_fixes, new_rows
from streams.rollout.status import RolloutStatus
from streams.settings import Settings
from streams.topics import new_topics

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def _submitted(pid: str, **extra: object) -> bytes:
    body = {"event_id": f"e-{pid}", "product_id": pid, "seller_id": "s", "image_b64": "aGk=",
            "submitted_at": "2024-05-01T12:00:00Z", **extra}  # fmt: skip
    return json.dumps(body).encode()


def _item(pid: str, kind: str = "images", offset: int = 0, ts: int = 0, partition: int = 0, **kw: object) -> ReplayItem:
    return ReplayItem(kind, f"t-{kind}", partition, offset, ts, pid, "s", "aGk=", None, **kw)  # type: ignore[arg-type]


def test_group_id_names_the_target_collection_and_the_activation() -> None:
    group = reindex_group_id("catalog-enricher", "catalog_student_gamma0_2", NOW)
    assert group == "catalog-enricher.reindex.catalog_student_gamma0_2.1714564800000"
    rollback = reindex_group_id("catalog-enricher", "catalog_student_gamma0_2", datetime(2024, 6, 1, tzinfo=UTC))
    assert rollback != group  # the same collection activated again starts from nothing


def test_partition_offsets_lag_done_and_switched() -> None:
    fresh = PartitionOffsets("img", 0, start=10, end=50, committed=None)
    assert (fresh.position, fresh.lag, fresh.done, fresh.total) == (10, 40, 0, 40)
    mid = PartitionOffsets("img", 0, start=10, end=50, committed=30)
    assert (mid.lag, mid.done) == (20, 20)
    compacted_away = PartitionOffsets("img", 0, start=10, end=50, committed=4)  # retention moved the start past it
    assert (compacted_away.position, compacted_away.lag) == (10, 40)
    switched = PartitionOffsets("img", 1, start=0, end=90, committed=60, metadata=SWITCHED)
    assert switched.switched and switched.lag == 0 and switched.done == 60


def test_group_offsets_sum_per_topic_and_name_switched_images_partitions() -> None:
    start = {TopicPartition("img", 0): 0, TopicPartition("img", 1): 0, TopicPartition("gal", 0): 0}
    end = {TopicPartition("img", 0): 10, TopicPartition("img", 1): 20, TopicPartition("gal", 0): 5}
    committed = {TopicPartition("img", 0): (7, SWITCHED), TopicPartition("gal", 0): (2, "")}
    group = combine("g", start, end, committed)
    assert isinstance(group, GroupOffsets)
    assert (group.lag_of("img"), group.lag_of("gal"), group.lag) == (20, 3, 23)
    assert group.switched("img") == frozenset({0}) and group.switched("gal") == frozenset()
    assert (group.done, group.total) == (9, 35)
    assert group.partition_numbers("img") == frozenset({0, 1})


def test_records_parse_to_items_or_skips_with_the_workers_codes() -> None:
    image = parse_record(Rec("t", 0, 5, 100, b"p1", _submitted("p1", category_hint="shoes")), "images")
    assert isinstance(image, ReplayItem) and (image.product_id, image.category_hint, image.offset) == ("p1", "shoes", 5)
    gallery = GalleryItem(product_id="g1", seller_id="catalog", image_b64="aGk=", category="bag", source="test",
                          loaded_at=NOW)  # fmt: skip
    parsed = parse_record(Rec("g", 1, 0, 100, b"g1", gallery.model_dump_json().encode()), "gallery")
    assert isinstance(parsed, ReplayItem) and (parsed.trusted_category, parsed.kind) == ("bag", "gallery")
    cases = [
        (b"{nope", "images", "invalid_json"),
        (None, "images", "empty_message"),  # a tombstone
        (_submitted("p1", image_url="https://x/y.jpg"), "images", "image_ambiguous"),
        (b'{"schema_version": 1}', "gallery", "field_missing"),
        (_submitted("p2"), "gallery", "field_missing"),  # an image event on the gallery topic
    ]
    for value, kind, code in cases:
        skipped = parse_record(Rec("t", 0, 9, 0, b"k", value), kind)  # type: ignore[arg-type]
        assert isinstance(skipped, Skipped) and skipped.code == code, (value, skipped)


def test_latest_per_product_orders_a_partition_by_offset_and_topics_by_timestamp() -> None:
    older, newer = _item("p", offset=3, ts=900), _item("p", offset=7, ts=100)  # same partition: offsets decide
    other = _item("q", offset=1)
    kept, superseded = latest_per_product([newer, other, older])
    assert kept == [newer, other] and superseded == [older]
    gallery = _item("p", kind="gallery", ts=500)
    image = _item("p", ts=400, offset=0)
    assert latest_per_product([gallery, image])[0] == [gallery]  # across topics: the later timestamp
    tie = _item("p", kind="gallery", ts=400)
    assert latest_per_product([image, tie])[0] == [image]  # same instant: the seller's upload


def test_new_rows_take_the_best_label_they_can_see_and_carry_quality() -> None:
    items = [
        _item("gal", kind="gallery", trusted_category="bag"),
        _item("trusted-old"),
        _item("hinted", category_hint="shoes"),
        _item("seller-old"),
        _item("guessed-old"),
        _item("new"),
    ]
    previous = {
        "gal": {"category": "x", "label_source": "predicted", "quality_total": None},
        "trusted-old": {"category": "coat", "label_source": "confirmed", "quality_total": 0.3},
        "hinted": {"category": "coat", "label_source": "seller", "quality_total": None},
        "seller-old": {"category": "dress", "label_source": "seller", "quality_total": None},
        "guessed-old": {"category": "shirt", "label_source": "predicted", "quality_total": 0.8},
    }
    vectors = np.eye(len(items), 4, dtype=np.float32)
    rows = new_rows(items, vectors, previous, {"confirmed"}, now_ms=7)
    got = {r.product_id: (r.category, r.label_source, r.quality_total) for r in rows}
    assert got == {
        "gal": ("bag", "confirmed", None),
        "trusted-old": ("coat", "confirmed", 0.3),
        "hinted": ("shoes", "seller", None),
        "seller-old": ("dress", "seller", None),
        "guessed-old": ("shirt", "predicted", 0.8),
        "new": ("", "predicted", None),
    }
    assert all(r.updated_at_ms == 7 for r in rows)
    np.testing.assert_array_equal(rows[2].embedding, vectors[2])


def test_label_fixes_rewrite_only_rows_the_store_disagrees_with() -> None:
    rows = [Row(p, np.zeros(2, np.float32), c, s, "x", 1) for p, c, s in
            [("a", "bag", "confirmed"), ("b", "", "predicted"), ("c", "coat", "seller")]]  # fmt: skip
    stored = {"a": StoredLabel("a", "bag", "confirmed", 1), "b": StoredLabel("b", "shoes", "confirmed", 1)}
    fixed = label_fixes(rows, stored)
    assert [(r.product_id, r.category, r.label_source) for r in fixed] == [("b", "shoes", "confirmed")]


def test_rate_is_smoothed_and_eta_is_lag_over_rate() -> None:
    meter = RateMeter(alpha=0.5)
    assert meter.observe(100, 1.0) == 100.0
    assert meter.observe(300, 1.0) == 200.0
    assert meter.observe(5, 0.0) == 200.0  # a zero-length batch changes nothing
    assert eta_seconds(400, 200.0) == 2.0
    assert eta_seconds(0, None) == 0.0 and eta_seconds(10, None) is None and eta_seconds(10, 0.0) is None


def _activation(ref: str, collection: str, previous: str | None) -> ModelActivated:
    return ModelActivated(model_ref=ref, sha256="0" * 64, collection=collection, activated_at=NOW,
                          activated_by="t", previous_ref=previous)  # fmt: skip


def _entry(ref: str, previous: str | None) -> ActivationLogEntry:
    return ActivationLogEntry(ref, "0" * 64, ref_collection("c", ref), NOW.isoformat(), "t", previous, "m", 0, 0)


def test_retention_keeps_the_newest_models_and_never_a_protected_or_unknown_collection() -> None:
    latest = _activation("d@1", "c_d_1", "c@1")
    history = served_history(latest, [_entry("b@1", "a@1"), _entry("c@1", "b@1"), _entry("d@1", "c@1")], "c")
    assert history == ["c_d_1", "c_c_1", "c_b_1", "c_a_1"]
    existing = {"c_a_1", "c_b_1", "c_c_1", "c_d_1", "c_labels", "c_unknown_9"}
    assert retention_victims(history, existing, keep=0, protected={"c_d_1"}) == []  # 0: keep all
    assert retention_victims(history, existing, keep=1, protected={"c_d_1"}) == ["c_b_1", "c_a_1"]
    assert retention_victims(history, existing, keep=1, protected={"c_b_1"}) == ["c_a_1"]  # e.g. the alias target
    assert retention_victims(history, existing, keep=5, protected=set()) == []
    assert served_history(latest, [], "c") == ["c_d_1", "c_c_1"]  # no audit log: the activation's own previous


def test_drop_refuses_the_alias_target_the_active_model_and_the_label_store() -> None:
    protected = protected_collections("c", alias_target="c_a_1", active="c_b_1")
    existing = {"c_a_1", "c_b_1", "c_z_1", "c_labels", "other_x_1"}
    assert "alias" in (drop_refusal("c_a_1", existing, "c", protected) or "")
    assert "active model" in (drop_refusal("c_b_1", existing, "c", protected) or "")
    assert "label store" in (drop_refusal("c_labels", existing, "c", protected) or "")
    assert "no collection" in (drop_refusal("c_q_1", existing, "c", protected) or "")
    assert "not a gallery collection" in (drop_refusal("other_x_1", existing, "c", protected) or "")
    assert drop_refusal("c_z_1", existing, "c", protected) is None


def test_images_labels_gallery_and_models_topics_are_compacted() -> None:
    s = Settings(topic_partitions=3, topic_min_insync_replicas=2)
    names = [s.topic_images, s.topic_enriched, s.topic_dlq, s.topic_labels, s.topic_models, s.topic_gallery]
    topics = {t.name: t for t in new_topics(s, names)}
    compact = {n for n, t in topics.items() if t.topic_configs.get("cleanup.policy") == "compact"}
    assert compact == {s.topic_images, s.topic_labels, s.topic_models, s.topic_gallery}
    assert topics[s.topic_models].num_partitions == 1
    assert topics[s.topic_gallery].num_partitions == topics[s.topic_images].num_partitions == 3
    assert all(t.topic_configs["min.insync.replicas"] == "2" for t in topics.values())


def test_gallery_items_are_lossless_pngs_and_bad_ids_are_refused_before_sending() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    samples = LabelledImages(["a/1", "a/2", "b/3"], pixels, ["a", "a", "b"])
    messages = encode_items(samples, slice(1, 3), "catalog", "test", NOW)
    assert [k for k, _ in messages] == [b"a/2", b"b/3"]
    event = GalleryItem.model_validate_json(messages[0][1])
    with Image.open(io.BytesIO(base64.b64decode(event.image_b64))) as img:
        np.testing.assert_array_equal(np.asarray(img.convert("RGB")), pixels[1])
    check_publishable(samples, "catalog", "test")
    with pytest.raises(ValueError, match="product id 'a 4'"):
        check_publishable(LabelledImages(["a 4"], pixels[:1], ["a"]), "catalog", "test")


def test_status_is_complete_only_when_every_partition_switched_and_nothing_lags() -> None:
    act = _activation("d@1", "c_d_1", "c@1")
    parts = (PartitionOffsets("img", 0, 0, 10, 10, SWITCHED), PartitionOffsets("img", 1, 0, 10, 10),
             PartitionOffsets("gal", 0, 0, 4, 4))  # fmt: skip
    half = RolloutStatus(act, GroupOffsets("g", parts), "img", "gal")
    assert half.caught_up and not half.complete
    done = RolloutStatus(act, GroupOffsets("g", (*parts[:1], PartitionOffsets("img", 1, 0, 10, 8, SWITCHED),
                                                 parts[2])), "img", "gal")  # fmt: skip
    assert done.complete and done.as_dict()["switched_partitions"] == [0, 1]
    assert RolloutStatus(None, None, "img", "gal").as_dict()["activation"] is None
