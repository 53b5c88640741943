"""Which label each product's gallery row gets on upsert (``EnrichmentPipeline._gallery_items``).

Pure logic: the index is constructed but never used, so nothing connects to Milvus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from processors.intake import ImageIntake, IntakeConfig
from processors.pipeline import EnrichmentPipeline, PipelineConfig
from processors.requests import ImageRequest
from processors.vector_index import GalleryItem, VectorIndex, VectorIndexConfig

DIM = 4


class StandInEmbedder:
    model_id = "stand-in"
    model_version = "1"
    dim = DIM

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.zeros((len(images), DIM), dtype=np.float32)


@asynccontextmanager
async def pipeline_for(
    tmp_path: Path, trusted: frozenset[str] = frozenset({"confirmed"})
) -> AsyncIterator[EnrichmentPipeline]:
    db = tmp_path / "never-opened.db"
    index = VectorIndex(VectorIndexConfig(uri=str(db)), collection="labels_test", dim=DIM)
    pipeline = EnrichmentPipeline(
        PipelineConfig(trusted_label_sources=trusted), ImageIntake(IntakeConfig()), StandInEmbedder(), index
    )
    try:
        yield pipeline
    finally:
        await pipeline.aclose()
    assert not db.exists(), "building and closing the pipeline must not open Milvus"


def request(product_id: str, hint: str | None = None, seller: str = "s1") -> ImageRequest:
    return ImageRequest(
        event_id=f"e-{product_id}",
        product_id=product_id,
        seller_id=seller,
        image_url="https://img.example.com/x.jpg",
        category_hint=hint,
    )


def stored(category: str, source: str) -> dict:
    return {
        "product_id": "p",
        "category": category,
        "label_source": source,
        "seller_id": "s0",
        "quality_total": None,
        "updated_at": 1,
    }


def vectors(count: int) -> np.ndarray:
    return np.arange(count * DIM, dtype=np.float32).reshape(count, DIM)


def labels_of(items: list[GalleryItem]) -> dict[str, tuple[str, str]]:
    return {i.product_id: (i.category, i.label_source) for i in items}


async def test_predicted_label_without_hint_or_stored_row(tmp_path: Path) -> None:
    async with pipeline_for(tmp_path) as pipeline:
        items = pipeline._gallery_items([request("p1")], vectors(1), ["shoes"], {})
    assert labels_of(items) == {"p1": ("shoes", "predicted")}
    item = items[0]
    assert item.seller_id == "s1"
    np.testing.assert_array_equal(item.embedding, vectors(1)[0])
    assert item.updated_at_ms > 0
    assert item.quality_total is None


async def test_no_vote_gives_an_empty_predicted_label(tmp_path: Path) -> None:
    async with pipeline_for(tmp_path) as pipeline:
        items = pipeline._gallery_items([request("p1")], vectors(1), [None], {})
    assert labels_of(items) == {"p1": ("", "predicted")}


async def test_seller_hint_beats_the_prediction(tmp_path: Path) -> None:
    async with pipeline_for(tmp_path) as pipeline:
        items = pipeline._gallery_items([request("p1", hint="boots")], vectors(1), ["shoes"], {})
    assert labels_of(items) == {"p1": ("boots", "seller")}


async def test_trusted_stored_label_is_never_downgraded(tmp_path: Path) -> None:
    existing = {"p1": stored("sandals", "confirmed"), "p2": stored("hats", "confirmed")}
    async with pipeline_for(tmp_path) as pipeline:
        items = pipeline._gallery_items(
            [request("p1", hint="boots"), request("p2")], vectors(2), ["shoes", "bags"], existing
        )
    assert labels_of(items) == {"p1": ("sandals", "confirmed"), "p2": ("hats", "confirmed")}


async def test_untrusted_stored_label_is_replaced_but_seller_claim_kept(tmp_path: Path) -> None:
    existing = {
        "p1": stored("old-guess", "predicted"),
        "p2": stored("old-hint", "seller"),
        "p3": stored("old-guess", "predicted"),
    }
    async with pipeline_for(tmp_path) as pipeline:
        items = pipeline._gallery_items(
            [request("p1", hint="boots"), request("p2"), request("p3")],
            vectors(3),
            ["shoes", "bags", "hats"],
            existing,
        )
    assert labels_of(items) == {
        "p1": ("boots", "seller"),
        "p2": ("old-hint", "seller"),
        "p3": ("hats", "predicted"),
    }


async def test_trust_follows_the_configured_sources(tmp_path: Path) -> None:
    existing = {"p1": stored("old-hint", "seller")}
    async with pipeline_for(tmp_path, trusted=frozenset({"confirmed", "seller"})) as pipeline:
        items = pipeline._gallery_items([request("p1", hint="boots")], vectors(1), ["shoes"], existing)
    assert labels_of(items) == {"p1": ("old-hint", "seller")}


async def test_other_products_rows_do_not_leak(tmp_path: Path) -> None:
    async with pipeline_for(tmp_path) as pipeline:
        items = pipeline._gallery_items([request("p1")], vectors(1), ["shoes"], {"p9": stored("hats", "confirmed")})
    assert labels_of(items) == {"p1": ("shoes", "predicted")}


async def test_last_image_per_product_wins(tmp_path: Path) -> None:
    batch = [request("p1", hint="boots", seller="s1"), request("p2"), request("p1", seller="s2")]
    vecs = vectors(3)
    async with pipeline_for(tmp_path) as pipeline:
        items = pipeline._gallery_items(batch, vecs, ["shoes", "bags", "sandals"], {})
    assert [i.product_id for i in items] == ["p1", "p2"]
    assert labels_of(items) == {"p1": ("sandals", "predicted"), "p2": ("bags", "predicted")}
    p1 = items[0]
    assert p1.seller_id == "s2"
    np.testing.assert_array_equal(p1.embedding, vecs[2])


async def test_last_image_wins_but_trusted_label_stays(tmp_path: Path) -> None:
    batch = [request("p1"), request("p1", hint="boots")]
    async with pipeline_for(tmp_path) as pipeline:
        items = pipeline._gallery_items(batch, vectors(2), ["shoes", "bags"], {"p1": stored("hats", "confirmed")})
    assert labels_of(items) == {"p1": ("hats", "confirmed")}
    np.testing.assert_array_equal(items[0].embedding, vectors(2)[1])


async def test_empty_batch_gives_no_items(tmp_path: Path) -> None:
    async with pipeline_for(tmp_path) as pipeline:
        assert pipeline._gallery_items([], np.zeros((0, DIM), dtype=np.float32), [], {}) == []
