"""The console with everything its pages need, in a folder of its own: for the browser tests and the screenshots.

- ``copy_version``: registry versions (weights, manifest, reports, a stored evaluation) copied into a
  registry of the run's own, so nothing writes into the repository's registry;
- ``build_registry``: the served student and the candidates, each with an evaluation on the same
  queries: the shipped ``evaluation.json`` files when all of them exist with one protocol, else
  ``catalog models evaluate`` at a small protocol into that registry (real figures either way);
- ``load_gallery``: Fashion-MNIST train items embedded by the served student into a Milvus Lite file;
- ``serve_worker_metrics``: the worker's own metrics page, reporting a served model;
- ``ConsoleServer``: ``catalog console --port 0`` as a child process, stopped by PID.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from wsgiref.simple_server import WSGIServer

from infra.processes import stop_process_group
from model_store.evaluations import EVALUATION_FILE, IMAGES_DIR
from model_store.registry import DEFAULT_ROOT, MANIFEST_FILE, WEIGHTS_FILE, ModelRegistry
from streams.settings import Settings

SERVED = "student@17"
CANDIDATES = ("fused-clothing-shoes@1", "fused-shoes-bags@1")  # the shipped `catalog fuse` candidates
SMALL_PROTOCOL = ["--gallery-size", "300", "--queries", "80", "--examples", "4", "--top-k", "6"]


def build_registry(target: Path, refs: list[str], source: Path = DEFAULT_ROOT, log: Path | None = None) -> str:
    """Copy ``refs`` with their evaluations; evaluate them here when the shipped ones do not pair. Returns how.

    The served quality models are copied too: every model a process of this deployment loads
    comes from its one registry (``CATALOG_REGISTRY_DIR``).
    """
    from model_store.quality.scorer import DEFAULT_REFS

    for ref in [*refs, *DEFAULT_REFS.values()]:
        copy_version(target, ref, source=source)
    keys = set()
    for ref in refs:
        path = target.joinpath(*ref.split("@"), EVALUATION_FILE)
        stored = json.loads(path.read_text()) if path.is_file() else {}
        weights = ModelRegistry(target).load_manifest(ref).files[WEIGHTS_FILE]
        keys.add(stored.get("protocol_key") if stored.get("weights_sha256") == weights else None)
    if len(keys) == 1 and None not in keys:  # every one current, all on the same queries
        shutil.copytree(source / IMAGES_DIR, target / IMAGES_DIR)
        return "shipped evaluations"
    command = [sys.executable, "-m", "streams.cli", "models", "evaluate", *refs, "--registry", str(target),
               *SMALL_PROTOCOL, "--against", refs[0], "--force"]  # fmt: skip
    with (log or Path("/dev/null")).open("ab") as sink:
        subprocess.run(command, check=True, stdout=sink, stderr=sink, timeout=1800)
    return "evaluated here: " + " ".join(SMALL_PROTOCOL)


def load_gallery(milvus_uri: str, items: int = 300) -> int:
    """Train items as trusted rows of the served student's collection; the Lite file is let go afterwards."""
    from model_store.embedding_models import load_embedding_model
    from processors.embedding import TorchEmbedder
    from processors.gallery import load_gallery as load
    from processors.samples import fashion_mnist_samples
    from processors.vector_index import VectorIndex, collection_name
    from streams.console.milvus_access import lite_path, release_lite

    settings = Settings(milvus_uri=milvus_uri)
    embedder = TorchEmbedder(load_embedding_model(SERVED))
    collection = collection_name(settings.milvus_collection_prefix, embedder.model_id, embedder.model_version)
    index = VectorIndex(settings.index_config(), collection, embedder.dim)
    try:
        report = load(fashion_mnist_samples("train", items, embedder.image_size), embedder, index)
    finally:
        index.close()
        release_lite(lite_path(milvus_uri))
    return report.rows


def serve_worker_metrics(port: int, embedder: str = SERVED) -> WSGIServer:
    """The worker's own metrics registry and HTTP server, reporting ``embedder`` as served."""
    from streams.health import HealthState, serve
    from streams.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    metrics.models.info({"embedder": embedder})
    return serve("127.0.0.1", port, metrics.registry, HealthState())


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
