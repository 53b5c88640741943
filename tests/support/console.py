"""The console as a real server for tests: a registry of their own, a models topic of their own, a child process.

Why a child process: the browser and httpx must talk to uvicorn over a socket, exactly as a person's
browser would, and the loopback check must see a real client address. Nothing here writes into the
repository: the registry, the activation log and the Milvus Lite file live in the test's tmp folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from infra.processes import stop_process_group
from model_store.registry import DEFAULT_ROOT, MANIFEST_FILE


def copy_version(target: Path, ref: str, as_ref: str | None = None, source: Path = DEFAULT_ROOT) -> Path:
    """A registry version's files (weights, manifest, reports, a stored evaluation) copied into ``target``.

    ``as_ref`` stores it under another name@version (same files and digests), as a second model would be.
    """
    name, version = ref.split("@")
    new_name, new_version = (as_ref or ref).split("@")
    folder = target / new_name / new_version
    shutil.copytree(source / name / version, folder)
    if as_ref:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, "name": new_name, "version": new_version}))
        (folder / "evaluation.json").unlink(missing_ok=True)  # it names the original
    return folder


@dataclass(frozen=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


async def topic_records(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Record]:
    """Every record of a one-partition topic, read to its end offset at the time of the call."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 1, described
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    out: list[Record] = []
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        deadline = time.monotonic() + timeout_s
        while await consumer.position(tp) < end and time.monotonic() < deadline:
            for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                out.extend(Record(r.offset, r.key, r.value) for r in records if r.offset < end)
    finally:
        await consumer.stop()
    return out


class ConsoleServer:
    """``catalog console --port 0`` as a child process with the given ``CATALOG_*`` settings; stopped by PID."""

    def __init__(self, env: Mapping[str, str], workdir: Path, start_timeout_s: float = 120.0) -> None:
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "CATALOG_LOG_LEVEL": "WARNING", **env}
        self.workdir = workdir
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def log(self) -> Path:
        return self.workdir / "console.log"

    def start(self) -> ConsoleServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        out = self.workdir / "console.out"
        with out.open("wb") as stdout, self.log.open("wb") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "console", "--host", "127.0.0.1",
                                          "--port", "0"], env=self.env, stdout=stdout, stderr=stderr,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            text = out.read_text().strip()
            if text:
                self.url = json.loads(text.splitlines()[0])["console"].rstrip("/")
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"console exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"console did not start in {self.start_timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_process_group(self.proc, timeout=20.0)

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
