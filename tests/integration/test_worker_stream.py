"""The worker end to end: real Kafka broker, real Milvus (a Lite server and a real server), a real worker process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pymilvus import MilvusClient

from infra.milvus.lite_server import MilvusLiteServer
from model_store.quality.scorer import DEFAULT_REFS
from processors.vector_index import collection_name
from streams.events import DeadLetter, ImageEnriched
from streams.settings import Settings
from tests.milvus_backend import isolated_prefix
from tests.support.events import encode, good_and_bad_photo, good_event, image_bytes, sample_item, submitted
from tests.support.http_images import ImageHttpServer
from tests.support.worker import WorkerEnv, WorkerProcess, consume, produce

pytestmark = pytest.mark.integration
GALLERY = 600
MODEL_ID, MODEL_VERSION = Settings.model_fields["model_ref"].default.split("@")  # the shipped student


@dataclass(frozen=True)
class Gallery:
    """Where the stack's worker keeps its rows: the Milvus URI and the shipped student's collection."""

    uri: str
    collection: str
    token: str = ""


@contextlib.contextmanager
def _milvus(backend: str, workdir: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Gallery, dict[str, str]]]:
    """A Milvus Lite server of the stack's own, or the session's real server under a prefix of the stack's own."""
    if backend == "lite":
        with MilvusLiteServer(workdir / "milvus") as lite:
            gallery = Gallery(lite.uri, collection_name("catalog", MODEL_ID, MODEL_VERSION))
            yield gallery, {"CATALOG_MILVUS_URI": lite.uri}
        return
    with isolated_prefix(request.getfixturevalue("milvus_server_endpoint"), "stream") as target:
        assert target.uri is not None
        yield Gallery(target.uri, collection_name(target.prefix, MODEL_ID, MODEL_VERSION), target.token), target.env()


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap_servers: str,
    tmp_path_factory: pytest.TempPathFactory,
    image_server: ImageHttpServer,
    milvus_backend: str,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[WorkerEnv, WorkerProcess, Gallery]]:
    workdir = tmp_path_factory.mktemp("worker")
    files = workdir / "files"
    files.mkdir()
    (files / "empty.jpg").write_bytes(b"")
    with _milvus(milvus_backend, workdir, request) as (milvus, milvus_env):
        env = WorkerEnv(
            kafka_bootstrap_servers,
            workdir,
            extra={
                **milvus_env,
                "CATALOG_PRIVATE_HOST_ALLOWLIST": '["127.0.0.1"]',
                "CATALOG_ALLOW_FILE_URLS": "true",
                "CATALOG_FILE_URL_ROOT": str(files),
                "CATALOG_FETCH_TIMEOUT_S": "0.5",
                "CATALOG_MAX_IMAGE_BYTES": "200000",
                "CATALOG_BATCH_MAX_SIZE": "64",
                "CATALOG_LABEL_WAIT_S": "4",
            },
        )
        env.run("gallery", "load", "--limit", str(GALLERY))
        worker = WorkerProcess(env).start()
        try:
            yield env, worker, milvus
        finally:
            worker.stop()
    print(worker.log_tail(3000))


def milvus_rows(milvus: Gallery, ids: list[str]) -> dict[str, dict]:
    client = MilvusClient(uri=milvus.uri, token=milvus.token)
    try:
        client.load_collection(milvus.collection)
        rows = client.query(
            milvus.collection,
            filter=f"product_id in {ids!r}".replace("'", '"'),
            output_fields=["category", "label_source"],
            consistency_level="Strong",  # a server's default (Bounded) may not see the last writes yet
        )
        return {r["product_id"]: r for r in rows}
    finally:
        client.close()


def milvus_count(milvus: Gallery) -> int:
    client = MilvusClient(uri=milvus.uri, token=milvus.token)
    try:
        client.load_collection(milvus.collection)
        rows = client.query(milvus.collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"])
    finally:
        client.close()


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def _count(records: list[dict], prefix: str) -> int:
    return sum(1 for r in records if str(r.get("product_id")).startswith(prefix))


def _keys(records: list[dict]) -> set[str]:
    return {base64.b64decode(r["original_key_b64"]).decode() for r in records if r.get("original_key_b64")}


def test_enriched_events_carry_every_field(stack: tuple) -> None:
    env, worker, _ = stack
    events = [good_event(i, product_id=f"fields-{i}") for i in range(24)]
    run(produce(env.bootstrap, env.topics["images"], [(e["product_id"].encode(), encode(e)) for e, _ in events]))
    got = run(consume(env.bootstrap, [env.topics["enriched"]], 24, timeout=120))[env.topics["enriched"]]
    assert len(got) == 24, worker.log_tail()
    by_event = {r["event_id"]: ImageEnriched.model_validate_json(json.dumps(r)) for r in got}
    correct = 0
    for payload, truth in events:
        out = by_event[payload["event_id"]]
        assert out.product_id == payload["product_id"] and out.seller_id == payload["seller_id"]
        assert out.model.id == MODEL_ID and out.model.version == MODEL_VERSION
        assert out.category.k == 20 and sum(out.category.votes.values()) == 20
        assert len(out.category.neighbours) == 20 and len(out.similar_items) == 10
        assert all(n.product_id.startswith("fmnist-train-") for n in out.similar_items)
        assert out.similar_items == sorted(out.similar_items, key=lambda n: -n.score)
        _assert_full_quality(out)
        assert {"intake", "embed", "search", "upsert", "batch"} <= set(out.timings)
        assert out.image == {"width": 64, "height": 64}
        assert out.source is not None and out.source.topic == env.topics["images"]
        correct += out.category.label == truth
    assert correct >= 14, f"only {correct}/24 voted right: the gallery/KNN wiring is broken"
    assert worker.metric("catalog_events_out_total", topic=env.topics["enriched"]) >= 24
    assert worker.metric("catalog_batch_size_count") >= 1
    served = next(line for line in worker.metrics_text().splitlines() if line.startswith("catalog_models_info{"))
    for role, ref in DEFAULT_REFS.items():  # which models scored the events is visible without a schema change
        assert f'quality_{role}="{ref}"' in served, served
    assert 'embedder="student@17"' in served, served


def _assert_full_quality(out: ImageEnriched) -> None:
    q = out.quality
    assert q is not None, "the shipped quality models must fill every enriched event"
    assert q.background.label in {"white", "black", "solid", "gradient", "life_scene"}
    assert q.position.category in {"subject", "non_subject"}
    x0, y0, x1, y1 = q.position.box
    assert 0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0
    scores = [q.background.probability, q.background.score, q.position.probability, q.position.score,
              q.visual.aesthetic, q.visual.noise, q.visual.score, q.total]  # fmt: skip
    assert all(0.0 <= v <= 1.0 for v in scores), scores
    w = q.weights
    assert abs(w.background + w.position + w.visual - 1.0) < 1e-6
    expected = w.background * q.background.score + w.position * q.position.score + w.visual * q.visual.score
    assert abs(q.total - expected) < 1e-3


def test_quality_ranks_a_clean_centred_photo_above_a_cluttered_noisy_corner_shot(stack: tuple) -> None:
    env, worker, _ = stack
    events, pairs = [], []
    for i in range(6):
        good, bad = good_and_bad_photo(i)
        pair = []
        for kind, pixels in (("good", good), ("bad", bad)):
            payload = submitted(f"q-{kind}-{i}", image_b64=base64.b64encode(image_bytes(pixels, "PNG")).decode())
            events.append((payload["product_id"].encode(), encode(payload)))
            pair.append(payload["event_id"])
        pairs.append(pair)
    run(produce(env.bootstrap, env.topics["images"], events))
    enriched = env.topics["enriched"]
    got = run(consume(env.bootstrap, [enriched], lambda g: _count(g[enriched], "q-") >= 12, timeout=90))[enriched]
    by_event = {r["event_id"]: ImageEnriched.model_validate_json(json.dumps(r)) for r in got}
    assert all(e in by_event for pair in pairs for e in pair), worker.log_tail()
    for good_id, bad_id in pairs:
        good, bad = by_event[good_id], by_event[bad_id]
        _assert_full_quality(good)
        _assert_full_quality(bad)
        assert good.quality.total > bad.quality.total
        assert good.quality.position.score > bad.quality.position.score
        assert good.quality.visual.noise > bad.quality.visual.noise


def test_redelivered_and_repeated_products_keep_one_row_each(stack: tuple) -> None:
    env, worker, milvus = stack
    before = milvus_count(milvus)
    first = [good_event(30 + i, product_id=f"dup-{i}") for i in range(8)]
    again = [(dict(e), t) for e, t in first]  # the very same events, redelivered
    newer = [good_event(60 + i, product_id=f"dup-{i}") for i in range(8)]  # new images of the same products
    batch = first + again + newer
    run(produce(env.bootstrap, env.topics["images"], [(e["product_id"].encode(), encode(e)) for e, _ in batch]))
    enriched = env.topics["enriched"]
    got = run(consume(env.bootstrap, [enriched], lambda g: _count(g[enriched], "dup-") >= 24, timeout=60))[enriched]
    mine = [r for r in got if r["product_id"].startswith("dup-")]
    assert len(mine) == 24, worker.log_tail()
    assert milvus_count(milvus) == before + 8
    rows = milvus_rows(milvus, [f"dup-{i}" for i in range(8)])
    assert {r["label_source"] for r in rows.values()} == {"predicted"}


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header(width: int, height: int) -> bytes:
    """A well-formed PNG that declares ``width`` x ``height`` but holds one tiny IDAT (a bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(bytes(16)))
        + _png_chunk(b"IEND", b"")
    )


def _bad_inputs(http: str) -> list[tuple[str, bytes, str]]:
    noisy = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    jpeg = image_bytes(noisy)
    b64 = base64.b64encode
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    bmp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bmp, format="BMP")

    def ev(pid: str, **kw: object) -> bytes:
        return encode(submitted(pid, **kw))

    base = submitted("bad-x", image_b64=b64(jpeg).decode())
    cases = [
        ("not-json", b"{not json", "invalid_json"),
        ("not-utf8", b"\xff\xfe\x00garbage", "invalid_utf8"),
        ("empty-value", b"", "empty_message"),
        ("json-array", b"[1, 2]", "not_an_object"),
        ("json-string", b'"hello"', "not_an_object"),
        ("missing-event-id", encode({k: v for k, v in base.items() if k != "event_id"}), "field_missing"),
        ("wrong-type", encode({**base, "product_id": 12345}), "field_invalid"),
        ("unknown-field", encode({**base, "colour": "red"}), "field_unknown"),
        ("bad-version", encode({**base, "schema_version": 2}), "schema_version_unsupported"),
        ("bad-timestamp", encode({**base, "submitted_at": "yesterday"}), "field_invalid"),
        ("no-image", ev("b-noimg"), "image_missing"),
        (
            "both-images",
            ev("b-both", image_b64=b64(jpeg).decode(), image_url=f"{http}/x.jpg"),
            "image_ambiguous",
        ),
        ("bad-base64", ev("b-b64", image_b64="@@@not*base64@@@"), "b64_invalid"),
        ("truncated-jpeg", ev("b-trunc", image_b64=b64(jpeg[: len(jpeg) // 2]).decode()), "image_truncated"),
        ("random-bytes", ev("b-rand", image_b64=b64(bytes(range(256)) * 4).decode()), "image_undecodable"),
        (
            "huge-dimensions",
            ev("b-huge", image_b64=b64(_png_header(100_000, 100_000)).decode()),
            "image_too_many_pixels",
        ),
        ("gif", ev("b-gif", image_b64=b64(gif.getvalue()).decode()), "format_unsupported"),
        ("bmp", ev("b-bmp", image_b64=b64(bmp.getvalue()).decode()), "format_unsupported"),
        ("oversized", ev("b-big", image_b64=b64(b"\xff\xd8" + bytes(300_000)).decode()), "payload_too_large"),
        ("zero-byte-file", ev("b-zero", image_url="file://{files}/empty.jpg"), "image_empty"),
        ("etc-passwd", ev("b-passwd", image_url="file:///etc/passwd"), "file_outside_root"),
        (
            "metadata-ip",
            ev("b-meta", image_url="http://169.254.169.254/latest/meta-data/"),
            "url_host_forbidden",
        ),
        ("loopback", ev("b-loop", image_url="http://127.0.0.2:8080/x.jpg"), "url_host_forbidden"),
        ("ipv6-loopback", ev("b-v6", image_url="http://[::1]:8080/x.jpg"), "url_host_forbidden"),
        ("private-10", ev("b-ten", image_url="http://10.0.0.1/x.jpg"), "url_host_forbidden"),
        ("decimal-ip", ev("b-dec", image_url="http://2130706434/x.jpg"), "url_host_forbidden"),
        ("ftp", ev("b-ftp", image_url="ftp://example.com/x.jpg"), "url_scheme_forbidden"),
        (
            "credentials",
            ev("b-cred", image_url="http://user:pw@example.com/x.jpg"),
            "url_credentials_forbidden",
        ),
        ("slow-server", ev("b-slow", image_url=f"{http}/slow/x.jpg"), "fetch_timeout"),
        ("not-found", ev("b-404", image_url=f"{http}/missing.jpg"), "fetch_http_status"),
        ("redirect-metadata", ev("b-redir", image_url=f"{http}/redirect-metadata"), "redirect_forbidden"),
    ]
    return cases


def test_bad_inputs_are_dead_lettered_and_good_neighbours_enriched(stack: tuple, image_server: ImageHttpServer) -> None:
    env, worker, _ = stack
    files = Path(env.env["CATALOG_FILE_URL_ROOT"])
    cases = [
        (name, value.replace(b"{files}", str(files).encode()), code)
        for name, value, code in _bad_inputs(image_server.base_url)
    ]
    assert len(cases) >= 25
    pixels, _ = sample_item(5)
    (image_server.root / "good.jpg").write_bytes(image_bytes(pixels))
    goods = [good_event(100 + i, product_id=f"mixed-good-{i}")[0] for i in range(6)]
    goods.append(submitted("mixed-good-url", image_url=f"{image_server.base_url}/good.jpg"))
    messages: list[tuple[bytes | None, bytes]] = []
    for i, (name, value, _) in enumerate(cases):  # interleave: bad ones share batches with good ones
        messages.append((name.encode(), value))
        if i % 5 == 0 and goods:
            g = goods.pop()
            messages.append((g["product_id"].encode(), encode(g)))
    messages += [(g["product_id"].encode(), encode(g)) for g in goods]
    run(produce(env.bootstrap, env.topics["images"], messages))

    topics = [env.topics["enriched"], env.topics["dlq"]]
    names = {name for name, _, _ in cases}
    got = run(
        consume(
            env.bootstrap,
            topics,
            lambda g: names <= _keys(g[topics[1]]) and _count(g[topics[0]], "mixed-good-") >= 7,
            timeout=60,
        )
    )
    dead = {
        base64.b64decode(d["original_key_b64"]).decode(): DeadLetter.model_validate_json(json.dumps(d))
        for d in got[env.topics["dlq"]]
        if d["original_key_b64"]
    }
    wrong = {
        name: (code, dead[name].error_code if name in dead else None)
        for name, _, code in cases
        if name not in dead or dead[name].error_code != code
    }
    assert not wrong, f"expected vs got: {wrong}\n{worker.log_tail()}"
    for name, value, _ in cases:
        letter = dead[name]
        copied = base64.b64decode(letter.original_value_b64)
        assert letter.original_value_sha256 == hashlib.sha256(value).hexdigest()
        if letter.original_truncated:  # too large to copy whole: a prefix, the size and the digest travel
            assert len(value) > 256 * 1024 and copied == value[: len(copied)]
            assert letter.original_value_size == len(value)
        else:
            assert copied == value  # nothing is lost: the bytes travel along
        assert letter.source.topic == env.topics["images"] and letter.message
    enriched_ids = {r["product_id"] for r in got[env.topics["enriched"]]}
    assert {f"mixed-good-{i}" for i in range(6)} | {"mixed-good-url"} <= enriched_ids
    assert worker.alive()
    assert worker.metric("catalog_dead_lettered_total", error_code="url_host_forbidden") >= 5

    # the worker keeps running after all of that
    after, _ = good_event(7, product_id="after-bad")
    run(produce(env.bootstrap, env.topics["images"], [(b"after-bad", encode(after))]))
    enriched = env.topics["enriched"]
    late = run(consume(env.bootstrap, [enriched], lambda g: _count(g[enriched], "after-bad") >= 1, timeout=30))[
        enriched
    ]
    assert "after-bad" in {r["product_id"] for r in late}


def test_label_agent_confirms_labels_in_the_gallery(stack: tuple) -> None:
    env, worker, milvus = stack
    event, _ = good_event(200, product_id="label-me")
    run(produce(env.bootstrap, env.topics["images"], [(b"label-me", encode(event))]))
    enriched = env.topics["enriched"]
    got = run(consume(env.bootstrap, [enriched], lambda g: _count(g[enriched], "label-me") >= 1, timeout=30))[enriched]
    assert "label-me" in {r["product_id"] for r in got}
    assert milvus_rows(milvus, ["label-me"])["label-me"]["label_source"] == "predicted"

    labels = [
        (
            b"label-me",
            encode(
                {
                    "schema_version": 1,
                    "product_id": "label-me",
                    "category": "handbag-special",
                    "source": "moderation",
                }
            ),
        ),
        (
            b"ghost",
            encode({"schema_version": 1, "product_id": "never-seen", "category": "bag", "source": "moderation"}),
        ),
        (b"junk", b"{broken"),
    ]
    run(produce(env.bootstrap, env.topics["labels"], labels))
    dlq_topic = env.topics["dlq"]
    dlq = run(consume(env.bootstrap, [dlq_topic], lambda g: {"ghost", "junk"} <= _keys(g[dlq_topic]), timeout=30))[
        dlq_topic
    ]
    codes = {base64.b64decode(d["original_key_b64"]).decode(): d["error_code"] for d in dlq if d["original_key_b64"]}
    assert codes.get("ghost") == "label_unknown_product"
    assert codes.get("junk") == "invalid_json"
    row = milvus_rows(milvus, ["label-me"])["label-me"]
    assert (row["category"], row["label_source"]) == ("handbag-special", "confirmed")
    assert worker.metric("catalog_labels_applied_total") >= 1
    # every image and label was committed: each owned partition reports its lag, and it is zero
    deadline = time.monotonic() + 30
    while True:
        images_label = f'topic="{env.topics["images"]}"'
        lag_lines = [line for line in (worker.metrics_text() or "").splitlines()
                     if line.startswith("catalog_consumer_lag{") and images_label in line]  # fmt: skip
        if (lag_lines and worker.metric("catalog_consumer_lag") == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert lag_lines and worker.metric("catalog_consumer_lag") == 0, lag_lines


def test_kcat_produces_and_reads_back(stack: tuple) -> None:
    """A third-party client (librdkafka's kcat) speaks our contract in both directions."""
    import shutil
    import subprocess

    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is missing: .ci/run installs the Debian package kcat")
    env, worker, _ = stack
    event, _ = good_event(300, product_id="kcat-product")
    line = b"kcat-product\t" + encode(event) + b"\n"
    subprocess.run(
        [kcat, "-b", env.bootstrap, "-t", env.topics["images"], "-P", "-K", "\t"],
        input=line,
        check=True,
        timeout=30,
    )
    deadline = time.monotonic() + 40
    found = None
    while time.monotonic() < deadline and found is None:
        out = subprocess.run(
            [
                kcat,
                "-b",
                env.bootstrap,
                "-t",
                env.topics["enriched"],
                "-C",
                "-e",
                "-o",
                "beginning",
                "-q",
                "-f",
                "%k\t%s\n",
            ],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        for row in out.decode().splitlines():
            key, _, value = row.partition("\t")
            if key == "kcat-product":
                found = ImageEnriched.model_validate_json(value)
        time.sleep(0.5)
    assert found is not None, worker.log_tail()
    assert found.event_id == event["event_id"] and found.category.label is not None


def _label(product_id: str, category: str) -> bytes:
    return encode({"schema_version": 1, "product_id": product_id, "category": category, "source": "moderation"})


def test_labels_sent_before_their_images_are_applied_when_the_images_arrive(stack: tuple) -> None:
    env, worker, milvus = stack
    early = [f"early-{i}" for i in range(6)]
    run(produce(env.bootstrap, env.topics["labels"], [(p.encode(), _label(p, f"cat-{p}")) for p in early]))
    images = [good_event(400 + i, product_id=p)[0] for i, p in enumerate(early)]
    run(produce(env.bootstrap, env.topics["images"], [(e["product_id"].encode(), encode(e)) for e in images]))
    enriched = env.topics["enriched"]
    run(consume(env.bootstrap, [enriched], lambda g: _count(g[enriched], "early-") >= len(early), timeout=60))
    # the labels and images topics are read by two agents with no order between them: when the
    # images win the race, the label agent rewrites the rows a moment later (processors.labels)
    wanted = {p: (f"cat-{p}", "confirmed") for p in early}
    deadline = time.monotonic() + 60
    while True:
        rows = milvus_rows(milvus, early)
        got = {p: (rows[p]["category"], rows[p]["label_source"]) for p in early if p in rows}
        if got == wanted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == wanted, worker.log_tail()
    # past the label wait: none of them was dead-lettered, because each found its image in time
    time.sleep(5)
    dlq = env.topics["dlq"]
    letters = run(consume(env.bootstrap, [dlq], lambda g: False, timeout=3))[dlq]
    assert not {p for p in early} & {d.get("product_id") for d in letters}


def _hostile_values(http: str) -> list[tuple[str, bytes, str | None]]:
    """(key, value, expected dead-letter code or None for enriched) of inputs that once broke a batch."""
    noisy = np.random.default_rng(5).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    first, second = Image.fromarray(noisy), Image.fromarray(255 - noisy)
    mpo = io.BytesIO()
    first.save(mpo, format="MPO", save_all=True, append_images=[second])
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + bytes(64)
    b64 = base64.b64encode
    huge_int = b'{"schema_version": 1, "event_id": "h-1", "product_id": ' + b"7" * 5000 + b"}"
    big_inline = encode(submitted("hostile-big", image_b64=b64(bytes(range(256)) * 2400).decode()))
    return [
        ("hostile-int", huge_int, "invalid_json"),
        ("hostile-big", big_inline, "payload_too_large"),
        ("hostile-zone", encode(submitted("hz", image_url="http://[fe80::1%25\u00e9]/x.jpg")), "url_invalid"),
        ("hostile-puny", encode(submitted("hp", image_url="http://xn--a.com/x.jpg")), "url_invalid"),
        ("hostile-heic", encode(submitted("hh", image_b64=b64(heic).decode())), "format_unsupported"),
        ("hostile-mpo", encode(submitted("hostile-mpo", image_b64=b64(mpo.getvalue()).decode())), None),
        # the JSON Schema once disagreed with the worker on these
        ("hostile-nulls", encode(submitted("hn", image_url=None, image_b64=None)), "image_missing"),
        ("hostile-newline", encode(submitted("hnl\n", image_url="http://127.0.0.1:9/x.jpg")), "field_invalid"),
        ("hostile-true", encode({**submitted("ht", image_url="http://x/y.jpg"), "schema_version": True}),
         "schema_version_unsupported"),
    ]  # fmt: skip


def test_hostile_values_cost_only_themselves_and_every_partition_keeps_flowing(stack: tuple) -> None:
    env, worker, _ = stack
    cases = _hostile_values("http://127.0.0.1:9")
    assert len(cases[1][1]) > 750_000  # its dead letter would once have exceeded the producer's limit
    mates = [good_event(500 + i, product_id=f"mate-{i}")[0] for i in range(len(cases) + 2)]
    messages: list[tuple[bytes | None, bytes]] = []
    for i, (key, value, _) in enumerate(cases):  # each shares its batch with good events
        messages.append((key.encode(), value))
        messages.append((mates[i]["product_id"].encode(), encode(mates[i])))
    messages += [(m["product_id"].encode(), encode(m)) for m in mates[len(cases) :]]
    run(produce(env.bootstrap, env.topics["images"], messages))
    later = [good_event(520 + i, product_id=f"later-{i}")[0] for i in range(12)]
    run(produce(env.bootstrap, env.topics["images"], [(e["product_id"].encode(), encode(e)) for e in later]))

    enriched, dlq = env.topics["enriched"], env.topics["dlq"]
    wanted_dead = {k for k, _, code in cases if code}
    got = run(
        consume(
            env.bootstrap,
            [enriched, dlq],
            lambda g: wanted_dead <= _keys(g[dlq]) and _count(g[enriched], "later-") >= len(later),
            timeout=90,
        )
    )
    codes = {}
    for d in got[dlq]:
        if d.get("original_key_b64"):
            codes[base64.b64decode(d["original_key_b64"]).decode()] = d["error_code"]
    expected = {k: code for k, _, code in cases if code}
    assert {k: codes.get(k) for k in expected} == expected, worker.log_tail()
    out = {r["product_id"]: r for r in got[enriched]}
    assert {m["product_id"] for m in mates} | {"hostile-mpo"} <= set(out), worker.log_tail()
    later_partitions = {out[e["product_id"]]["source"]["partition"] for e in later if e["product_id"] in out}
    assert len([e for e in later if e["product_id"] in out]) == len(later)
    assert later_partitions == {0, 1}, "later events must flow on every partition"
    big = next(DeadLetter.model_validate_json(json.dumps(d)) for d in got[dlq] if d.get("product_id") == "hostile-big")
    assert big.original_truncated and big.original_value_size == len(cases[1][1])
    assert worker.alive()


def test_dlq_replay_sends_chosen_letters_back_to_their_source(stack: tuple, image_server: ImageHttpServer) -> None:
    env, worker, _ = stack
    name = f"replay-later-{env.group}.jpg"  # the image server is the session's: one name per stack
    event = submitted("replay-me", image_url=f"{image_server.base_url}/{name}")
    run(produce(env.bootstrap, env.topics["images"], [(b"replay-me", encode(event))]))
    dlq, enriched = env.topics["dlq"], env.topics["enriched"]
    run(consume(env.bootstrap, [dlq], lambda g: "replay-me" in _keys(g[dlq]), timeout=30))

    pixels, _ = sample_item(9)
    (image_server.root / name).write_bytes(image_bytes(pixels))  # the seller's server is fixed
    dry = json.loads(env.run("dlq", "replay", "--code", "fetch_http_status", "--key", "replay-me", "--dry-run"))
    assert (dry["matched"], dry["replayed"]) == (1, 0)
    done = json.loads(env.run("dlq", "replay", "--code", "fetch_http_status", "--key", "replay-me"))
    assert done["replayed"] == 1 and done["by_topic"] == {env.topics["images"]: 1}
    got = run(consume(env.bootstrap, [enriched], lambda g: _count(g[enriched], "replay-me") >= 1, timeout=30))
    (out,) = [r for r in got[enriched] if r["product_id"] == "replay-me"]
    assert out["event_id"] == event["event_id"], worker.log_tail()
