"""Shared fixtures: the real Kafka broker (plugin), and real worker processes on unique topics."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support.http_images import ImageHttpServer

pytest_plugins = ["tests.conftest_kafka", "tests.conftest_milvus"]


@pytest.fixture(autouse=True, scope="session")
def _quiet_torch() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageHttpServer]:
    """A loopback HTTP server for URL events: good images, a slow route, 404, redirects."""
    from tests.support.http_images import ImageHttpServer

    root: Path = tmp_path_factory.mktemp("http-images")
    with ImageHttpServer(root) as server:
        yield server


@pytest.fixture()
def logging_restored() -> Iterator[None]:
    """Undoes ``configure_logging`` after a test: its root handler, the root level, structlog's set-up."""
    import logging

    import structlog

    from streams.logging_setup import StructlogHandler

    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, StructlogHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
