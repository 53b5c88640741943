"""What the stream and rollout benchmarks both set up: the run's folder, broker, Milvus, worker environment
and settings, its upload images and the models-only yardstick.

``start_run`` puts everything it starts on the caller's ``ExitStack``, so it is stopped there by PID,
in reverse order, also on failure (a broker given by ``bootstrap`` keeps nothing: the run's topics
are deleted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.harness.worker_process import WorkerEnv
from streams.settings import Settings

if TYPE_CHECKING:
    from infra.bench.stream import StreamBenchConfig

Progress = Callable[[str], None]
REPO = Path(__file__).resolve().parents[2]


class BenchError(RuntimeError):
    """The run could not measure what it was asked to (a process died, outputs stopped coming)."""


@dataclass(frozen=True)
class RunSetup:
    """One run's folder, worker environment, settings (pointed at the run's broker, topics and Milvus)."""

    work: Path
    env: WorkerEnv
    settings: Settings
    kafka_origin: str
    milvus_origin: str


def start_run(
    stack: contextlib.ExitStack,
    config: StreamBenchConfig,
    settings: Settings,
    *,
    bootstrap: str | None,
    workdir: Path | None,
    prefix: str,
    progress: Progress,
    extra_vars: Callable[[Path], dict[str, str]] | None = None,
) -> RunSetup:
    """The run's folder (``workdir`` or a temporary one named ``prefix...``), broker, Milvus and worker
    environment (``worker_vars`` and ``extra_vars(work)``), each undone by ``stack``."""
    work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    work.mkdir(parents=True, exist_ok=True)
    kafka, kafka_origin = stack.enter_context(run_broker(bootstrap, work, progress))
    milvus_uri, milvus_origin = stack.enter_context(
        run_milvus(config.milvus, work, progress, time_tick_ms=config.milvus_time_tick_ms)
    )
    extra = worker_vars(config, settings, milvus_uri)
    if extra_vars is not None:
        extra = {**extra, **extra_vars(work)}
    env = WorkerEnv(kafka, work, extra=extra)
    run_settings = settings_for_run(settings, env, config)
    if bootstrap:
        stack.callback(delete_run_topics, run_settings, run_tag(env), progress)
    return RunSetup(work, env, run_settings, kafka_origin, milvus_origin)


@contextlib.contextmanager
def run_broker(bootstrap: str | None, work: Path, progress: Progress) -> Iterator[tuple[str, str]]:
    if bootstrap:
        yield bootstrap, f"given ({bootstrap})"
        return
    from infra.kafka.runner import BrokerConfig, KafkaBroker

    with KafkaBroker(BrokerConfig(data_dir=work / "kafka", stop_with_parent=True)) as broker:
        progress(f"started a local Kafka broker at {broker.bootstrap_servers} (pid {broker.pid})")
        yield broker.bootstrap_servers, "local KRaft broker started for this run"


@contextlib.contextmanager
def run_milvus(kind: str, work: Path, progress: Progress, time_tick_ms: int | None = None) -> Iterator[tuple[str, str]]:
    if kind == "lite":
        yield str(work / "milvus.db"), "Milvus Lite (a local file, served by the worker's child process)"
        return
    from infra.milvus.server import PIN, MilvusServer, ServerConfig

    config = ServerConfig(data_dir=work / "milvus-server", stop_with_parent=True)
    if time_tick_ms is not None:
        config = replace(config, time_tick_ms=time_tick_ms)
    server = MilvusServer(config).start()
    progress(f"started {PIN} at {server.uri} (pid {server.pid}) in {server.ready_seconds:.1f}s")
    try:
        yield server.uri, f"{PIN} standalone server started for this run ({config.time_tick_ms} ms time tick)"
    finally:
        server.stop()


def worker_vars(config: StreamBenchConfig, settings: Settings, milvus_uri: str) -> dict[str, str]:
    """The worker's settings: the caller's, with the run's Milvus, batch, device and threads."""
    out = {
        "CATALOG_MILVUS_URI": milvus_uri,
        "CATALOG_BATCH_MAX_SIZE": str(config.batch_size),
        "CATALOG_BATCH_MAX_WAIT_S": str(config.batch_wait_s),
        "CATALOG_TORCH_THREADS": str(config.torch_threads),
        "CATALOG_DEVICE": config.device,
        "CATALOG_TOPIC_PARTITIONS": str(config.partitions),
        "CATALOG_RETRY_BACKOFF_INITIAL_S": str(settings.retry_backoff_initial_s),
        "CATALOG_RETRY_BACKOFF_MAX_S": str(settings.retry_backoff_max_s),
        "CATALOG_LOG_LEVEL": "WARNING",  # a log line per batch would cost the worker CPU the run measures
    }
    if config.forward_batch_max is not None:
        out["CATALOG_FORWARD_BATCH_MAX"] = str(config.forward_batch_max)
    if config.in_flight is not None:
        out["CATALOG_PIPELINE_IN_FLIGHT"] = str(config.in_flight)
    if config.inference_lanes is not None:
        out["CATALOG_INFERENCE_LANES"] = str(config.inference_lanes)
    if settings.config_file:
        out["CATALOG_CONFIG_FILE"] = str(settings.config_file)
    return out


def run_tag(env: WorkerEnv) -> str:
    return env.topics["images"].split(".")[0]


def settings_for_run(settings: Settings, env: WorkerEnv, config: StreamBenchConfig) -> Settings:
    """The caller's settings pointed at the run's broker, topics and Milvus (for this process's clients)."""
    tag = run_tag(env)
    env.env["CATALOG_APP_ID"] = f"bench-{tag}"
    env.env["CATALOG_TOPIC_MODELS"] = f"{tag}.models"  # never the deployment's activation topic
    optional = {}
    if "topic_gallery" in Settings.model_fields:  # the rollout's gallery topic, where this checkout has one
        env.env["CATALOG_TOPIC_GALLERY"] = f"{tag}.gallery"
        optional["topic_gallery"] = env.env["CATALOG_TOPIC_GALLERY"]
    return settings.model_copy(
        update={
            **optional,
            "kafka_bootstrap": env.bootstrap,
            "app_id": env.env["CATALOG_APP_ID"],
            "topic_images": env.topics["images"],
            "topic_enriched": env.topics["enriched"],
            "topic_dlq": env.topics["dlq"],
            "topic_labels": env.topics["labels"],
            "topic_models": env.env["CATALOG_TOPIC_MODELS"],
            "topic_partitions": config.partitions,
            "milvus_uri": env.env["CATALOG_MILVUS_URI"],
            "batch_max_size": config.batch_size,
            "batch_max_wait_s": config.batch_wait_s,
            "torch_threads": config.torch_threads,
            **({"inference_lanes": config.inference_lanes} if config.inference_lanes is not None else {}),
            **({"forward_batch_max": config.forward_batch_max} if config.forward_batch_max is not None else {}),
            "device": config.device,
        }
    )


def delete_run_topics(settings: Settings, tag: str, progress: Progress) -> None:
    """On a broker we did not start, delete every topic of this run (its name carries the run's tag)."""

    async def go() -> list[str]:
        from aiokafka.admin import AIOKafkaAdminClient

        from streams.kafka_clients import client_kwargs

        admin = AIOKafkaAdminClient(**client_kwargs(settings))
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if tag in t]
            if mine:
                await admin.delete_topics(mine)
            return mine
        finally:
            await admin.close()

    try:
        progress(f"deleted the run's topics: {', '.join(asyncio.run(go())) or 'none'}")
    except Exception as exc:  # cleanup must not hide the run's result
        progress(f"could not delete the run's topics (tag {tag}): {exc}")


# ----------------------------------------------------------------------------- images and models


def upload_images(config: StreamBenchConfig, settings: Settings) -> list[str]:
    """Generated seller (or plain) photos of Fashion-MNIST test items, as the uploads carry them (JPEG, base64)."""
    from processors.samples import fashion_mnist_samples
    from streams.commands.produce import jpeg_b64

    pool = min(config.image_pool, config.events)
    size = settings.model_image_size * 2  # as ``catalog produce`` makes them
    samples = fashion_mnist_samples("test", pool, size, config.style, config.seed)  # type: ignore[arg-type]
    return [jpeg_b64(px) for px in samples.pixels]


class ModelsOnly:
    """``infra.bench.models_only`` in a session of its own with the worker's environment, as the worker runs."""

    def __init__(self, env: WorkerEnv, work: Path, images_b64: list[str], config: StreamBenchConfig) -> None:
        self.env = env
        self.images_file = work / "models-only-images.json"
        self.images_file.write_text(json.dumps(images_b64[: config.models_only_images]))
        self.config = config
        self.runs: list[dict[str, Any]] = []  # every measure's JSON, in order

    def measure(self) -> float:
        cmd = [sys.executable, "-m", "infra.bench.models_only", "--images-file", str(self.images_file),
               "--count", str(self.config.models_only_images), "--batch", str(self.config.batch_size)]  # fmt: skip
        done = subprocess.run(
            cmd, env=self.env.env, cwd=REPO, capture_output=True, text=True, timeout=self.config.timeout_s,
            check=False, start_new_session=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise BenchError(f"the models-only measure failed ({done.returncode}):\n{done.stderr[-3000:]}")
        self.runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        return float(self.facts["images_per_s"])

    @property
    def facts(self) -> dict[str, Any]:
        """The last measure's JSON ({} before the first)."""
        return self.runs[-1] if self.runs else {}
