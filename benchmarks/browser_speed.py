"""The page's detector (onnxruntime-web in headless Chromium) against native onnxruntime, in turns.

    python benchmarks/browser_speed.py [SHARED] [--rounds 3] [--repeat 20]

The crowd photo resized to 640x480 (PNG, so both decode the same pixels); end to end per image
(decode, resize, inference, post-processing), one thread and two. Native times are
FaceDetector.detect on the decoded array; browser times window.featherface.detect on a data: URL
(its decode included). Both as shipped (each face's landmarks read again in the second look) and
the first look alone (refine_landmarks off). Needs Debian's chromium and `npm ci` in web/. Prints
medians and ratios.
"""
import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import cv2

from featherface import FaceDetector
from featherface.apps.webapp import make_server

REPO = Path(__file__).resolve().parent.parent

parser = argparse.ArgumentParser()
parser.add_argument("shared", nargs="?", default=str(REPO.parent / "shared"))
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--repeat", type=int, default=20)
args = parser.parse_args()

image = cv2.resize(cv2.imread(str(Path(args.shared) / "images" / "crowd_baseball.jpg")), (640, 480))
server = make_server("127.0.0.1", 0)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/"
times: dict[str, list[float]] = {}
loads: dict[str, list[float]] = {}
with tempfile.TemporaryDirectory() as tmp:
    png = Path(tmp) / "crowd_640x480.png"
    cv2.imwrite(str(png), image)
    detectors = {t: FaceDetector.from_pretrained("nano", num_threads=t) for t in (1, 2)}
    looks = {"": True, ", first look only": False}
    print(f"{len(detectors[1].detect(image))} faces")
    for _ in range(args.rounds):
        for t in (1, 2):
            for look, refine in looks.items():
                det = detectors[t]
                det.detect(image, refine_landmarks=refine)  # warm
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    det.detect(image, refine_landmarks=refine)
                    times.setdefault(f"native onnxruntime, {t} thread(s){look}", []).append((time.perf_counter() - t0) * 1e3)
                out = subprocess.run(["node", str(REPO / "web" / "run_page.mjs"), url, "--threads", str(t), "--repeat",
                                      str(args.repeat + 1), "--options", json.dumps({"refineLandmarks": refine}), str(png)],
                                     capture_output=True, text=True, check=True, cwd=REPO / "web")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                assert result["threads"] == t, result
                times.setdefault(f"browser (wasm SIMD), {t} thread(s){look}", []).extend(result["results"][0]["ms"][1:])
                loads.setdefault(f"browser, {t} thread(s)", []).append(result["load_ms"])
server.shutdown()
base = statistics.median(times["native onnxruntime, 1 thread(s)"])
for name, values in times.items():
    med = statistics.median(values)
    print(f"{name}: median {med:.1f} ms per image, x{med / base:.2f} native 1 thread")
for name, values in loads.items():
    print(f"{name}: runtime + model load median {statistics.median(values):.0f} ms")
