"""The in-browser page (``featherface/web``): its files, its model configuration, and a small
static server with the cross-origin-isolation headers that WebAssembly threads need.

What the page loads, by URL path:

* ``index.html``, ``featherface.js`` (the ``window.featherface`` API), ``app.js``, ``style.css``;
* ``vendor/ort.wasm.bundle.min.mjs`` and ``vendor/ort-wasm-simd-threaded.wasm`` (onnxruntime-web,
  pinned in ``web/package-lock.json``; the wheel holds the binary gzip-compressed and the server
  sends it with ``Content-Encoding: gzip``);
* ``models/nano.onnx``, ``models/nano-int8.onnx``: the bundled graphs;
* ``config.json``: per model its URL, score threshold and mean, read from the graph's metadata,
  so the page uses the Python package's defaults.

:func:`write_site` writes the same tree, uncompressed, to a folder any static host can serve.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
from http import HTTPStatus
from importlib.metadata import version
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from functools import lru_cache
from pathlib import Path

from ..core.constants import MIN_SIZES, MIRROR_ORDER, STEPS, VARIANCES
from ..core.errors import UsageError
from ..core.settings import page_settings
from ..core.weights import WEIGHTS_DIR

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
#: the graphs the page can load: URL name -> bundled file
MODELS = {"nano": "nano.onnx", "nano-int8": "nano_int8.onnx"}
STATIC = ("index.html", "featherface.js", "app.js", "style.css", "vendor/ort.wasm.bundle.min.mjs")
WASM = "vendor/ort-wasm-simd-threaded.wasm"
#: SharedArrayBuffer (and so WebAssembly threads) needs a cross-origin-isolated page
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
                     "Cross-Origin-Resource-Policy": "same-origin"}
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".json": "application/json",
         ".wasm": "application/wasm", ".onnx": "application/octet-stream"}


def site_config() -> dict:
    """``config.json``: each model's URL, score threshold and mean (the graph's own metadata), and
    the detector's and anonymiser's defaults (:func:`featherface.core.settings.page_settings`)."""
    from ..core.runners import OnnxRunner

    models = {}
    for name, filename in MODELS.items():
        path = WEIGHTS_DIR / filename
        runner = OnnxRunner(path)  # reads the graph's metadata as the Python detector does
        models[name] = {"url": f"models/{filename}", "score_threshold": runner.score_threshold,
                        "mean": list(runner.contract["mean"]), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {"version": version("featherface"), "default_model": "nano", "models": models, "settings": page_settings(),
            "anchors": {"minSizes": [list(s) for s in MIN_SIZES], "steps": list(STEPS), "variances": list(VARIANCES),
                        "mirrorOrder": list(MIRROR_ORDER)}}


def site_files() -> dict[str, Path]:
    """URL path -> file on disk for everything but ``config.json`` and the (compressed) wasm."""
    files = {name: WEB_DIR / name for name in STATIC}
    files.update({f"models/{f}": WEIGHTS_DIR / f for f in MODELS.values()})
    missing = [str(p) for p in [*files.values(), WEB_DIR / (WASM + ".gz")] if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"the web page's files are missing from this installation: {', '.join(missing)}")
    return files


def write_site(folder: Path, overwrite: bool = False) -> list[Path]:
    """Write the page, the models, ``config.json`` and the uncompressed wasm to ``folder`` (any
    static host can serve it; threads need the host to send :data:`ISOLATION_HEADERS`). Files of
    those names already there are replaced only with ``overwrite`` (:class:`UsageError` otherwise,
    before anything is written): they may be the user's own ``index.html`` or ``app.js``."""
    files = site_files()
    targets = [folder / url for url in [*files, WASM, "config.json"]]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise UsageError(f"{folder} already holds {len(existing)} of the page's files (e.g. {existing[0]}): "
                         "choose an empty folder, or replace them with --overwrite")
    written = []
    for url, src in files.items():
        dst = folder / url
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        written.append(dst)
    wasm = folder / WASM
    with gzip.open(WEB_DIR / (WASM + ".gz"), "rb") as fh, open(wasm, "wb") as out:
        shutil.copyfileobj(fh, out)
    (folder / "config.json").write_text(json.dumps(site_config(), indent=2) + "\n")
    return [*written, wasm, folder / "config.json"]


@lru_cache(maxsize=1)
def _site() -> tuple[dict[str, Path], bytes]:
    return site_files(), json.dumps(site_config()).encode()


def page_file(path: str) -> tuple[bytes, str, str | None] | None:
    """``(body, Content-Type, Content-Encoding)`` of the page's URL ``path`` (``""``: index.html),
    or None for anything that is not one of its files (nothing else from the disk is served)."""
    files, config = _site()
    path = path.split("?", 1)[0].split("#", 1)[0].lstrip("/") or "index.html"
    if path == "config.json":
        return config, TYPES[".json"], None
    if path == WASM:
        # every browser that runs WebAssembly threads accepts gzip
        return (WEB_DIR / (WASM + ".gz")).read_bytes(), TYPES[".wasm"], "gzip"
    src = files.get(path)
    if src is None:
        return None
    return src.read_bytes(), TYPES.get(src.suffix, "application/octet-stream"), None


class _Handler(SimpleHTTPRequestHandler):
    """Serves only the page's own files (no directory listing, nothing else from the disk)."""

    def log_message(self, format: str, *args) -> None:  # requests go to logging, not stderr
        log.debug("%s " + format, self.address_string(), *args)

    def end_headers(self) -> None:
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def _send(self, body: bytes, content_type: str, encoding: str | None = None, head: bool = False) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        found = page_file(self.path)
        if found is None:
            return self.send_error(HTTPStatus.NOT_FOUND)
        self._send(*found, head=head)

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)


def make_server(host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server for the page (not started: call ``serve_forever``). ``port=0`` picks a free port
    (``server.server_address``)."""
    _site()  # the files are checked (and config.json built) before the server starts
    return ThreadingHTTPServer((host, port), _Handler)
