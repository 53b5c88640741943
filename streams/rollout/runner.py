"""The re-index as a job of its own (``catalog rollout reindex``): every partition, until caught up.

For rebuilding a collection from the log outside a rollout, and for measuring the re-index. It
never switches a partition; it must not run beside workers that re-index and switch the same
model, because its commits (metadata "") could land after their ``switched`` commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

from processors.errors import TransientFailure
from streams.retry import Backoff, retry_transient
from streams.rollout.reindexer import PartitionReindexer, StepResult

log = structlog.get_logger("catalog.rollout")


@dataclass
class RunReport:
    records: int = 0
    rows: int = 0
    superseded: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    lag: int = 0

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "records": self.records,
            "rows": self.rows,
            "superseded": self.superseded,
            "failed": dict(sorted(self.failed.items())),
            "seconds": round(self.seconds, 2),
            "records_per_s": round(self.records_per_s, 1),
            "lag": self.lag,
        }


async def run_until_caught_up(
    reindexer: PartitionReindexer,
    partitions: Iterable[int],
    backoff: Backoff,
    on_step: Callable[[StepResult], None] | None = None,
    follow: bool = False,
) -> RunReport:
    """Assign ``partitions`` and step until their lag is 0 (or forever with ``follow``); transient failures retry."""
    await reindexer.assign(partitions)
    report = RunReport()
    start = time.perf_counter()

    def count(exc: TransientFailure) -> None:
        log.warning("reindex_retry", error_code=exc.error_code, error=exc.message[:300])

    while True:
        result = await retry_transient(reindexer.step, backoff, on_retry=count)
        report.records += result.records
        report.rows += result.rows
        report.superseded += result.superseded
        for code, n in result.failed.items():
            report.failed[code] = report.failed.get(code, 0) + n
        if on_step is not None:
            on_step(result)
        if result.records == 0 and not follow:
            report.lag = await reindexer.owned_lag()
            if report.lag == 0:
                break
    report.seconds = time.perf_counter() - start
    return report
