"""A confirmed label is never downgraded by an upload racing it from another process.

Two threads with their own Milvus connections stand for two worker processes: one keeps
re-uploading products through the pipeline's read-decide-write (``_write_rows``), the other
confirms their labels (``apply_labels``). Whatever the interleaving, every confirmed product
must end ``confirmed`` with its category. Runs on the Milvus given by ``milvus_uri``: the
milvus-lite server, and the real Milvus server.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from infra.milvus.lite_server import MilvusLiteServer
from processors.intake import ImageIntake, IntakeConfig
from processors.label_store import LabelStore, labels_collection
from processors.labels import LabelUpdate, apply_labels
from processors.pipeline import EnrichmentPipeline, PipelineConfig
from processors.requests import ImageRequest
from processors.vector_index import VectorIndex, VectorIndexConfig, alias_name, collection_name

pytestmark = pytest.mark.integration
DIM = 8
PRODUCTS = 40
ROUNDS = 6


class _NoEmbedder:
    model_id, model_version, dim = "race", "1", DIM


def _index(uri: str, prefix: str) -> tuple[VectorIndex, LabelStore]:
    config = VectorIndexConfig(uri=uri, collection_prefix=prefix, index_type="HNSW")
    index = VectorIndex(config, collection_name(prefix, "race", "1"), DIM, alias=alias_name(prefix))
    return index, LabelStore(index, labels_collection(prefix))


def _pipeline(index: VectorIndex, store: LabelStore) -> EnrichmentPipeline:
    """Only the index side of the pipeline is used: rows are written from given vectors."""
    return EnrichmentPipeline(
        PipelineConfig(),
        ImageIntake(IntakeConfig()),
        _NoEmbedder(),
        index,
        labels=store,  # type: ignore[arg-type]
    )


def _uploader(uri: str, prefix: str, ids: list[str], seed: int, errors: list[BaseException]) -> None:
    try:
        index, store = _index(uri, prefix)
        pipeline = _pipeline(index, store)
        rng = np.random.default_rng(seed)
        for _ in range(ROUNDS):
            batch = list(rng.permutation(ids)[:16])
            requests = [ImageRequest(f"e-{uuid.uuid4().hex}", pid, "seller", image_url="x") for pid in batch]
            vectors = rng.normal(size=(len(batch), DIM)).astype(np.float32)
            pipeline._write_rows(requests, vectors, ["guess"] * len(batch), [None] * len(batch))
        index.close()
    except BaseException as exc:  # surfaced by the test thread
        errors.append(exc)


def _labeller(uri: str, prefix: str, ids: list[str], seed: int, errors: list[BaseException]) -> None:
    try:
        index, store = _index(uri, prefix)
        rng = random.Random(seed)
        order = ids[:]
        rng.shuffle(order)
        for start in range(0, len(order), 5):
            apply_labels(index, store, [LabelUpdate(pid, f"cat-{pid}") for pid in order[start : start + 5]])
        index.close()
    except BaseException as exc:
        errors.append(exc)


@pytest.fixture(params=["lite-server", "server"])
def milvus_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Two processes' worth of connections need a Milvus server: milvus-lite's, or the real one."""
    if request.param == "server":
        yield str(request.getfixturevalue("milvus_server_uri"))
        return
    with MilvusLiteServer(tmp_path / "milvus") as server:
        yield server.uri


@pytest.mark.parametrize("seed", [1, 2])
def test_racing_uploads_never_downgrade_a_confirmed_label(milvus_uri: str, seed: int, tmp_path: Path) -> None:
    prefix = f"race_{uuid.uuid4().hex[:8]}"
    index, store = _index(milvus_uri, prefix)
    index.ensure_collection()
    store.ensure_collection()
    ids = [f"p{i}" for i in range(PRODUCTS)]
    # every product has a row first, so labels always find one to rewrite
    pipeline = _pipeline(index, store)
    rng = np.random.default_rng(seed)
    pipeline._write_rows(
        [ImageRequest(f"seed-{p}", p, "seller", image_url="x") for p in ids],
        rng.normal(size=(PRODUCTS, DIM)).astype(np.float32),
        ["guess"] * PRODUCTS,
        [None] * PRODUCTS,
    )
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_uploader, args=(milvus_uri, prefix, ids, seed, errors)),
        threading.Thread(target=_uploader, args=(milvus_uri, prefix, ids, seed + 100, errors)),
        threading.Thread(target=_labeller, args=(milvus_uri, prefix, ids, seed, errors)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    rows = index.fetch(ids)
    wrong = {p: (rows[p]["category"], rows[p]["label_source"]) for p in ids if rows[p]["label_source"] != "confirmed"}
    assert not wrong, f"confirmed labels lost to racing uploads: {wrong}"
    assert all(rows[p]["category"] == f"cat-{p}" for p in ids)
    assert index.count() == PRODUCTS
    index.close()
