"""Short, read-only visits to the gallery, safe beside a worker that uses the same Milvus Lite file.

Milvus Lite is one process per DB folder: it takes an exclusive ``flock`` on ``<db>/LOCK`` when a
client first opens the path, and keeps it (its in-process server stays up) until the process exits,
even after ``MilvusClient.close()``. Measured here with milvus-lite 3.2.2: a second process that opens
a held file fails after about 1.3 s with ``ConnectionConfigException`` (``DataDirLockedError`` in its
log); a console that opened the file once would block every worker started after it.

So the console (1) probes the lock first and says plainly that the file is held, instead of
failing inside pymilvus, and (2) releases Milvus Lite's in-process server after each visit, so the
lock is held only while a page is being computed. A Milvus server URI (``http://...``) has no such
limit: several processes share it. The console never creates a collection or moves an alias.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from processors.errors import ProcessingError
from processors.vector_index import VectorIndex, VectorIndexConfig


class GalleryUnavailable(Exception):
    """The gallery cannot be read now; ``message`` says why and what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def lite_path(uri: str) -> Path | None:
    """The Milvus Lite folder of a path URI (absolute, as Milvus Lite keys its servers); None for a server URI."""
    return None if "://" in uri else Path(os.path.abspath(uri))


def lite_lock_held(path: Path) -> bool:
    """Whether another process holds Milvus Lite's lock on ``path`` (probed without keeping it)."""
    lock = path / "LOCK"
    if not lock.is_file():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def held_message(path: Path) -> str:
    return (
        f"the Milvus Lite file {path} is held by another process (a running worker?). Milvus Lite serves one "
        "process per file: stop the worker, or run the gallery on a Milvus server (python -m infra.milvus.server "
        "start, or milvus-lite server) and point CATALOG_MILVUS_URI at it for the worker and the console"
    )


def release_lite(path: Path | None) -> None:
    """Stop this process's Milvus Lite server for ``path``, which lets go of the file lock."""
    if path is None:
        return
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))


def readonly_index(config: VectorIndexConfig, collection: str, dim: int = 0) -> VectorIndex:
    """An index on ``collection`` itself, without the alias: binding it is the workers' business."""
    return VectorIndex(config, collection, dim, alias=None)


@contextlib.contextmanager
def lite_session(uri: str) -> Iterator[None]:
    """On Milvus Lite: refuse a file another process holds, and let go of it afterwards. Nothing on a server."""
    path = lite_path(uri)
    if path is not None:
        if not path.exists():
            raise GalleryUnavailable("no_gallery", f"there is no Milvus Lite file at {path} (CATALOG_MILVUS_URI)")
        if lite_lock_held(path):
            raise GalleryUnavailable("lite_file_held", held_message(path))
    try:
        yield
    finally:
        release_lite(path)


def require_collection(index: VectorIndex) -> None:
    """Raise ``GalleryUnavailable`` unless Milvus answers and holds the index's collection."""
    try:
        exists = index.call("has_collection", lambda: index.client.has_collection(index.collection))
    except ProcessingError as exc:
        path = lite_path(index.config.uri)
        if path is not None and lite_lock_held(path):  # a worker took the file between probe and open
            raise GalleryUnavailable("lite_file_held", held_message(path)) from exc
        raise GalleryUnavailable(
            "milvus_unavailable", f"Milvus at {index.config.uri} did not answer: {exc.message}"
        ) from exc
    if not exists:
        raise GalleryUnavailable(
            "no_collection",
            f"Milvus has no collection {index.collection!r}: this model's gallery was never loaded "
            "(CATALOG_MODEL_REF=<ref> catalog gallery load)",
        )


@contextlib.contextmanager
def visit(index: VectorIndex) -> Iterator[VectorIndex]:
    """Use ``index`` on its EXISTING collection; on Milvus Lite, close it and let go of the file afterwards."""
    lite = lite_path(index.config.uri) is not None
    with lite_session(index.config.uri):
        try:
            require_collection(index)
            yield index
        finally:
            if lite:
                index.close()
