"""What ``catalog bench stream`` and ``catalog bench rollout`` share: options, checks before the run, the run
itself with its failure line, and the report's output.

Each option keeps its place on each command's line; an option whose help or default differs
between the two commands takes it as an argument.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:
    from streams.settings import Settings

C = TypeVar("C")


def checkout_on_path() -> None:
    """Put this checkout's root on ``sys.path`` and ``PYTHONPATH`` when ``infra/`` sits beside the package.

    Why: the ``catalog`` script sees only the installed packages, but a benchmark starts the
    checkout's runners (broker, Milvus, worker, the models-only child), which import ``infra``.
    """
    import streams

    root = Path(streams.__file__).resolve().parents[1]
    if not (root / "infra" / "__init__.py").is_file():
        return  # an installed package without a checkout: the import below says so
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(root) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *parts])


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def command_line() -> str | None:
    argv = sys.argv[1:]
    return "catalog " + " ".join(argv) if argv[:1] == ["bench"] else None


class WorkerShape(NamedTuple):
    """How the run's worker and its models-only measure run the models, resolved once for both."""

    lanes: int
    threads: int  # torch threads per lane
    in_flight: int


def worker_shape(args: argparse.Namespace, settings: Settings, device: str) -> WorkerShape:
    """Lanes, torch threads per lane and batches in flight of the run's worker.

    Each as stated (``--lanes``, ``--threads``, ``--in-flight``), else as configured, else the
    worker's own default for the run's device (``Settings.lanes`` and the rest), so the worker,
    its yardstick and the report agree.
    """
    run = settings.model_copy(
        update={
            "device": device,
            "inference_lanes": getattr(args, "lanes", None) or settings.inference_lanes,
            "torch_threads": args.threads or settings.torch_threads,
            "pipeline_in_flight": getattr(args, "in_flight", None) or settings.pipeline_in_flight,
        }
    )
    threads = run.threads_per_lane()
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    return WorkerShape(run.lanes(), threads, run.in_flight())


def stop_cleanly_on_sigterm() -> None:
    """``timeout`` and service managers send SIGTERM: unwind (stop the worker, broker, Milvus) as on Ctrl-C."""
    import signal

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


def check_device(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch.cuda.is_available() is False on this machine (no NVIDIA GPU/driver)")


def write_report(report: dict[str, Any], out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    say(f"wrote {out}")


# ----------------------------------------------------------------------------- options


def add_milvus_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--milvus", choices=["lite", "server"], default="lite", help="Milvus Lite file or a real server")
    p.add_argument(
        "--milvus-time-tick-ms",
        type=int,
        default=None,
        help="with --milvus server: its proxy time tick (a Strong read waits for the next one; default: the runner's)",
    )


def add_style_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--style", choices=["seller", "plain"], default="seller", help=help_text)


def add_worker_options(p: argparse.ArgumentParser, *, threads_help: str, batch_wait: bool) -> None:
    """--device, --batch-size, --batch-wait (where ``batch_wait``), --threads, --lanes and --partitions."""
    p.add_argument("--device", help="cpu or cuda (default: CATALOG_DEVICE)")
    p.add_argument("--batch-size", type=int, help="micro-batch size (default: CATALOG_BATCH_MAX_SIZE)")
    if batch_wait:
        p.add_argument(
            "--batch-wait", type=float, help="seconds a batch waits to fill (default: CATALOG_BATCH_MAX_WAIT_S)"
        )
    p.add_argument("--threads", type=int, help=threads_help)
    p.add_argument(
        "--lanes", type=int, help="batches in the models at once, worker and models-only (CATALOG_INFERENCE_LANES)"
    )
    p.add_argument("--partitions", type=int, help="partitions of the run's topics (default: CATALOG_TOPIC_PARTITIONS)")


def add_limit_options(p: argparse.ArgumentParser, *, timeout: float) -> None:
    """--timeout and --workdir."""
    p.add_argument("--timeout", type=float, default=timeout, help="give up after this many seconds in all")
    p.add_argument("--workdir", help="keep logs and data here (default: a temporary folder, removed)")


def add_out_option(p: argparse.ArgumentParser, kind: str) -> None:
    p.add_argument("--out", help=f"JSON report; a PNG goes beside it (default docs/bench/{kind}-...json; '' for none)")


# ----------------------------------------------------------------------------- the run


def bench_device(args: argparse.Namespace, settings: Settings) -> str:
    """The run's device (stated or configured), checked; SIGTERM unwinds the run from here on."""
    device: str = args.device or settings.device
    check_device(device)
    stop_cleanly_on_sigterm()
    return device


def bench_config(command: str, build: Callable[[], C]) -> C:
    """``build()``; a value it refuses is one line naming the command (``catalog bench <command>: ...``)."""
    try:
        return build()
    except ValueError as exc:
        raise SystemExit(f"catalog bench {command}: {exc}") from exc


def run_bench(
    command: str, measure: Callable[..., dict[str, Any]], config: Any, args: argparse.Namespace, settings: Settings
) -> dict[str, Any] | None:
    """``measure`` on the broker ``CATALOG_KAFKA_BOOTSTRAP`` names, if it is set (else one of the run's own),
    progress on stderr; ``None`` after one failure line when a runner or process failed."""
    bootstrap = settings.kafka_bootstrap if "kafka_bootstrap" in settings.model_fields_set else None
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a kill stops the run the way Ctrl-C does
    try:
        return measure(
            config, settings, bootstrap=bootstrap, workdir=Path(args.workdir) if args.workdir else None, progress=say
        )
    except (RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:  # BenchError is a RuntimeError
        say(f"catalog bench {command} failed: {type(exc).__name__}: {exc}")
        return None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as KeyboardInterrupt: the run's finally blocks stop every process it started, by PID."""
    raise KeyboardInterrupt(f"signal {signum}")
