"""The demo's throughput runs from the first upload's submission to the last enrichment."""

from __future__ import annotations

from streams.commands.report import RunSummary


def _enriched(event_id: str, processed_at: str) -> dict:
    return {"event_id": event_id, "processed_at": processed_at}


def test_throughput_spans_the_first_submission_to_the_last_enrichment() -> None:
    truth = {
        "a": {"submitted_at": "2026-12-03T10:00:00+00:00"},
        "b": {"submitted_at": "2026-12-03T10:00:00.500000+00:00"},
        "c": {"submitted_at": "2026-12-03T10:00:01+00:00"},
        "d": {"submitted_at": "2026-12-03T10:00:01+00:00"},
    }
    # one batch stamps its events within milliseconds: the span between enrichments says nothing
    summary = RunSummary(
        expected=4,
        enriched={
            "a": _enriched("a", "2026-12-03T10:00:01.999Z"),
            "b": _enriched("b", "2026-12-03T10:00:02Z"),
            "c": _enriched("c", "2026-12-03T10:00:02Z"),
            "d": _enriched("d", "2026-12-03T10:00:02Z"),
        },
    )
    assert summary.throughput(truth) == 2.0  # 4 events in 2 s, not 4 in 1 ms


def test_without_submission_times_or_outputs_there_is_no_figure() -> None:
    enriched = {"a": _enriched("a", "2026-12-03T10:00:02Z")}
    assert RunSummary(expected=1, enriched=enriched).throughput({"a": {"label": "coat"}}) is None
    assert RunSummary(expected=1).throughput({"a": {"submitted_at": "2026-12-03T10:00:00Z"}}) is None
