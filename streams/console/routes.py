"""Handlers of the Models, Compare and Select pages and the pictures they show.

Thin on purpose: each reads the request, asks a view module for its figures and renders a template.
Activation happens in exactly one place, ``select_submit``, on POST with a valid CSRF token; a GET
of any URL never changes anything.
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from model_store.evaluations import IMAGES_DIR, read_evaluation
from model_store.registry import WEIGHTS_FILE, Manifest, parse_ref
from streams.activation import (
    ActivationRecord,
    ActivationRefused,
    activate,
    read_latest_activation,
    verified_manifest,
)
from streams.console import catalog, compare, costs
from streams.console.charts import curve_rows, read_history
from streams.console.security import CSRF_COOKIE, CSRF_FIELD
from streams.console.views import ConsoleState, error_page, render, state_of
from streams.console.workers import metrics_urls, scrape_workers

KAFKA_READ_TIMEOUT_S = 5.0
MAX_COMPARED = 4
_REFUSED_STATUS = {"unknown_model": 404, "bad_ref": 400, "builtin_model": 400, "not_embedding": 400,
                   "kafka_unavailable": 503}  # fmt: skip  # the rest (a damaged artifact): 409


async def serving(request: Request) -> catalog.ServingState:
    """The model in force; when Kafka does not answer, the configured one, with the reason shown."""
    settings = state_of(request).settings
    record: ActivationRecord | None = None
    error = None
    try:
        record = await read_latest_activation(settings, KAFKA_READ_TIMEOUT_S)
    except ActivationRefused as exc:
        error = exc.message
    except Exception as exc:  # noqa: BLE001 - any broker trouble: the page still renders, and says so
        error = f"Kafka at {settings.kafka_bootstrap} did not answer ({type(exc).__name__})"
    return catalog.serving_state(settings, record, error)


async def models_page(request: Request) -> Response:
    state = state_of(request)
    serving_state = await serving(request)
    rows = await run_in_threadpool(catalog.model_rows, state.settings, state.registry, serving_state)
    return render(request, "models.html", {"rows": rows, "serving": serving_state,
                                           "registry": state.registry.root})  # fmt: skip


def registry_manifest(request: Request, ref: str) -> Manifest | Response:
    """The manifest of a registry embedding model, or the 404/400 page that says why there is none."""
    from model_store.embedding_loading import EMBEDDING_ARCH

    registry = state_of(request).registry
    try:
        parse_ref(ref)
    except ValueError as exc:
        return error_page(request, 400, "Not a model reference", str(exc))
    if not registry.exists(ref):
        return error_page(request, 404, "Unknown model", f"There is no model {ref!r} in the registry {registry.root}.",
                          "The Models page lists every model the console knows.")  # fmt: skip
    manifest = registry.load_manifest(ref)
    if manifest.architecture != EMBEDDING_ARCH:
        message = f"{manifest.ref} is a {manifest.architecture!r} model; only embedding models are served."
        return error_page(request, 400, "Not an embedding model", message)
    return manifest


async def compare_page(request: Request) -> Response:
    state = state_of(request)
    refs = list(dict.fromkeys(r.strip() for r in request.query_params.getlist("ref") if r.strip()))
    if len(refs) < 2 or len(refs) > MAX_COMPARED:
        return error_page(request, 400, "Choose models to compare",
                          f"Compare takes 2 to {MAX_COMPARED} different models (?ref=a&ref=b); got {len(refs)}.",
                          "Tick them on the Models page.")  # fmt: skip
    manifests = []
    for ref in refs:
        found = registry_manifest(request, ref)
        if isinstance(found, Response):
            return found
        manifests.append(found)
    serving_state = await serving(request)
    view = await run_in_threadpool(_compare_view, state, manifests, serving_state)
    return render(request, "compare.html", {**view, "serving": serving_state})


def _compare_view(state: ConsoleState, manifests: list[Manifest], serving_state: catalog.ServingState) -> dict:
    registry = state.registry
    columns, histories = [], []
    for m in manifests:
        version_dir = registry.version_dir(m.ref)
        history = read_history(version_dir / "history.json")
        histories.append(history)
        evaluation = read_evaluation(registry.root, m.name, m.version)
        command = catalog.evaluate_command(state.settings, m.ref)
        columns.append(compare.column(m, serving_state.status(m.ref), evaluation, command, version_dir,
                                      history is not None))  # fmt: skip
    return {
        "columns": columns,
        "metric_rows": compare.metric_rows(columns),
        "paired_rows": compare.paired_rows(columns),
        "curve_rows": curve_rows(histories),
        "examples": compare.example_rows(columns, lambda path: f"/evaluation-image/{Path(path).name}"),
        "style_names": compare.STYLE_NAMES,
    }


async def select_page(request: Request) -> Response:
    """The confirmation: what switching to ``ref`` costs. Shows a form; changes nothing."""
    state = state_of(request)
    ref = request.query_params.get("ref", "").strip()
    found = registry_manifest(request, ref)
    if isinstance(found, Response):
        return found
    try:
        manifest = await run_in_threadpool(verified_manifest, state.registry, found.ref)
    except ActivationRefused as exc:
        return error_page(request, _REFUSED_STATUS.get(exc.code, 409), "This model cannot be activated",
                          exc.message, "Nothing was activated.")  # fmt: skip
    serving_state = await serving(request)
    cost, workers = await asyncio.gather(
        run_in_threadpool(costs.switch_cost, state.settings, state.registry, manifest, serving_state.active_ref),
        scrape_workers(metrics_urls(state.settings)),
    )
    return render(request, "select.html", {"manifest": manifest, "cost": cost, "workers": workers,
                                           "serving": serving_state, "by": f"{getpass.getuser()}@console",
                                           "lineage": catalog.lineage(manifest),
                                           "weights_sha256": manifest.files[WEIGHTS_FILE]})  # fmt: skip


async def select_submit(request: Request) -> Response:
    """POST only, CSRF-checked: publish the activation and show where it landed and what workers report."""
    state = state_of(request)
    form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
    token = form.get(CSRF_FIELD)
    if not state.csrf.valid(request.cookies.get(CSRF_COOKIE), token if isinstance(token, str) else None):
        return error_page(request, 403, "Form expired or not from this console",
                          "The form's security token is missing or does not match this browser's cookie. "
                          "Nothing was activated.", "Open the Select page again and submit it from there.")  # fmt: skip
    ref = str(form.get("ref", "")).strip()
    by = str(form.get("by", "")).strip() or "console"
    found = registry_manifest(request, ref)
    if isinstance(found, Response):
        return found
    try:
        record = await activate(state.settings, found.ref, by[:128])
    except ActivationRefused as exc:
        return error_page(request, _REFUSED_STATUS.get(exc.code, 409), "Activation refused", exc.message,
                          "Nothing was activated.")  # fmt: skip
    workers = await scrape_workers(metrics_urls(state.settings))
    return render(request, "activated.html", {"record": record, "workers": workers})


async def sample_image(request: Request) -> Response:
    from streams.console.samples import Split, Style, UnknownItem, item_pixels, png

    split, index = request.path_params["split"], request.path_params["index"]
    style = request.query_params.get("style", "plain")
    if split not in ("train", "test") or style not in ("plain", "seller"):
        return PlainTextResponse("no such split or style", status_code=404)
    try:
        data = await run_in_threadpool(lambda: png(item_pixels(cast(Split, split), index, 64, cast(Style, style))))
    except UnknownItem as exc:
        return PlainTextResponse(str(exc), status_code=404)
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=86400"})


async def evaluation_image(request: Request) -> Response:
    """A stored example picture: only plain file names under ``<registry>/evaluations/images``."""
    name = request.path_params["path"]
    folder = (state_of(request).registry.root / IMAGES_DIR).resolve()
    path = (folder / name).resolve()
    if "/" in name or not path.is_relative_to(folder) or not path.is_file():
        return PlainTextResponse("no such image", status_code=404)
    return FileResponse(path, headers={"Cache-Control": "max-age=86400"})


async def report_image(request: Request) -> Response:
    """The training report figure a version's manifest lists."""
    ref = f"{request.path_params['name']}@{request.path_params['version']}"
    registry = state_of(request).registry
    try:
        parse_ref(ref)
        manifest = registry.load_manifest(ref) if registry.exists(ref) else None
    except ValueError:
        manifest = None
    if manifest is None or "report.png" not in manifest.files:
        return PlainTextResponse("no such report", status_code=404)
    return FileResponse(registry.version_dir(ref) / "report.png")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")
