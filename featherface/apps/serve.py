"""The detector as an HTTP service (``featherface serve``; the ``[serve]`` extra: Starlette, uvicorn,
prometheus-client, python-multipart). A thin layer over the library: detection is
``FaceDetector.detect_arrays``, masking is :class:`featherface.apps.jobs.AnonymizeJob` (the command
line's privacy-first defaults), crops are :class:`featherface.apps.jobs.CropJob`.

Endpoints (OpenAPI document at ``/openapi.json``):

* ``GET /health`` -> ``{"status": "ok", "model": ..., "version": ...}``; ``GET /metrics``: Prometheus text;
* ``POST /detect`` -> ``{"faces": [{"box": [x1, y1, x2, y2], "score": s, "landmarks": [[x, y] x 5]}],
  "width": W, "height": H}`` in pixels of the upright image (EXIF orientation applied);
* ``POST /anonymize`` -> the image with its faces masked, in the input's format (``X-Faces``: how many);
* ``POST /crop`` -> a zip of PNG crops, one per face (``align=true``: 112x112 ArcFace-aligned);
* ``GET /`` and the page's files: the in-browser page (``featherface web``).

A POST body is the image itself (any ``image/*`` or ``application/octet-stream`` Content-Type) or a
``multipart/form-data`` field ``image``. Query options are the command line's (``score_threshold``,
``long_side``, ``refine_landmarks``; ``mode``, ``shape``, ``pad``, ``second_pass``; ``align``, ``size``, ``margin``).

Back-pressure: ``workers`` inference threads (one engine thread each, as batch runs) and room for
``queue`` waiting requests per worker. A request that finds the room full gets 503 with
``Retry-After`` at once; one whose inference outlasts ``timeout`` gets 503 too (its slot frees
when the inference ends, so the backlog stays bounded). Errors are one-line JSON ``{"error": ...}``:
400 bad option or empty body, 401 missing token, 413 body or declared pixels over the limit, 415
not an image, 422 damaged image.

Stateless: any number of replicas can sit behind a load balancer (README, "Service").
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import logging
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, AsyncIterator, Callable

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.detector import FaceDetector
from ..core.errors import ImageTooLarge, InputError, NotAnImage, UsageError
from ..core.files import decode_image, encode_image
from ..core.postprocess import Detections
from ..core.settings import ANONYMIZE, DETECTOR, MAX_CROP_SIZE, MAX_LONG_SIDE, WORKERS
from .jobs import AnonymizeJob, CropJob
from .webapp import ISOLATION_HEADERS, page_file

log = logging.getLogger(__name__)

#: the largest plain-crop margin a request may ask for (long side and crop size: core/settings.py)
MAX_MARGIN = 4.0
#: the endpoints that take an image
POST_ONLY = ("detect", "anonymize", "crop")


@dataclass(frozen=True)
class ServeConfig:
    """The service's settings (``featherface serve --help`` names each)."""

    model: str = "nano"
    #: inference threads, each running one image on one engine thread
    workers: int = WORKERS
    #: requests that may wait per worker beyond those running; more get 503 at once
    queue: int = 4
    #: largest request body in bytes
    max_body: int = 20 * 1024 * 1024
    #: largest image (width x height, from its header, checked before decoding)
    max_pixels: int = 40_000_000
    #: seconds an inference may take (queue wait included) before the answer is 503
    timeout: float = 30.0
    #: with a token, every POST needs ``Authorization: Bearer TOKEN``
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("workers", "max_body", "max_pixels"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.queue < 0 or not self.timeout > 0:
            raise UsageError(f"queue must be >= 0 and timeout > 0, got {self.queue} and {self.timeout}")


class ServeError(Exception):
    """An answer other than 200: status, one-line message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


class Gate:
    """Admission: at most ``capacity`` requests in inference or waiting for it. Used only from the
    event loop's thread (no lock); a slot is freed when its inference ends."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.depth = capacity, 0

    def try_enter(self) -> bool:
        if self.depth >= self.capacity:
            return False
        self.depth += 1
        return True

    def leave(self) -> None:
        self.depth -= 1


class Metrics:
    """Prometheus series of one app (its own registry: several apps in one process stay apart)."""

    def __init__(self, gate: Gate) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("featherface_requests", "HTTP requests answered", ["endpoint", "status"],
                                registry=self.registry)
        self.latency = Histogram("featherface_request_seconds", "time from request to answer", ["endpoint"],
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=self.registry)
        self.faces = Counter("featherface_faces", "faces found", ["endpoint"], registry=self.registry)
        self.queue = Gauge("featherface_queue_depth", "requests in inference or waiting for it", registry=self.registry)
        self.queue.set_function(lambda: gate.depth)


# ------------------------------------------------------------------ request parsing

def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message.splitlines()[0] if message else str(status)}, status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The image bytes of a request: the body itself, or its multipart field ``image``; at most
    ``limit`` bytes (413 beyond, counted as it arrives whatever Content-Length says)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ServeError(413, f"request body of {int(declared):,} bytes is over the limit of {limit:,}")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=8, max_part_size=limit)
        part = form.get("image")
        if part is None or isinstance(part, str):
            raise ServeError(400, "multipart request without a file field 'image'")
        data = await part.read()
    elif ctype.startswith("image/") or ctype in ("application/octet-stream", ""):
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ServeError(413, f"request body is over the limit of {limit:,} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
    else:
        raise ServeError(415, f"Content-Type {ctype!r}: send the image as image/* or multipart/form-data field 'image'")
    if not data:
        raise ServeError(400, "empty request body: send an image")
    if len(data) > limit:
        raise ServeError(413, f"image of {len(data):,} bytes is over the limit of {limit:,}")
    return data


def _number(query: Any, name: str, kind: Callable, low: float, high: float, default: Any) -> Any:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ServeError(400, f"{name}: not a number: {text!r}") from None
    if not low <= value <= high:
        raise ServeError(400, f"{name} must be in [{low}, {high}], got {value}")
    return value


def _long_side(query: Any, default: int | None, name: str = "long_side") -> int | None:
    value = _number(query, name, int, 0, MAX_LONG_SIDE, default)
    if value is not None and 0 < value < 32:
        raise ServeError(400, f"{name} must be 0 (original size) or in [32, {MAX_LONG_SIDE}], got {value}")
    return value or None


def _flag(query: Any, name: str, default: bool) -> bool:
    text = query.get(name)
    if text is None:
        return default
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ServeError(400, f"{name} must be true or false, got {text!r}")


def faces_json(d: Detections) -> list[dict]:
    return [{"box": [round(float(v), 2) for v in b], "score": round(float(s), 4),
             "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in lm]}
            for b, s, lm in zip(d.boxes, d.scores, d.landmarks)]


# ------------------------------------------------------------------ the app

class Service:
    """The endpoints over one detector and one thread pool."""

    def __init__(self, config: ServeConfig, detector: FaceDetector | None = None) -> None:
        self.config = config
        self.detector = detector or FaceDetector.from_pretrained(config.model, num_threads=1)
        self.pool = ThreadPoolExecutor(config.workers, thread_name_prefix="featherface-serve")
        self.gate = Gate(config.workers * (1 + config.queue))
        self.metrics = Metrics(self.gate)
        self.version = version("featherface")

    # --- plumbing

    def _authorised(self, request: Request) -> bool:
        if self.config.token is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.config.token}".encode())

    async def _infer(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the pool if there is room (else 503 at once), within the timeout."""
        if not self.gate.try_enter():
            raise ServeError(503, "busy: the queue is full, retry shortly", {"Retry-After": "1"})
        loop = asyncio.get_running_loop()
        future = self.pool.submit(fn)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self.gate.leave))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.config.timeout)
        except asyncio.TimeoutError:
            raise ServeError(503, f"the image took over {self.config.timeout:g} s: retry later, or send a smaller one",
                             {"Retry-After": "5"}) from None

    async def _image(self, request: Request) -> tuple[np.ndarray, str]:
        data = await read_body(request, self.config.max_body)
        try:
            return decode_image(data, self.config.max_pixels, name="the uploaded image")
        except ImageTooLarge as exc:
            raise ServeError(413, str(exc)) from None
        except NotAnImage as exc:
            raise ServeError(415, str(exc)) from None
        except InputError as exc:
            raise ServeError(422, str(exc)) from None

    def endpoint(self, name: str, handler: Callable) -> Callable:
        """``handler(request) -> Response`` wrapped with auth (POST), the JSON errors and metrics."""
        async def run(request: Request) -> Response:
            start = time.perf_counter()
            try:
                if request.method == "POST" and not self._authorised(request):
                    raise ServeError(401, "missing or wrong token: send Authorization: Bearer TOKEN",
                                     {"WWW-Authenticate": "Bearer"})
                response = await handler(request)
            except ServeError as exc:
                response = _error(exc.status, str(exc), exc.headers)
            except UsageError as exc:  # a bad option value, checked by the library
                response = _error(400, str(exc))
            except Exception:  # noqa: BLE001 - logged in full; the client gets one line
                log.exception("%s failed", name)
                response = _error(500, "internal error")
            self.metrics.requests.labels(name, str(response.status_code)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
            return response
        return run

    # --- endpoints

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.config.model, "arch": self.detector.arch,
                             "version": self.version})

    async def metrics_text(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def detect(self, request: Request) -> Response:
        q = request.query_params
        score = _number(q, "score_threshold", float, 0.0, 1.0, None)
        long_side = _long_side(q, DETECTOR.long_side)
        refine = _flag(q, "refine_landmarks", DETECTOR.refine_landmarks)
        image, _ = await self._image(request)
        kw = {"long_side": long_side, "refine_landmarks": refine} | ({"score_threshold": score} if score is not None else {})
        d = await self._infer(lambda: self.detector.detect_arrays(image, **kw))
        self.metrics.faces.labels("detect").inc(len(d))
        return JSONResponse({"faces": faces_json(d), "width": int(image.shape[1]), "height": int(image.shape[0])})

    async def anonymize(self, request: Request) -> Response:
        q = request.query_params
        second = q.get("second_pass", ANONYMIZE.second_pass)
        if second not in ("full", None):
            second = _long_side(q, None, "second_pass")
        job = AnonymizeJob(self.detector, self.config.model, mode=q.get("mode", ANONYMIZE.mode),
                           shape=q.get("shape", ANONYMIZE.shape), pad=_number(q, "pad", float, 0.0, 4.0, ANONYMIZE.pad),
                           second_pass=second, flip=_flag(q, "flip", ANONYMIZE.flip),
                           score_threshold=_number(q, "score_threshold", float, 0.0, 1.0, ANONYMIZE.score_threshold))
        image, fmt = await self._image(request)
        record, [(_, masked)] = await self._infer(lambda: job.image(image))
        self.metrics.faces.labels("anonymize").inc(len(record["faces"]))
        body = await asyncio.get_running_loop().run_in_executor(self.pool, encode_image, masked, fmt)
        return Response(body, media_type=f"image/{'jpeg' if fmt == 'JPEG' else fmt.lower()}",
                        headers={"X-Faces": str(len(record["faces"]))})

    async def crop(self, request: Request) -> Response:
        q = request.query_params
        align = _flag(q, "align", True)
        job = CropJob(self.detector, self.config.model, align=align,
                      size=_number(q, "size", int, 112, MAX_CROP_SIZE, 112), margin=_number(q, "margin", float, 0, MAX_MARGIN, 0.2))
        image, _ = await self._image(request)
        record, crops = await self._infer(lambda: job.image(image))
        self.metrics.faces.labels("crop").inc(len(crops))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            for (suffix, crop) in crops:
                zf.writestr(f"face{suffix.removeprefix('_face')}", encode_image(crop, "PNG"))
            zf.writestr("faces.json", JSONResponse(record).body)
        return Response(out.getvalue(), media_type="application/zip", headers={"X-Faces": str(len(crops))})

    async def page(self, request: Request) -> Response:
        if request.url.path.strip("/") in POST_ONLY:
            raise ServeError(405, f"{request.url.path} takes POST with an image", {"Allow": "POST"})
        found = page_file(request.path_params.get("path", ""))
        if found is None:
            raise ServeError(404, "not found")
        body, content_type, encoding = found
        headers = {**ISOLATION_HEADERS, "Cache-Control": "no-cache"} | ({"Content-Encoding": encoding} if encoding else {})
        return Response(body, media_type=content_type, headers=headers)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.version))


def create_app(config: ServeConfig | None = None, detector: FaceDetector | None = None) -> Starlette:
    """The ASGI app (run it with uvicorn, or under any ASGI server; Ray Serve can wrap it)."""
    svc = Service(config or ServeConfig(), detector)
    e = svc.endpoint
    routes = [
        Route("/health", e("health", svc.health), methods=["GET"]),
        Route("/metrics", e("metrics", svc.metrics_text), methods=["GET"]),
        Route("/openapi.json", e("openapi", svc.openapi), methods=["GET"]),
        Route("/detect", e("detect", svc.detect), methods=["POST"]),
        Route("/anonymize", e("anonymize", svc.anonymize), methods=["POST"]),
        Route("/crop", e("crop", svc.crop), methods=["POST"]),
        Route("/", e("page", svc.page), methods=["GET"]),
        Route("/{path:path}", e("page", svc.page), methods=["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:  # 404 / 405 as JSON too
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return _error(status, exc.detail if isinstance(exc, HTTPException) else "internal error")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        svc.pool.shutdown(wait=True)  # requests in flight have drained by now (the server waits for them)

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    app.state.service = svc
    return app


def openapi_document(service_version: str) -> dict:
    """The OpenAPI 3.1 description of the endpoints (served at ``/openapi.json``)."""
    image_body = {"required": True, "content": {
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}},
                                           "required": ["image"]}}}}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    errors = {str(k): {"description": v, **error} for k, v in {
        400: "bad option or empty body", 401: "missing or wrong token (with --token)", 413: "body or image too large",
        415: "not an image", 422: "damaged image", 503: "busy or timed out: retry after Retry-After seconds"}.items()}

    def param(name: str, kind: str, description: str, **extra: Any) -> dict:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": {"type": kind, **extra}}
    score = param("score_threshold", "number", "minimum face score", minimum=0, maximum=1)
    long_side = param("long_side", "integer", "resize so the long side has this many pixels (0: original size)",
                      minimum=0, maximum=MAX_LONG_SIDE, default=DETECTOR.long_side)
    refine = param("refine_landmarks", "boolean", "read each face's landmarks again in a second look (false: faster)",
                   default=DETECTOR.refine_landmarks)
    point = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    face = {"type": "object", "properties": {
        "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
                "description": "x1, y1, x2, y2 pixels"},
        "score": {"type": "number"},
        "landmarks": {"type": "array", "items": point, "minItems": 5, "maxItems": 5,
                      "description": "left eye, right eye, nose, left and right mouth corner (image left)"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "FeatherFace", "version": service_version, "description": "Face detection, anonymisation and crops."},
        "components": {"schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}},
                                   "Face": face},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/health": {"get": {"summary": "model and version", "responses": {"200": {"description": "up"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text format"}}}},
            "/detect": {"post": {
                "summary": "faces with boxes, scores and five landmarks", "parameters": [score, long_side, refine],
                "requestBody": image_body, "security": [{"bearer": []}, {}],
                "responses": {"200": {"description": "the faces", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"faces": {"type": "array", "items": {"$ref": "#/components/schemas/Face"}},
                                                     "width": {"type": "integer"}, "height": {"type": "integer"}}}}}},
                              **errors}}},
            "/anonymize": {"post": {
                "summary": "the image with every face masked, in its own format (X-Faces: the count)",
                "parameters": [param("score_threshold", "number", "minimum face score", default=ANONYMIZE.score_threshold),
                               param("mode", "string", "blur, pixelate or solid", default=ANONYMIZE.mode),
                               param("shape", "string", "ellipse or box", default=ANONYMIZE.shape),
                               param("pad", "number", "mask growth per side, share of the box", default=ANONYMIZE.pad),
                               param("second_pass", "string", "'full', 0 or a long side", default=ANONYMIZE.second_pass),
                               param("flip", "boolean", "also detect on the mirrored image", default=ANONYMIZE.flip)],
                "requestBody": image_body, "security": [{"bearer": []}, {}],
                "responses": {"200": {"description": "the masked image", "content": {"image/*": {}}}, **errors}}},
            "/crop": {"post": {
                "summary": "a zip of PNG crops, one per face, and faces.json",
                "parameters": [param("align", "boolean", "ArcFace five-point alignment", default=True),
                               param("size", "integer", "aligned crop size (a multiple of 112)", default=112),
                               param("margin", "number", "plain crops: margin, share of the box", default=0.2)],
                "requestBody": image_body, "security": [{"bearer": []}, {}],
                "responses": {"200": {"description": "zip", "content": {"application/zip": {}}}, **errors}}},
        },
    }
