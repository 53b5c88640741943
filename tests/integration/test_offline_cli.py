"""The offline front end (`gallery load --folder`, `enrich`, `search`) on Milvus Lite and a real server, no Kafka."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.milvus_backend import MilvusTarget
from tests.support.events import sample_item
from tests.support.worker import WorkerEnv

pytestmark = pytest.mark.integration


def _write_tree(root: Path, indices: range) -> dict[str, str]:
    truth = {}
    for i in indices:
        pixels, label = sample_item(i)
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"item{i}.jpg", quality=92)
        truth[f"item{i}"] = label
    return truth


def test_folder_gallery_then_enrich_and_search(tmp_path: Path, milvus_target: MilvusTarget) -> None:
    env = WorkerEnv("127.0.0.1:1", tmp_path, extra=milvus_target.env())  # no broker: offline commands never touch Kafka
    gallery_truth = _write_tree(tmp_path / "gallery", range(0, 300))
    loaded = json.loads(env.run("gallery", "load", "--folder", str(tmp_path / "gallery"), "--no-publish"))
    assert loaded["loaded"] == 300 and loaded["rows_total"] == 300

    query_truth = _write_tree(tmp_path / "queries", range(1000, 1040))
    paths = sorted((tmp_path / "queries").rglob("*.jpg"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    lines = env.run("enrich", "--no-upsert", *map(str, paths), str(broken)).strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 41
    errors = [r for r in records if "error_code" in r]
    assert [e["product_id"] for e in errors] == ["broken"] and errors[0]["error_code"] == "image_undecodable"
    good = [r for r in records if "error_code" not in r]
    hits = sum(r["category"]["label"] == query_truth[r["product_id"]] for r in good)
    assert hits >= 16, f"{hits}/40 correct (chance is 4): the folder gallery or the vote is wrong"
    assert set(gallery_truth.values()) >= {r["category"]["label"] for r in good}

    found = json.loads(env.run("search", str(paths[0])))
    assert found["category"] in set(gallery_truth.values())
    assert len(found["similar_items"]) == 10
    assert all("/" in item["product_id"] for item in found["similar_items"])  # folder ids: category/stem


def test_pipeline_benchmark_reports_both_baselines(tmp_path: Path, milvus_target: MilvusTarget) -> None:
    # batches of 64: two batches of the 128 images, so the bench times more than one call
    env = WorkerEnv("127.0.0.1:1", tmp_path, extra={**milvus_target.env(), "CATALOG_BATCH_MAX_SIZE": "64"})
    out = tmp_path / "pipeline.json"
    # an empty gallery: --fresh-gallery (a temporary Lite DB) on Lite, the test's own new prefix on the server
    fresh = ["--fresh-gallery"] if milvus_target.uri is None else []
    env.run("bench", "pipeline", "--images", "128", *fresh, "--out", str(out))
    report = json.loads(out.read_text())
    assert (report["images"], report["batch_size"]) == (128, 64)
    pipe, embedder, models = (
        report["pipeline_images_per_s"],
        report["embedder_only_images_per_s"],
        report["models_only_images_per_s"],
    )
    assert min(pipe, embedder, models) > 0
    assert report["pipeline_vs_embedder"] == pytest.approx(pipe / embedder, abs=2e-3)
    assert report["pipeline_vs_models"] == pytest.approx(pipe / models, abs=2e-3)
    assert {"intake", "embed", "quality", "search", "upsert", "batch"} <= set(report["stage_ms_per_batch"])
