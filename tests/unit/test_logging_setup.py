"""Logging keeps working when the stderr it started with is replaced and closed."""

from __future__ import annotations

import io
import sys

import pytest
import structlog

from streams.logging_setup import configure_logging


@pytest.fixture(autouse=True)
def _reset_structlog() -> object:
    yield
    structlog.reset_defaults()


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
