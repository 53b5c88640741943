"""Run a real Milvus 2.3 standalone server (from the PyPI package ``milvus``) without Docker.

Why: Milvus Lite is not the engine a production catalog runs on; tests, the demo and the
index benchmark need the real server on machines without Docker. The PyPI package
``milvus==2.3.5`` ships the standalone binaries (lzma-packed) and a config template. We
install it once into ``<cache>/milvus-server-<hash>/`` (``pip install --target``, keyed by a
hash of the pin, so the shared venv is never rebuilt for it), unpack the binaries there once,
and run ``milvus run standalone`` directly as a child process in its own session, stopped by
its PID. The package's own Python wrapper is not used to run the server: it kills the server
one second after SIGTERM, and it would put a Python process between us and the PID we stop.

Ports and addresses (the binary's limits):

- the client port (``port``, gRPC + REST of the proxy), the metrics/health port
  (``metrics_port``, ``/healthz``) and the internal gRPC ports of the coordinators and nodes
  are opened by Milvus 2.3 with ``net.Listen("tcp", ":<port>")``: on ALL interfaces. The
  2.3 binary has no setting for a listen address (the ``<component>.ip`` keys only choose the
  address a component registers in etcd). We set every ``ip`` to 127.0.0.1 so the components
  talk to each other over loopback only and clients are given a loopback address, but the
  sockets themselves cannot be bound to 127.0.0.1. So the server runs in a network namespace
  of its own (``unshare -rn``; ``infra/milvus/loopback.py``) whose only interface is its own
  loopback, and socat publishes the client and metrics ports on the host's 127.0.0.1: nothing
  it opens is reachable from another machine. Where user namespaces are not allowed (or
  ``isolate_network=False``) it runs in the host's network and the ports are open on every
  interface: keep them closed by a firewall there.
- the embedded etcd (client and peer URLs) is configured through ``etcd.config.path`` and
  binds 127.0.0.1 only.
- no MinIO (local storage) and no Pulsar (rocksmq) are involved.

Library use::

    with MilvusServer(ServerConfig(data_dir=tmp)) as server:  # fetch + start + wait_ready
        use(server.uri)

CLI: ``python -m infra.milvus.server {fetch,start,stop,status}``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import lzma
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from infra.kafka.runner import (
    _WATCHDOG,
    _cmdline,
    _file_lock,
    _pid_alive,
    default_cache_root,
    free_ports,
    terminate_pid,
)
from infra.milvus.loopback import LoopbackIsolation
from infra.milvus.loopback import available as loopback_available
from infra.processes import stop_process_group

PIN = "milvus==2.3.5"
HOST = "127.0.0.1"
PID_FILE = "milvus.pid"
URI_FILE = "uri"
BRIDGES_FILE = "bridges.pid"
PORTS_FILE = "ports.json"
SERVER_LOG = "logs/milvus-stdout.log"
GRACEFUL_STOP_S = 10  # the server forces its own exit after this long
NODE_GRACEFUL_STOP_S = 1
STOP_TIMEOUT_S = 10.0  # then SIGKILL
# The template's internal ports (``{{ name_port(int): default }}``); each gets a free port.
INTERNAL_PORTS = (
    "etcd_port",
    "root_coord_port",
    "proxy_internal_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
)
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_IP_LINE = re.compile(r"(?m)^(\s+)ip: *(#.*)?$")


class MilvusServerError(RuntimeError):
    """Fetching, starting or stopping the local Milvus server failed."""


# --------------------------------------------------------------------------- cache / fetch


def runtime_key() -> str:
    """Hash of what the install depends on (pin, CPU architecture), so a new pin refetches."""
    return hashlib.sha256(f"{PIN}|{platform.machine()}".encode()).hexdigest()[:16]


def runtime_home(cache_root: Path | None = None) -> Path:
    """``<cache>/milvus-server-<key>``: ``pkg/`` (the wheel), ``bin/`` (unpacked binaries), marker."""
    return (cache_root or default_cache_root()) / f"milvus-server-{runtime_key()}"


def fetch(cache_root: Path | None = None, *, timeout: float = 900.0) -> Path:
    """Install the ``milvus`` wheel into the cache and unpack its binaries (once); returns the home.

    Skips at once when the ``.complete`` marker exists; a file lock serialises concurrent
    fetches (bootstrap and tests, parallel sessions).
    """
    home = runtime_home(cache_root)
    marker = home / ".complete"
    if marker.exists():
        return home
    with _file_lock(home / ".lock"):
        if marker.exists():
            return home
        pkg, bins = home / "pkg.partial", home / "bin.partial"
        shutil.rmtree(pkg, ignore_errors=True)
        shutil.rmtree(bins, ignore_errors=True)
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--only-binary=:all:"]
        cmd += ["--target", str(pkg), PIN]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise MilvusServerError(f"pip install {PIN} did not finish within {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise MilvusServerError(f"pip install {PIN} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        packed = pkg / "milvus" / "data" / "bin"
        if not (packed / "milvus.lzma").exists():
            raise MilvusServerError(f"{PIN} installed but {packed}/milvus.lzma is missing")
        bins.mkdir(parents=True)
        for source in sorted(packed.glob("*.lzma")):  # what the wrapper does on every start, done once
            target = bins / source.name.removesuffix(".lzma")
            with lzma.open(source) as raw, target.open("wb") as out:
                shutil.copyfileobj(raw, out, length=1 << 20)
            target.chmod(0o755)
        for name in ("pkg", "bin"):
            shutil.rmtree(home / name, ignore_errors=True)
            os.replace(home / f"{name}.partial", home / name)
        marker.write_text(json.dumps({"pin": PIN, "binaries": sorted(p.name for p in (home / "bin").iterdir())}))
    return home


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ServerConfig:
    """How to run one local server. Ports 0 mean "pick free ports when starting"."""

    data_dir: Path
    port: int = 0  # the client port (gRPC; pymilvus uses http://127.0.0.1:<port>)
    metrics_port: int = 0  # /healthz and /metrics
    log_level: str = "warn"
    session_ttl_s: int = 10  # etcd session lease: how long a restart waits for the last run's sessions
    # Kill the server when the process that started it dies (a test run killed with SIGKILL).
    stop_with_parent: bool = False
    # How often the proxy publishes a time tick: a Strong read waits for the next one. 200 ms is
    # Milvus' default; at 50 ms the worker's Strong row read took 86 ms instead of 192 (median).
    time_tick_ms: int = 50
    # Run it in a network namespace of its own, reachable only through 127.0.0.1 bridges
    # (infra/milvus/loopback.py), where this machine allows it.
    isolate_network: bool = True

    def with_free_ports(self) -> ServerConfig:
        """Replace 0 ports with free ones; keeps explicit ports."""
        if self.port and self.metrics_port:
            return self
        port, metrics = free_ports(2)
        return replace(self, port=self.port or port, metrics_port=self.metrics_port or metrics)


def _internal_ports(data_dir: Path) -> dict[str, int]:
    """Internal ports: those of the last start in this data dir when still free, else new ones."""
    path = data_dir / PORTS_FILE
    names = (*INTERNAL_PORTS, "etcd_client_port", "etcd_peer_port")
    with contextlib.suppress(OSError, ValueError, KeyError):
        saved = json.loads(path.read_text())
        ports = {name: int(saved[name]) for name in names}
        if all(_port_free(p) for p in ports.values()):
            return ports
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    path.write_text(json.dumps(ports, indent=1))
    return ports


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def render_config(template: str, config: ServerConfig, ports: dict[str, int]) -> str:
    """``milvus.yaml`` from the package's template: our ports and paths, loopback addresses."""
    data = Path(config.data_dir).resolve()
    values: dict[str, str] = {
        "proxy_port": str(config.port),
        "etcd_log_level": config.log_level,
        "etcd_log_path": str(data / "logs" / "etcd.log"),
        "etcd_data_dir": str(data / "data" / "etcd.data"),
        "local_storage_dir": str(data / "data"),
        "rocksmq_data_dir": str(data / "data" / "rocksmq"),
        "system_log_path": "",  # no log files: stdout only, into logs/milvus-stdout.log
        **{name: str(ports[name]) for name in INTERNAL_PORTS},
    }

    def fill(match: re.Match[str]) -> str:
        key = match.group(1).split(":", 1)[0].split("(", 1)[0].strip()
        if key in values:
            return values[key]
        default = match.group(1).split(":", 1)[1].strip() if ":" in match.group(1) else None
        if default is None:
            raise MilvusServerError(f"config template has a new placeholder {key!r}: update infra/milvus/server.py")
        return default

    text = _PLACEHOLDER.sub(fill, template)
    text = _IP_LINE.sub(lambda m: f"{m.group(1)}ip: {HOST}", text)  # registered (not listen) addresses
    text = re.sub(r"(?m)^(log:\n  level:) *\w+", rf"\1 {config.log_level}", text)
    # SIGTERM: the query node waits for its segments to move to another node (there is none in a
    # standalone), and the whole stop may take common.gracefulStopTimeout (1800 s); bound both.
    text = re.sub(r"(?m)^(  gracefulStopTimeout:) *\d+", rf"\1 {GRACEFUL_STOP_S}", text)
    # A restart waits until the previous run's etcd sessions expire (Milvus 2.3 does not revoke them
    # on SIGTERM): with the default 30 s TTL a restart took 56 s here.
    text = re.sub(r"(?m)^(  session:\n    ttl:) *\d+", rf"\1 {config.session_ttl_s}", text)
    text = re.sub(
        r"(?m)^(proxy:\n(?:  .*\n)*?  timeTickInterval:) *\d+", rf"\g<1> {config.time_tick_ms}", text, count=1
    )
    for role in ("queryNode", "indexNode"):
        text = re.sub(rf"(?m)^{role}:\n", f"{role}:\n  gracefulStopTimeout: {NODE_GRACEFUL_STOP_S}\n", text, count=1)
    embed = "  use:\n    embed: true"
    if embed not in text:
        raise MilvusServerError("config template has no 'etcd.use.embed: true': update infra/milvus/server.py")
    return text.replace(embed, f"  config:\n    path: {data / 'configs' / 'embedEtcd.yaml'}\n{embed}", 1)


def embed_etcd_config(ports: dict[str, int]) -> str:
    """The embedded etcd's own config: client and peer URLs on 127.0.0.1 only."""
    client, peer = f"http://{HOST}:{ports['etcd_client_port']}", f"http://{HOST}:{ports['etcd_peer_port']}"
    return (
        "name: default\n"
        f"listen-client-urls: {client}\nadvertise-client-urls: {client}\n"
        f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
        f"initial-cluster: default={peer}\n"
    )


# --------------------------------------------------------------------------- server


def probe(uri: str, timeout: float = 5.0, token: str = "") -> list[str]:
    """One real pymilvus call (``list_collections``); raises while the server cannot serve it."""
    from pymilvus import MilvusClient  # lazy: `fetch` must work without pymilvus

    client = MilvusClient(uri=uri, token=token, timeout=timeout)
    try:
        return list(client.list_collections())
    finally:
        client.close()


def _healthy(metrics_port: int) -> bool:
    url = f"http://{HOST}:{metrics_port}/healthz"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
        return b"OK" in resp.read()
    return False


class MilvusServer:
    """One local Milvus standalone process. Context manager: fetch, start, wait, stop.

    The client port is fixed for the object's life, so ``stop()`` then ``start()`` comes back on
    the same URI with the same data (what an outage test needs).
    """

    def __init__(self, config: ServerConfig, runtime: Path | None = None) -> None:
        self.config = config.with_free_ports()
        self._runtime = runtime
        self.proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._isolation: LoopbackIsolation | None = None
        self.ready_seconds: float | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.config.data_dir).resolve()

    @property
    def uri(self) -> str:
        return f"http://{HOST}:{self.config.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / SERVER_LOG

    @property
    def runtime(self) -> Path:
        """The cached install; fetched on first use."""
        if self._runtime is None:
            self._runtime = fetch()
        return self._runtime

    def write_config(self) -> Path:
        """Write ``configs/milvus.yaml`` (+ glog and embedded-etcd configs) into the data dir."""
        configs = self.data_dir / "configs"
        for sub in (configs, self.data_dir / "logs", self.data_dir / "data"):
            sub.mkdir(parents=True, exist_ok=True)
        ports = _internal_ports(self.data_dir)
        package_data = self.runtime / "pkg" / "milvus" / "data"
        template = (package_data / "config.yaml.template").read_text()
        (configs / "milvus.yaml").write_text(render_config(template, self.config, ports))
        (configs / "embedEtcd.yaml").write_text(embed_etcd_config(ports))
        shutil.copyfile(package_data / "glog.conf", configs / "glog.conf")
        return configs

    def start(self, timeout: float = 120.0) -> MilvusServer:
        """Launch ``milvus run standalone`` in its own session and wait until it serves a real call."""
        if self.proc is not None and self.proc.poll() is None:
            raise MilvusServerError(f"server already running (pid {self.proc.pid})")
        configs = self.write_config()
        bins = self.runtime / "bin"
        env = {
            **os.environ,
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(self.config.metrics_port),
            "MILVUS_RUN_DIR": str(self.data_dir / "run"),
            "MILVUSCONF": str(configs),
            "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(bins), os.environ.get("LD_LIBRARY_PATH")])),
        }
        started = time.monotonic()
        argv = [str(bins / "milvus"), "run", "standalone"]
        if self.config.isolate_network and loopback_available():
            self._isolation = LoopbackIsolation([self.config.port, self.config.metrics_port])
            argv = self._isolation.wrap(argv)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.data_dir,  # Milvus also looks for ./configs
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self._isolation is not None:
            self._isolation.start_bridges(self.proc.pid)
        if self.config.stop_with_parent:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.proc.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started
        return self

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until ``/healthz`` says OK and a pymilvus ``list_collections`` answers."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise MilvusServerError(
                    f"milvus exited with {self.proc.returncode}; {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise MilvusServerError(f"milvus not ready after {timeout:.0f}s; {self.log_path}:\n{self.log_tail()}")
            if _healthy(self.config.metrics_port):
                with contextlib.suppress(Exception):
                    probe(self.uri, timeout=3.0)
                    return
            time.sleep(0.2)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, SIGKILL after ``timeout``; by PID, never by name.

        Milvus 2.3's own shutdown may hang (seen here right after a ``drop_collection``: the proxy
        retries the already stopped root coordinator), so the wait is short. A SIGKILL loses no
        acknowledged write: rows are in the rocksmq log on disk before an insert or upsert returns.
        """
        stop_process_group(self.proc, timeout)
        self.proc = None
        stop_process_group(self._watchdog, 5.0)
        self._watchdog = None
        if self._isolation is not None:
            self._isolation.stop()
            self._isolation = None

    @property
    def bridge_pids(self) -> list[int]:
        """The socat bridges to 127.0.0.1 (none when the server runs in the host's network)."""
        return self._isolation.bridge_pids if self._isolation is not None else []

    def __enter__(self) -> MilvusServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- CLI


def _read_state(data_dir: Path) -> tuple[int | None, str | None]:
    """(pid, uri) from the CLI's state files; pid None unless it still is our server in ``data_dir``."""
    pid_path, uri_path = data_dir / PID_FILE, data_dir / URI_FILE
    uri = uri_path.read_text().strip() if uri_path.exists() else None
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return None, uri
    if not _pid_alive(pid) or "run standalone" not in _cmdline(pid):
        return None, uri  # stale file, or the pid was reused by something else
    with contextlib.suppress(OSError):
        if Path(os.readlink(f"/proc/{pid}/cwd")).resolve() != data_dir:
            return None, uri  # another data dir's server
    return pid, uri


def _bridge_pids(data_dir: Path) -> list[int]:
    """The CLI's socat bridges of ``data_dir``, only while they still are socat processes."""
    with contextlib.suppress(OSError, ValueError):
        pids = [int(line) for line in (data_dir / BRIDGES_FILE).read_text().split()]
        return [pid for pid in pids if _pid_alive(pid) and "socat" in _cmdline(pid)]
    return []


def _cmd_fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    home = fetch(timeout=args.timeout)
    print(f"{home} ({time.monotonic() - started:.1f}s)")
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    pid, uri = _read_state(data_dir)
    if pid is not None:
        print(uri)
        print(f"already running: pid {pid}, data dir {data_dir}", file=sys.stderr)
        return 0
    config = ServerConfig(
        data_dir=data_dir,
        port=args.port,
        metrics_port=args.metrics_port,
        log_level=args.log_level,
        time_tick_ms=args.time_tick_ms,
    )
    server = MilvusServer(config, runtime=fetch())
    server.start(timeout=args.timeout)  # stops what it started when the wait fails or is interrupted
    (data_dir / PID_FILE).write_text(f"{server.pid}\n")
    (data_dir / BRIDGES_FILE).write_text("".join(f"{pid}\n" for pid in server.bridge_pids))
    (data_dir / URI_FILE).write_text(f"{server.uri}\n")
    print(server.uri)
    print(
        f"milvus {PIN.split('==')[1]} ready in {server.ready_seconds:.1f}s: pid {server.pid}, "
        f"metrics http://{HOST}:{server.config.metrics_port}/healthz, log {server.log_path}",
        file=sys.stderr,
    )
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    pid, _ = _read_state(data_dir)
    if pid is None:
        print(f"no milvus server running for {data_dir}", file=sys.stderr)
    else:
        graceful = terminate_pid(pid, args.timeout)
        print(f"stopped pid {pid}" + ("" if graceful else " (SIGKILL)"), file=sys.stderr)
    for bridge in _bridge_pids(data_dir):
        terminate_pid(bridge, 5.0)
    if pid is not None:  # the server led its own process group: the namespace's inner bridges are in it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for name in (PID_FILE, URI_FILE, BRIDGES_FILE):
        (data_dir / name).unlink(missing_ok=True)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    pid, uri = _read_state(data_dir)
    if pid is None:
        print("stopped")
        return 3
    ok = False
    if uri:
        with contextlib.suppress(Exception):
            probe(uri)
            ok = True
    print(f"{'running' if ok else 'unresponsive'} pid={pid} uri={uri}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.milvus.server", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    default_data = default_cache_root() / "milvus-server-data"

    p = sub.add_parser("fetch", help=f"install {PIN} into the cache and unpack it (skips when done)")
    p.add_argument("--timeout", type=float, default=900.0)
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("start", help="start a server and wait until it answers; prints its URI")
    p.add_argument("--data-dir", default=str(default_data))
    p.add_argument("--port", type=int, default=0, help="client (gRPC) port (0: a free port)")
    p.add_argument("--metrics-port", type=int, default=0, help="/healthz + /metrics port (0: a free port)")
    p.add_argument("--log-level", default="warn", choices=["debug", "info", "warn", "error"])
    p.add_argument(
        "--time-tick-ms", type=int, default=ServerConfig.time_tick_ms, help="proxy time tick: Strong reads wait for it"
    )
    p.add_argument("--timeout", type=float, default=120.0)
    p.set_defaults(func=_cmd_start)

    p = sub.add_parser("stop", help="stop the server named by <data-dir>/milvus.pid")
    p.add_argument("--data-dir", default=str(default_data))
    p.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S, help="seconds before SIGKILL")
    p.set_defaults(func=_cmd_stop)

    p = sub.add_parser("status", help="exit 0 if running and answering, 1 if unresponsive, 3 if stopped")
    p.add_argument("--data-dir", default=str(default_data))
    p.set_defaults(func=_cmd_status)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except MilvusServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
