"""What ``catalog rollout status`` shows: the latest activation and its re-index group's progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.activation import read_latest_activation
from streams.events import ModelActivated
from streams.rollout.offsets import GroupOffsets, read_group_offsets, reindex_group_id
from streams.settings import Settings


@dataclass(frozen=True)
class RolloutStatus:
    activation: ModelActivated | None
    offsets: GroupOffsets | None
    images_topic: str
    gallery_topic: str

    @property
    def images_partitions(self) -> frozenset[int]:
        return self.offsets.partition_numbers(self.images_topic) if self.offsets else frozenset()

    @property
    def switched(self) -> frozenset[int]:
        return self.offsets.switched(self.images_topic) if self.offsets else frozenset()

    @property
    def caught_up(self) -> bool:
        return self.offsets is not None and self.offsets.lag == 0

    @property
    def complete(self) -> bool:
        """Every images partition switched and the gallery drained: the old model serves nothing."""
        return self.caught_up and bool(self.images_partitions) and self.switched == self.images_partitions

    def as_dict(self, eta_s: float | None = None) -> dict[str, Any]:
        if self.activation is None or self.offsets is None:
            return {"activation": None, "message": "no activation on the models topic: nothing to roll out"}
        a, o = self.activation, self.offsets
        return {
            "activation": {
                "model_ref": a.model_ref,
                "collection": a.collection,
                "previous_ref": a.previous_ref,
                "activated_at": a.activated_at.isoformat(),
                "activated_by": a.activated_by,
            },
            "group": o.group_id,
            "records_done": o.done,
            "records_total": o.total,
            "lag": {"images": o.lag_of(self.images_topic), "gallery": o.lag_of(self.gallery_topic), "total": o.lag},
            "eta_s": None if eta_s is None else round(eta_s, 1),
            "switched_partitions": sorted(self.switched),
            "images_partitions": len(self.images_partitions),
            "caught_up": self.caught_up,
            "complete": self.complete,
        }


async def read_status(settings: Settings, timeout_s: float = 10.0) -> RolloutStatus:
    record = await read_latest_activation(settings, timeout_s)
    topics = (settings.topic_images, settings.topic_gallery)
    if record is None:
        return RolloutStatus(None, None, *topics)
    group = reindex_group_id(settings.app_id, record.event.collection, record.event.activated_at)
    return RolloutStatus(record.event, await read_group_offsets(settings, group, topics), *topics)
