"""Run a real single-node Apache Kafka broker (KRaft, broker+controller) from the Maven jars.

Why: tests and local development need a real broker (no mocks) on machines without Docker.
Maven fetches the official ``kafka_2.13`` jars once into a cache keyed by a hash of
``pom.xml`` and the log4j2 config; a broker then runs as a plain ``java`` process bound to
127.0.0.1 only.

Library use::

    with KafkaBroker(BrokerConfig(data_dir=tmp)) as broker:  # format + start + wait_ready
        use(broker.bootstrap_servers)

CLI: ``python -m infra.kafka.runner {fetch,start,stop,status}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.properties"
HOST = "127.0.0.1"
PID_FILE = "broker.pid"
BOOTSTRAP_FILE = "bootstrap"
BROKER_LOG = "broker.log"
PROPERTIES_FILE = "server.properties"


class KafkaRunnerError(RuntimeError):
    """Fetching, formatting, starting or stopping the local broker failed."""


# --------------------------------------------------------------------------- cache / fetch


def default_cache_root() -> Path:
    """The per-user cache for heavy installs; read at call time, never at import."""
    env = os.environ.get("CATALOG_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "catalog-enrich"


def runtime_key() -> str:
    """Hash of what the jar set depends on, so a POM or logging change refetches."""
    digest = hashlib.sha256()
    for path in (POM, LOG4J_CONFIG):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def runtime_home(cache_root: Path | None = None) -> Path:
    """``<cache>/kafka-<key>``: holds ``libs/``, the log4j2 config copy and the marker."""
    return (cache_root or default_cache_root()) / f"kafka-{runtime_key()}"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise concurrent fetches (parallel test workers, bootstrap + tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(cache_root: Path | None = None, *, timeout: float = 900.0) -> Path:
    """Copy Kafka's runtime jars into the cache (once) and return the runtime home.

    Skips at once when the ``.complete`` marker exists. Maven's local repository lives
    under the same cache root so that ``CATALOG_CACHE_DIR`` controls every download.
    """
    root = cache_root or default_cache_root()
    home = runtime_home(root)
    marker = home / ".complete"
    if marker.exists():
        return home
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaRunnerError("mvn not found on PATH (apt-get install maven)")
    with _file_lock(home / ".lock"):
        if marker.exists():
            return home
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            f"-Dmaven.repo.local={root / 'm2-repository'}",
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise KafkaRunnerError(f"maven did not finish within {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise KafkaRunnerError(f"maven failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        jars = sorted(p.name for p in staging.glob("*.jar"))
        if not any(name.startswith("kafka_2.13-") for name in jars):
            raise KafkaRunnerError(f"maven ran but no kafka_2.13 jar in {staging}")
        shutil.rmtree(home / "libs", ignore_errors=True)
        os.replace(staging, home / "libs")
        shutil.copyfile(LOG4J_CONFIG, home / LOG4J_CONFIG.name)
        marker.write_text(json.dumps({"jars": jars}, indent=1))
    return home


# --------------------------------------------------------------------------- helpers


def free_ports(count: int) -> list[int]:
    """Ports the OS considers free on 127.0.0.1 right now (all held until all are picked)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def new_cluster_id() -> str:
    """A Kafka-style cluster id: 16 random bytes, base64url, no padding (22 chars)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # Kafka's Uuid.randomUuid() avoids these too
            return text


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` if set, else ``java`` on PATH (Kafka 4 needs Java 17+)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaRunnerError("java not found (install a Java 17+ runtime)")
    return found


def _port_open(port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=timeout):
        return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    """The command line of ``pid`` (to check a pid file still names our broker)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.exists():
        with contextlib.suppress(OSError):
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return ""
    done = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True, check=False)
    return done.stdout


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, Any]], timeout: float) -> Any:
    """Run a coroutine to completion from sync code, even when the caller's loop is running."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, factory()).result(timeout=timeout)


async def probe_metadata(bootstrap_servers: str, timeout: float = 5.0) -> list[int]:
    """Ask the broker for cluster metadata; returns the broker ids it reports.

    A KRaft broker only answers requests once it is unfenced, so an answer means topics
    can be created and produced to.
    """
    from aiokafka.client import AIOKafkaClient  # lazy: `fetch` must work without aiokafka

    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return sorted(broker.nodeId for broker in client.cluster.brokers())
    finally:
        await client.close()


def terminate_pid(pid: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. True if it exited on SIGTERM."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)

    def wait(seconds: float) -> bool:
        if proc is not None:
            try:
                proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.1)
        return not _pid_alive(pid)

    if wait(timeout):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not wait(10.0):
        raise KafkaRunnerError(f"process {pid} survived SIGKILL")
    return False


# --------------------------------------------------------------------------- broker

_WATCHDOG = """
import os, signal, sys, time
parent, child = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
while alive(child):
    if os.getppid() != parent:  # reparented: the process that started the broker is gone
        try:
            os.kill(child, signal.SIGTERM)
            for _ in range(300):
                if not alive(child):
                    break
                time.sleep(0.1)
            else:
                os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
    time.sleep(1.0)
"""


@dataclass(frozen=True)
class BrokerConfig:
    """How to run one local broker. Ports 0 mean "pick free ports when starting"."""

    data_dir: Path
    port: int = 0
    controller_port: int = 0
    heap: str = "512m"
    num_partitions: int = 1
    node_id: int = 1
    # Single-node friendly internal topic sizes; 50 partitions would slow the first group join.
    offsets_partitions: int = 1
    transaction_partitions: int = 1
    # Kill the broker when the process that started it dies (tests killed with SIGKILL).
    stop_with_parent: bool = False
    # user -> password: adds a SASL_PLAINTEXT listener (mechanism PLAIN) on ``sasl_port`` beside
    # the PLAINTEXT one, so clients' authentication settings can be tested against a real broker.
    sasl_users: Mapping[str, str] = field(default_factory=dict)
    sasl_port: int = 0
    extra: Mapping[str, str] = field(default_factory=dict)
    host: ClassVar[str] = HOST

    def with_free_ports(self) -> BrokerConfig:
        """Replace 0 ports with free ones; keeps explicit ports."""
        wants_sasl_port = bool(self.sasl_users) and not self.sasl_port
        if self.port and self.controller_port and not wants_sasl_port:
            return self
        broker, controller, sasl = free_ports(3)
        return replace(
            self,
            port=self.port or broker,
            controller_port=self.controller_port or controller,
            sasl_port=self.sasl_port or (sasl if self.sasl_users else 0),
        )


def server_properties(config: BrokerConfig) -> dict[str, str]:
    """The broker's server.properties; listeners bind to 127.0.0.1 only."""
    if not (config.port and config.controller_port):
        raise ValueError("resolve ports first (BrokerConfig.with_free_ports)")
    props = {
        "process.roles": "broker,controller",
        "node.id": str(config.node_id),
        "controller.quorum.voters": f"{config.node_id}@{HOST}:{config.controller_port}",
        "controller.listener.names": "CONTROLLER",
        "listeners": f"PLAINTEXT://{HOST}:{config.port},CONTROLLER://{HOST}:{config.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{config.port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(Path(config.data_dir).resolve() / "kraft-logs"),
        "num.partitions": str(config.num_partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": str(config.offsets_partitions),
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": str(config.transaction_partitions),
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
    }
    if config.sasl_users:
        props.update(_sasl_plain_listener(config))
    props.update(config.extra)
    return props


def _sasl_plain_listener(config: BrokerConfig) -> dict[str, str]:
    """A SASL_PLAINTEXT listener with the PLAIN mechanism and a JAAS user list, on 127.0.0.1."""
    if not config.sasl_port:
        raise ValueError("resolve ports first (BrokerConfig.with_free_ports)")
    for name, password in config.sasl_users.items():
        if not name.isidentifier() or '"' in password or "\\" in password:
            raise ValueError(f"SASL test user {name!r}: use a plain name and a password without quotes")
    users = " ".join(f'user_{name}="{password}"' for name, password in config.sasl_users.items())
    listener = f"SASL_PLAINTEXT://{HOST}:{config.sasl_port}"
    return {
        "listeners": f"PLAINTEXT://{HOST}:{config.port},CONTROLLER://{HOST}:{config.controller_port},{listener}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{config.port},{listener}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
        ),
    }


class KafkaBroker:
    """One local broker process. Context manager: format (if needed), start, wait, stop."""

    def __init__(self, config: BrokerConfig, runtime: Path | None = None) -> None:
        self._requested = config
        self.config = config.with_free_ports()
        self._runtime = runtime
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.ready_seconds: float | None = None

    # -- paths and addresses
    @property
    def data_dir(self) -> Path:
        return Path(self.config.data_dir)

    @property
    def properties_path(self) -> Path:
        return self.data_dir / PROPERTIES_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / BROKER_LOG

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.config.port}"

    @property
    def sasl_bootstrap_servers(self) -> str:
        """The SASL_PLAINTEXT (PLAIN) listener; only with ``BrokerConfig.sasl_users``."""
        if not self.config.sasl_users:
            raise KafkaRunnerError("this broker has no SASL listener (BrokerConfig.sasl_users is empty)")
        return f"{HOST}:{self.config.sasl_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def runtime(self) -> Path:
        """The cached jar set; fetched on first use."""
        if self._runtime is None:
            self._runtime = fetch()
        return self._runtime

    def _java(self, *args: str, heap: str | None = None) -> list[str]:
        cmd = [java_executable()]
        if heap:
            cmd.append(f"-Xmx{heap}")
        cmd += [
            "-Djava.awt.headless=true",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dlog4j2.configurationFile={self.runtime / LOG4J_CONFIG.name}",
            "-cp",
            str(self.runtime / "libs" / "*"),
            *args,
        ]
        return cmd

    # -- lifecycle
    def write_properties(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in server_properties(self.config).items()]
        self.properties_path.write_text("# written by infra/kafka/runner.py\n" + "\n".join(lines) + "\n")
        return self.properties_path

    def is_formatted(self) -> bool:
        return (self.data_dir / "kraft-logs" / "meta.properties").exists()

    def format(self, cluster_id: str | None = None, timeout: float = 120.0) -> str:
        """Format the KRaft storage once; returns the cluster id (static voters: no --standalone)."""
        self.write_properties()
        cluster_id = cluster_id or new_cluster_id()
        cmd = self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.properties_path))
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise KafkaRunnerError(f"StorageTool format did not finish within {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise KafkaRunnerError(f"StorageTool format failed:\n{done.stdout}\n{done.stderr}")
        return cluster_id

    def start(self) -> int:
        """Launch the broker in its own session (survives the CLI); returns its pid."""
        if self._proc is not None and self._proc.poll() is None:
            raise KafkaRunnerError(f"broker already running (pid {self._proc.pid})")
        self.write_properties()
        cmd = self._java("kafka.Kafka", str(self.properties_path), heap=self.config.heap)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.data_dir,
            )
        self.started_at = time.monotonic()
        if self.config.stop_with_parent:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self._proc.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self._proc.pid

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def wait_ready(self, timeout: float = 90.0) -> float:
        """Block until the broker answers a metadata request; returns seconds since start()."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise KafkaRunnerError(
                    f"broker exited with {self._proc.returncode}; {self.log_path}:\n{self.log_tail()}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise KafkaRunnerError(f"broker not ready after {timeout:.0f}s; {self.log_path}:\n{self.log_tail()}")
            if _port_open(self.config.port):
                per_try = min(5.0, max(left, 0.5))
                with contextlib.suppress(Exception):
                    probe = functools.partial(probe_metadata, self.bootstrap_servers, per_try)
                    if _run_coroutine(probe, per_try + 5):
                        self.ready_seconds = time.monotonic() - (self.started_at or time.monotonic())
                        return self.ready_seconds
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop by pid: SIGTERM (controlled shutdown), SIGKILL after ``timeout``."""
        if self._proc is not None:
            if self._proc.poll() is None:
                terminate_pid(self._proc.pid, timeout, self._proc)
            self._proc = None
        if self._watchdog is not None:
            if self._watchdog.poll() is None:
                terminate_pid(self._watchdog.pid, 5.0, self._watchdog)
            self._watchdog = None

    def start_ready(self, timeout: float = 90.0, attempts: int = 3) -> float:
        """format-if-needed + start + wait_ready; retries with new ports if a picked port was taken."""
        if not self.is_formatted():
            self.format()
        for attempt in range(1, attempts + 1):
            self.start()
            try:
                return self.wait_ready(timeout)
            except KafkaRunnerError:
                self.stop()
                port_race = "Address already in use" in self.log_tail(200)
                auto_ports = not (self._requested.port and self._requested.controller_port)
                if attempt == attempts or not (port_race and auto_ports):
                    raise
                self.config = self._requested.with_free_ports()
        raise AssertionError("unreachable")

    def __enter__(self) -> KafkaBroker:
        try:
            self.start_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- CLI


def _read_state(data_dir: Path) -> tuple[int | None, str | None]:
    """(pid, bootstrap) from the CLI's state files, pid None unless it still is our broker."""
    pid_path, boot_path = data_dir / PID_FILE, data_dir / BOOTSTRAP_FILE
    bootstrap = boot_path.read_text().strip() if boot_path.exists() else None
    if not pid_path.exists():
        return None, bootstrap
    try:
        pid = int(pid_path.read_text().strip())
    except ValueError:
        return None, bootstrap
    cmd = _cmdline(pid) if _pid_alive(pid) else ""
    if "kafka.Kafka" not in cmd or str(data_dir.resolve()) not in cmd:
        return None, bootstrap  # stale file, or the pid was reused by something else
    return pid, bootstrap


def _cmd_fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    home = fetch(timeout=args.timeout)
    print(f"{home} ({time.monotonic() - started:.1f}s)")
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    pid, bootstrap = _read_state(data_dir)
    if pid is not None:
        print(bootstrap)
        print(f"already running: pid {pid}, data dir {data_dir}", file=sys.stderr)
        return 0
    config = BrokerConfig(
        data_dir=data_dir,
        port=args.port,
        controller_port=args.controller_port,
        heap=args.heap,
        num_partitions=args.partitions,
    )
    broker = KafkaBroker(config, runtime=fetch())
    try:
        seconds = broker.start_ready(timeout=args.timeout)
    except BaseException:  # Ctrl-C while waiting must not leave a detached broker behind
        broker.stop()
        raise
    (data_dir / PID_FILE).write_text(f"{broker.pid}\n")
    (data_dir / BOOTSTRAP_FILE).write_text(f"{broker.bootstrap_servers}\n")
    print(broker.bootstrap_servers)
    print(f"kafka ready in {seconds:.1f}s: pid {broker.pid}, log {broker.log_path}", file=sys.stderr)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    pid, _ = _read_state(data_dir)
    if pid is None:
        print(f"no broker running for {data_dir}", file=sys.stderr)
    else:
        graceful = terminate_pid(pid, args.timeout)
        print(f"stopped pid {pid}" + ("" if graceful else " (SIGKILL)"), file=sys.stderr)
    for name in (PID_FILE, BOOTSTRAP_FILE):
        (data_dir / name).unlink(missing_ok=True)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    pid, bootstrap = _read_state(data_dir)
    if pid is None:
        print("stopped")
        return 3
    ok = False
    if bootstrap:
        with contextlib.suppress(Exception):
            ok = bool(_run_coroutine(lambda: probe_metadata(bootstrap, 5.0), 10.0))
    print(f"{'running' if ok else 'unresponsive'} pid={pid} bootstrap={bootstrap}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.kafka.runner", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    default_data = default_cache_root() / "broker"

    p = sub.add_parser("fetch", help="download the Kafka jars into the cache (skips when done)")
    p.add_argument("--timeout", type=float, default=900.0)
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("start", help="format (once) and start a broker; prints the bootstrap address")
    p.add_argument("--data-dir", default=str(default_data))
    p.add_argument("--port", type=int, default=0, help="broker port (0: a free port)")
    p.add_argument("--controller-port", type=int, default=0, help="controller port (0: a free port)")
    p.add_argument("--partitions", type=int, default=1, help="num.partitions for auto-created topics")
    p.add_argument("--heap", default="512m")
    p.add_argument("--timeout", type=float, default=120.0)
    p.set_defaults(func=_cmd_start)

    p = sub.add_parser("stop", help="stop the broker named by <data-dir>/broker.pid")
    p.add_argument("--data-dir", default=str(default_data))
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=_cmd_stop)

    p = sub.add_parser("status", help="exit 0 if running and answering, 1 if unresponsive, 3 if stopped")
    p.add_argument("--data-dir", default=str(default_data))
    p.set_defaults(func=_cmd_status)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KafkaRunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
