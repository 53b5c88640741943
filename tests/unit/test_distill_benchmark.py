"""The distillation benchmark end to end, small: the four systems on shipped models, one table."""

from __future__ import annotations

import json

import pytest

from model_store.distill.benchmark import main
from model_store.embedding_models import BASELINE_REF, SHIPPED_STUDENT_REF

STUDENT = f"unified {SHIPPED_STUDENT_REF}"


@pytest.fixture(scope="module")
def plain_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    assert main(["--style", "plain", "--gallery-size", "1500", "--queries", "300", "--out", str(out)]) == 0
    assert (out / "results.md").read_text().count("\n| ") >= 4
    return json.loads((out / "results.json").read_text())


def test_all_four_systems_answer_the_same_queries(plain_result: dict) -> None:
    systems = plain_result["systems"]
    assert set(systems) == {"routed teachers", "oracle-routed teachers", STUDENT, BASELINE_REF}
    assert plain_result["queries"] == 300 and plain_result["device"] == "cpu"
    # oracle routing searches only the true category's gallery, so its category vote cannot be wrong
    assert systems["oracle-routed teachers"]["coarse_acc"] == 1.0
    assert 0.9 <= systems["routed teachers"]["router_acc"] <= 1.0
    # trained models beat the frozen ImageNet trunk on plain items by a wide margin
    assert systems[STUDENT]["fine_acc"] > systems[BASELINE_REF]["fine_acc"] + 0.03
    assert systems[STUDENT]["fine_acc"] > 0.85


def test_paired_differences_match_the_accuracies(plain_result: dict) -> None:
    systems = plain_result["systems"]
    student = systems[STUDENT]
    for key, other in (("vs_routed", "routed teachers"), ("vs_oracle", "oracle-routed teachers")):
        diff, low, high = student[key]
        # the accuracies are float32 means, the difference a float64 one
        assert diff == pytest.approx(student["fine_acc"] - systems[other]["fine_acc"], abs=1e-6)
        assert low <= diff <= high


def test_storage_counts_every_model_of_a_system(plain_result: dict) -> None:
    systems = plain_result["systems"]
    student, oracle, routed = (systems[k] for k in (STUDENT, "oracle-routed teachers", "routed teachers"))
    assert len(oracle["models"]) == 3 and len(routed["models"]) == 4  # three teachers (+ the router)
    assert student["bytes"] * 3 <= oracle["bytes"] * 1.01 < routed["bytes"]
    assert student["params"] * 3 == oracle["params"]
