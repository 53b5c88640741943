"""Milvus fixtures (a pytest plugin: ``pytest_plugins = ["tests.conftest_milvus"]``).

Why a plugin module: the server is session-scoped and costly to start, so exactly one
definition of it should exist however the test tree is split. It starts only when a test
asks for it, so ``-k lite`` runs never start a server.

``milvus_backend`` parametrises a test (or a module's worker stack) over ``lite`` and
``server``: the same assertions run on Milvus Lite and on a real Milvus server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.milvus_backend import MilvusEndpoint, MilvusTarget, isolated_prefix, milvus_endpoint

MILVUS_BACKENDS = ("lite", "server")


@pytest.fixture(scope="session")
def milvus_server_endpoint() -> Iterator[MilvusEndpoint]:
    """One real Milvus server for the whole session (env var, testcontainers, or the PyPI server)."""
    with milvus_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def milvus_server_uri(milvus_server_endpoint: MilvusEndpoint) -> str:
    """``http://host:port`` of the session server (tests pick their own collection prefix)."""
    return milvus_server_endpoint.uri


@pytest.fixture(scope="module", params=MILVUS_BACKENDS)
def milvus_backend(request: pytest.FixtureRequest) -> str:
    """``lite`` or ``server``; module scope so a module's costly worker stack is built once per backend."""
    return str(request.param)


@pytest.fixture
def milvus_target(milvus_backend: str, request: pytest.FixtureRequest) -> Iterator[MilvusTarget]:
    """The test's Milvus: its own Lite (no overrides) or the session server under a prefix of its own."""
    if milvus_backend == "lite":
        yield MilvusTarget("lite")
        return
    endpoint: MilvusEndpoint = request.getfixturevalue("milvus_server_endpoint")
    with isolated_prefix(endpoint, request.node.name.split("[")[0][:20].replace("-", "_")) as target:
        yield target
