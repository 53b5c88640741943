"""The PyPI Milvus 2.3 server runner and ``catalog bench index`` on real Milvus instances.

Why: the runner is what CI, the demo and the benchmark stand on; its CLI must start a server
that answers pymilvus, keep what it can on loopback, and stop exactly the process it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.milvus.server import PORTS_FILE, probe
from infra.processes import wait_group_gone
from tests.support.worker import WorkerEnv

pytestmark = pytest.mark.integration


def _server_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.milvus.server", *args], capture_output=True, text=True, timeout=180, check=False
    )


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hexport = local.rpartition(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_cli_starts_a_server_that_answers_and_stops_it_by_pid(tmp_path: Path) -> None:
    data = tmp_path / "milvus"
    started = _server_cli("start", "--data-dir", str(data))
    assert started.returncode == 0, started.stderr
    uri = started.stdout.strip()
    pid = int((data / "milvus.pid").read_text())
    try:
        assert uri.startswith("http://127.0.0.1:") and probe(uri) == []
        status = _server_cli("status", "--data-dir", str(data))
        assert status.returncode == 0 and f"pid={pid}" in status.stdout
        ports = json.loads((data / PORTS_FILE).read_text())
        isolated = bool((data / "bridges.pid").read_text().split())
        # in its own network namespace nothing but the loopback bridges shows on the host;
        # in the host's network the embedded etcd still binds loopback only
        for name in ("etcd_client_port", "etcd_peer_port"):
            assert _listening(ports[name]) == (set() if isolated else {"0100007F"}), name
        if isolated:  # in the host's network Milvus 2.3 binds its client port on every interface
            assert _listening(int(uri.rsplit(":", 1)[1])) == {"0100007F"}
        again = _server_cli("start", "--data-dir", str(data))  # idempotent: names the running one
        assert again.returncode == 0 and again.stdout.strip() == uri
    finally:
        stopped = _server_cli("stop", "--data-dir", str(data))
    assert stopped.returncode == 0, stopped.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not wait_group_gone(pid), "the server's group (its namespace's inner bridges too) is gone"
    assert _server_cli("status", "--data-dir", str(data)).returncode == 3
    assert not (data / "milvus.pid").exists()


def test_bench_index_measures_lite_and_the_server(tmp_path: Path, milvus_server_uri: str) -> None:
    env = WorkerEnv("127.0.0.1:1", tmp_path)  # offline: no broker
    out = tmp_path / "index.json"
    env.run(
        "bench", "index", "--sizes", "2k", "--batches", "3", "--warmup", "1", "--settle-quiet-s", "2",
        "--server-uri", milvus_server_uri, "--out", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert [(r["target"], r["gallery_rows"]) for r in report["results"]] == [("lite", 2000), ("server", 2000)]
    for cell in report["results"]:
        assert set(cell["ms"]) == {"search", "fetch", "upsert", "search+upsert", "batch"}
        assert 0 < cell["ms"]["search+upsert"]["median"] <= cell["ms"]["search+upsert"]["p95"]
    for cell in report["results"]:  # measured once no index rows were pending for 2 s, or it says how many were
        settled, pending = cell["index_settled_s"], cell["pending_index_rows_at_measure"]
        assert (settled is not None and pending == 0) or settled is None  # limit 300 s: a 2k gallery settles
        assert settled is None or settled >= cell["index_ready_s"] + 2
    assert report["batch"] == 64 and "synthetic" in report["vectors"] and report["index_params"]["server"]["M"] == 16
    assert report["index_params"]["server"]["efConstruction"] == 200
    assert report["index_params"]["lite"]["efConstruction"] == 100  # a Lite file's cheaper graph builds
    assert report["growth"]["server"][0]["x_smallest"] == 1.0
