"""Make a server that listens on every interface reachable from this host's 127.0.0.1 only.

Why: the Milvus 2.3 binary opens its client, metrics and internal gRPC ports on all
interfaces and has no setting for a listen address. Run it in a network namespace of its
own (``unshare -rn``: a user and a network namespace, no root needed where unprivileged user
namespaces are allowed) whose only interface is its own loopback, and publish the ports a
client needs on the host's 127.0.0.1 with socat, over Unix sockets in a private folder.
Nothing the server opens is then reachable from another machine.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from infra.processes import stop_process_group

HOST = "127.0.0.1"


@functools.cache
def available() -> bool:
    """True where ``unshare -rn`` works and socat and ip are installed (checked once per process)."""
    if not all(shutil.which(tool) for tool in ("unshare", "socat", "ip")):
        return False
    probe = subprocess.run(
        ["unshare", "-rn", "--", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=10, check=False
    )
    return probe.returncode == 0


class LoopbackIsolation:
    """Wraps a server command into its own network namespace and bridges ``ports`` to the host's loopback."""

    def __init__(self, ports: Sequence[int]) -> None:
        self.ports = list(ports)
        # short path: a Unix socket path is limited to 107 bytes
        self.socket_dir = Path(tempfile.mkdtemp(prefix="mvs-"))
        self.socket_dir.chmod(0o700)
        self._bridges: list[subprocess.Popen[bytes]] = []
        self._server_group: int | None = None

    def _socket(self, port: int) -> Path:
        return self.socket_dir / f"{port}.sock"

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The command that starts ``argv`` inside a fresh namespace, with the inner half of each bridge."""
        # nodelay on both TCP legs, or a frame waits for the peer's delayed ACK (Nagle): through the
        # bridge a search of 64 queries took 110 ms instead of 26, a batch upsert 50 instead of 9
        # (catalog bench index, 10k rows; docs/research/server-bridge-nodelay.json)
        inner = "".join(
            f"socat UNIX-LISTEN:{self._socket(p)},fork,unlink-early TCP:{HOST}:{p},nodelay &\n" for p in self.ports
        )
        script = f'ip link set lo up || exit 97\n{inner}exec "$@"\n'
        return ["unshare", "-rn", "--", "sh", "-c", script, "sh", *argv]

    def outer_bridge(self, port: int) -> list[str]:
        """The host half of one bridge: ``127.0.0.1:<port>`` to the namespace's socket (no Nagle delay)."""
        return ["socat", f"TCP-LISTEN:{port},bind={HOST},reuseaddr,fork,nodelay", f"UNIX-CONNECT:{self._socket(port)}"]

    def start_bridges(self, server_pid: int, timeout: float = 10.0) -> None:
        """The outer half: ``127.0.0.1:<port>`` on the host to the socket the namespace listens on.

        ``server_pid`` leads the process group (``start_new_session``) that also holds the inner
        halves, so ``stop`` can end them even when the server itself is already gone.
        """
        self._server_group = server_pid
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while not self._socket(port).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            self._bridges.append(
                subprocess.Popen(
                    self.outer_bridge(port),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    @property
    def bridge_pids(self) -> list[int]:
        return [b.pid for b in self._bridges]

    def stop(self) -> None:
        """Stop the bridges by PID, what is left of the server's group, and remove the socket folder."""
        for bridge in self._bridges:
            stop_process_group(bridge, 5.0, kill_wait=5)
        self._bridges.clear()
        if self._server_group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._server_group, signal.SIGKILL)  # the inner socats outlive an exited server
            self._server_group = None
        shutil.rmtree(self.socket_dir, ignore_errors=True)
