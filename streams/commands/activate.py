"""``catalog models activate REF [--by NAME]``: the console's Select, for scripts.

Prints one JSON line with where the activation landed; a refused activation (unknown ref, corrupted
artifact, not an embedding model, Kafka unreachable) prints one line on stderr and exits 2 with
nothing published.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys

from streams.settings import Settings

EXIT_REFUSED = 2


def add_parser(models: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = models.add_parser(
        "activate", help="publish a ModelActivated for a verified registry embedding model (what the console does)"
    )
    p.add_argument("ref", help="name@version of a registry embedding model")
    p.add_argument("--by", default=None, help="who selects it (default: the login name + '@cli')")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.activation import ActivationRefused, activate, activation_log_path

    by = args.by or f"{getpass.getuser()}@cli"
    try:
        record = asyncio.run(activate(settings, args.ref, by, timeout_s=args.timeout))
    except ActivationRefused as exc:
        print(json.dumps({"error": exc.code, "message": exc.message, "published": False}), file=sys.stderr)
        return EXIT_REFUSED
    event = record.event
    print(
        json.dumps({
            "published": True, "model_ref": event.model_ref, "sha256": event.sha256,
            "collection": event.collection, "previous_ref": event.previous_ref, "activated_by": event.activated_by,
            "topic": record.topic, "partition": record.partition, "offset": record.offset,
            "log": str(activation_log_path(settings)),
        })
    )  # fmt: skip
    return 0
