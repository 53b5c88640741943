"""A model a worker serves during a rollout: its pipeline and an images handler that counts its batches.

The new model's pipeline shares everything with the served one but the embedder and the
collection: the same quality models (they do not change with the embedding model), the same
label store, the same intake settings. It writes its collection by name, not through the
deployment's alias, which keeps pointing at the old collection until every partition switched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from processors.embedding import TorchEmbedder
from processors.intake import ImageIntake
from processors.label_store import LabelStore, labels_collection
from processors.pipeline import EnrichmentPipeline
from processors.staging import BatchTicket
from processors.vector_index import VectorIndex
from streams.pipeline_factory import served_input_size
from streams.settings import Settings
from streams.worker import BatchHandler, Guard, RawEvent


def sibling_pipeline(
    settings: Settings, served: EnrichmentPipeline, embedder: TorchEmbedder, collection: str
) -> EnrichmentPipeline:
    """``served``'s pipeline with another embedder writing into ``collection`` (no alias)."""
    index = VectorIndex(settings.index_config(), collection, embedder.dim)
    return EnrichmentPipeline(
        settings.pipeline_config(),
        ImageIntake(settings.intake_config(shrink_to=served_input_size(embedder, served.quality))),
        embedder,
        index,
        quality=served.quality,
        labels=LabelStore(index, labels_collection(settings.milvus_collection_prefix)),
    )


class CountedHandler:
    """``BatchHandler.handle_images`` plus a count of the batches routed to it and not finished yet.

    The controller leases a batch when it routes it (under its lock), so once no partition routes
    to the old model any more, ``idle()`` tells when its last batch is done and it may be closed.
    """

    def __init__(self, handler: BatchHandler) -> None:
        self.handler = handler
        self.stage_names = handler.stage_names
        self.stage_widths = handler.stage_widths
        self._leased = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def lease(self) -> CountedHandler:
        self._leased += 1
        self._idle.clear()
        return self

    async def handle_images(
        self, events: Sequence[RawEvent], ticket: BatchTicket, guard: Guard, on_published: Callable[[], Awaitable[None]]
    ) -> None:
        """The wrapped handler's, for a batch ``lease`` counted (``streams.overlap.ImageFlow`` calls it)."""
        try:
            await self.handler.handle_images(events, ticket, guard, on_published)
        finally:
            self._leased = max(0, self._leased - 1)
            if not self._leased:
                self._idle.set()

    async def idle(self) -> None:
        await self._idle.wait()


@dataclass
class Served:
    """One model as this worker serves it."""

    ref: str
    pipeline: EnrichmentPipeline
    images: CountedHandler
