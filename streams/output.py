"""Domain outcomes -> outgoing event values."""

from __future__ import annotations

import base64
import hashlib

from model_store.quality.results import QualityResult
from processors.errors import InputRejected
from processors.knn_vote import Neighbour as DomainNeighbour
from processors.requests import Enrichment
from streams.events import (
    BackgroundQuality,
    CategoryResult,
    DeadLetter,
    ImageEnriched,
    ModelRef,
    Neighbour,
    PositionQuality,
    Quality,
    QualityWeights,
    SourceRef,
    VisualQuality,
    utc_now,
)


def _neighbours(items: tuple[DomainNeighbour, ...] | list[DomainNeighbour]) -> list[Neighbour]:
    return [Neighbour(product_id=n.product_id, category=n.category, score=round(n.score, 6)) for n in items]


def _r(x: float) -> float:
    return round(float(x), 6)


def quality_block(q: QualityResult | None) -> Quality | None:
    if q is None:
        return None
    return Quality(
        background=BackgroundQuality(
            label=q.background.label, probability=_r(q.background.probability), score=_r(q.background.score)
        ),
        position=PositionQuality(
            category=q.position.category,
            box=tuple(_r(v) for v in q.position.box),  # type: ignore[arg-type]
            probability=_r(q.position.probability),
            score=_r(q.position.score),
        ),
        visual=VisualQuality(aesthetic=_r(q.visual.aesthetic), noise=_r(q.visual.noise), score=_r(q.visual.score)),
        total=_r(q.total),
        weights=QualityWeights(
            background=_r(q.weights.background), position=_r(q.weights.position), visual=_r(q.weights.visual)
        ),
    )


def enriched_event(result: Enrichment, source: SourceRef | None) -> ImageEnriched:
    req, vote = result.request, result.vote
    return ImageEnriched(
        event_id=req.event_id,
        product_id=req.product_id,
        seller_id=req.seller_id,
        scene=req.scene,
        category_hint=req.category_hint,
        model=ModelRef(id=result.model_id, version=result.model_version),
        category=CategoryResult(
            label=vote.label,
            vote_share=round(vote.vote_share, 6),
            votes=vote.votes,
            k=vote.k,
            neighbours=_neighbours(vote.neighbours),
        ),
        similar_items=_neighbours(result.similar),
        quality=quality_block(result.quality),
        image={"width": result.image_width, "height": result.image_height},
        timings=result.timings_ms,
        source=source,
        processed_at=utc_now(),
    )


DEFAULT_MAX_COPIED_VALUE = 256 * 1024
MAX_COPIED_KEY = 1024


def dead_letter_event(
    error: InputRejected,
    source: SourceRef,
    key: bytes | None,
    value: bytes | None,
    event_id: str | None,
    product_id: str | None,
    max_copied_value: int = DEFAULT_MAX_COPIED_VALUE,
) -> DeadLetter:
    """The letter always fits the producer's limit: beyond ``max_copied_value`` it keeps a prefix and a digest."""
    value = value or b""
    truncated = len(value) > max_copied_value or (key is not None and len(key) > MAX_COPIED_KEY)
    return DeadLetter(
        error_code=error.error_code,
        message=error.message[:2000],
        stage=error.stage,
        source=source,
        original_key_b64=base64.b64encode(key[:MAX_COPIED_KEY]).decode() if key is not None else None,
        original_value_b64=base64.b64encode(value[:max_copied_value]).decode(),
        original_value_size=len(value),
        original_value_sha256=hashlib.sha256(value).hexdigest(),
        original_truncated=truncated,
        event_id=event_id[:256] if event_id else None,
        product_id=product_id[:256] if product_id else None,
        failed_at=utc_now(),
    )


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The letter's Kafka key: the original key, or its digest when it is too long to copy."""
    if key is None or len(key) <= MAX_COPIED_KEY:
        return key
    return hashlib.sha256(key).hexdigest().encode()
