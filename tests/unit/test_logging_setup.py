"""Logging follows a replaced and closed stderr; every line, ours or a library's, is JSON with the same keys."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import datetime, timedelta

import pytest
import structlog

from streams.log_dedup import RepeatFilter
from streams.logging_setup import StructlogHandler, configure_logging

pytestmark = pytest.mark.usefixtures("logging_restored")


def test_a_log_call_after_stderr_was_replaced_and_closed_writes_to_the_new_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO", json_lines=True)
    structlog.get_logger("t").info("before", n=1)
    first.close()  # e.g. a test runner's capture of the test that configured logging
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger("t").warning("after", n=2)
    assert '"event": "after"' in second.getvalue() and '"n": 2' in second.getvalue()


def test_levels_below_the_configured_one_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("WARNING", json_lines=True)
    structlog.get_logger("t").info("quiet")
    structlog.get_logger("t").error("loud")
    assert "quiet" not in out.getvalue() and "loud" in out.getvalue()


# --- the standard library's records (faust, aiokafka) as JSON lines with structlog's keys -------------

KEYS = {"event", "level", "timestamp", "logger"}


def _records(text: str) -> list[dict]:
    lines = text.splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_aiokafka_and_faust_records_are_json_lines_with_the_keys_of_a_structlog_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("INFO", json_lines=True)
    structlog.get_logger("catalog.t").warning("ours")
    logging.getLogger("aiokafka.consumer.group_coordinator").warning("Heartbeat failed for group %s", "g1")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("faust.agents.agent").error("Agent %r crashed", "enrich", exc_info=True)
    ours, kafka, agent = _records(out.getvalue())
    assert set(ours) == KEYS and ours["logger"] == "catalog.t" and ours["level"] == "warning"
    assert set(kafka) == KEYS
    assert {k: kafka[k] for k in ("event", "level", "logger")} == {
        "event": "Heartbeat failed for group g1",
        "level": "warning",
        "logger": "aiokafka.consumer.group_coordinator",
    }
    assert set(agent) == KEYS | {"exception"}
    assert (agent["event"], agent["level"], agent["logger"]) == (
        "Agent 'enrich' crashed",
        "error",
        "faust.agents.agent",
    )
    assert agent["exception"].startswith("Traceback") and "RuntimeError: boom" in agent["exception"]
    for record in (ours, kafka, agent):  # one timestamp format: ISO 8601, UTC
        assert datetime.fromisoformat(record["timestamp"]).utcoffset() == timedelta(0)


def test_library_records_carry_the_bound_context_and_follow_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO", json_lines=True)
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    structlog.contextvars.bind_contextvars(event_id="e-1")
    logging.getLogger("aiokafka").warning("after")
    (record,) = _records(second.getvalue())
    assert (record["event"], record["event_id"]) == ("after", "e-1")


def test_configuring_twice_keeps_one_root_handler_and_library_info_stays_out(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("INFO", json_lines=True)
    configure_logging("INFO", json_lines=True)
    assert sum(isinstance(h, StructlogHandler) for h in logging.getLogger().handlers) == 1
    logging.getLogger("aiokafka").info("Authenticated as catalog via PLAIN")  # commands: WARNING and up, as before
    logging.getLogger("aiokafka").warning("once")
    assert [r["event"] for r in _records(out.getvalue())] == ["once"]


def test_after_faust_sets_up_logging_the_worker_writes_json_through_one_handler_with_the_repeat_filter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's hook on the real mode/faust set-up: faust's handlers, spinner and DEBUG level are replaced."""
    import faust
    from faust.utils import terminal
    from mode.utils import logging as mode_logging

    from streams.run import _Worker

    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    monkeypatch.setattr(sys, "__stderr__", out)
    handler = configure_logging("WARNING", json_lines=True)
    worker = _Worker.__new__(_Worker)  # only the logging hook is exercised: no app, no event loop
    worker._log_handler, worker._repeat_filter = handler, RepeatFilter(60.0)
    worker.spinner = terminal.Spinner(file=io.StringIO())  # faust's worker has one; at WARNING it adds a handler
    level = mode_logging.setup_logging(loglevel="warning", logfile=None)  # what faust's Worker runs first
    assert not any(isinstance(h, StructlogHandler) for h in logging.getLogger().handlers)  # faust replaced it
    faust.Worker.on_setup_root_logger(worker, logging.getLogger(), level)  # faust's own part of the hook
    assert logging.getLogger().level == logging.DEBUG  # the spinner's handler wants every record
    worker.on_setup_root_logger(logging.getLogger(), level)

    root = logging.getLogger()
    assert root.handlers == [handler] and root.level == logging.WARNING
    for _ in range(3):  # a broker outage: the same warning again and again
        logging.getLogger("aiokafka").warning("Unable connect to node with id %s", 1)
    logging.getLogger("faust").info("[^Worker]: Starting...")  # below the worker's level
    logging.getLogger("faust.transport").error("Consumer error")
    with mode_logging.redirect_stdouts(severity="WARN"):  # faust's worker redirects stdout/stderr into logging
        structlog.get_logger("catalog.t").warning("through the redirect", n=1)
        print("a stray print")
    records = _records(out.getvalue())
    assert [(r["logger"], r["event"]) for r in records] == [
        ("aiokafka", "Unable connect to node with id 1"),
        ("faust.transport", "Consumer error"),
        ("catalog.t", "through the redirect"),
        ("mode.redirect", "a stray print"),
    ]
    assert all(set(r) >= KEYS for r in records)


# --- gRPC's record for a call Milvus Lite does not implement ---------------------------------------


def AllocTimestamp() -> None:  # noqa: N802 - named as the gRPC servicer method that raises it
    raise NotImplementedError("Method not implemented!")


def Flush() -> None:  # noqa: N802
    raise NotImplementedError("Method not implemented!")


def _log_refusal(method: object) -> None:
    try:
        method()  # type: ignore[operator]
    except NotImplementedError:
        logging.getLogger("grpc._server").exception("Exception calling application: Method not implemented!")


def test_only_the_tolerated_unimplemented_call_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("INFO", json_lines=True)
    _log_refusal(AllocTimestamp)
    _log_refusal(Flush)  # a call pymilvus cannot do without: the operator must see it
    logging.getLogger("grpc._server").error("Exception calling application: disk full")
    lines = _records(out.getvalue())
    assert [line["event"] for line in lines] == [
        "Exception calling application: Method not implemented!",
        "Exception calling application: disk full",
    ]
    assert "in Flush" in lines[0]["exception"]
