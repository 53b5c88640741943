"""The real Milvus server listens on nothing but 127.0.0.1 of this host.

Milvus 2.3 opens its ports on all interfaces; the runner puts it in a network namespace of its
own and bridges the client and metrics ports to 127.0.0.1 (infra/milvus/loopback.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.milvus.loopback import available
from infra.milvus.server import MilvusServer, ServerConfig, probe
from infra.processes import wait_group_gone

pytestmark = pytest.mark.integration


def _listeners(pids: set[int]) -> list[str]:
    """Local addresses of the host's listening TCP sockets owned by ``pids``."""
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            found.append(line.split()[3])
    return found


def test_the_server_is_reachable_on_loopback_and_nowhere_else(tmp_path: Path) -> None:
    if not available():
        pytest.skip("this machine allows no user network namespaces: the runner falls back to the host network")
    with MilvusServer(ServerConfig(data_dir=tmp_path / "milvus")) as server:
        assert probe(server.uri) == []  # a real call through the bridge
        assert server.proc is not None
        listening = _listeners({server.proc.pid, *server.bridge_pids})
        assert sorted(listening) == sorted(
            f"127.0.0.1:{port}" for port in (server.config.port, server.config.metrics_port)
        ), listening
        bridges, group = server.bridge_pids, server.proc.pid
    assert not _listeners(set(bridges)), "the bridges stop with the server"
    assert not wait_group_gone(group), "nothing of the namespace (its inner bridges) outlives the server"
