"""Model registry: save/load round trip, fp16 storage, checksum and missing-file errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model_store.preprocess import PreprocessSpec
from model_store.registry import (
    ArtifactMissingError,
    ChecksumMismatchError,
    ModelRegistry,
    RegistryError,
    parse_ref,
)


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"w": torch.randn(4, 3), "b": torch.zeros(4), "steps": torch.tensor(7, dtype=torch.int64)}


def _fields(**over):
    base = {
        "kind": "embedding",
        "architecture": "tiny",
        "config": {"dim": 4},
        "data": {"split": "train"},
        "metrics": {"acc": 0.5},
        "parents": ["teacher@1"],
        "preprocess": PreprocessSpec(64),
        "command": "python -m something --flag",
    }
    base.update(over)
    return base


def test_save_and_load_round_trip(tmp_path):
    reg = ModelRegistry(tmp_path)
    manifest = reg.save("m", "1", _state(), _fields())
    assert manifest.ref == "m@1"
    assert set(manifest.files) == {"weights.pt"}
    on_disk = json.loads((tmp_path / "m" / "1" / "manifest.json").read_text())
    for key in (
        "name",
        "version",
        "kind",
        "architecture",
        "config",
        "data",
        "metrics",
        "parents",
        "preprocess",
        "files",
        "command",
        "created_at",
    ):
        assert key in on_disk
    assert on_disk["preprocess"] == {"image_size": 64, "scaling": "minus_one_one"}
    state = reg.load_state("m@1")
    assert state["w"].dtype == torch.float32
    assert torch.allclose(state["w"], _state()["w"], atol=2e-3)
    assert state["steps"].dtype == torch.int64 and int(state["steps"]) == 7
    assert reg.load_manifest("m@1") == manifest


def test_full_precision_option(tmp_path):
    reg = ModelRegistry(tmp_path)
    reg.save("m", "1", _state(), _fields(), half=False)
    assert torch.equal(reg.load_state("m@1")["w"], _state()["w"])


def test_half_keeps_overflowing_tensor_fp32(tmp_path):
    reg = ModelRegistry(tmp_path)
    reg.save("m", "1", {"big": torch.tensor([1e6, 1.0])}, _fields())
    raw = torch.load(tmp_path / "m" / "1" / "weights.pt", weights_only=True)
    assert raw["big"].dtype == torch.float32


def test_list_latest_and_update_metrics(tmp_path):
    reg = ModelRegistry(tmp_path)
    reg.save("m", "1", _state(), _fields())
    reg.save("m", "2", _state(), _fields())
    reg.save("other", "1", _state(), _fields())
    assert [m.ref for m in reg.list()] == ["m@1", "m@2", "other@1"]
    assert reg.load_manifest("m").version == "2"
    updated = reg.update_metrics("m@1", {"knn": 0.9})
    assert updated.metrics == {"acc": 0.5, "knn": 0.9}
    assert reg.load_manifest("m@1").metrics == {"acc": 0.5, "knn": 0.9}
    reg.load_state("m@1")  # metrics are outside the digests


def test_refuses_overwrite_and_unknown_fields(tmp_path):
    reg = ModelRegistry(tmp_path)
    reg.save("m", "1", _state(), _fields())
    with pytest.raises(Exception, match="exists at"):
        reg.save("m", "1", _state(), _fields())
    reg.save("m", "1", _state(), _fields(), overwrite=True)
    with pytest.raises(ValueError, match="unknown manifest fields"):
        reg.save("m", "3", _state(), {"colour": "red"})


def test_checksum_mismatch_names_path_and_digests(tmp_path):
    reg = ModelRegistry(tmp_path)
    manifest = reg.save("m", "1", _state(), _fields())
    weights = tmp_path / "m" / "1" / "weights.pt"
    weights.write_bytes(weights.read_bytes() + b"tampered")
    with pytest.raises(ChecksumMismatchError) as info:
        reg.load_state("m@1")
    message = str(info.value)
    assert str(weights) in message
    assert manifest.files["weights.pt"] in message
    assert info.value.actual in message and info.value.actual != info.value.expected


def test_missing_file_and_missing_version(tmp_path):
    reg = ModelRegistry(tmp_path)
    reg.save("m", "1", _state(), _fields())
    weights = tmp_path / "m" / "1" / "weights.pt"
    weights.unlink()
    with pytest.raises(ArtifactMissingError, match="weights.pt"):
        reg.load_state("m@1")
    with pytest.raises(ArtifactMissingError, match="nope@3"):
        reg.load_manifest("nope@3")
    with pytest.raises(ArtifactMissingError, match="no versions"):
        reg.load_manifest("nope")
    assert not reg.exists("nope@3")
    assert reg.list()[0].ref == "m@1"


def test_parse_ref():
    assert parse_ref("student@1") == ("student", "1")
    assert parse_ref("student") == ("student", None)
    for bad in ("", "@1", "a@", "../x@1", "a/b@1"):
        with pytest.raises(ValueError):
            parse_ref(bad)


def test_attach_adds_a_verified_file_and_keeps_the_weights(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "reg")
    registry.save("m", "1", {"w": torch.ones(2)}, {"kind": "test"})
    report = tmp_path / "report.png"
    report.write_bytes(b"png bytes")
    manifest = registry.attach("m@1", report)
    assert set(manifest.files) == {"weights.pt", "report.png"}
    assert registry.verify("m@1").files == manifest.files
    (registry.version_dir("m@1") / "report.png").write_bytes(b"tampered")
    with pytest.raises(ChecksumMismatchError):
        registry.verify("m@1")
    with pytest.raises(RegistryError):
        registry.attach("m@1", report, name="weights.pt")


def _two_registries(tmp_path: Path) -> tuple[ModelRegistry, ModelRegistry]:
    source, target = ModelRegistry(tmp_path / "runs"), ModelRegistry(tmp_path / "shipped")
    source.save("teacher", "1", _state(), _fields(parents=[]))
    source.save("m", "3", _state(), _fields(parents=["teacher@1", "m@2"]))
    return source, target


def test_import_copies_a_version_byte_for_byte_and_verifies_it(tmp_path: Path) -> None:
    source, target = _two_registries(tmp_path)
    manifest, copied = target.import_version(source, "m")  # a bare name: the latest version
    assert copied and manifest.ref == "m@3" and target.versions("m") == ["3"]
    assert target.verify("m@3").files == source.load_manifest("m@3").files
    assert target.load_manifest("m@3").created_at == source.load_manifest("m@3").created_at
    for name in ("weights.pt", "manifest.json"):
        assert (tmp_path / "shipped/m/3" / name).read_bytes() == (tmp_path / "runs/m/3" / name).read_bytes()
    assert target.missing_parents(manifest) == ["teacher@1", "m@2"]
    target.import_version(source, "teacher@1")
    assert target.missing_parents(manifest) == ["m@2"]
    assert not list((tmp_path / "shipped/m").glob(".*")), "no staging folder is left behind"


def test_import_again_is_a_no_op_and_a_different_same_version_is_refused(tmp_path: Path) -> None:
    source, target = _two_registries(tmp_path)
    target.import_version(source, "m@3")
    assert target.import_version(source, "m@3")[1] is False
    other = ModelRegistry(tmp_path / "other")
    other.save("m", "3", {"w": torch.ones(2)}, _fields())
    with pytest.raises(RegistryError, match="immutable"):
        target.import_version(other, "m@3")
    assert target.verify("m@3").files == source.load_manifest("m@3").files


def test_import_refuses_a_corrupt_source_and_writes_nothing(tmp_path: Path) -> None:
    source, target = _two_registries(tmp_path)
    weights = tmp_path / "runs/m/3/weights.pt"
    weights.write_bytes(weights.read_bytes()[:-1] + b"x")
    with pytest.raises(ChecksumMismatchError):
        target.import_version(source, "m@3")
    assert not target.exists("m@3") and not list((tmp_path / "shipped").rglob("*.pt"))
    with pytest.raises(ArtifactMissingError):
        target.import_version(source, "m@9")


def test_a_staging_folder_is_not_a_version(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    reg.save("m", "1", _state(), _fields())
    staging = tmp_path / "m" / ".2-abc"
    staging.mkdir()
    (staging / "manifest.json").write_text((tmp_path / "m/1/manifest.json").read_text())
    assert reg.versions("m") == ["1"] and reg.latest_version("m") == "1"
