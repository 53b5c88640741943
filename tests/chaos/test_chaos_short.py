"""The chaos suite's short version in CI: the same scenarios as ``python -m infra.chaos --short``.

Real broker (its own, so it can be restarted; or ``KAFKA_BOOTSTRAP_SERVERS``, where the broker
restart is skipped), a real Milvus shared by the workers (the milvus-lite server, or with
``CHAOS_MILVUS=server`` the Milvus 2.3 server), real worker processes. ``CHAOS_SEED`` picks the seed.
Each scenario asserts the targets of issue 18: nothing lost, no duplicate or missing Milvus
rows, no confirmed label lost or downgraded, every partition flowing within 15 s of a kill -9.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from infra.chaos.report import HEADER, row
from infra.chaos.scenarios import SCENARIOS
from infra.chaos.sizes import SIZES
from infra.chaos.stack import Stack
from infra.chaos.suite import run_scenario

pytestmark = pytest.mark.integration
SEED = int(os.environ.get("CHAOS_SEED", "1"))
MILVUS = os.environ.get("CHAOS_MILVUS", "lite-server")  # or "server": the Milvus 2.3 standalone runner


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None
    with Stack(bootstrap, MILVUS, tmp_path_factory.mktemp("chaos"), SIZES["short"].gallery) as stack:
        yield stack


@pytest.mark.timeout(400)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_meets_the_targets(chaos_stack: Stack, name: str) -> None:
    result = asyncio.run(run_scenario(chaos_stack, name, SIZES["short"], SEED))
    print(f"\n{HEADER}\n{row(result)}")
    if result.skipped:
        pytest.skip(result.skipped)
    notes = "\n".join(result.notes)
    assert result.error is None, f"{result.error}\nnotes:\n{notes}"
    assert result.failures == [], f"{row(result)}\n{result.failures}\nnotes:\n{notes}"
