"""Handlers of the Search page: a test item by number (GET, bookmarkable) or an uploaded image (POST + CSRF).

Uploads are bounded before they are read: no ``Content-Length`` is 411, a declared length over the
limit is 413 without reading the body, and the file itself is read to at most the limit + 1 byte.
What is not an image is refused by the worker's own intake, with its reason code, as a 400.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from model_store.embedding_models import UnknownModelError, available_models
from model_store.registry import RegistryError
from streams.console.milvus_access import GalleryUnavailable
from streams.console.routes import serving
from streams.console.samples import STYLES, UnknownItem, item, item_pixels, png
from streams.console.search import SearchRefused, SearchResult
from streams.console.security import CSRF_COOKIE, CSRF_FIELD
from streams.console.views import error_page, render, state_of

FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries, headers and the small fields around the file
SUGGESTED_ITEMS = (0, 1, 2, 12, 42, 99, 123, 777)  # fixed test items: the page looks the same on every visit


async def _context(request: Request, ref: str | None) -> dict[str, Any]:
    state = state_of(request)
    serving_state = await serving(request)
    models = await run_in_threadpool(available_models, state.registry)
    return {"serving": serving_state, "models": models, "ref": ref or serving_state.active_ref, "styles": STYLES,
            "suggested": SUGGESTED_ITEMS, "max_upload": state.settings.console_max_upload_bytes}  # fmt: skip


async def search_page(request: Request) -> Response:
    params = request.query_params
    context = await _context(request, params.get("ref"))
    if "item" not in params:
        return render(request, "search.html", context)
    style = params.get("style", "seller")
    try:
        index = int(params["item"])
        if style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}")
        truth = item("test", index)
    except (ValueError, UnknownItem) as exc:
        return error_page(request, 400, "Not a test item", str(exc), "Test items are numbered 0 to 9999.")
    size = state_of(request).settings.model_image_size * 2  # what `catalog produce` sends
    image = await run_in_threadpool(lambda: png(item_pixels("test", index, size, style)))  # type: ignore[arg-type]
    context |= {"truth": truth, "item": index, "style": style}
    return await _search(request, context, image)


async def search_upload(request: Request) -> Response:
    limit = state_of(request).settings.console_max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        return error_page(request, 411, "Length required", "Send the upload with a Content-Length header.")
    if int(declared) > limit + FORM_OVERHEAD_BYTES:
        return _too_large(request, limit)
    form = await request.form(max_files=1, max_fields=5, max_part_size=4096)
    token = form.get(CSRF_FIELD)
    if not state_of(request).csrf.valid(request.cookies.get(CSRF_COOKIE), token if isinstance(token, str) else None):
        return error_page(request, 403, "Form expired or not from this console",
                          "The form's security token is missing or does not match this browser's cookie.",
                          "Open the Search page again and upload from there.")  # fmt: skip
    upload = form.get("image")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return error_page(request, 400, "No image", "Choose an image file (JPEG, PNG or WebP) to upload.")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        return _too_large(request, limit)
    if not data:
        return error_page(request, 400, "Empty file", f"{upload.filename} is empty: it is not an image.")
    ref = form.get("ref")
    context = await _context(request, ref if isinstance(ref, str) else None)
    context["filename"] = upload.filename
    return await _search(request, context, data)


def _too_large(request: Request, limit: int) -> Response:
    message = f"The Search page accepts images up to {limit:,} bytes (CATALOG_CONSOLE_MAX_UPLOAD_BYTES)."
    return error_page(request, 413, "Image too large", message)


async def _search(request: Request, context: dict[str, Any], image: bytes) -> Response:
    ref = context["ref"]
    if ref not in context["models"]:
        return error_page(request, 404, "Unknown model", f"There is no embedding model {ref!r}.",
                          "The Models page lists every model the console knows.")  # fmt: skip
    try:
        result: SearchResult = await state_of(request).search.search(ref, image)
    except SearchRefused as exc:
        return error_page(request, 400, "Not a usable image", f"{exc.message} ({exc.code}).",
                          "Upload a JPEG, PNG or WebP photo.")  # fmt: skip
    except GalleryUnavailable as exc:
        return error_page(request, 503, "The gallery cannot be searched now", exc.message)
    except (UnknownModelError, RegistryError) as exc:
        return error_page(request, 409, "The model cannot be loaded", str(exc))
    return render(request, "search.html", {**context, "result": result})
