"""A running worker follows ``ModelActivated``: re-index while serving, per-partition switch, start-up from the log.

Real broker, real Milvus (a Milvus Lite server the test reads beside the worker, or the session's
Milvus server), a real worker process on 4 partitions, a steady stream of image events. The tests
run in order on one stack: a rollout to ``student-gamma0@2`` mid-stream, a restart that follows
the log (and the gap a stop-and-restart costs), a rollback to ``student@17``, bad activations.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from PIL import Image
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from infra.milvus.lite_server import MilvusLiteServer
from model_store.registry import ModelRegistry
from processors.embedding import EmbedderConfig, TorchEmbedder
from processors.vector_index import alias_name, collection_name
from streams.activation import publish_activation
from streams.events import ModelActivated
from streams.settings import Settings
from tests.milvus_backend import isolated_prefix
from tests.support.events import encode, good_event
from tests.support.steady_stream import Output, SteadyProducer, longest_gap_s, model_runs, read_outputs
from tests.support.worker import WorkerEnv, WorkerProcess, free_port, produce

pytestmark = pytest.mark.integration
OLD, NEW = "student@17", "student-gamma0@2"
THIRD = "fused-clothing-shoes@1"  # same dimension: refused during a rollout only because one runs
GALLERY = 160
RATE = 8.0  # events per second, for the whole of each test
PARTITIONS = 4
T = TypeVar("T")
TAIL_S = 6.0  # the stream goes on this long after a rollout finished: every partition gets events of the new model


@dataclass
class Stack:
    env: WorkerEnv
    worker: WorkerProcess
    uri: str
    prefix: str
    token: str = ""
    next_event: int = 0
    figures: dict[str, float] = field(default_factory=dict)

    def collection(self, ref: str) -> str:
        name, _, version = ref.partition("@")
        return collection_name(self.prefix, name, version)

    def settings(self) -> Settings:
        return Settings(kafka_bootstrap=self.env.bootstrap, topic_models=self.env.env["CATALOG_TOPIC_MODELS"])

    def events(self, count: int, tag: str) -> list[tuple[bytes, bytes]]:
        """``count`` new products (ids ``<tag>-<n>``), fashion-mnist test images in turn."""
        out = []
        for _ in range(count):
            n = self.next_event
            self.next_event += 1
            payload, _ = good_event(n % 2000, product_id=f"{tag}-{n}", event_id=f"e-{tag}-{n}")
            out.append((payload["product_id"].encode(), encode(payload)))
        return out


@contextlib.contextmanager
def _milvus(backend: str, workdir: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str, dict]]:
    if backend == "lite":
        with MilvusLiteServer(workdir / "milvus") as lite:
            yield lite.uri, "catalog", "", {"CATALOG_MILVUS_URI": lite.uri}
        return
    with isolated_prefix(request.getfixturevalue("milvus_server_endpoint"), "rollout") as target:
        assert target.uri is not None
        yield target.uri, target.prefix, target.token, target.env()


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory, milvus_backend: str,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:  # fmt: skip
    workdir = tmp_path_factory.mktemp("rollout")
    with _milvus(milvus_backend, workdir, request) as (uri, prefix, token, milvus_env):
        env = WorkerEnv(
            kafka_bootstrap_servers,
            workdir,
            extra={
                **milvus_env,
                "CATALOG_TOPIC_PARTITIONS": str(PARTITIONS),
                "CATALOG_TOPIC_MODELS": f"t{uuid.uuid4().hex[:10]}.models",
                "CATALOG_ACTIVATION_LOG": str(workdir / "activations.jsonl"),
                "CATALOG_BATCH_MAX_SIZE": "16",
                "CATALOG_ROLLOUT_BATCH_SIZE": "32",
                "CATALOG_ROLLOUT_SWITCH_LAG": "24",
                "CATALOG_QUALITY_MODE": "off",  # two embedders and a re-index share two cores
            },
        )
        env.run("gallery", "load", "--limit", str(GALLERY))  # into the gallery topic and student@17's collection
        worker = WorkerProcess(env, name="first").start(timeout=240)
        s = Stack(env, worker, uri, prefix, token)
        try:
            yield s
        finally:
            s.worker.stop()
            print(s.worker.log_tail(4000))
            print("figures:", json.dumps(s.figures))


# ----------------------------------------------------------------------------- helpers


def with_client(s: Stack, read: Callable[[MilvusClient], T]) -> T:
    """One read on a fresh client; a dropped gRPC channel (a Lite server's "too many pings") is retried."""
    for attempt in range(4):
        client: MilvusClient | None = None
        try:
            client = MilvusClient(uri=s.uri, token=s.token)
            return read(client)
        except MilvusException:
            if attempt == 3:
                raise
            time.sleep(2.0)
        finally:
            if client is not None:
                client.close()
    raise AssertionError("unreachable")


def rows(s: Stack, collection: str, with_vectors: bool = False) -> dict[str, dict]:
    fields = ["product_id", "category", "label_source"] + (["embedding"] if with_vectors else [])

    def read(client: MilvusClient) -> dict[str, dict]:
        client.load_collection(collection)
        found = client.query(collection, filter='product_id != ""', output_fields=fields, consistency_level="Strong",
                             limit=16384)  # fmt: skip
        return {r["product_id"]: r for r in found}

    return with_client(s, read)


def alias_target(s: Stack) -> str | None:
    alias = alias_name(s.prefix)

    def read(client: MilvusClient) -> str | None:
        if alias not in client.list_aliases()["aliases"]:
            return None
        return client.describe_alias(alias).get("collection_name")

    return with_client(s, read)


def wait_for(predicate, timeout: float, what: str, worker: WorkerProcess) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if not worker.alive():
            raise AssertionError(f"the worker died while waiting for {what}:\n{worker.log_tail()}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{worker.log_tail()}")


def outputs_for(s: Stack, event_ids: set[str], timeout: float = 120) -> list[Output]:
    """Every enriched output until each of ``event_ids`` has one (the topic from its start)."""
    topic = s.env.topics["enriched"]

    def done(got: list[Output]) -> bool:
        return event_ids <= {o.value["event_id"] for o in got}

    got = asyncio.run(read_outputs(s.env.bootstrap, topic, done, timeout))
    missing = event_ids - {o.value["event_id"] for o in got}
    assert not missing, f"{len(missing)} events without output, e.g. {sorted(missing)[:5]}:\n{s.worker.log_tail()}"
    return got


def dead_letters(s: Stack) -> list[dict]:
    topic = s.env.topics["dlq"]
    return [o.value for o in asyncio.run(read_outputs(s.env.bootstrap, topic, lambda _: False, 3))]


def activate(s: Stack, ref: str) -> float:
    t = time.time()
    s.env.run("models", "activate", ref, "--by", "test")
    return t


def completed(s: Stack, worker: WorkerProcess | None = None) -> float:
    return (worker or s.worker).metric("catalog_rollouts_completed_total")


def served_embedder(worker: WorkerProcess) -> str | None:
    for line in (worker.metrics_text() or "").splitlines():
        if line.startswith("catalog_models_info{"):
            return line.split('embedder="', 1)[1].split('"', 1)[0]
    return None


def sent(producer: SteadyProducer, messages: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Stop the stream; the messages it sent."""
    producer.stop()
    if producer.error is not None:
        raise producer.error
    return messages[: producer.sent]


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def image_of(value: bytes) -> Image.Image:
    return decoded(base64.b64decode(json.loads(value)["image_b64"]))


def assert_switch_once(outs: list[Output], ids: set[str], before: str, after: str) -> dict[int, list[str]]:
    """Per input partition: ``before`` then ``after`` (one change, or none where no event came after it)."""
    runs = model_runs([o for o in outs if o.value["event_id"] in ids])
    assert set(runs) == set(range(PARTITIONS)), runs
    for p, seq in runs.items():
        assert seq in ([before, after], [after], [before]), f"partition {p}: models {seq}"
    assert any(seq[-1] == after for seq in runs.values()), runs
    return runs


def vectors_match(stored: np.ndarray, expected: np.ndarray, other: np.ndarray) -> None:
    """Each stored row is ``expected``'s embedding, not ``other``'s (the two students are close: cosine ~0.9999)."""
    err_expected = np.max(np.abs(stored - expected), axis=1)
    err_other = np.max(np.abs(stored - other), axis=1)
    assert float(err_expected.max()) < 5e-5, err_expected
    assert bool(np.all(err_other > 10 * err_expected)), (err_expected, err_other)


@pytest.fixture(scope="module")
def models() -> dict[str, TorchEmbedder]:
    return {ref: TorchEmbedder.from_config(EmbedderConfig(model_ref=ref, torch_threads=1)) for ref in (OLD, NEW)}


# ----------------------------------------------------------------------------- tests


def test_rollout_mid_stream_switches_each_partition_once_and_rebuilds_the_collection(
    stack: Stack, models: dict[str, TorchEmbedder]
) -> None:
    s = stack
    messages = s.events(int(RATE * 240), "a")  # more than needed: the stream stops TAIL_S after the rollout
    labels = {f"a-{n}": "Relabelled" for n in range(40, 45)}  # confirmed while the re-index runs
    producer = SteadyProducer(s.env.bootstrap, s.env.topics["images"], messages, RATE).start()
    try:
        time.sleep(8)
        assert served_embedder(s.worker) == OLD
        activated_at = activate(s, NEW)
        time.sleep(2)
        label_events = [(pid.encode(), json.dumps({"product_id": pid, "category": c, "source": "moderation"}).encode())
                        for pid, c in labels.items()]  # fmt: skip
        asyncio.run(produce(s.env.bootstrap, s.env.topics["labels"], label_events))
        wait_for(lambda: completed(s) >= 1, 150, "the rollout to finish", s.worker)
        done_at = time.time()
        time.sleep(TAIL_S)
    finally:
        messages = sent(producer, messages)
    ids = {json.loads(v)["event_id"] for _, v in messages}
    outs = outputs_for(s, ids)
    mine = [o for o in outs if o.value["event_id"] in ids]
    assert not [d for d in dead_letters(s) if d.get("event_id") in ids]
    assert {o.value["event_id"] for o in mine} == ids  # one output per event (duplicates share the event_id)
    assert {o.model for o in mine} == {OLD, NEW}
    runs = assert_switch_once(outs, ids, OLD, NEW)
    gap = longest_gap_s(outs, activated_at, done_at)
    steady = longest_gap_s(outs, activated_at - 6, activated_at)
    s.figures.update(
        rollout_gap_s=round(gap, 2), steady_gap_s=round(steady, 2), rollout_s=round(done_at - activated_at)
    )
    print(f"rollout: longest output gap {gap:.2f}s (before the activation {steady:.2f}s), runs {runs}")

    # the new collection holds every product of the old one, with its trusted labels, and the new model's vectors
    old_rows, new_rows = rows(s, s.collection(OLD)), rows(s, s.collection(NEW), with_vectors=True)
    gallery = {p for p, r in old_rows.items() if p.startswith("fmnist-")}
    assert len(gallery) == GALLERY
    assert set(old_rows) <= set(new_rows)
    assert set(new_rows) == gallery | {json.loads(v)["product_id"] for _, v in messages}
    assert all((new_rows[p]["category"], new_rows[p]["label_source"]) == (old_rows[p]["category"], "confirmed")
               for p in gallery)  # fmt: skip
    assert {p: (new_rows[p]["category"], new_rows[p]["label_source"]) for p in labels} == {
        p: (c, "confirmed") for p, c in labels.items()
    }
    assert alias_target(s) == s.collection(NEW)
    assert served_embedder(s.worker) == NEW
    assert s.worker.metric("catalog_reindex_switched_partitions") == PARTITIONS

    by_id = {json.loads(v)["product_id"]: v for _, v in messages}
    sample = sorted(by_id)[:: max(1, len(by_id) // 12)]  # re-indexed ones and ones the new model enriched
    images = [image_of(by_id[p]) for p in sample]
    stored = np.asarray([new_rows[p]["embedding"] for p in sample], dtype=np.float32)
    vectors_match(stored, models[NEW].embed(images), models[OLD].embed(images))
    gallery_images = gallery_topic_images(s, sorted(gallery)[:8])
    stored = np.asarray([new_rows[p]["embedding"] for p in sorted(gallery_images)], dtype=np.float32)
    imgs = [gallery_images[p] for p in sorted(gallery_images)]
    vectors_match(stored, models[NEW].embed(imgs), models[OLD].embed(imgs))


def gallery_topic_images(s: Stack, ids: list[str]) -> dict[str, Image.Image]:
    """The images ``catalog gallery load`` published for these products (what a re-index replays)."""
    wanted = set(ids)
    got = asyncio.run(read_outputs(s.env.bootstrap, s.env.topics["gallery"], lambda g: len(g) >= GALLERY, 60))
    out = {o.value["product_id"]: decoded(base64.b64decode(o.value["image_b64"])) for o in got}
    return {p: img for p, img in out.items() if p in wanted}


def test_a_restarted_worker_follows_the_log_not_the_environment(stack: Stack) -> None:
    """CATALOG_MODEL_REF still names student@17; the latest activation says student-gamma0@2."""
    s = stack
    assert completed(s) >= 1, "needs the rollout of the test before"
    messages = s.events(int(RATE * 30), "b")
    producer = SteadyProducer(s.env.bootstrap, s.env.topics["images"], messages, RATE).start()
    try:
        time.sleep(5)
        stopped_at = time.time()
        s.worker.stop()
        s.worker = WorkerProcess(s.env, name="restarted").start(timeout=240)
        ready_at = time.time()
        producer.join(120)
    finally:
        producer.stop()
    ids = {json.loads(v)["event_id"] for _, v in messages}
    outs = outputs_for(s, ids)
    assert {o.model for o in outs if o.value["event_id"] in ids} == {NEW}
    assert served_embedder(s.worker) == NEW
    gap = longest_gap_s(outs, stopped_at - 2, ready_at + 20)
    s.figures.update(restart_gap_s=round(gap, 2), restart_ready_s=round(ready_at - stopped_at, 1))
    print(f"stop-and-restart: longest output gap {gap:.2f}s (ready after {ready_at - stopped_at:.1f}s)")
    if "rollout_gap_s" in s.figures:
        assert s.figures["rollout_gap_s"] < gap, s.figures


def test_a_rollback_to_the_previous_model_is_another_rollout(stack: Stack, models: dict[str, TorchEmbedder]) -> None:
    s = stack
    assert served_embedder(s.worker) == NEW, "needs the rollout of the first test"
    before = completed(s)
    messages = s.events(int(RATE * 240), "c")
    producer = SteadyProducer(s.env.bootstrap, s.env.topics["images"], messages, RATE).start()
    try:
        time.sleep(5)
        activate(s, OLD)
        # while it runs, another model is activated (refused: reindex_running, kept as the latest), then the
        # rollback's own target again (the latest again: nothing is left to follow once the rollback is done).
        # The worker reads the three records in order and the rollback started on the first: both land mid-rollout.
        for ref in (THIRD, OLD):
            manifest = ModelRegistry().load_manifest(ref)
            event = ModelActivated(model_ref=ref, sha256=manifest.files["weights.pt"], collection=s.collection(ref),
                                   activated_at=datetime.now(UTC), activated_by="test", previous_ref=NEW)  # fmt: skip
            asyncio.run(publish_activation(s.settings(), event))
        wait_for(lambda: completed(s) >= before + 1, 150, "the rollback to finish", s.worker)
        time.sleep(TAIL_S)
    finally:
        messages = sent(producer, messages)
    assert s.worker.metric("catalog_activation_refused_total", reason="reindex_running") == 1
    log_text = s.worker.log_tail(400_000)
    assert "activation_already_rolling_out" in log_text and "activation_deferred_followed" not in log_text
    assert s.worker.metric("catalog_rollout_in_progress") == 0 and completed(s) == before + 1
    ids = {json.loads(v)["event_id"] for _, v in messages}
    outs = outputs_for(s, ids)
    assert_switch_once(outs, ids, NEW, OLD)
    assert alias_target(s) == s.collection(OLD)
    assert served_embedder(s.worker) == OLD
    # the kept collection was brought up to date from the whole log: every product, the old model's vectors
    old_rows, new_rows = rows(s, s.collection(OLD), with_vectors=True), rows(s, s.collection(NEW))
    assert set(new_rows) <= set(old_rows)
    missed = [p for p in new_rows if p.startswith("b-")]  # enriched by student-gamma0@2 only, before the rollback
    assert missed and set(missed) <= set(old_rows)
    by_id = {json.loads(v)["product_id"]: v for v in _values(s, "b")}
    sample = sorted(missed)[:8]
    images = [image_of(by_id[p]) for p in sample]
    stored = np.asarray([old_rows[p]["embedding"] for p in sample], dtype=np.float32)
    vectors_match(stored, models[OLD].embed(images), models[NEW].embed(images))


def _values(s: Stack, tag: str) -> list[bytes]:
    """The input values of the products ``<tag>-*`` as they were sent (read back from the images topic)."""
    got = asyncio.run(read_outputs(s.env.bootstrap, s.env.topics["images"], lambda _: False, 5))
    return [json.dumps(o.value).encode() for o in got if str(o.value.get("product_id", "")).startswith(f"{tag}-")]


def test_a_bad_activation_is_refused_and_the_worker_keeps_serving(stack: Stack) -> None:
    s = stack
    assert served_embedder(s.worker) == OLD, "needs the rollback of the test before"
    manifest = ModelRegistry().load_manifest(NEW)
    now = datetime.now(UTC)
    unknown = ModelActivated(model_ref="no-such-model@1", sha256="0" * 64, collection=f"{s.prefix}_no_such_model_1",
                             activated_at=now, activated_by="test", previous_ref=OLD)  # fmt: skip
    tampered = ModelActivated(model_ref=NEW, sha256="f" * 64, collection=s.collection(NEW), activated_at=now,
                              activated_by="test", previous_ref=OLD)  # fmt: skip
    assert tampered.sha256 != manifest.files["weights.pt"]
    for event in (unknown, tampered):
        asyncio.run(publish_activation(s.settings(), event))
    reasons = {"unknown_model", "checksum_mismatch"}
    wait_for(lambda: all(s.worker.metric("catalog_activation_refused_total", reason=r) >= 1 for r in reasons), 60,
             "both refusals", s.worker)  # fmt: skip
    log = s.worker.log_tail(200_000)
    assert all(f'"reason": "{r}"' in log or f"reason={r}" in log for r in reasons), log[-3000:]
    messages = s.events(24, "d")
    asyncio.run(produce(s.env.bootstrap, s.env.topics["images"], messages))
    ids = {json.loads(v)["event_id"] for _, v in messages}
    assert {o.model for o in outputs_for(s, ids) if o.value["event_id"] in ids} == {OLD}
    assert s.worker.metric("catalog_rollout_in_progress") == 0

    # at start-up the invalid latest activation is refused too: its previous_ref is served, not the environment's
    s.worker.stop()
    s.worker = WorkerProcess(s.env, {"CATALOG_MODEL_REF": NEW}, name="after-bad").start(timeout=240)
    assert served_embedder(s.worker) == OLD
    assert s.worker.metric("catalog_activation_refused_total", reason="checksum_mismatch") == 1


def env_settings(env: WorkerEnv) -> Settings:
    """The settings a process of ``env`` reads (for the test's own reads of its group and topics)."""
    e = env.env
    return Settings(kafka_bootstrap=env.bootstrap, app_id=e["CATALOG_APP_ID"], topic_images=e["CATALOG_TOPIC_IMAGES"],
                    topic_gallery=e["CATALOG_TOPIC_GALLERY"], topic_models=e["CATALOG_TOPIC_MODELS"],
                    milvus_collection_prefix=e.get("CATALOG_MILVUS_COLLECTION_PREFIX", "catalog"))  # fmt: skip


def test_a_worker_killed_mid_reindex_resumes_and_completes_the_rollout(
    stack: Stack, tmp_path: Path, models: dict[str, TorchEmbedder]
) -> None:
    """kill -9 while the re-index runs (nothing switched yet): the restarted worker resumes from the commits."""
    from streams.rollout.status import read_status

    prefix = f"{stack.prefix}_k"  # its own collections on the stack's Milvus (dropped with the stack's prefix)
    env = WorkerEnv(stack.env.bootstrap, tmp_path, extra={
        **stack.env.extra,
        "CATALOG_TOPIC_MODELS": f"t{uuid.uuid4().hex[:10]}.models",
        "CATALOG_ACTIVATION_LOG": str(tmp_path / "activations.jsonl"),
        "CATALOG_MILVUS_COLLECTION_PREFIX": prefix,
        "CATALOG_ROLLOUT_BATCH_SIZE": "8",  # many small commits: the kill lands between two of them
    })  # fmt: skip
    gallery = 400
    env.run("gallery", "load", "--limit", str(gallery))
    s = Stack(env, WorkerProcess(env, name="killed").start(timeout=240), stack.uri, prefix, stack.token)
    messages = s.events(int(RATE * 240), "k")
    producer = SteadyProducer(env.bootstrap, env.topics["images"], messages, RATE).start()
    try:
        time.sleep(5)
        activate(s, NEW)
        deadline = time.monotonic() + 120
        gallery_topic = env.topics["gallery"]
        while (
            s.worker.metric("catalog_reindex_records_total", topic=gallery_topic) < 40 and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        switched_at_kill = s.worker.metric("catalog_rollout_partitions_switched_total")
        s.worker.kill()
        assert switched_at_kill == 0, "the re-index finished before the kill: make it slower"
        committed = asyncio.run(read_status(env_settings(env))).offsets
        assert committed is not None
        s.worker = WorkerProcess(env, name="resumed").start(timeout=240)
        wait_for(lambda: completed(s) >= 1, 150, "the resumed rollout to finish", s.worker)
        gallery_redone = s.worker.metric("catalog_reindex_records_total", topic=env.topics["gallery"])
        time.sleep(TAIL_S)
        messages = sent(producer, messages)
        ids = {json.loads(v)["event_id"] for _, v in messages}
        outs = outputs_for(s, ids)
    finally:
        producer.stop()
        s.worker.stop()
    assert "rollout_resumed" in s.worker.log_tail(400_000)
    # resumed at the commits, not from the start: each gallery record not committed at the kill is read once more
    gallery_done = sum(p.done for p in committed.partitions if p.topic == env.topics["gallery"])
    assert 0 < gallery_done < gallery, committed
    assert gallery_redone == gallery - gallery_done, (gallery_redone, gallery_done)

    assert_switch_once(outs, ids, OLD, NEW)  # duplicates of the kill share their event_id and their model
    old_rows, new_rows = rows(s, s.collection(OLD)), rows(s, s.collection(NEW), with_vectors=True)
    assert set(old_rows) <= set(new_rows)
    assert len([p for p in new_rows if p.startswith("fmnist-")]) == gallery
    assert set(new_rows) == {p for p in old_rows if p.startswith("fmnist-")} | {
        json.loads(v)["product_id"] for _, v in messages
    }
    assert alias_target(s) == s.collection(NEW)
    by_id = {json.loads(v)["product_id"]: v for _, v in messages}
    sample = sorted(by_id)[:: max(1, len(by_id) // 10)]
    images = [image_of(by_id[p]) for p in sample]
    stored = np.asarray([new_rows[p]["embedding"] for p in sample], dtype=np.float32)
    vectors_match(stored, models[NEW].embed(images), models[OLD].embed(images))


def test_two_workers_roll_out_together_and_a_rebalance_mid_reindex_loses_nothing(
    stack: Stack, tmp_path: Path, models: dict[str, TorchEmbedder]
) -> None:
    """Two workers share the partitions: both re-index their own and switch; then, in a rollback, one
    stops mid-re-index and the other takes its partitions over, their re-index progress and switches included."""
    prefix = f"{stack.prefix}_w"  # its own collections on the stack's Milvus (dropped with the stack's prefix)
    env = WorkerEnv(stack.env.bootstrap, tmp_path, extra={
        **stack.env.extra,
        "CATALOG_TOPIC_MODELS": f"t{uuid.uuid4().hex[:10]}.models",
        "CATALOG_ACTIVATION_LOG": str(tmp_path / "activations.jsonl"),
        "CATALOG_MILVUS_COLLECTION_PREFIX": prefix,
    })  # fmt: skip
    env.run("gallery", "load", "--limit", str(GALLERY))
    first = WorkerProcess(env, name="w1").launch()
    second = WorkerProcess(env, {"CATALOG_METRICS_PORT": str(free_port())}, name="w2").launch()
    s = Stack(env, first, stack.uri, prefix, stack.token)
    try:
        first.wait_ready(240)
        second.wait_ready(240)
        images = env.topics["images"]
        wait_for(lambda: all(w.metric("catalog_assigned_partitions", topic=images) > 0 for w in (first, second)), 60,
                 "both workers to own partitions", first)  # fmt: skip
        messages = s.events(int(RATE * 240), "w")
        producer = SteadyProducer(env.bootstrap, env.topics["images"], messages, RATE).start()
        try:
            time.sleep(5)
            activate(s, NEW)
            wait_for(lambda: completed(s, first) >= 1 and completed(s, second) >= 1, 150, "both to switch", first)
            assert {served_embedder(first), served_embedder(second)} == {NEW}
            assert first.metric("catalog_rollout_partitions_switched_total") > 0
            assert second.metric("catalog_rollout_partitions_switched_total") > 0
            time.sleep(TAIL_S)
            activate(s, OLD)  # the rollback; the second worker leaves while it re-indexes
            wait_for(lambda: second.metric("catalog_rollout_in_progress") == 1, 60, "the rollback to start", second)
            second.stop()
            wait_for(lambda: completed(s, first) >= 2, 150, "the first worker to finish the rollback", first)
            time.sleep(TAIL_S)
        finally:
            messages = sent(producer, messages)
        ids = {json.loads(v)["event_id"] for _, v in messages}
        outs = outputs_for(s, ids)
        served_at_end = served_embedder(first)
    finally:
        first.stop()
        second.stop()
    assert not [d for d in dead_letters(s) if d.get("event_id") in ids]
    # a rebalance re-delivers the events after the last commit: the new owner may answer them with the model it
    # serves now, so duplicates can name either model; a consumer keeps the latest answer per event_id
    latest: dict[str, Output] = {}
    for o in sorted((o for o in outs if o.value["event_id"] in ids), key=lambda o: (o.partition, o.offset)):
        latest[o.value["event_id"]] = o
    runs = model_runs(list(latest.values()))
    assert set(runs) == set(range(PARTITIONS)), runs
    for p, seq in runs.items():  # at most two changes per partition, always at a batch boundary, never back and forth
        assert seq in ([OLD, NEW, OLD], [OLD, NEW], [NEW, OLD], [OLD], [NEW]), f"partition {p}: {seq}"
    assert any(seq == [OLD, NEW, OLD] for seq in runs.values()), runs
    assert served_at_end == OLD and alias_target(s) == s.collection(OLD)
    old_rows, new_rows = rows(s, s.collection(OLD), with_vectors=True), rows(s, s.collection(NEW))
    products = {json.loads(v)["product_id"] for _, v in messages}
    assert set(new_rows) <= set(old_rows) and products <= set(old_rows)
    assert len([p for p in old_rows if p.startswith("fmnist-")]) == GALLERY
    by_id = {json.loads(v)["product_id"]: v for _, v in messages}
    sample = sorted(by_id)[:: max(1, len(by_id) // 10)]
    images = [image_of(by_id[p]) for p in sample]
    stored = np.asarray([old_rows[p]["embedding"] for p in sample], dtype=np.float32)
    vectors_match(stored, models[OLD].embed(images), models[NEW].embed(images))
