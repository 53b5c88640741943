"""The worker's Milvus Lite child process: serves the folder, survives its own crash, dies with the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from streams.milvus_lite_process import LiteProcessConfig, LiteProcessError, MilvusLiteProcess


def _config(tmp_path: Path, **kw: float) -> LiteProcessConfig:
    data = tmp_path / "milvus.db"
    return LiteProcessConfig(data_dir=data, log_path=tmp_path / "milvus.db.server.log", **kw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


def _collections(uri: str) -> list[str]:
    client = MilvusClient(uri=uri)
    try:
        return list(client.list_collections())
    finally:
        client.close()


def test_serves_the_folder_on_loopback_and_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    lite = MilvusLiteProcess(_config(tmp_path)).start()
    try:
        assert lite.uri.startswith("http://127.0.0.1:")
        client = MilvusClient(uri=lite.uri)
        client.create_collection("kept", dimension=4)
        client.insert("kept", [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}])
        client.close()
        pid = lite.pid
        assert pid is not None
    finally:
        lite.stop()
    assert _wait_gone(pid, 5), "stop() left the child running"
    again = MilvusLiteProcess(_config(tmp_path)).start()  # the lock was released
    try:
        client = MilvusClient(uri=again.uri)
        client.load_collection("kept")  # a reopened Lite folder starts released, as a restarted server does
        assert client.query("kept", filter="id == 1", output_fields=["id"], consistency_level="Strong")[0]["id"] == 1
        client.close()
    finally:
        again.stop()
    log = (tmp_path / "milvus.db.server.log").read_text()
    # a guard on the child's log, not a test of the worker's log filter: the child configures no logging
    assert "Method not implemented" not in log, log
    assert log.count("drained and closed") == 2, log


def test_a_crashed_child_is_started_again_on_the_same_address(tmp_path: Path) -> None:
    lite = MilvusLiteProcess(_config(tmp_path, restart_backoff_s=0.2)).start()
    try:
        first = lite.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (lite.restarts == 0 or lite.pid == first):
            time.sleep(0.2)
        assert lite.restarts == 1 and lite.pid != first
        deadline = time.monotonic() + 30
        while True:  # the new child answers at the old URI
            try:
                assert _collections(lite.uri) == []
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        lite.stop()


def test_a_folder_held_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    holder = MilvusLiteProcess(_config(tmp_path)).start()
    try:
        with pytest.raises(LiteProcessError, match="did not start"):
            MilvusLiteProcess(_config(tmp_path, start_timeout_s=3.0, restart_backoff_s=0.5)).start()
    finally:
        holder.stop()


def test_the_child_dies_with_a_killed_worker(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from streams.milvus_lite_process import LiteProcessConfig, MilvusLiteProcess\n"
        "d = Path(sys.argv[1])\n"
        "config = LiteProcessConfig(d / 'milvus.db', d / 'log', drain_deadline_s=5.0)\n"
        "lite = MilvusLiteProcess(config).start()\n"
        "print('CHILD', lite.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    try:
        assert parent.stdout is not None
        line = ""
        while not line.startswith("CHILD"):  # the start-up log lines come first
            line = parent.stdout.readline()
            assert line, "the parent exited before it started its child"
        child = int(line.split()[1])
        assert _alive(child)
        parent.kill()  # SIGKILL: no handler of the parent runs
        parent.wait(10)
        if not _wait_gone(child, 15):
            log_tail = (tmp_path / "log").read_text(errors="replace")[-1500:]
            pytest.fail(f"the Lite child outlived its killed parent; its log ends:\n{log_tail}")
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.parametrize("when", ["at once", "while importing", "the moment it listens", "while serving"])
def test_the_child_exits_on_sigint_at_any_moment_of_its_start(tmp_path: Path, when: str) -> None:
    """A worker killed while its child starts: the SIGINT may land before Lite's serving loop, or inside it."""
    from streams.milvus_lite_process import _CHILD, _listening, child_args, free_loopback_port

    port = free_loopback_port()
    args = child_args(os.getpid(), tmp_path / "milvus.db", port, row_cache=True, drain_deadline_s=60.0)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if when == "while importing":
            time.sleep(0.5)
        elif when != "at once":
            deadline = time.monotonic() + 60
            while not _listening(port) and time.monotonic() < deadline:
                pass  # no sleep: signal right as the port opens, before Lite enters its serving loop
            if when == "while serving":
                time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        child.wait(30)  # raises TimeoutExpired if it hangs; the deadline (60 s) is not what ended it:
        # a drained and closed database (0), or Python's own SIGINT before the handler was set
        assert child.returncode in (0, -signal.SIGINT), child.returncode
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)


def test_a_hung_drain_is_ended_by_its_deadline(tmp_path: Path) -> None:
    """The parent's death signals the child once: if the drain then hangs, the kernel's timer ends it."""
    from streams.milvus_lite_process import _CHILD, child_args, free_loopback_port

    hanging_lite = (  # a server that stops at once and a database whose close never returns
        "import threading, time, milvus_lite.adapter.grpc.server as lite_server\n"
        "class _Server:\n"
        "    def stop(self, grace):\n"
        "        stopped = threading.Event()\n"
        "        stopped.set()\n"
        "        return stopped\n"
        "class _HangingDb:\n"
        "    def close(self):\n"
        "        print('closing', flush=True)\n"
        "        time.sleep(600)\n"
        "lite_server.start_server_in_thread = lambda data_dir, host, port: (_Server(), _HangingDb(), port)\n"
    )
    args = child_args(os.getpid(), tmp_path / "milvus.db", free_loopback_port(), row_cache=False, drain_deadline_s=2.0)
    child = subprocess.Popen([sys.executable, "-c", hanging_lite + _CHILD, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("serving ")
        child.send_signal(signal.SIGINT)
        assert child.stdout.readline().strip() == "closing"
        started = time.monotonic()
        child.wait(30)  # raises TimeoutExpired if nothing ends it
        assert child.returncode == -signal.SIGALRM
        assert time.monotonic() - started < 15
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)


@pytest.mark.parametrize("deadline", [0.0, -1.0, 60.0, 90.0])
def test_a_drain_deadline_that_could_not_work_is_refused(tmp_path: Path, deadline: float) -> None:
    """0 would switch the timer off; one past start_timeout_s would keep a restarted worker's child off the lock."""
    with pytest.raises(ValueError, match="drain_deadline_s"):
        _config(tmp_path, start_timeout_s=60.0, drain_deadline_s=deadline)


def test_the_default_drain_deadline_stays_below_any_start_timeout(tmp_path: Path) -> None:
    assert _config(tmp_path).drain_deadline() == 40.0
    assert _config(tmp_path, start_timeout_s=15.0).drain_deadline() == 10.0
