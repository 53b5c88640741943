"""``catalog rollout status | reindex``: watch a rollout's re-index, or run one as a job of its own."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from streams.settings import Settings


def add_parser(sub: Any) -> None:
    ro = sub.add_parser("rollout", help="model rollout: re-index progress").add_subparsers(
        dest="rollout_cmd", required=True
    )
    st = ro.add_parser("status", help="the latest activation, its re-index progress, switched partitions")
    st.add_argument("--follow", action="store_true", help="a progress bar until the re-index has caught up")
    st.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --follow")
    st.set_defaults(fn=lambda args: status(args, _settings(args)))
    ri = ro.add_parser(
        "reindex",
        help="re-embed the images and gallery topics into the activated model's collection until caught up "
        "(a job of its own: never beside workers that re-index the same model)",
    )
    ri.add_argument("--model", help="re-index for this registry model instead of the latest activation")
    ri.add_argument("--partitions", help="comma-separated images partitions (default: all)")
    ri.add_argument("--follow", action="store_true", help="keep going after catching up (new records too)")
    ri.set_defaults(fn=lambda args: reindex(args, _settings(args)))


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(config_file=args.config) if args.config else Settings()


def _fail(code: str, message: str) -> int:
    print(json.dumps({"error": code, "message": message}), file=sys.stderr)
    return 2


def status(args: argparse.Namespace, s: Settings) -> int:
    from aiokafka.errors import KafkaError

    from streams.activation import ActivationRefused

    try:
        return asyncio.run(_status(args, s))
    except (KafkaError, OSError, TimeoutError) as exc:
        return _fail("kafka_unavailable", f"{s.kafka_bootstrap}: {type(exc).__name__}: {exc}")
    except ActivationRefused as exc:
        return _fail(exc.code, exc.message)


async def _status(args: argparse.Namespace, s: Settings) -> int:
    from streams.rollout.progress import eta_seconds
    from streams.rollout.status import read_status

    current = await read_status(s)
    if not args.follow or current.offsets is None:
        print(json.dumps(current.as_dict(), indent=2))
        return 0
    from tqdm import tqdm

    assert current.offsets is not None
    bar = tqdm(total=current.offsets.total, initial=current.offsets.done, unit="rec", desc="re-index", file=sys.stderr)
    first_done, first_t = current.offsets.done, time.monotonic()
    eta = None
    try:
        while True:
            o = current.offsets
            assert o is not None
            bar.total = o.total
            bar.update(o.done - bar.n)
            bar.set_postfix(lag=o.lag, switched=f"{len(current.switched)}/{len(current.images_partitions)}")
            rate = (o.done - first_done) / max(1e-9, time.monotonic() - first_t)
            eta = eta_seconds(o.lag, rate or None)
            if current.caught_up:
                break
            await asyncio.sleep(args.interval)
            current = await read_status(s)
            if current.offsets is None:  # the activation went away (tombstone)
                break
    finally:
        bar.close()
    print(json.dumps(current.as_dict(eta), indent=2))
    return 0


def reindex(args: argparse.Namespace, s: Settings) -> int:
    from aiokafka.errors import KafkaError

    from processors.errors import ProcessingError
    from streams.activation import ActivationRefused

    try:
        return asyncio.run(_reindex(args, s))
    except (KafkaError, OSError) as exc:
        return _fail("kafka_unavailable", f"{s.kafka_bootstrap}: {type(exc).__name__}: {exc}")
    except ActivationRefused as exc:
        return _fail(exc.code, exc.message)
    except ProcessingError as exc:
        return _fail(exc.error_code, exc.message)
    except ValueError as exc:
        return _fail("bad_argument", str(exc))


async def _reindex(args: argparse.Namespace, s: Settings) -> int:
    from streams.activation import build_activation, open_registry, read_latest_activation, verified_manifest
    from streams.retry import Backoff
    from streams.rollout.collections import ref_collection
    from streams.rollout.factory import build_reindexer
    from streams.rollout.runner import run_until_caught_up

    if args.model:
        latest = await read_latest_activation(s)
        previous = latest.event.model_ref if latest else s.model_ref
        activation = build_activation(s, verified_manifest(open_registry(s), args.model), "cli:reindex", previous)
    else:
        record = await read_latest_activation(s)
        if record is None:
            return _fail("no_activation", f"no activation on {s.topic_models}; pass --model REF")
        activation = record.event
    previous_collection = ref_collection(s.milvus_collection_prefix, activation.previous_ref or s.model_ref)
    reindexer = build_reindexer(s, activation, previous_collection)
    await reindexer.start()
    try:
        partitions = _partitions(args.partitions) if args.partitions else range(reindexer.images_partition_count)
        backoff = Backoff(s.retry_backoff_initial_s, s.retry_backoff_max_s)
        report = await run_until_caught_up(reindexer, partitions, backoff, follow=args.follow)
        rows_total = await asyncio.to_thread(reindexer.parts.index.count)
    finally:
        await reindexer.stop()
    print(json.dumps({"model": activation.model_ref, "collection": activation.collection,
                      "group": reindexer.group_id, "rows_total": rows_total, **report.as_dict()}))  # fmt: skip
    return 0


def _partitions(text: str) -> list[int]:
    try:
        return sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError as exc:
        raise ValueError(f"--partitions takes comma-separated partition numbers, not {text!r}") from exc
