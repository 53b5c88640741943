"""Run chosen scenarios on one stack, each under a hard deadline, and audit each one.

Used by the CLI (``python -m infra.chaos``) and by ``tests/chaos`` alike, so CI runs the
same scenario code as the long README runs.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.chaos.audit import Evidence, Topics, audit, collect, milvus_rows
from infra.chaos.report import verdict
from infra.chaos.scenarios import SCENARIOS, Run, create_topics
from infra.chaos.sizes import Sizes
from infra.chaos.stack import Stack, static_membership_setting
from infra.chaos.traffic import Feeder, Tail
from infra.chaos.worker_logs import group_story


@dataclass
class ScenarioResult:
    name: str
    seconds: float
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    deadline_hit: bool = False
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.skipped is not None or not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "failures": self.failures,
            "skipped": self.skipped,
            "error": self.error,
            "deadline_hit": self.deadline_hit,
            "seconds": round(self.seconds, 1),
            "notes": self.notes,
            **self.figures,
        }


async def run_scenario(stack: Stack, name: str, sizes: Sizes, seed: int) -> ScenarioResult:
    """One scenario on fresh topics; the workers are stopped before the audit reads the topics."""
    started = time.monotonic()
    env = stack.env(name)
    run = Run(
        name=name,
        stack=stack,
        env=env,
        sizes=sizes,
        rng=random.Random(f"{seed}:{name}"),
        prefix=f"chaos-{name}-{uuid.uuid4().hex[:6]}-",
        deadline=started + sizes.deadline_s,
        feeder=Feeder(stack.bootstrap),
        tail=Tail(stack.bootstrap, [env.topics["enriched"], env.topics["dlq"]]),
    )
    result = ScenarioResult(name, 0.0)
    try:
        await create_topics(env)
        await run.feeder.start()
        run.tail.start()
        await asyncio.wait_for(SCENARIOS[name](run), timeout=sizes.deadline_s)
    except TimeoutError as exc:
        if time.monotonic() - started < sizes.deadline_s - 1.0:  # raised inside, e.g. a worker never ready
            result.error = f"TimeoutError: {exc}"
        result.deadline_hit = True
        took = time.monotonic() - started
        run.notes.append(f"stopped by a timeout after {took:.0f}s (deadline {sizes.deadline_s:.0f}s)")
    except Exception as exc:  # a harness failure is reported, and the audit still runs on what exists
        result.error = f"{type(exc).__name__}: {exc}"
        run.notes.append(traceback.format_exc(limit=5))
    finally:
        await run.tail.stop()
        await run.feeder.stop()
        await asyncio.to_thread(stack.stop_workers)
    result.notes, result.skipped = run.notes, run.skipped
    if run.skipped is None:
        try:
            result.figures = await _audit(stack, run)
        except Exception as exc:  # no figures: the scenario fails, it never passes unaudited
            result.error = result.error or f"audit: {type(exc).__name__}: {exc}"
    result.seconds = time.monotonic() - started
    result.failures = verdict(result.figures, result.error, result.skipped, result.deadline_hit)
    if result.failures:  # the workers' own account, while their logs can still be read
        try:
            result.notes.extend(await asyncio.to_thread(group_story, env.workdir))
        except OSError as exc:  # the verdict stands without it
            result.notes.append(f"the workers' logs could not be read: {exc}")
    return result


async def _audit(stack: Stack, run: Run) -> dict[str, Any]:
    topics = Topics(**{name: run.env.topics[name] for name in Topics.__dataclass_fields__})  # the audited ones
    read = await collect(stack.bootstrap, topics)
    rows = await asyncio.to_thread(milvus_rows, stack.milvus_uri, stack.collection, run.prefix)
    kinds = {(s.partition, s.offset): s.msg.kind for s in run.feeder.sent if s.msg.topic == topics.images}
    figures = audit(Evidence(topics, rows=rows, faults=run.faults, kinds=kinds, **read))
    figures["static_membership"] = static_membership_setting()
    return figures


async def run_suite(
    stack: Stack,
    names: Sequence[str],
    sizes: Sizes,
    seed: int,
    progress: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Scenarios one after another (they share two cores); ``progress`` sees each result as it ends."""
    results = []
    for name in names:
        results.append(await run_scenario(stack, name, sizes, seed))
        if progress is not None:
            progress(results[-1])
    return results
