"""Stopping the child processes our runners and test harnesses start, by process group."""

from __future__ import annotations

import os
import signal
import subprocess


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
