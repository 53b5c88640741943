"""Milvus Lite served to the worker from a child process of its own, on 127.0.0.1.

Why: Milvus Lite 3.x is pure Python. Opened by path, it runs its gRPC server as threads of the
worker, and those threads share the worker's GIL with the model thread and every other stage
(profiled under load: nearly half of the GIL samples were Lite's snapshot and row copies). The
same Lite data served by a child process let one worker enrich 1.33x the events/s
(``research/experiments/in_flight_e2e.py``, config ``LITE_SERVER=1``). The data folder, its
exclusive lock and its format are Lite's own, so ``catalog gallery load`` and the console read
the same file when no worker runs, as before.

The child dies with the worker: it asks the kernel for SIGINT when its parent thread ends
(``PR_SET_PDEATHSIG``), and the supervisor thread that started it is the thread that lives as long as
the worker. If the child exits on its own, the supervisor starts it again on the same port, so the
worker's Milvus retries carry it over like any Milvus outage. The child runs Lite's server without
Lite's blocking loop: its SIGINT/SIGTERM handler only sets an event, and the main thread then stops
the server, closes the database and exits. A handler that raised ``KeyboardInterrupt`` (Lite's own
way) lost the interrupt whenever it landed inside library code that swallows exceptions (seen: an
import lock's callback, right as the port opened), and a parent's death signals only once, so the
child served on. The first signal also arms a kernel timer: SIGALRM ends a drain that hangs after
``LiteProcessConfig.drain_deadline()`` (Lite's write-ahead log replays what it did not close).
``stop()`` still sends SIGKILL after ``stop_timeout_s``.

With ``CATALOG_MILVUS_LITE_ROW_CACHE`` on (the default), the child patches Lite's row reads before it
serves (``streams.milvus_lite_rows``; its log's first line says whether it did).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("catalog.milvus_lite")

_ROW_CACHE_FILE = Path(__file__).resolve().with_name("milvus_lite_rows.py")  # loaded by path: no sys.path games

# Runs in the child: die with the parent thread, patch Lite's row reads (streams/milvus_lite_rows.py) when
# asked, then serve. argv: see child_args().
_CHILD = """
import ctypes, os, signal, sys, threading, traceback
DRAIN_DEADLINE_S = float(sys.argv[6])  # read once, here: the handler below must not be able to fail
if not DRAIN_DEADLINE_S > 0:
    sys.exit("the drain deadline must be > 0 (0 would switch the timer off)")
STOP = threading.Event()
def _ask_for_drain(signum, frame):
    # Sets an event and raises nothing: an exception raised from a handler can land inside library code that
    # swallows it (seen: an import lock's callback, "Exception ignored"), and a parent's death signals only once.
    # A second SIGINT or SIGTERM must not cut the drain short; a drain that hangs is ended by the kernel's timer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, DRAIN_DEADLINE_S)
    STOP.set()
# set, not inherited: a worker started in the background ignores SIGINT, and its child would too
signal.signal(signal.SIGINT, _ask_for_drain)
signal.signal(signal.SIGTERM, _ask_for_drain)
# the mask is inherited from the parent's thread: a blocked SIGALRM would disarm the deadline
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGALRM})
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass  # not Linux: the parent's stop() still ends it
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the parent is already gone
if sys.argv[4] == "1":  # a speed-up only: whatever fails here, the child serves with Lite's own code
    try:
        import importlib.util, milvus_lite
        spec = importlib.util.spec_from_file_location("catalog_milvus_lite_rows", sys.argv[5])
        rows = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(rows)
        version = milvus_lite.__version__
        print("row cache: on" if rows.install(version) else f"row cache: off (Lite {version} not checked)", flush=True)
    except Exception as exc:
        print(f"row cache: off ({type(exc).__name__}: {exc})", flush=True)
try:  # Lite's own server, started without its blocking loop, so this thread owns the shutdown
    from milvus_lite.adapter.grpc.server import start_server_in_thread
    server, db, _ = start_server_in_thread(sys.argv[2], "127.0.0.1", int(sys.argv[3]))
except BaseException:
    traceback.print_exc()
    sys.stdout.flush()
    os._exit(1)  # the last log line names the error; never wait on threads of a server started half way
print(f"serving {sys.argv[2]} on 127.0.0.1:{sys.argv[3]}", flush=True)
while not STOP.wait(0.5):
    pass
server.stop(grace=5).wait(6)  # requests in flight finish before the database closes
db.close()  # flushes, waits for background compactions and index builds, releases the folder's lock
print("drained and closed", flush=True)
os._exit(0)
"""


class LiteProcessError(RuntimeError):
    """The child did not start listening in time, or exited before it did."""


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class LiteProcessConfig:
    data_dir: Path  # the Lite "file" (a folder), as CATALOG_MILVUS_URI names it
    log_path: Path
    start_timeout_s: float = 60.0
    stop_timeout_s: float = 10.0
    restart_backoff_s: float = 1.0
    row_cache: bool = True  # streams/milvus_lite_rows.py in the child
    # An orphaned child's drain may finish compactions and index builds (a 60k gallery's took ~30 s), but
    # ends before start_timeout_s, so a restarted worker's new child gets the folder's lock in time.
    # None: 40 s, or two thirds of start_timeout_s when that is less.
    drain_deadline_s: float | None = None

    def __post_init__(self) -> None:
        if self.drain_deadline_s is not None and not 0 < self.drain_deadline_s < self.start_timeout_s:
            raise ValueError("drain_deadline_s must be > 0 and below start_timeout_s")

    def drain_deadline(self) -> float:
        if self.drain_deadline_s is not None:
            return self.drain_deadline_s
        return min(40.0, self.start_timeout_s * 2 / 3)


def child_args(parent_pid: int, data_dir: Path, port: int, row_cache: bool, drain_deadline_s: float) -> list[str]:
    """The child's argv after ``python -c _CHILD``, in the order it reads them."""
    return [
        str(parent_pid),
        str(data_dir),
        str(port),
        "1" if row_cache else "0",
        str(_ROW_CACHE_FILE),
        str(drain_deadline_s),
    ]


class MilvusLiteProcess:
    """Starts, supervises and stops ``milvus-lite server`` for one Lite data folder."""

    def __init__(self, config: LiteProcessConfig) -> None:
        self.config = config
        self.port = free_loopback_port()
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._supervisor = threading.Thread(target=self._supervise, name="milvus-lite-supervisor", daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> MilvusLiteProcess:
        """Returns once the child listens; raises ``LiteProcessError`` (with its log's tail) if it does not."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self._supervisor.start()
        self._started.wait(self.config.start_timeout_s + 5)
        if self._start_error is not None or not self._started.is_set():
            self.stop()
            raise LiteProcessError(f"milvus-lite server for {self.config.data_dir} did not start: {self._start_error}")
        return self

    def stop(self) -> None:
        """SIGINT (Lite drains and closes its database), SIGKILL after ``stop_timeout_s``; by PID."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(self.config.stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._supervisor.is_alive() and threading.current_thread() is not self._supervisor:
            self._supervisor.join(self.config.stop_timeout_s + 5)

    def _spawn(self) -> subprocess.Popen[bytes]:
        log_file = self.config.log_path.open("ab")
        try:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CHILD,
                    *child_args(
                        os.getpid(),
                        self.config.data_dir,
                        self.port,
                        self.config.row_cache,
                        self.config.drain_deadline(),
                    ),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        finally:
            log_file.close()

    def _wait_listening(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        while time.monotonic() < deadline and not self._stopping.is_set():
            if proc.poll() is not None:
                raise LiteProcessError(f"exited with {proc.returncode}: {self._last_log_line()}")
            if _listening(self.port):
                return
            time.sleep(0.1)
        raise LiteProcessError(f"not listening on 127.0.0.1:{self.port} after {self.config.start_timeout_s}s")

    def _supervise(self) -> None:
        """Spawns the child from this thread (its PDEATHSIG follows this thread) and restarts it when it exits.

        A start is tried again until ``start_timeout_s``: the child of a worker killed a moment ago
        may still be closing the same folder and hold its lock for a few seconds.
        """
        deadline = time.monotonic() + self.config.start_timeout_s
        while not self._stopping.is_set():
            try:
                self._proc = self._spawn()
                self._wait_listening(self._proc, max(deadline, time.monotonic() + 1.0))
            except Exception as exc:  # noqa: BLE001 - retried; the first start's last error goes to start()
                with contextlib.suppress(Exception):
                    if self._proc is not None and self._proc.poll() is None:
                        self._proc.kill()
                        self._proc.wait(5)
                if not self._started.is_set() and time.monotonic() >= deadline:
                    self._start_error = exc
                    self._started.set()
                    return
                log.warning("milvus_lite_start_retry", error=str(exc)[-300:], data_dir=str(self.config.data_dir))
                self._stopping.wait(self.config.restart_backoff_s)
                continue
            if not self._started.is_set():
                data_dir = str(self.config.data_dir)
                log.info("milvus_lite_process_started", pid=self._proc.pid, uri=self.uri, data_dir=data_dir)
                self._started.set()
            code = self._proc.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            log.warning("milvus_lite_process_exited", code=code, restarts=self.restarts, log=str(self.config.log_path))
            deadline = time.monotonic() + self.config.start_timeout_s
            self._stopping.wait(self.config.restart_backoff_s)

    def _last_log_line(self) -> str:
        """The child's last words (the exception line of a traceback), for a one-line error."""
        try:
            tail = self.config.log_path.read_bytes()[-2000:].decode(errors="replace")
        except OSError:
            return f"see {self.config.log_path}"
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        return f"{lines[-1] if lines else 'no output'} (log {self.config.log_path})"
