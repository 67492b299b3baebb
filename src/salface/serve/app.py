"""The FastAPI application of ``salface serve``: ``create_app(settings)``.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

* ``POST /v1/analyze`` — an image (multipart field ``file``, or the raw bytes with an ``image/*``
  Content-Type) → the JSON ``salface analyze`` prints for one image (``ImageResult.to_dict()``).
* ``POST /v1/explain`` — same input → per face the crop | saliency | reweighted triplet and, where
  PyTorch and the models allow, a class activation map per task; JSON with PNG data URLs, or one
  face's panel as ``image/png`` (``format=png&face=k``).
* ``GET /v1/models`` — the loaded models (names, tasks, labels, SHA-256 from the manifest), the
  detectors and the limits. ``GET /health`` — liveness and the gate's counters.
* ``GET /`` — the web page (``static/``).

Every error is JSON ``{"error": code, "detail": reason}`` with a 4xx status for anything the
client sent, 503 + ``Retry-After`` when the server is full, 504 past the request timeout. The
analysis runs in a thread pool of ``max_concurrent`` threads, so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .limits import MULTIPART_OVERHEAD, BodyLimit, ApiError, Gate, Settings
from .service import Options, Service, Upload

log = logging.getLogger("uvicorn.error.salface")  # shown with Uvicorn's own log lines

STATIC = Path(__file__).resolve().parent / "static"

PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

_STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                 413: "upload_too_large", 415: "unsupported_media_type", 422: "invalid_parameter"}

_IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff"]

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image: a multipart form with the file in field `file` (other form "
                       "fields may carry the options when the query does not), or the raw image "
                       "bytes with an `image/*` Content-Type.",
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"},
                               "detector": {"type": "string"}, "tasks": {"type": "string"},
                               "max_faces": {"type": "integer"}}}},
            **{t: {"schema": {"type": "string", "format": "binary"}} for t in _IMAGE_TYPES},
        },
    }
}

_ERROR_SCHEMA = {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}}}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "empty upload, malformed multipart body, missing `file` field",
          "content": _ERROR_SCHEMA},
    413: {"description": "upload over `max_upload_mb`, or image over `max_pixels`",
          "content": _ERROR_SCHEMA},
    415: {"description": "Content-Type is not multipart/form-data or image/*", "content": _ERROR_SCHEMA},
    422: {"description": "not an image, truncated or corrupt image, bad option", "content": _ERROR_SCHEMA},
    503: {"description": "every analysis slot and queue place is taken; see Retry-After",
          "content": _ERROR_SCHEMA},
    504: {"description": "the request took longer than `timeout`", "content": _ERROR_SCHEMA},
}

Q_DETECTOR = Query(None, description="Face detector: yunet, dlib-hog, mediapipe or whole "
                                      "(the server's default if omitted).")
Q_TASKS = Query(None, description="Comma-separated tasks to answer, a subset of the loaded ones "
                                  "(age,gender,expression).")
Q_MAX_FACES = Query(None, ge=1, description="Keep at most N faces (highest detector score first); "
                                            "at most the server's --max-faces.")


def _safe_name(name: str | None) -> str:
    """A client-given file name fit to echo back: no path, no control characters, ≤ 200 chars."""
    base = os.path.basename((name or "").replace("\\", "/"))
    clean = "".join(ch for ch in base if ch.isprintable())[:200]
    return clean or "upload"


async def read_upload(request: Request) -> tuple[Upload, dict[str, str]]:
    """The uploaded image and any text form fields (ApiError for a malformed request)."""
    ctype = request.headers.get("content-type", "")
    mime = ctype.split(";", 1)[0].strip().lower()
    if mime == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=16)
        except ApiError:
            raise
        except Exception as exc:  # malformed multipart, too many parts, bad boundary
            reason = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
            raise ApiError(400, "bad_multipart",
                           f"could not parse the multipart/form-data body: {reason}") from None
        try:
            part = form.get("file")
            if part is None or isinstance(part, str):
                raise ApiError(400, "missing_file", "the multipart body has no file in field "
                                                    "'file' (the image goes there)")
            name = _safe_name(part.filename)
            part_type = (part.content_type or "").split(";", 1)[0].strip().lower()
            if part_type and not (part_type.startswith("image/")
                                  or part_type == "application/octet-stream"):
                raise ApiError(415, "unsupported_media_type",
                               f"{name}: the file part's Content-Type is {part_type!r}; send an "
                               "image (image/*)")
            data = await part.read()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        finally:
            await form.close()
        return Upload(data, name), fields
    if mime.startswith("image/"):
        name = _safe_name(request.headers.get("x-filename"))
        return Upload(await request.body(), name), {}
    got = f"Content-Type {mime!r}" if mime else "no Content-Type"
    raise ApiError(415, "unsupported_media_type",
                   f"{got}: send multipart/form-data with the image in field 'file', or the raw "
                   "image bytes with an image/* Content-Type (image/png, image/jpeg, ...)")


def _pick(query: Optional[Any], fields: dict[str, str], key: str) -> Any:
    return query if query is not None else fields.get(key)


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """The ASGI app. ``service`` may be given (already loaded, or loaded at start-up);
    by default one :class:`Service` — one Analyzer — is built when the server starts."""
    settings = settings or Settings()
    service = service or Service(settings)
    gate = Gate(settings.max_concurrent, settings.max_queue)
    started_at = time.time()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool = ThreadPoolExecutor(max_workers=settings.max_concurrent,
                                  thread_name_prefix="salface-serve")
        app.state.pool = pool
        if not service.loaded:
            t0 = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(pool, service.load)
            log.info("salface serve (pid %d): models loaded in %.1f s: %s", os.getpid(),
                     time.perf_counter() - t0,
                     ", ".join(c["name"] for c in service.models()["classifiers"]))
        try:
            yield
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="salface", version=__version__, lifespan=lifespan,
        description="Find faces and classify age group, gender and expression "
                    "(detect → crop → ML-Net saliency → reweight → classify).",
    )
    app.state.settings, app.state.service, app.state.gate = settings, service, gate
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes, overhead=MULTIPART_OVERHEAD)

    # ------------------------------------------------------------------ errors
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "body"))
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return JSONResponse({"error": "invalid_parameter", "detail": "; ".join(parts)},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal_error",
                             "detail": f"{type(exc).__name__}: {exc}"}, status_code=500)

    # ------------------------------------------------------------------ the gate
    async def run_limited(fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the thread pool, under the gate and the request timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.timeout
        await gate.acquire(settings.timeout)
        t0 = loop.time()
        try:
            fut = loop.run_in_executor(app.state.pool, functools.partial(fn, *args))
        except BaseException:
            gate.release()
            raise
        gate.release_when_done(fut, t0)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), max(deadline - loop.time(), 1e-3))
        except asyncio.TimeoutError:
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieve, quietly
            raise ApiError(504, "timeout", f"the analysis did not finish within the request "
                                           f"timeout of {settings.timeout:g} s") from None

    async def request_options(request: Request, detector: Optional[str], tasks: Optional[str],
                              max_faces: Optional[int]) -> tuple[Upload, Options]:
        upload, fields = await read_upload(request)
        service.check(upload)  # an empty or over-size upload is refused before it queues
        opts = service.options(detector=_pick(detector, fields, "detector"),
                               tasks=_pick(tasks, fields, "tasks"),
                               max_faces=_pick(max_faces, fields, "max_faces"))
        return upload, opts

    # ------------------------------------------------------------------ endpoints
    @app.post("/v1/analyze", summary="Find and classify every face of one image",
              openapi_extra=UPLOAD_BODY, responses=ERROR_RESPONSES, tags=["analysis"])
    async def analyze(request: Request, detector: Optional[str] = Q_DETECTOR,
                      tasks: Optional[str] = Q_TASKS, max_faces: Optional[int] = Q_MAX_FACES
                      ) -> JSONResponse:
        """The JSON `salface analyze` prints for one image: `source` (the uploaded file name),
        `width`, `height` and per face its box, score, five landmarks, crop box and, per task,
        label, confidence and probabilities."""
        upload, opts = await request_options(request, detector, tasks, max_faces)
        return JSONResponse(await run_limited(service.analyze_json, upload, opts))

    @app.post("/v1/explain", summary="Saliency panels (and class activation maps) per face",
              openapi_extra=UPLOAD_BODY, tags=["analysis"],
              responses={**ERROR_RESPONSES, 200: {"content": {"application/json": {},
                                                              "image/png": {}}}})
    async def explain(request: Request, detector: Optional[str] = Q_DETECTOR,
                      tasks: Optional[str] = Q_TASKS, max_faces: Optional[int] = Q_MAX_FACES,
                      size: int = Query(160, ge=32, le=512, description="Side of each tile (px)."),
                      cams: bool = Query(True, description="Add a class activation map per task "
                                                           "(needs PyTorch on the server)."),
                      format: Literal["json", "png"] = Query(
                          "json", description="json: every face, PNGs as data URLs; png: one "
                                              "face's panel (see `face`)."),
                      face: int = Query(0, ge=0, description="Which face, for format=png.")
                      ) -> Response:
        """Per face the papers' Figure-2 triplet — crop | saliency map | reweighted crop — and,
        when available, the class activation map of each task's predicted label. `cams` in the
        JSON says whether CAMs were made and, if not, why."""
        upload, opts = await request_options(request, detector, tasks, max_faces)
        if format == "png":
            png, status = await run_limited(service.explain_png, upload, opts, size, cams, face)
            return Response(png, media_type="image/png",
                            headers={"X-Salface-Cams": "available" if status["available"]
                                     else "unavailable"})
        body, _ = await run_limited(service.explain, upload, opts, size, cams)
        return JSONResponse(body)

    @app.get("/v1/models", summary="The loaded models, detectors and limits", tags=["server"])
    async def models() -> JSONResponse:
        return JSONResponse(service.models())

    @app.get("/health", summary="Liveness and load", tags=["server"])
    async def health() -> JSONResponse:
        return JSONResponse({
            "status": "ok" if service.loaded else "loading", "version": __version__,
            "pid": os.getpid(), "uptime_s": round(time.time() - started_at, 1),
            "active": gate.active, "waiting": gate.waiting, "refused": gate.refused,
            "max_concurrent": gate.max_active, "max_queue": gate.max_waiting,
        }, status_code=200 if service.loaded else 503)

    # ------------------------------------------------------------------ the page
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP,
                                                            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


@contextmanager
def background(app: FastAPI, host: str = "127.0.0.1", port: int = 0,
               log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` with Uvicorn in a daemon thread (port 0: a free one) and yield its base URL,
    e.g. ``"http://127.0.0.1:38211"``; the server stops when the block ends. For notebooks,
    tests and benchmarks; ``salface serve`` is the way to deploy."""
    import socket
    import threading

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_keep_alive=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="salface-serve")
    thread.start()
    try:
        deadline = time.monotonic() + 300
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start (its log says why)")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start within 300 s")
            time.sleep(0.02)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


def create_app_from_env() -> FastAPI:
    """App factory for Uvicorn worker processes: settings from ``$SALFACE_SERVE_SETTINGS``."""
    return create_app(Settings.from_env())


def run(settings: Settings) -> None:
    """Serve until interrupted (``salface serve``). With ``workers > 1`` each Uvicorn worker
    process builds its own app, and its own Analyzer, from the settings passed in the environment."""
    import uvicorn

    common = dict(host=settings.host, port=settings.port, log_level=settings.log_level,
                  timeout_keep_alive=5, server_header=False)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
    else:
        from .limits import SETTINGS_ENV

        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run("salface.serve.app:create_app_from_env", factory=True,
                    workers=settings.workers, **common)
