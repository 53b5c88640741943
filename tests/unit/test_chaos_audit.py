"""The chaos auditor's arithmetic on hand-made records: loss, duplicates, rows, labels, gaps.

Why a unit test: the integration suite trusts these figures to say pass or fail, so the
counting itself must be right independent of any broker run.
"""

from __future__ import annotations

import json

from infra.chaos.audit import Evidence, Fault, Record, Topics, audit, longest_stall
from infra.chaos.report import verdict

T = Topics(images="img", enriched="enr", dlq="dlq", labels="lab")


def _in(p: int, o: int, ts: float) -> Record:
    return Record("img", p, o, ts, None, b"{}")


def _out(topic: str, p: int, o: int, ts: float, **fields: object) -> Record:
    value = {"source": {"topic": fields.pop("source", "img"), "partition": p, "offset": o}, **fields}
    return Record(topic, 0, 0, ts, None, json.dumps(value).encode())


def _label(o: int, pid: str, category: str) -> Record:
    return Record("lab", 0, o, 0.0, pid.encode(), json.dumps({"product_id": pid, "category": category}).encode())


def test_loss_duplicates_and_rows_are_counted_per_input() -> None:
    images = [_in(0, 0, 1.0), _in(0, 1, 1.0), _in(1, 0, 1.0)]
    enriched = [_out("enr", 0, 0, 2.0, product_id="a"), _out("enr", 0, 0, 3.0, product_id="a")]
    dlq = [_out("dlq", 1, 0, 2.0, error_code="invalid_json")]
    rows = [{"product_id": "a", "category": "bag", "label_source": "predicted"}] * 2
    f = audit(Evidence(T, images, [], enriched, dlq, rows, []))
    assert (f["produced"], f["with_output"], f["lost"]) == (3, 2, 1)
    assert (f["duplicate_outputs"], f["max_copies"]) == (1, 2)
    assert (f["milvus_rows"], f["duplicate_rows"], f["missing_rows"]) == (2, 1, 0)
    assert f["dlq_codes"] == {"invalid_json": 1}
    failures = verdict(f, None, None)
    assert any("lost" in x for x in failures) and any("duplicate" in x for x in failures)


def test_a_confirmed_label_must_end_in_the_row_unless_the_product_never_had_an_image() -> None:
    images = [_in(0, 0, 1.0), _in(0, 1, 1.0)]
    enriched = [_out("enr", 0, 0, 2.0, product_id="kept"), _out("enr", 0, 1, 2.0, product_id="down")]
    labels = [_label(0, "kept", "bag"), _label(1, "down", "bag"), _label(2, "orphan", "bag")]
    dlq = [_out("dlq", 0, 2, 3.0, source="lab", error_code="label_unknown_product")]
    rows = [
        {"product_id": "kept", "category": "bag", "label_source": "confirmed"},
        {"product_id": "down", "category": "coat", "label_source": "predicted"},
    ]
    got = audit(Evidence(T, images, labels, enriched, dlq, rows, []))["labels"]
    assert (got["kept"], got["downgraded"], got["no_image"], got["lost"]) == (1, 1, 1, 1)


def test_a_freeze_after_a_quick_first_output_is_charged_to_the_kill() -> None:
    # Work arrives every second on partition 0; output resumes 0.5 s after the kill at t=10,
    # then nothing from t=12 to t=40 while inputs wait (a rebalance freeze).
    inputs = [(float(t), float(t) + 0.2) for t in range(10)]
    inputs += [(10.2, 10.5), (11.0, 12.0)] + [(float(t), 40.0) for t in range(12, 40)]
    outputs = [first for _, first in inputs]
    assert longest_stall(inputs, outputs, 10.0, None) == 40.0 - 12.0
    images = [_in(0, i, i_ts) for i, (i_ts, _) in enumerate(inputs)]
    enriched = [_out("enr", 0, i, first, product_id=f"p{i}") for i, (_, first) in enumerate(inputs)]
    f = audit(Evidence(T, images, [], enriched, [], [], [Fault("kill", 10.0, "w2")]))
    (fault,) = f["faults"]
    assert fault["recovery_s"] == 0.5 and fault["longest_gap_s"] == 28.0
    assert any("longest gap 28.0s" in x for x in verdict(f, None, None))


def test_an_idle_partition_is_not_a_stall() -> None:
    assert longest_stall([(0.0, 0.5), (30.0, 30.4)], [0.5, 30.4], 0.0, None) == 0.5


def test_an_empty_read_or_a_cut_short_run_never_passes() -> None:
    empty = audit(Evidence(T, [], [], [], [], [], []))
    assert verdict(empty, None, None) == ["no input was found on the images topic"]
    images = [_in(0, 0, 1.0)]
    done = audit(Evidence(T, images, [], [_out("enr", 0, 0, 2.0, product_id="a")], [], [{"product_id": "a"}], []))
    assert verdict(done, None, None) == []
    assert verdict(done, None, None, deadline_hit=True) != []
