"""Whether a worker may follow a ``ModelActivated``: the registry knows the model, its weights are the pinned ones.

A refusal leaves the worker serving its model; the controller logs it once and counts it in
``catalog_activation_refused_total{reason}``. The reasons: the registry's refusal codes
(``unknown_model``, ``bad_ref``, ``builtin_model``, ``not_embedding``, ``artifact_missing``,
``checksum_mismatch``, ``artifact_invalid``), plus ``dimension_mismatch``, ``reindex_running``,
``invalid_activation``, ``model_load_failed`` and ``rollout_start_failed`` decided by the controller.
"""

from __future__ import annotations

from streams.activation import WEIGHTS_FILE, ActivationRefused, open_registry, verified_manifest
from streams.events import ModelActivated
from streams.settings import Settings


class Refusal(Exception):
    """Why an activation is not followed; ``reason`` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def check_activation(settings: Settings, event: ModelActivated) -> None:
    """Raise ``Refusal`` unless ``event``'s model is a verified registry embedding model with the pinned weights.

    Hashes the model's files (the registry's own check), so call it off the event loop.
    """
    try:
        manifest = verified_manifest(open_registry(settings), event.model_ref)
    except ActivationRefused as exc:
        raise Refusal(exc.code, exc.message) from exc
    pinned = manifest.files.get(WEIGHTS_FILE)
    if pinned != event.sha256:
        raise Refusal(
            "checksum_mismatch",
            f"{event.model_ref}: the activation pinned weights {event.sha256[:12]}..., the registry has "
            f"{(pinned or 'none')[:12]}...",
        )


def check_dimension(served_ref: str, served_dim: int, new_ref: str, new_dim: int) -> None:
    """Downstream indexes and consumers are sized for the served dimension: a different one is refused."""
    if served_dim != new_dim:
        raise Refusal(
            "dimension_mismatch",
            f"{new_ref} embeds into {new_dim} dimensions, the served {served_ref} into {served_dim}",
        )


def usable_ref(settings: Settings, ref: str | None) -> bool:
    """A fallback model a worker may serve: the environment default, or a verified registry embedding model."""
    if ref is None:
        return False
    if ref == settings.model_ref:
        return True
    try:
        verified_manifest(open_registry(settings), ref)
    except ActivationRefused:
        return False
    return True
