"""``catalog fuse`` end to end on the CPU at tiny scale: a two-teacher candidate distilled from copies of the
shipped teachers and student, registered with its lineage and curves, loadable as an embedding model;
``--resume`` continues the same run; bad requests end in one line and exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from model_store.embedding_models import load_embedding_model
from model_store.registry import DEFAULT_ROOT, ModelRegistry
from model_store.training.checkpoints import list_checkpoints
from streams.cli import main

pytestmark = pytest.mark.integration

PAIR = ["teacher-clothing@2", "teacher-shoes@2"]
SHIPPED = {"fused-clothing-shoes@1": PAIR, "fused-shoes-bags@1": ["teacher-shoes@2", "teacher-bags@2"]}
TINY = ["--steps", "4", "--batch-size", "8"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fusion")
    for name in ("teacher-clothing", "teacher-shoes", "teacher-bags", "student"):
        shutil.copytree(DEFAULT_ROOT / name, root / "registry" / name)
    (root / "tiny.json").write_text(json.dumps({"val_items": 24}))  # a short validation set: seconds, not minutes
    return root


def _fuse(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["fuse", *args, "--registry", str(root / "registry"), "--out", str(root / "runs"),
                 "--config", str(root / "tiny.json")])  # fmt: skip
    out, err = capsys.readouterr()
    return code, out, err


def _embed(ref: str, registry: ModelRegistry) -> torch.Tensor:
    model = load_embedding_model(ref, registry=registry)
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    with torch.inference_mode():
        return model.module(model.preprocess.normalise_uint8(image))


def test_a_two_teacher_candidate_is_distilled_registered_and_resumable(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _fuse(workspace, capsys, "--teachers", "shoes,clothing", *TINY)
    assert code == 0, err[-3000:]
    assert json.loads(out)["registered"] == "fused-clothing-shoes@1"
    registry = ModelRegistry(workspace / "registry")
    manifest = registry.verify("fused-clothing-shoes@1")
    assert manifest.parents == [*PAIR, "student@17"]  # exactly the subset, then the warm start
    fusion = manifest.extra["fusion"]
    assert fusion["teachers"] == PAIR and fusion["categories"] == ["clothing", "shoes"]
    assert fusion["schedule"] == "short warm start from student@17: 4 steps of batch 8"
    assert (
        fusion["full_recipe_command"].startswith("catalog fuse --teachers clothing,shoes")
        and "--full" in (fusion["full_recipe_command"])
    )
    assert manifest.data["categories"] == ["clothing", "shoes"] and "bag" not in manifest.data["classes"]
    assert "--steps 4 --batch-size 8" in manifest.command and "--registry" not in manifest.command
    assert {"weights.pt", "report.png", "history.json"} <= set(manifest.files)
    history = json.loads((registry.version_dir(manifest.ref) / "history.json").read_text())
    assert [e["step"] for e in history["eval"]] == [1.0, 2.0, 3.0, 4.0] and history["train"]
    assert set(manifest.metrics["init_eval"]) >= {"val_l2", "val_coral", "val_proto_acc"}

    vec, start = _embed("fused-clothing-shoes@1", registry), _embed("student@17", registry)
    assert vec.shape == (1, 256) and torch.isfinite(vec).all()
    assert not torch.equal(vec, start)  # the warm start moved

    # interrupted after step 3: --resume continues it to the same weights
    run_dir = workspace / "runs" / "fused-clothing-shoes" / "checkpoints"
    steps = [step for step, _ in list_checkpoints(run_dir)]
    assert steps[-1] == 4
    (run_dir / "ckpt_00000004.pt").unlink()
    code, out, err = _fuse(workspace, capsys, "--teachers", "clothing,shoes", *TINY, "--resume")
    assert code == 0, err[-3000:]
    assert "at step 3" in err and json.loads(out)["registered"] == "fused-clothing-shoes@2"
    assert registry.verify("fused-clothing-shoes@2").files["weights.pt"] == manifest.files["weights.pt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--teachers", "shoes,hats"], "unknown teacher 'hats'; known: clothing, shoes, bags"),
        (["--teachers", ","], "the teacher subset is empty"),
        (["--teachers", "shoes", "--init", "student@99"], "unknown init model 'student@99'"),
        (["--teachers", "shoes", "--init", "student@17", "--full", "--steps", "3"], "--steps and --batch-size"),
        (["--all-subsets", "--name", "x"], "--name names one candidate"),
    ],
)
def test_a_bad_request_is_one_line_and_exit_code_2(
    workspace: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = _fuse(workspace, capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("catalog fuse: error: ") and message in lines[0]


def test_a_claim3_taxonomy_fuses_one_of_two_teachers_of_a_category(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two registered teachers for clothing (a copy of the shipped one under a second name); the subset keeps one."""
    registry = workspace / "registry"
    shutil.copytree(registry / "teacher-clothing", registry / "teacher-clothing_b")
    manifest_path = registry / "teacher-clothing_b" / "2" / "manifest.json"
    manifest_path.write_text(
        manifest_path.read_text().replace('"name": "teacher-clothing"', '"name": "teacher-clothing_b"')
    )
    taxonomy = workspace / "claim3.json"
    taxonomy.write_text(json.dumps({"category_teachers": {"clothing": ["clothing", "clothing_b"], "shoes": ["shoes"],
                                                          "bags": ["bags"]}}))  # fmt: skip
    code, out, err = _fuse(workspace, capsys, "--teachers", "clothing_b,bags", "--taxonomy", str(taxonomy),
                           "--steps", "2", "--batch-size", "8")  # fmt: skip
    assert code == 0, err[-3000:]
    manifest = ModelRegistry(registry).verify(json.loads(out)["registered"])
    assert manifest.name == "fused-clothing_b-bags"
    assert manifest.parents == ["teacher-clothing_b@2", "teacher-bags@2", "student@17"]
    assert manifest.extra["fusion"]["category_teachers"] == {"clothing": ["clothing_b"], "bags": ["bags"]}
    assert "--taxonomy" in manifest.command


@pytest.mark.parametrize("ref", sorted(SHIPPED))
def test_the_shipped_candidates_verify_and_name_exactly_their_teachers(ref: str) -> None:
    registry = ModelRegistry()
    manifest = registry.verify(ref)
    assert manifest.parents == [*SHIPPED[ref], "student@17"]
    assert manifest.extra["fusion"]["schedule"].startswith("short warm start from student@17")
    assert json.loads((registry.version_dir(ref) / "history.json").read_text())["eval"]
    assert _embed(ref, registry).shape == (1, 256)
