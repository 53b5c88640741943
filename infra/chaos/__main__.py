"""``python -m infra.chaos``: run the chaos scenarios, print one row each, exit 1 if a target fails."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from infra.chaos.report import table, write_json
from infra.chaos.scenarios import SCENARIOS
from infra.chaos.sizes import SIZES
from infra.chaos.stack import Stack
from infra.chaos.suite import ScenarioResult, run_suite


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m infra.chaos", description=__doc__)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scenario", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--short", dest="size", action="store_const", const="short", help="the CI size (default)")
    size.add_argument("--long", dest="size", action="store_const", const="long", help="the README size")
    p.set_defaults(size="short")
    p.add_argument("--milvus", choices=["lite-server", "server"], default="lite-server")
    p.add_argument("--json", type=Path, help="write every figure here")
    p.add_argument("--workdir", type=Path, help="keep logs and data here (default: a temp dir, removed)")
    args = p.parse_args(argv)
    args.names = [n.strip() for n in args.scenario.split(",") if n.strip()]
    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    return args


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through Stack.close: every process is stopped by PID


def _progress(result: ScenarioResult) -> None:
    print(f"{result.name}: {'pass' if result.passed else 'FAIL'} in {result.seconds:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its retries during faults are expected noise
    sizes = SIZES[args.size]
    started = time.time()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None
    with Stack(bootstrap, args.milvus, args.workdir, sizes.gallery) as stack:
        where = f"broker {stack.bootstrap}, milvus {args.milvus} {stack.milvus_uri}"
        print(f"chaos: {where}, {args.size}, seed {args.seed}", flush=True)
        results = asyncio.run(run_suite(stack, args.names, sizes, args.seed, _progress))
    print(table(results))
    if args.json:
        meta = {"seed": args.seed, "size": args.size, "milvus": args.milvus, "started": started, "sizes": asdict(sizes)}
        write_json(args.json, meta, results)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
