"""Pick a real Milvus server for tests, and give each test its own collections on it.

Why one place: every test that needs a Milvus *server* goes through ``milvus_endpoint()``, so
the choice of backend (already running, Docker, the PyPI server) is made once, never a mock.

Order: ``MILVUS_URI`` (+ optional ``MILVUS_TOKEN``) if set; else testcontainers' Milvus if a
Docker engine answers; else the PyPI ``milvus`` 2.3 server of ``infra.milvus.server`` in a
temp dir on free ports. ``MILVUS_TEST_BACKEND=local|docker`` skips the automatic choice.

Tests on a shared server are kept apart by a unique ``CATALOG_MILVUS_COLLECTION_PREFIX``;
``isolated_prefix`` drops the collections (and aliases) of that prefix afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.milvus.server import MilvusServer, ServerConfig

log = logging.getLogger(__name__)

DEFAULT_DOCKER_IMAGE = "milvusdb/milvus:v2.3.5"  # the same engine version as the PyPI server


@dataclass(frozen=True)
class MilvusEndpoint:
    """Where the test server is, and which backend gave it."""

    uri: str
    backend: str  # "env" | "testcontainers" | "local"
    token: str = ""
    server: MilvusServer | None = None  # local backend only: tests may read its log or pid


def _docker_container(image: str) -> Any | None:
    """A started testcontainers MilvusContainer, or None when Docker is absent or fails."""
    try:
        from docker.errors import DockerException
        from testcontainers.community.milvus import MilvusContainer
    except ImportError:
        return None
    try:
        container = MilvusContainer(image)  # raises DockerException at once without Docker
    except DockerException:
        return None
    try:
        container.start()
    except Exception as exc:  # pull or start failed: the PyPI server is just as real
        log.warning("testcontainers Milvus failed (%s); falling back to the PyPI Milvus server", exc)
        with contextlib.suppress(Exception):
            container.stop()
        return None
    return container


@contextlib.contextmanager
def milvus_endpoint(env: Mapping[str, str] | None = None) -> Iterator[MilvusEndpoint]:
    """Yield a running Milvus server's endpoint; stops whatever it started on exit."""
    env = os.environ if env is None else env
    given = env.get("MILVUS_URI", "").strip()
    if given:
        yield MilvusEndpoint(given, "env", env.get("MILVUS_TOKEN", ""))
        return
    forced = env.get("MILVUS_TEST_BACKEND", "auto").strip().lower()
    if forced not in {"auto", "docker", "local"}:
        raise ValueError(f"MILVUS_TEST_BACKEND must be auto, docker or local, not {forced!r}")
    container = None
    if forced in {"auto", "docker"}:
        container = _docker_container(env.get("MILVUS_TEST_IMAGE", DEFAULT_DOCKER_IMAGE))
        if container is None and forced == "docker":
            raise RuntimeError("MILVUS_TEST_BACKEND=docker but no Docker engine answered")
    if container is not None:
        try:
            yield MilvusEndpoint(container.get_connection_url(), "testcontainers")
        finally:
            container.stop()
        return
    with tempfile.TemporaryDirectory(prefix="catalog-milvus-") as tmp:
        server = MilvusServer(ServerConfig(data_dir=Path(tmp), stop_with_parent=True)).start()
        try:
            log.info("PyPI Milvus server at %s ready in %.1fs", server.uri, server.ready_seconds)
            yield MilvusEndpoint(server.uri, "local", server=server)
        finally:  # its data dir goes with it, so no graceful stop is owed (Milvus 2.3's may hang 10 s)
            server.stop(timeout=2.0)


def unique_prefix(tag: str = "t") -> str:
    """A collection prefix no other test (or earlier run on a shared server) uses."""
    return f"{tag}_{uuid.uuid4().hex[:10]}"


def drop_prefixed(uri: str, prefix: str, token: str = "") -> list[str]:
    """Drop every collection (and its aliases) whose name starts with ``prefix_``; best effort."""
    from pymilvus import MilvusClient

    dropped: list[str] = []
    client = MilvusClient(uri=uri, token=token)
    try:
        for name in client.list_collections():
            if not name.startswith(f"{prefix}_"):
                continue
            with contextlib.suppress(Exception):
                for alias in client.describe_collection(name).get("aliases", []):
                    client.drop_alias(alias)
            with contextlib.suppress(Exception):
                client.drop_collection(name)
                dropped.append(name)
    finally:
        client.close()
    return dropped


@dataclass
class MilvusTarget:
    """The Milvus one test (or one module's worker stack) uses: backend, URI and its own prefix.

    ``uri`` None means "the test's own Milvus Lite" (the default that test used before the
    server existed), so the Lite runs stay exactly what they were.
    """

    backend: str  # "lite" | "server"
    uri: str | None = None
    prefix: str = "catalog"
    token: str = ""
    endpoint_backend: str = ""

    def env(self) -> dict[str, str]:
        """``CATALOG_*`` variables for a worker or CLI run on this target (none for Lite)."""
        if self.uri is None:
            return {}
        out = {"CATALOG_MILVUS_URI": self.uri, "CATALOG_MILVUS_COLLECTION_PREFIX": self.prefix}
        if self.token:
            out["CATALOG_MILVUS_TOKEN"] = self.token
        return out


@contextlib.contextmanager
def isolated_prefix(endpoint: MilvusEndpoint, tag: str = "t") -> Iterator[MilvusTarget]:
    """A server target with a fresh prefix; its collections are dropped afterwards."""
    target = MilvusTarget("server", endpoint.uri, unique_prefix(tag), endpoint.token, endpoint.backend)
    try:
        yield target
    finally:
        try:
            drop_prefixed(endpoint.uri, target.prefix, endpoint.token)
        except Exception as exc:  # the server may be gone (outage tests); never mask the test's result
            log.warning("could not drop collections of prefix %s: %s", target.prefix, exc)
