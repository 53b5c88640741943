"""One micro-batch through intake, embed, index lookup, KNN vote and upsert.

Shared by the Kafka worker and the offline CLI. Input problems come back as
``Rejection`` in the item's slot; infrastructure problems raise ``TransientFailure``
for the whole batch so the caller can retry it unchanged.

The work is three stages (``stages()``), each a ``processors.staging.BatchStage``: intake
(decode, on the decode threads), models (embedder and quality, on the inference lanes' threads)
and index (search, Strong fetch, upsert, label check, on the one index thread). Called with a
``BatchTicket``, a batch takes its turn at each stage, so consecutive batches overlap across
stages while every stage stays in batch order (``processors.staging``); the models stage holds
up to ``inference_lanes`` batches at once, the others one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from model_store.quality.results import QualityResult
from processors.embedding import TorchEmbedder
from processors.errors import InputRejected, ProcessingError
from processors.inference import QualityScorer, run_models
from processors.intake import DecodedImage, ImageIntake
from processors.knn_vote import CategoryVote, Neighbour, vote_category
from processors.label_store import LabelStore
from processors.requests import Enrichment, ImageRequest, Outcome, Rejection
from processors.staging import BatchStage, BatchTicket, advance
from processors.vector_index import GalleryItem, VectorIndex

STAGES = ("intake", "models", "index")


@dataclass(frozen=True)
class PipelineConfig:
    knn_k: int = 20
    similar_k: int = 10
    trusted_label_sources: frozenset[str] = frozenset({"confirmed"})
    upsert: bool = True
    inference_lanes: int = 1  # batches in the models at once, each on a thread of its own


@dataclass(frozen=True)
class Decoded:
    """A request whose image is decoded: the intake stage's result."""

    request: ImageRequest
    image: DecodedImage


@dataclass(frozen=True)
class Inferred:
    """A request with its embedding and quality: the models stage's result (the pixels are let go here)."""

    request: ImageRequest
    width: int
    height: int
    vector: np.ndarray
    quality: QualityResult | None


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class EnrichmentPipeline:
    """Holds the stages and the executors that keep blocking work off the loop: a thread per lane, one for the index."""

    def __init__(
        self,
        config: PipelineConfig,
        intake: ImageIntake,
        embedder: TorchEmbedder,
        index: VectorIndex,
        quality: QualityScorer | None = None,
        labels: LabelStore | None = None,
    ) -> None:
        self.config = config
        self.intake = intake
        self.embedder = embedder
        self.index = index
        self.quality = quality
        self.labels = labels
        self._inference = ThreadPoolExecutor(config.inference_lanes, thread_name_prefix="inference")
        self._index_io = ThreadPoolExecutor(1, thread_name_prefix="vector-index")

    def served_models(self) -> dict[str, str]:
        """Registry ref of every model behind an enriched event (the embedder and each quality role)."""
        served = {"embedder": f"{self.embedder.model_id}@{self.embedder.model_version}"}
        if self.quality is not None:
            served |= {f"quality_{role}": ref for role, ref in self.quality.refs.items()}
        return served

    async def run_index(self, fn, *args):  # noqa: ANN001, ANN201 - thin executor hop
        return await asyncio.get_running_loop().run_in_executor(self._index_io, fn, *args)

    async def start(self) -> None:
        await self.run_index(self.index.ensure_collection)
        if self.labels is not None:
            await self.run_index(self.labels.ensure_collection)

    def stages(self) -> tuple[BatchStage, ...]:
        """intake -> models -> index; their names are ``STAGES``."""
        return (
            BatchStage("intake", self._decode),
            BatchStage("models", self._infer, width=self.config.inference_lanes),
            BatchStage("index", self._search_and_write),
        )

    async def process_batch(self, requests: Sequence[ImageRequest], ticket: BatchTicket | None = None) -> list[Outcome]:
        """Every stage in turn; with a ticket (of a ``StageOrder`` over ``STAGES``) each waits for its turn."""
        t_batch = time.perf_counter()
        timings: dict[str, float] = {}
        items: list = list(requests)
        for stage in self.stages():
            if ticket is None:
                items = await advance(stage, items, timings)
            else:
                async with ticket.turn(stage.name):
                    items = await advance(stage, items, timings)
        timings["batch"] = _ms(t_batch)
        return items

    async def _decode(self, requests: list[ImageRequest], timings: dict[str, float]) -> list[Decoded | Rejection]:
        t0 = time.perf_counter()
        loaded = await self.intake.load_many([(r.image_b64, r.image_url) for r in requests])
        timings["intake"] = _ms(t0)
        out: list[Decoded | Rejection] = []
        for request, item in zip(requests, loaded, strict=True):
            if isinstance(item, InputRejected):
                out.append(Rejection(request, item))
            elif isinstance(item, ProcessingError):
                raise item  # transient: the whole stage is retried by the caller
            else:
                out.append(Decoded(request, item))
        return out

    async def _infer(self, items: list[Decoded], timings: dict[str, float]) -> list[Inferred]:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        inference = await loop.run_in_executor(
            self._inference, run_models, self.embedder, self.quality, [d.image.image for d in items],
            [d.request.scene for d in items],
        )  # fmt: skip
        timings["embed"] = inference.embed_ms
        if inference.quality_ms is not None:
            timings["quality"] = inference.quality_ms
        timings["inference"] = _ms(t0)
        qualities: Sequence[QualityResult | None] = inference.quality or [None] * len(items)
        return [
            Inferred(d.request, d.image.width, d.image.height, vector, quality)
            for d, vector, quality in zip(items, inference.vectors, qualities, strict=True)
        ]

    async def _search_and_write(self, items: list[Inferred], timings: dict[str, float]) -> list[Enrichment]:
        requests = [i.request for i in items]
        vectors = np.stack([i.vector for i in items]).astype(np.float32, copy=False)
        totals = [i.quality.total if i.quality else None for i in items]
        # one executor job: the single index thread makes read-decide-write atomic against label jobs
        votes, similars = await self.run_index(self._index_stage, requests, vectors, totals, timings)
        return [
            Enrichment(
                request=item.request,
                model_id=self.embedder.model_id,
                model_version=self.embedder.model_version,
                vote=vote,
                similar=similar,
                image_width=item.width,
                image_height=item.height,
                timings_ms=timings,
                quality=item.quality,
            )
            for item, vote, similar in zip(items, votes, similars, strict=True)
        ]

    def _index_stage(
        self,
        requests: Sequence[ImageRequest],
        vectors: np.ndarray,
        totals: Sequence[float | None],
        timings: dict[str, float],
    ) -> tuple[list[CategoryVote], list[tuple[Neighbour, ...]]]:
        """Search, vote, and (when upserting) read-decide-write the rows; runs on the index thread."""
        t0 = time.perf_counter()
        limit = max(self.config.knn_k, self.config.similar_k) + 1  # +1: the product itself may be trusted
        found = self.index.search(vectors, limit, self.config.trusted_label_sources)
        timings["search"] = _ms(t0)
        votes, similars = [], []
        for request, hits in zip(requests, found, strict=True):
            others = [n for n in hits if n.product_id != request.product_id]
            votes.append(vote_category(others, self.config.knn_k))
            similars.append(tuple(others[: self.config.similar_k]))
        if self.config.upsert:
            t0 = time.perf_counter()
            self._write_rows(requests, vectors, [v.label for v in votes], totals)
            timings["upsert"] = _ms(t0)
        return votes, similars

    def _write_rows(
        self,
        requests: Sequence[ImageRequest],
        vectors: np.ndarray,
        voted: Sequence[str | None],
        totals: Sequence[float | None],
    ) -> None:
        """Decide from the stored row, upsert, then read the label store and fix rows it disagrees with.

        Two strongly consistent reads per batch: the row (which keeps a trusted or seller label)
        and, after the upsert, the label store, the source of truth for trusted labels. Reading
        the label store only after our write is what makes the cross-process hand-off safe
        (``processors.labels``); it also catches a label whose image arrives only now.
        """
        ids = [r.product_id for r in requests]
        existing = self.index.fetch(ids)
        items = self._gallery_items(requests, vectors, voted, existing, totals)
        self.index.upsert(items)
        if self.labels is None:
            return
        stored = self.labels.get(ids)
        late = [
            replace(it, category=label.category, label_source=label.label_source)
            for it in items
            if (label := stored.get(it.product_id)) is not None
            and (it.category, it.label_source) != (label.category, label.label_source)
        ]
        if late:
            self.index.upsert(late)

    def _gallery_items(
        self,
        requests: Sequence[ImageRequest],
        vectors: np.ndarray,
        voted: Sequence[str | None],
        existing: dict[str, dict],
        quality_totals: Sequence[float | None] | None = None,
    ) -> list[GalleryItem]:
        """Newest image per product wins; a stored trusted or seller label is never downgraded to a guess."""
        now_ms = int(time.time() * 1000)
        by_product: dict[str, GalleryItem] = {}
        totals = quality_totals or [None] * len(requests)
        for request, vector, label, total in zip(requests, vectors, voted, totals, strict=True):
            row = existing.get(request.product_id)
            if row and row["label_source"] in self.config.trusted_label_sources:
                category, source = row["category"], row["label_source"]
            elif request.category_hint:
                category, source = request.category_hint, "seller"
            elif row and row["label_source"] == "seller":
                category, source = row["category"], "seller"
            else:
                category, source = label or "", "predicted"
            by_product[request.product_id] = GalleryItem(
                product_id=request.product_id,
                embedding=vector,
                category=category,
                label_source=source,
                seller_id=request.seller_id,
                updated_at_ms=now_ms,
                quality_total=total,
            )
        return list(by_product.values())

    async def aclose(self) -> None:
        await self.intake.aclose()
        self._inference.shutdown(wait=True)
        self._index_io.shutdown(wait=True)
        self.index.close()
