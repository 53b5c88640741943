"""Operating the worker on the real broker: crash recovery, pinned delivery settings, readiness, start-up errors."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra.milvus.lite_server import MilvusLiteServer
from streams.milvus_lite_process import LiteProcessConfig, MilvusLiteProcess
from tests.support.recovery import kill_and_time, steady_traffic
from tests.support.worker import WorkerEnv, WorkerProcess, catalog_cmd, free_port

pytestmark = pytest.mark.integration


def _log_records(worker: WorkerProcess, event: str) -> list[dict]:
    records = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        if f'"event": "{event}"' in line:
            records.append(json.loads(line))
    return records


@pytest.mark.parametrize("instance_id", [None, "static-1"], ids=["dynamic", "static"])
def test_restarted_worker_resumes_output_within_seconds_of_a_kill(
    kafka_bootstrap_servers: str, tmp_path: Path, instance_id: str | None
) -> None:
    """kill -9 mid-stream, restart at once: output resumes within seconds (about 6 s on a quiet machine).

    The bound is 20 s: the restart's interpreter and model loading share two cores with a second test
    process; what it guards against is the 45-60 s of a default session timeout left to expire."""
    env = WorkerEnv(kafka_bootstrap_servers, tmp_path)
    overrides = {"CATALOG_WORKER_INSTANCE_ID": instance_id} if instance_id else {}
    worker = WorkerProcess(env, overrides, name="first").start()
    try:
        with steady_traffic(env, per_s=10, limit_s=120):
            time.sleep(3)  # mid-stream: outputs are flowing
            recovery, worker = kill_and_time(env, worker, timeout=40)
        assert recovery is not None, worker.log_tail()
        assert recovery < 20.0, f"output resumed {recovery:.1f}s after the kill"
    finally:
        worker.stop()


def test_unprefixed_faust_variables_do_not_change_delivery(kafka_bootstrap_servers: str, tmp_path: Path) -> None:
    hostile = {
        "PRODUCER_ACKS": "1",
        "BROKER_SESSION_TIMEOUT": "999",
        "BROKER_HEARTBEAT_INTERVAL": "300",
        "BROKER_COMMIT_INTERVAL": "120",
        "STREAM_WAIT_EMPTY": "true",
        "CONSUMER_GROUP_INSTANCE_ID": "hijacked",
        "TOPIC_REPLICATION_FACTOR": "3",
        "APP_ENV_PREFIX": "",
    }
    env = WorkerEnv(kafka_bootstrap_servers, tmp_path, extra=hostile)
    worker = WorkerProcess(env).start()
    try:
        (delivery,) = _log_records(worker, "delivery_settings")
    finally:
        worker.stop()
    assert delivery["acks"] == "all"
    assert (delivery["session_timeout_s"], delivery["heartbeat_interval_s"]) == (6.0, 1.0)
    assert delivery["commit_interval_s"] == 1.0
    assert delivery["stream_wait_empty"] is False
    assert delivery["instance_id"] is None
    assert delivery["replication_factor"] == 1
    assert delivery["security_protocol"] == "PLAINTEXT"


def _readyz(worker: WorkerProcess) -> dict | None:
    """The JSON body of /readyz (200 or 503); None while the port does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/readyz", timeout=2) as r:  # noqa: S310
            return json.loads(r.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read())
    except OSError:
        return None


def _wait_health(worker: WorkerProcess, want_ready: bool, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    answer = None
    while time.monotonic() < deadline:
        answer = _readyz(worker)
        if answer is not None and answer["ready"] is want_ready:
            return answer
        time.sleep(0.5)
    raise AssertionError(f"readiness never became {want_ready}: {answer}\n{worker.log_tail()}")


def test_readiness_follows_milvus(kafka_bootstrap_servers: str, tmp_path: Path) -> None:
    milvus = MilvusLiteServer(tmp_path / "milvus").start()
    env = WorkerEnv(
        kafka_bootstrap_servers,
        tmp_path,
        extra={"CATALOG_MILVUS_URI": milvus.uri, "CATALOG_HEALTH_CHECK_INTERVAL_S": "1"},
    )
    worker = WorkerProcess(env).start()  # waits for /readyz
    try:
        ready = _wait_health(worker, True, 10)
        assert ready["models_loaded"] and ready["milvus_ok"] and ready["assigned"]
        milvus.stop()
        down = _wait_health(worker, False, 30)
        assert down["milvus_ok"] is False and down["live"] is True
        milvus.start()  # same port and data
        _wait_health(worker, True, 60)
    finally:
        worker.stop()
        milvus.stop()


def _run_worker(env: WorkerEnv, timeout: float = 120) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        catalog_cmd("worker"), env=env.env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def _startup_failure(output: str) -> dict:
    lines = [json.loads(line) for line in output.splitlines() if '"event": "startup_failed"' in line]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"CATALOG_KAFKA_BOOTSTRAP": "127.0.0.1:{free}"}, "CATALOG_KAFKA_BOOTSTRAP"),
        ({"CATALOG_MILVUS_URI": "http://127.0.0.1:{free}"}, "CATALOG_MILVUS_URI"),
        ({"CATALOG_MILVUS_INDEX_TYPE": "NOPE"}, "CATALOG_MILVUS_INDEX_TYPE"),
    ],
    ids=["kafka-unreachable", "milvus-unreachable", "index-type-unsupported"],
)
def test_bad_settings_stop_the_worker_with_one_clear_line(
    kafka_bootstrap_servers: str, tmp_path: Path, extra: dict[str, str], setting: str
) -> None:
    free = free_port()
    env = WorkerEnv(
        kafka_bootstrap_servers,
        tmp_path,
        extra={"CATALOG_STARTUP_TIMEOUT_S": "8", **{k: v.format(free=free) for k, v in extra.items()}},
    )
    code, output, seconds = _run_worker(env)
    assert code == 2, output[-3000:]
    failure = _startup_failure(output)
    assert setting in failure["setting"], failure
    assert failure["cause"]
    assert seconds < 60, f"start-up failure took {seconds:.0f}s"
    assert "Traceback" not in output, output[-3000:]


def test_a_lite_folder_held_by_another_process_stops_the_worker_with_one_clear_line(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap_servers, tmp_path, extra={"CATALOG_STARTUP_TIMEOUT_S": "5"})
    data = Path(env.env["CATALOG_MILVUS_URI"])
    holder = MilvusLiteProcess(LiteProcessConfig(data_dir=data, log_path=tmp_path / "holder.log")).start()
    try:
        code, output, _ = _run_worker(env)
    finally:
        holder.stop()
    assert code == 2, output[-3000:]
    failure = _startup_failure(output)
    assert failure["setting"] == "CATALOG_MILVUS_URI" and str(data) in failure["cause"], failure
    assert "Traceback" not in output, output[-3000:]


def test_startup_retries_kafka_until_it_answers(kafka_bootstrap_servers: str, tmp_path: Path) -> None:
    """A wrong bootstrap is refused after the budget, not at the first failed attempt (an outage may heal)."""
    env = WorkerEnv(
        kafka_bootstrap_servers,
        tmp_path,
        extra={"CATALOG_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "CATALOG_STARTUP_TIMEOUT_S": "4"},
    )
    code, output, seconds = _run_worker(env)
    assert code == 2
    assert seconds >= 3.5
    assert sum('"event": "startup_retry"' in line for line in output.splitlines()) >= 2


def test_broker_outage_writes_a_few_lines_a_second(tmp_path: Path) -> None:
    """Without the repeat filter a stopped broker made about 74 ERROR lines a second (tests.support.outage_logs)."""
    from tests.support.outage_logs import measure

    figures = measure(tmp_path, window_s=10.0, outage_s=10.0)
    assert figures["lines_per_s"] <= 3.0, figures
    assert figures["worker_alive"] and figures["ready_again"], figures
