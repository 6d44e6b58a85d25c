"""``featherface serve`` end to end: a real server process on 127.0.0.1, a real HTTP client (httpx)."""
import io
import json
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (the [test] extra) is not installed")

from featherface import FaceDetector, read_image  # noqa: E402
from featherface.core.weights import EXAMPLE_IMAGE  # noqa: E402
from tests.conftest import shared_file  # noqa: E402

TOKEN = "s3cret-token"


class Server:
    """``featherface serve --port 0 ARGS`` in a subprocess; ``url`` once it listens."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "featherface", "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://(\S+?)/", line)
        assert m, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.url = f"http://{m.group(1)}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


@pytest.fixture(scope="module")
def server():
    s = Server("--token", TOKEN, "--workers", "2", "--max-body", "3000000", "--max-pixels", "30000000")
    yield s
    assert s.stop() == 0


def _auth() -> dict:
    return {"Authorization": f"Bearer {TOKEN}"}


def _post(server, path, body, content_type="image/jpeg", **kw):
    return httpx.post(server.url + path, content=body, headers={"Content-Type": content_type, **_auth()}, timeout=60, **kw)


def test_detect_gives_the_detectors_faces(server):
    path = shared_file("images/group_indoor.jpg")
    body = path.read_bytes()
    r = _post(server, "/detect", body)
    assert r.status_code == 200, r.text
    got = r.json()
    image = read_image(path)
    want = FaceDetector.from_pretrained("nano").detect_arrays(image)
    assert (got["width"], got["height"]) == (image.shape[1], image.shape[0])
    assert len(got["faces"]) == len(want) > 3
    np.testing.assert_allclose([f["box"] for f in got["faces"]], want.boxes, atol=0.01)
    np.testing.assert_allclose([f["score"] for f in got["faces"]], want.scores, atol=1e-4)
    np.testing.assert_allclose([f["landmarks"] for f in got["faces"]], want.landmarks, atol=0.01)
    # multipart upload, and the CLI's query options
    r2 = httpx.post(server.url + "/detect?score_threshold=0.9&long_side=320", files={"image": ("x.jpg", body, "image/jpeg")},
                    headers=_auth(), timeout=60)
    low = FaceDetector.from_pretrained("nano", score_threshold=0.9, long_side=320).detect_arrays(image)
    assert r2.status_code == 200 and len(r2.json()["faces"]) == len(low)
    # the first look's landmarks on asking
    r3 = _post(server, "/detect?refine_landmarks=false", body)
    first = FaceDetector.from_pretrained("nano", refine_landmarks=False).detect_arrays(image)
    np.testing.assert_allclose([f["landmarks"] for f in r3.json()["faces"]], first.landmarks, atol=0.01)
    assert np.abs(first.landmarks - want.landmarks).max() > 0.1


def test_anonymize_and_crop(server):
    body = EXAMPLE_IMAGE.read_bytes()
    r = _post(server, "/anonymize?mode=solid&shape=box&pad=0", body)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.headers["x-faces"] == "1"
    from PIL import Image

    masked = np.asarray(Image.open(io.BytesIO(r.content)))
    face = FaceDetector.from_pretrained("nano").detect_arrays(read_image(EXAMPLE_IMAGE)).boxes[0].astype(int)
    assert masked[face[1] + 5:face[3] - 5, face[0] + 5:face[2] - 5].max() < 40  # filled black (JPEG noise aside)
    png = io.BytesIO()
    Image.open(EXAMPLE_IMAGE).save(png, "PNG")
    r = _post(server, "/anonymize", png.getvalue(), "image/png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"  # the input's format
    r = _post(server, "/crop?align=true", body)
    assert r.status_code == 200 and r.headers["x-faces"] == "1"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert Image.open(z.open("face0.png")).size == (112, 112) and json.loads(z.read("faces.json"))["faces"]
    assert _post(server, "/anonymize?mode=blurr", body).status_code == 400
    assert _post(server, "/crop?size=200", body).status_code == 400


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height and whose pixels never come."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("body, content_type, status", [
    (EXAMPLE_IMAGE.read_bytes()[:4000], "image/jpeg", 422),  # truncated
    (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "image/jpeg", 422),  # a JPEG start, then garbage
    (b"just some text, not an image", "image/jpeg", 415),
    (b"{}", "application/json", 415),
    (_png_header(100_000, 100_000), "image/png", 413),  # declares 10 G pixels: refused before decoding
    (_png_header(6000, 6000), "image/png", 413),  # 36 M pixels: under Pillow's ceiling, over --max-pixels
    (b"\0" * 3_000_001, "image/jpeg", 413),  # over --max-body
    (b"", "image/jpeg", 400),
])
def test_bad_uploads_get_one_line_json_errors_and_the_server_stays_up(server, body, content_type, status):
    r = _post(server, "/detect", body, content_type)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and "\n" not in r.json()["error"]
    assert httpx.get(server.url + "/health").json()["status"] == "ok"


def test_token_health_metrics_openapi_and_page(server):
    body = EXAMPLE_IMAGE.read_bytes()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = httpx.post(server.url + "/detect", content=body, headers={"Content-Type": "image/jpeg", **headers})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["error"]
    health = httpx.get(server.url + "/health").json()  # GETs need no token
    assert health["model"] == "nano" and health["version"]
    metrics = httpx.get(server.url + "/metrics").text
    assert re.search(r'featherface_requests_total\{endpoint="detect",status="401"\} [1-9]', metrics)
    assert "featherface_queue_depth" in metrics and "featherface_request_seconds_bucket" in metrics
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/detect", "/anonymize", "/crop", "/health", "/metrics"} <= set(spec["paths"])
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and b"featherface.js" in page.content
    assert page.headers["cross-origin-embedder-policy"] == "require-corp"
    assert httpx.get(server.url + "/config.json").json()["settings"]["anonymize"]["scoreThreshold"] == 0.025
    assert httpx.get(server.url + "/../pyproject.toml").status_code == 404
    assert httpx.get(server.url + "/detect").status_code == 405


def test_overload_gives_503_with_retry_after_and_nothing_else():
    s = Server("--workers", "1", "--queue", "0")
    try:
        body = shared_file("images/crowd_baseball.jpg").read_bytes()
        codes, retry = [], []

        def client():
            r = httpx.post(s.url + "/detect?long_side=1280", content=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
            codes.append(r.status_code)
            if r.status_code == 503:
                retry.append(r.headers.get("retry-after"))
        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert set(codes) <= {200, 503} and codes.count(200) >= 1 and codes.count(503) >= 1, codes
        assert set(retry) == {"1"}
        assert httpx.get(s.url + "/health").status_code == 200
    finally:
        assert s.stop() == 0


def test_sigterm_drains_the_request_in_flight_and_exits_0():
    s = Server("--workers", "1")
    body = shared_file("images/crowd_baseball.jpg").read_bytes()
    result = {}

    def client():
        result["r"] = httpx.post(s.url + "/anonymize?long_side=2048&second_pass=0", content=body,
                                 headers={"Content-Type": "image/jpeg"}, timeout=60)
    t = threading.Thread(target=client)
    t.start()
    time.sleep(0.5)  # the request is in inference
    assert s.stop(signal.SIGTERM) == 0
    t.join(60)
    assert result["r"].status_code == 200 and int(result["r"].headers["x-faces"]) > 10
    assert "stopped" in s.proc.stdout.read()


def test_serve_refuses_a_bad_port_or_model_in_one_line():
    for args, message in ((["--port", "80000"], "--port"), (["--model", "missing.onnx"], "missing.onnx")):
        r = subprocess.run([sys.executable, "-m", "featherface", "serve", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
