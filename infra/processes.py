"""Stopping the child processes our runners and test harnesses start, by process group."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def stop_process_group(proc: subprocess.Popen | None, timeout: float, kill_wait: float = 10.0) -> None:
    """SIGTERM the group ``proc`` leads (started with ``start_new_session``), SIGKILL it if it lingers.

    The whole group, because a server's own children (a JVM's, a worker's executor) must go too.
    """
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(kill_wait)


def live_group_members(group: int) -> list[int]:
    """PIDs of the live (not zombie) processes in a process group, read from /proc."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def wait_group_gone(group: int, timeout: float = 10.0) -> list[int]:
    """Wait until nothing of ``group`` is alive; returns what is still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while (alive := live_group_members(group)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive
