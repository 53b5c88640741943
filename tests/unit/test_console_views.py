"""The console's view logic on plain data: verdicts, shared curve scales, example alignment, lineage, metrics parsing.

No broker, no server: these are the pure functions the pages are built from. Evaluations are written
with ``model_store.evaluations``' own packing, from correctness vectors drawn here, so the paired
intervals the page shows can be checked against a direct computation.
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Info, generate_latest

from model_store.activation_log import ActivationLogEntry, append_activation, read_activations
from model_store.evaluations import pack_correct, protocol_key
from model_store.registry import Manifest
from streams.console.catalog import ServingState, lineage
from streams.console.charts import curve_rows, read_history
from streams.console.compare import Column, Paired, example_rows, metric_rows, paired_rows
from streams.console.workers import served_embedder

PROTOCOL = {"gallery_size": 100, "queries": 400, "k": 20, "seed": 0}


def _evaluation(correct: np.ndarray, seller_acc: float, examples: list[dict] | None = None) -> dict:
    style = {"fine_acc": float(correct.mean()), "coarse_acc": 0.9, "map_at_r": 0.5, "n_queries": len(correct),
             "fine_correct": pack_correct(correct), "fine_acc_by_category": {"shoes": seller_acc}}  # fmt: skip
    return {"protocol": PROTOCOL, "protocol_key": protocol_key(PROTOCOL), "categories": ["shoes"],
            "styles": {"plain": style, "seller": style}, "examples": examples or [], "params": 1000}  # fmt: skip


def _column(ref: str, evaluation: dict | None) -> Column:
    manifest = Manifest(name=ref.split("@")[0], version=ref.split("@")[1], kind="student")
    return Column(ref, "student", "candidate", lineage(manifest), evaluation, f"catalog models evaluate {ref}", None,
                  1_000_000)  # fmt: skip


def test_paired_verdict_follows_the_interval() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(400) < 0.6
    better = base | (rng.random(400) < 0.5)  # every base hit kept, many misses fixed
    same = base.copy()
    columns = [_column("a@1", _evaluation(base, 0.5)), _column("b@1", _evaluation(better, 0.7)),
               _column("c@1", _evaluation(same, 0.5))]  # fmt: skip
    seller = next(r for r in paired_rows(columns) if r.style == "seller")
    assert seller.cells[0] is None
    b, c = seller.cells[1], seller.cells[2]
    assert isinstance(b, Paired) and isinstance(c, Paired)
    assert b.diff == pytest.approx(100 * (better.mean() - base.mean()))
    assert b.low > 0 and b.sign == 1 and b.verdict.startswith("better")
    assert c.diff == 0 and c.low == 0 and c.high == 0 and c.sign == 0 and c.verdict.startswith("no clear")


def test_paired_difference_needs_the_same_queries_and_an_evaluation() -> None:
    base = np.ones(400, dtype=bool)
    other = _evaluation(base, 1.0)
    other = {**other, "protocol_key": "another"}
    columns = [_column("a@1", _evaluation(base, 1.0)), _column("b@1", other), _column("c@1", None)]
    cells = paired_rows(columns)[0].cells
    assert "other queries" in cells[1] and cells[2] == "not evaluated"


def test_metric_rows_mark_the_better_side_in_text_and_class() -> None:
    base, better = np.zeros(400, dtype=bool), np.ones(400, dtype=bool)
    rows = metric_rows([_column("a@1", _evaluation(base, 0.5)), _column("b@1", _evaluation(better, 0.75))])
    shoes = next(r for r in rows if r.group.startswith("seller") and r.label == "fine accuracy: shoes")
    assert shoes.cells[0].text == "50.0 %" and shoes.cells[0].delta is None
    assert shoes.cells[1].delta == "+25.0 pts" and shoes.cells[1].sign == 1


def test_examples_align_by_query_and_mark_wrong_categories() -> None:
    def example(item: int, neighbours: list[tuple[str, str]]) -> dict:
        return {"style": "seller", "query": {"split": "test", "item": item, "fine": "sneaker", "category": "shoes",
                                             "image": f"evaluations/images/q{item}.png"},
                "neighbours": [{"fine": f, "category": c, "similarity": 0.9, "image": "evaluations/images/n.png"}
                               for f, c in neighbours]}  # fmt: skip

    a = _evaluation(np.ones(4, dtype=bool), 1.0, [example(1, [("sneaker", "shoes")]), example(2, [("bag", "bags")])])
    b = _evaluation(np.ones(4, dtype=bool), 1.0, [example(2, [("sandal", "shoes")])])
    rows = example_rows([_column("a@1", a), _column("b@1", b)], lambda path: "/img/" + path.split("/")[-1])
    assert [r.query_image for r in rows] == ["/img/q1.png", "/img/q2.png"]
    assert rows[0].per_model[1] is None  # b did not store query 1
    wrong, other_class = rows[1].per_model[0][0], rows[1].per_model[1][0]
    assert wrong.wrong and not wrong.other_class
    assert other_class.other_class and not other_class.wrong


def test_curves_share_one_scale_per_row(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "history.json"
    path.write_text('{"train": [{"step": 0, "loss": 2.0}, {"step": 10, "loss": 1.0}],'
                    ' "eval": [{"step": 10, "val_proto_acc": 0.5}]}')  # fmt: skip
    low = read_history(path)
    high = {"eval": [{"step": 5.0, "val_proto_acc": 0.9}, {"step": 10.0, "val_proto_acc": 1.0}], "train": []}
    rows = curve_rows([low, high, None])
    acc = next(r for r in rows if r.key == "val_proto_acc")
    assert acc.phase == "eval" and (acc.y_min, acc.y_max) == (0.5, 1.0)
    assert acc.cells[2] is None and acc.cells[1].last == 1.0
    y_of = lambda curve: [float(p.split(",")[1]) for p in curve.points.split()]  # noqa: E731
    assert max(y_of(acc.cells[0])) > max(y_of(acc.cells[1]))  # 0.5 drawn lower (larger y) than 1.0
    assert [r.key for r in rows if r.phase == "train"] == ["loss"]
    assert read_history(tmp_path / "missing.json") is None


def test_lineage_of_a_fused_candidate_a_student_and_a_teacher() -> None:
    teachers = ["teacher-shoes@2", "teacher-bags@2"]
    fusion = {"teachers": teachers, "categories": ["shoes", "bags"], "init": "student@17"}
    fused = Manifest(name="fused-shoes-bags", version="1", kind="student", parents=[*teachers, "student@17"],
                     extra={"fusion": fusion})  # fmt: skip
    assert lineage(fused).teachers == ["teacher-shoes@2", "teacher-bags@2"]
    assert lineage(fused).init == "student@17" and lineage(fused).categories == ["shoes", "bags"]
    teacher = Manifest(name="teacher-shoes", version="2", kind="teacher", parents=["teacher-shoes@1"],
                       config={"teacher": "shoes"})  # fmt: skip
    assert lineage(teacher).teachers == [] and lineage(teacher).init == "teacher-shoes@1"


def test_statuses() -> None:
    state = ServingState("b@1", "topic", None, frozenset({"a@1"}))
    assert [state.status(r) for r in ("a@1", "b@1", "c@1")] == ["retired", "active", "candidate"]


def test_served_embedder_is_read_from_a_real_metrics_page() -> None:
    registry = CollectorRegistry()
    Info("catalog_models", "served refs", registry=registry).info({"embedder": "student@17", "quality_visual": "v@1"})
    assert served_embedder(generate_latest(registry).decode()) == "student@17"
    assert served_embedder("# nothing here\n") is None


def test_activation_log_round_trip_skips_torn_lines(tmp_path) -> None:  # noqa: ANN001
    log = tmp_path / "sub" / "activations.jsonl"
    assert read_activations(log) == []
    entry = ActivationLogEntry("b@1", "0" * 64, "catalog_b_1", "2026-01-01T00:00:00+00:00", "me", "a@1", "t", 0, 7)
    append_activation(log, entry)
    with log.open("a") as fh:
        fh.write('{"model_ref": "torn"\n')
    append_activation(log, entry)
    assert read_activations(log) == [entry, entry]


def test_worker_metrics_urls_default_to_this_hosts_worker() -> None:
    from streams.console.workers import metrics_urls
    from streams.settings import Settings

    assert metrics_urls(Settings(metrics_port=9200)) == ["http://127.0.0.1:9200/metrics"]
    assert metrics_urls(Settings(metrics_host="::1", metrics_port=9200)) == ["http://[::1]:9200/metrics"]
    assert metrics_urls(Settings(console_worker_metrics_urls=[])) == []
