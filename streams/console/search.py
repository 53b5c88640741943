"""The Search page's engine: the worker's own pipeline (intake, embedder, quality, KNN vote), read-only.

Why the pipeline itself: what a person sees here must be what a worker would publish for the same
image. Differences from a worker, all on purpose: nothing is upserted (``upsert=False``, no label
store), the model's collection is searched directly instead of through the deployment alias (the
alias belongs to the rollout), a missing collection is reported instead of created, and on Milvus
Lite the file is let go after each search (``milvus_access``). One search at a time: it is a tool
for one person, and two models' inference on a 2-core machine would only slow both.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from model_store.registry import ModelRegistry
from processors.embedding import TorchEmbedder
from processors.errors import InputRejected, ProcessingError
from processors.inference import QualityScorer
from processors.intake import ImageIntake
from processors.pipeline import EnrichmentPipeline
from processors.requests import Enrichment, ImageRequest
from processors.vector_index import collection_name
from streams.console.milvus_access import GalleryUnavailable, readonly_index, visit
from streams.console.samples import sample_of
from streams.settings import Settings

_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "WEBP": "image/webp"}
_CACHED_MODELS = 2  # embedders kept loaded (the active one and one candidate, typically)


class SearchRefused(Exception):
    """The image was refused (not an image, unsupported format, too many pixels...): a 400 for the page."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class SimilarItem:
    product_id: str
    category: str
    score: float
    image_url: str | None  # a known Fashion-MNIST sample: drawn by the console


@dataclass(frozen=True)
class SearchResult:
    model_ref: str
    collection: str
    label: str | None
    vote_share: float
    votes: list[tuple[str, int]]  # most votes first
    k: int
    similar: list[SimilarItem]
    quality: dict[str, Any] | None
    width: int
    height: int
    image_data_uri: str
    timings_ms: dict[str, float] = field(default_factory=dict)


class SearchService:
    """Pipelines per model ref, built on first use and kept for the next search."""

    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self._pipelines: OrderedDict[str, EnrichmentPipeline] = OrderedDict()
        self._quality: QualityScorer | None = None
        self._quality_loaded = False
        self._lock = asyncio.Lock()
        self._intake = ImageIntake(settings.intake_config())

    def collection_of(self, ref: str) -> str:
        name, _, version = ref.partition("@")
        return collection_name(self.settings.milvus_collection_prefix, name, version)

    async def search(self, ref: str, image: bytes) -> SearchResult:
        b64 = base64.b64encode(image).decode("ascii")
        try:  # the intake's verdict first: a bad upload is refused before any model loads or Milvus is asked
            await self._intake.load(image_b64=b64, image_url=None)
        except InputRejected as exc:
            raise SearchRefused(exc.error_code, exc.message) from exc
        async with self._lock:
            pipeline = await self._pipeline(ref)
            digest = hashlib.sha256(image).hexdigest()[:16]
            request = ImageRequest(event_id=f"console-{digest}", product_id=f"console-{digest}", seller_id="console",
                                   image_b64=b64)  # fmt: skip
            with visit(pipeline.index):
                try:
                    (outcome,) = await pipeline.process_batch([request])
                except ProcessingError as exc:
                    raise GalleryUnavailable("milvus_unavailable", exc.message) from exc
        if not isinstance(outcome, Enrichment):
            raise SearchRefused(outcome.error.error_code, outcome.error.message)
        return _result(ref, pipeline.index.collection, outcome, image)

    async def _pipeline(self, ref: str) -> EnrichmentPipeline:
        pipeline = self._pipelines.get(ref)
        if pipeline is not None:
            self._pipelines.move_to_end(ref)
            return pipeline
        pipeline = await asyncio.to_thread(self._build, ref)
        self._pipelines[ref] = pipeline
        while len(self._pipelines) > _CACHED_MODELS:
            _, old = self._pipelines.popitem(last=False)
            await old.aclose()
        return pipeline

    def _build(self, ref: str) -> EnrichmentPipeline:
        from model_store.embedding_models import load_embedding_model

        s = self.settings
        embedder = TorchEmbedder(load_embedding_model(ref, s.model_image_size, self.registry), device=s.device)
        index = readonly_index(s.index_config(), self.collection_of(ref), embedder.dim)
        return EnrichmentPipeline(s.pipeline_config(upsert=False), ImageIntake(s.intake_config()), embedder, index,
                                  quality=self._quality_scorer(), labels=None)  # fmt: skip

    def _quality_scorer(self) -> QualityScorer | None:
        if not self._quality_loaded:
            from streams.pipeline_factory import build_quality

            self._quality, self._quality_loaded = build_quality(self.settings), True
        return self._quality

    async def aclose(self) -> None:
        await self._intake.aclose()
        for pipeline in self._pipelines.values():
            await pipeline.aclose()
        self._pipelines.clear()


def _result(ref: str, collection: str, outcome: Enrichment, image: bytes) -> SearchResult:
    vote = outcome.vote
    similar = []
    for n in outcome.similar:
        sample = sample_of(n.product_id)
        url = f"/sample/{sample[0]}/{sample[1]}.png" if sample else None
        similar.append(SimilarItem(n.product_id, n.category, n.score, url))
    with Image.open(io.BytesIO(image)) as sniffed:  # the intake accepted it: a header read, no decode
        mime = _MIME.get(sniffed.format or "", "image/png")
    return SearchResult(
        model_ref=ref,
        collection=collection,
        label=vote.label,
        vote_share=vote.vote_share,
        votes=sorted(vote.votes.items(), key=lambda kv: (-kv[1], kv[0])),
        k=vote.k,
        similar=similar,
        quality=outcome.quality.to_dict() if outcome.quality else None,
        width=outcome.image_width,
        height=outcome.image_height,
        image_data_uri=f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}",
        timings_ms=dict(outcome.timings_ms),
    )
