"""``catalog bench index``: ms per micro-batch of search + upsert on Milvus Lite and a server.

Why here: choosing and starting the Milvus instances is the entry point's job; the timing
itself lives in ``processors.index_benchmark`` and goes through the worker's ``VectorIndex``.

The server is ``--server-uri`` when given (standalone or a cluster); else a real Milvus 2.3
standalone server started for the run from the PyPI package (``infra.milvus.server``, only in
a checkout) in a temporary folder, stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the benchmark (numpy, pymilvus) loads only when the command runs
    from processors.index_benchmark import SizeResult, Target
    from processors.vector_index import VectorIndexConfig
    from streams.settings import Settings

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)


def parse_sizes(text: str) -> list[int]:
    """``10k,100k,1m`` or ``10000,100000`` -> row counts."""
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1:], 1)
        out.append(int(float(part.rstrip("km")) * scale))
    return out


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _server(uri: str | None, workdir: Path) -> Iterator[tuple[str, str]]:
    """(URI, how it was obtained) of the server to measure."""
    if uri:
        yield uri, "given (--server-uri)"
        return
    from streams.commands.bench_options import checkout_on_path

    checkout_on_path()
    try:
        from infra.bench.run_setup import run_milvus  # a checkout's runner, not a dependency
    except ImportError as exc:
        raise SystemExit(
            "no --server-uri and infra.milvus.server is not importable (run from a checkout, or start a server "
            "and pass --server-uri http://127.0.0.1:19530)"
        ) from exc
    with run_milvus("server", workdir, _say) as served:
        yield served


def _save_partial(out: str | None, result: SizeResult) -> None:
    """Append each measured cell to ``<out>.partial.jsonl``: a long run that dies keeps what it measured."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with Path(f"{out}.partial.jsonl").open("a") as handle:
            handle.write(json.dumps(result.as_dict()) + "\n")


def _config_for(settings: Settings, uri: str, token: str | None = None) -> VectorIndexConfig:
    """The worker's index settings with ``uri``.

    Defaults that depend on the backend (flushes every 2,048 rows and cheaper graph builds on
    Milvus Lite, none on a server, which seals segments itself) follow the backend, since
    ``VectorIndex`` asks it; a server once measured with the Lite default was flushed during its
    load, which then ran at 2,800 rows/s instead of 11,000-15,000.
    """
    from processors.index_benchmark import with_uri

    return with_uri(settings.index_config(), uri, token)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Measure every chosen backend at every size; print the table, write the JSON."""
    from processors.embedding import TorchEmbedder
    from processors.index_benchmark import SettleLimits, Target, format_table, run_index_benchmark

    sizes = parse_sizes(args.sizes)
    dim = args.dim or TorchEmbedder.from_config(settings.embedder_config()).dim
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    server_origin = None

    def skip(target: Target, rows: int, done: Sequence[SizeResult]) -> str | None:
        if target.name != "lite" or rows <= args.lite_max_rows:
            return None
        rates = [r.load_rows_per_s for r in done if r.target == "lite"]
        guess = (
            f"; at the {rates[-1]:,.0f} rows/s measured, loading alone would take ~{rows / rates[-1] / 60:.0f} min"
            if rates
            else ""
        )
        return f"above --lite-max-rows {args.lite_max_rows:,}{guess}"

    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp, contextlib.ExitStack() as stack:
        targets = []
        for backend in backends:
            if backend == "lite":
                targets.append(Target("lite", _config_for(settings, str(Path(tmp) / "lite.db"))))
            elif backend == "server":
                uri, origin = stack.enter_context(_server(args.server_uri, Path(tmp)))
                targets.append(Target("server", _config_for(settings, uri, args.server_token)))
                server_origin = origin
            else:
                raise SystemExit(f"unknown backend {backend!r} (lite, server)")

        started = time.perf_counter()
        report = run_index_benchmark(
            targets,
            sizes,
            dim,
            batch=args.batch,
            k=args.k,
            batches=args.batches,
            warmup=args.warmup,
            settle=SettleLimits(args.settle_quiet_s, args.settle_limit_s),
            skip=skip,
            progress=_say,
            on_result=lambda result: _save_partial(args.out, result),
        )
    out = report.as_dict()
    out["model"] = settings.model_ref
    out["server"] = server_origin
    out["lite"] = "milvus-lite (embedded, a local file)" if "lite" in backends else None
    out["command"] = "catalog bench index " + " ".join(sys.argv[3:]) if sys.argv[1:3] == ["bench", "index"] else None
    out["wall_s"] = round(time.perf_counter() - started, 1)
    for line in format_table(report):
        print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        Path(f"{args.out}.partial.jsonl").unlink(missing_ok=True)
        print(f"wrote {args.out}")
    return 0


def add_parser(bench: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``bench index`` options (the caller sets the handler)."""
    p = bench.add_parser(
        "index", help="ms per micro-batch of search + upsert on Milvus Lite and a server vs gallery size"
    )
    p.add_argument("--sizes", default="10k,100k,1m", help="gallery sizes, e.g. 10k,100k,1m (default)")
    p.add_argument("--backends", default="lite,server", help="lite, server or both (default)")
    p.add_argument("--server-uri", help="a running Milvus server/cluster; default: start the PyPI server for the run")
    p.add_argument("--server-token", help="its token, if any")
    p.add_argument("--lite-max-rows", type=int, default=1_000_000, help="skip Lite above this many rows (slow to load)")
    p.add_argument("--batch", type=int, default=64, help="queries and upserted rows per micro-batch")
    p.add_argument("--k", type=int, default=20, help="neighbours per query")
    p.add_argument("--batches", type=int, default=20, help="measured micro-batches per size")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured micro-batches first")
    p.add_argument(
        "--settle-quiet-s",
        type=float,
        default=30.0,
        help="measure once Milvus had no index rows pending for this long (compaction re-indexes after a load)",
    )
    p.add_argument("--settle-limit-s", type=float, default=300.0, help="measure anyway after this long")
    p.add_argument("--dim", type=int, default=0, help="vector size (default: the active embedder's)")
    p.add_argument("--out", default="docs/bench/index.json", help="JSON report ('' for none)")
    return p
