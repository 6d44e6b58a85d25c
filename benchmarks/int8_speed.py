"""INT8 vs fp32 Nano against YuNet-n, one interleaved run (640x480 crowd photo, 1 thread, end to end).

    featherface export --model nano -o /tmp/int8/nano.onnx --int8 --calibration-images POOL --calibration-count 100
    python benchmarks/int8_speed.py /tmp/int8/nano_int8.onnx [SHARED]

Prints each median and its ratio to YuNet-n. Close other CPU-heavy programs first.
"""
import statistics
import sys
from pathlib import Path

import cv2

from featherface import FaceDetector
from featherface.benchmarks.speed import interleaved_times
from featherface.peers import load_peers

int8 = sys.argv[1]
shared = Path(sys.argv[2] if len(sys.argv) > 2 else "../shared")
img = cv2.resize(cv2.imread(str(shared / "images" / "crowd_baseball.jpg")), (640, 480))
dets = {f"nano {kind} {backend}": FaceDetector.from_pretrained(path, backend=backend, num_threads=1, long_side=None)
        for kind, path in (("fp32", "nano"), ("int8", int8)) for backend in ("openvino", "onnxruntime")}
fns = {k: (lambda d=d: d.detect_arrays(img)) for k, d in dets.items()}
yunet = next(p for p in load_peers(shared / "peers", num_threads=1) if p.name == "YuNet-n")
fns["YuNet-n"] = lambda: yunet.detect_arrays(img, yunet.score_threshold)
times = interleaved_times(fns, 5, 40)
base = statistics.median(times["YuNet-n"])
for k, v in times.items():
    print(f"{k}: median {statistics.median(v):.2f} ms, / YuNet-n {statistics.median(v) / base:.2f}")
