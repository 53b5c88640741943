"""Start-up of a worker mid-rollout: which model serves the unswitched partitions; what a valid activation is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from model_store.registry import ModelRegistry
from streams.events import ModelActivated
from streams.rollout.start_plan import old_model
from streams.rollout.validation import Refusal, check_activation, usable_ref
from streams.settings import Settings

OLD, NEW = "student@17", "student-gamma0@2"
S = Settings(milvus_collection_prefix="shop", model_ref=OLD)


def activation(ref: str = NEW, previous: str | None = OLD, sha256: str | None = None) -> ModelActivated:
    digest = sha256 or ModelRegistry().load_manifest(ref).files["weights.pt"]
    name, _, version = ref.partition("@")
    return ModelActivated(model_ref=ref, sha256=digest, collection=f"shop_{name.replace('-', '_')}_{version}",
                          activated_at=datetime.now(UTC), activated_by="test", previous_ref=previous)  # fmt: skip


def test_the_alias_names_the_old_side_even_when_previous_ref_says_otherwise() -> None:
    # an activation published while another rollout ran names that rollout's target as previous_ref
    other_default = Settings(milvus_collection_prefix="shop", model_ref="student@3")
    assert old_model(other_default, activation(NEW, previous="no-such@1"), alias_target="shop_student_17") == OLD
    assert old_model(other_default, activation(NEW, previous=OLD), alias_target="shop_unknown_9") == OLD


def test_without_an_alias_previous_ref_then_the_environment_default() -> None:
    assert old_model(S, activation(NEW, previous=OLD), alias_target=None) == OLD
    assert old_model(S, activation(NEW, previous="no-such@1"), alias_target=None) == OLD  # unusable: the default
    gamma_default = Settings(milvus_collection_prefix="shop", model_ref=NEW)
    assert old_model(gamma_default, activation(OLD, previous=None), alias_target="shop_student_gamma0_2") == NEW


def test_the_activation_model_itself_is_never_the_old_side() -> None:
    assert old_model(S, activation(NEW, previous=NEW), alias_target="shop_student_gamma0_2") == OLD


def test_an_activation_is_checked_against_the_registry_and_its_pinned_weights() -> None:
    check_activation(S, activation())
    with pytest.raises(Refusal) as unknown:
        check_activation(S, activation(NEW).model_copy(update={"model_ref": "no-such-model@1"}))
    assert unknown.value.reason == "unknown_model"
    with pytest.raises(Refusal) as tampered:
        check_activation(S, activation(sha256="f" * 64))
    assert tampered.value.reason == "checksum_mismatch"
    assert usable_ref(S, OLD) and usable_ref(S, NEW) and not usable_ref(S, "no-such-model@1")
    assert not usable_ref(S, None)
