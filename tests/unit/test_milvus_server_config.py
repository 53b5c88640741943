"""The PyPI Milvus server's config rendering, and the index benchmark's pure helpers.

Why: a config key that silently stays at its default (an internal address off loopback, the
1800 s stop timeout, the 30 s session TTL) only shows as a slow or exposed server much later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infra.milvus.server import INTERNAL_PORTS, MilvusServerError, ServerConfig, embed_etcd_config, render_config
from processors.index_benchmark import SizeResult, growth, unit_vectors
from streams.commands.bench_index import parse_sizes

# The shapes of the package template's lines that the runner rewrites (milvus 2.3.5).
TEMPLATE = """etcd:
  endpoints: localhost:{{ etcd_port(int): 2379 }}
  log:
    level: {{ etcd_log_level: info }}
    path: {{ etcd_log_path: stdout }}
  use:
    embed: true # Whether to enable embedded Etcd
  data:
    dir: {{ etcd_data_dir }}
localStorage:
  path: {{ local_storage_dir }}
rocksmq:
  path: {{ rocksmq_data_dir }}
rootCoord:
  ip: # if not specify address, will use the first unicastable address as local ip
  port: {{ root_coord_port(int): 53100 }}
proxy:
  ip: # if not specify address, will use the first unicastable address as local ip
  timeTickInterval: 200 # ms
  port: {{ proxy_port(int): 19530 }}
  internalPort: {{ proxy_internal_port(int): 19529 }}
queryCoord:
  port: {{ query_coord_port(int): 19531 }}
queryNode:
  port: {{ query_node_port(int): 21123 }}
indexCoord:
  bindIndexNodeMode:
    address: localhost:{{ index_coord_port(int): 22930 }}
indexNode:
  port: {{ index_node_port(int): 21121 }}
dataCoord:
  port: {{ data_coord_port(int): 13333 }}
dataNode:
  port: {{ data_node_port(int): 21124 }}
log:
  level: info # Only supports debug, info, warn, error, panic, or fatal.
  file:
    rootPath: {{ system_log_path }}
common:
  gracefulStopTimeout: 1800 # seconds
  session:
    ttl: 30 # ttl value when session granting a lease to register service
  security:
    authorizationEnabled: {{ authorization_enabled(bool): false }}
"""


def _ports() -> dict[str, int]:
    names = (*INTERNAL_PORTS, "etcd_client_port", "etcd_peer_port")
    return {name: 41000 + i for i, name in enumerate(names)}


def test_rendered_config_is_loopback_bounded_and_ours(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path, port=40999, metrics_port=40998)
    text = render_config(TEMPLATE, config, _ports())
    assert "{{" not in text
    assert "port: 40999" in text and f"port: {_ports()['root_coord_port']}" in text
    assert "ip: 127.0.0.1" in text and "unicastable" not in text  # components register loopback addresses
    assert f"config:\n    path: {tmp_path.resolve() / 'configs' / 'embedEtcd.yaml'}\n  use:\n    embed: true" in text
    assert "gracefulStopTimeout: 10" in text and "gracefulStopTimeout: 1800" not in text
    assert "queryNode:\n  gracefulStopTimeout: 1\n" in text and "indexNode:\n  gracefulStopTimeout: 1\n" in text
    assert "session:\n    ttl: 10" in text
    assert "timeTickInterval: 50 #" in text  # a Strong read waits for the next time tick
    assert "log:\n  level: warn" in text
    assert f"path: {tmp_path.resolve() / 'data' / 'rocksmq'}" in text
    assert "authorizationEnabled: false" in text  # the template's default where we set nothing


def test_embedded_etcd_listens_on_loopback_only() -> None:
    etcd = embed_etcd_config(_ports())
    urls = [line.split(": ", 1)[1] for line in etcd.splitlines() if "urls" in line]
    assert len(urls) == 4 and all(u.startswith("http://127.0.0.1:") for u in urls)


def test_a_template_without_the_embed_switch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MilvusServerError, match="embed"):
        render_config(TEMPLATE.replace("embed: true", "embed: false"), ServerConfig(tmp_path, 1, 2), _ports())


def test_bench_sizes_and_growth() -> None:
    assert parse_sizes("10k, 100k,1m,2500") == [10_000, 100_000, 1_000_000, 2_500]
    vectors = unit_vectors(np.random.default_rng(0), 5, 8)
    assert abs(float((vectors**2).sum(axis=1).max()) - 1.0) < 1e-5
    cells = [
        SizeResult("lite", rows, 1.0, 1.0, None, {"search+upsert": {"median": ms, "p95": ms}})
        for rows, ms in ((100_000, 40.0), (10_000, 10.0))
    ]
    assert growth(cells) == {
        "lite": [
            {"gallery_rows": 10_000, "search_upsert_ms": 10.0, "x_smallest": 1.0},
            {"gallery_rows": 100_000, "search_upsert_ms": 40.0, "x_smallest": 4.0},
        ]
    }


def test_both_legs_of_a_loopback_bridge_send_without_nagle_delay() -> None:
    """Without ``nodelay`` a gRPC frame through socat waits for a delayed ACK: 4x slower searches, measured."""
    import shutil

    from infra.milvus.loopback import LoopbackIsolation

    bridge = LoopbackIsolation([19530])
    try:
        inner_script = bridge.wrap(["milvus", "run", "standalone"])[5]
        tcp_legs = [arg for arg in (*inner_script.split(), *bridge.outer_bridge(19530)) if arg.startswith("TCP")]
        assert len(tcp_legs) == 2, tcp_legs
        assert all("nodelay" in leg.split(",") for leg in tcp_legs), tcp_legs
    finally:
        shutil.rmtree(bridge.socket_dir, ignore_errors=True)


def test_the_time_tick_is_the_one_asked_for(tmp_path: Path) -> None:
    """``--milvus-time-tick-ms`` / ``--time-tick-ms`` reach the proxy's config (the bench's tick-10 run)."""
    text = render_config(
        TEMPLATE, ServerConfig(data_dir=tmp_path, port=40999, metrics_port=40998, time_tick_ms=10), _ports()
    )
    assert "timeTickInterval: 10 #" in text and "timeTickInterval: 50" not in text
