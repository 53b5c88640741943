"""Targets of issue 18, one table row per scenario, and the JSON file with every figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.chaos.sizes import MAX_RECOVERY_S

if TYPE_CHECKING:
    from infra.chaos.suite import ScenarioResult


def verdict(figures: dict[str, Any], error: str | None, skipped: str | None, deadline_hit: bool = False) -> list[str]:
    """Every target the figures miss, in words (empty: passed). A run cut short never passes."""
    if skipped:
        return []
    failures = [f"harness error: {error}"] if error else []
    if deadline_hit:
        failures.append("did not finish its plan within the hard deadline (stuck, or far too slow)")
    if not figures:
        return failures or ["no figures"]
    if not figures["produced"]:
        failures.append("no input was found on the images topic")
    if figures["lost"]:
        failures.append(f"{figures['lost']} events lost {figures['lost_by_kind']}")
    if figures["duplicate_rows"] or figures["missing_rows"]:
        failures.append(f"milvus rows: {figures['duplicate_rows']} duplicate, {figures['missing_rows']} missing")
    if figures["labels"]["lost"]:
        failures.append(f"{figures['labels']['lost']} confirmed labels lost or downgraded")
    for fault in figures["faults"]:
        if fault["kind"] != "kill":
            continue
        gap = fault["longest_gap_s"]
        if gap is None or gap > MAX_RECOVERY_S:
            shown = "never recovered" if gap is None else f"longest gap {gap:.1f}s"
            failures.append(f"after the kill of {fault['worker']}: {shown} > {MAX_RECOVERY_S:.0f}s")
    return failures


def _gaps(figures: dict[str, Any]) -> str:
    parts = []
    for f in figures.get("faults", []):
        rec = "never" if f["longest_gap_s"] is None else f"{f['longest_gap_s']:.1f}"
        first = "-" if f["first_output_s"] is None else f"{f['first_output_s']:.1f}"
        parts.append(f"{f['kind']}:{rec}/{first}")
    return " ".join(parts) or "-"


HEADER = (
    f"{'scenario':<8} {'produced':>8} {'output':>7} {'lost':>5} {'dup out':>7} {'rows/pids':>10} {'dup rows':>8} "
    f"{'labels lost':>11}  {'gap after fault s (longest/first)':<34} {'verdict':<7} dead-letter codes"
)


def row(result: ScenarioResult) -> str:
    if result.skipped:
        return f"{result.name:<8} skipped: {result.skipped}"
    f = result.figures
    if not f:
        return f"{result.name:<8} FAIL: {'; '.join(result.failures)}"
    codes = ",".join(f"{k}={v}" for k, v in f["dlq_codes"].items()) or "-"
    labels = f"{f['labels']['lost']}/{f['labels']['products']}" if f["labels"]["products"] else "-"
    return (
        f"{result.name:<8} {f['produced']:>8} {f['with_output']:>7} {f['lost']:>5} {f['duplicate_outputs']:>7} "
        f"{str(f['milvus_rows']) + '/' + str(f['enriched_products']):>10} {f['duplicate_rows']:>8} {labels:>11}  "
        f"{_gaps(f):<34} {'pass' if result.passed else 'FAIL':<7} {codes}"
    )


def table(results: Sequence[ScenarioResult]) -> str:
    lines = [HEADER, *(row(r) for r in results)]
    for r in results:
        lines += [f"  {r.name}: {failure}" for failure in r.failures]
        for kind, seen in r.figures.get("hostile_unexpected", {}).items():
            lines.append(f"  {r.name}: note (not a target): {kind} should be {seen['expected']}, got {seen['got']}")
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], results: Sequence[ScenarioResult]) -> None:
    doc = {**meta, "passed": all(r.passed for r in results), "scenarios": [r.as_dict() for r in results]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
