"""The light path (numpy + onnxruntime / OpenVINO) against the PyTorch path and the peers, in one
interleaved run: 640x480 crowd photo, one thread, end to end (pre-processing, network, decoding,
NMS, box voting). FeatherFace rows are one look, as the peers; one more row is Nano as it ships,
its landmarks read again in the second look (``featherface.core.refine``), which costs per face.

    python benchmarks/light_speed.py [SHARED] [--repeat 60]

Prints the median milliseconds of each and its ratio to the light path (Nano on onnxruntime).
"""
import argparse
import statistics
from pathlib import Path

import cv2

from featherface import FaceDetector
from featherface.benchmarks.speed import interleaved_times
from featherface.peers import load_peers

ap = argparse.ArgumentParser()
ap.add_argument("shared", nargs="?", default=str(Path(__file__).resolve().parent.parent.parent / "shared"))
ap.add_argument("--repeat", type=int, default=60)
a = ap.parse_args()
shared = Path(a.shared)
img = cv2.resize(cv2.imread(str(shared / "images" / "crowd_baseball.jpg")), (640, 480))

import torch  # noqa: E402  (the torch path's own thread setting)

torch.set_num_threads(1)
one = dict(num_threads=1, long_side=None, refine_landmarks=False)
fns = {"Nano, onnxruntime (light path)": FaceDetector.from_pretrained("nano", **one),
       "Nano INT8, onnxruntime": FaceDetector.from_pretrained("nano-int8", **one),
       "Nano, PyTorch": FaceDetector.from_pretrained("nano", backend="torch", **one)}
V1 = str(shared / "weights" / "featherface_v1_official.pth")
fns["V1, onnxruntime"] = FaceDetector.from_pretrained(V1, backend="onnxruntime", **one)
try:
    fns["Nano, OpenVINO"] = FaceDetector.from_pretrained("nano", backend="openvino", **one)
    fns["Nano INT8, OpenVINO"] = FaceDetector.from_pretrained("nano-int8", backend="openvino", **one)
    fns["V1, OpenVINO"] = FaceDetector.from_pretrained(V1, backend="openvino", **one)
except Exception as exc:  # noqa: BLE001 - the openvino extra is optional
    print(f"OpenVINO skipped: {exc}")
calls = {k: (lambda d=d: d.detect_arrays(img)) for k, d in fns.items()}
shipped = FaceDetector.from_pretrained("nano", num_threads=1, long_side=None)
faces = len(shipped.detect_arrays(img).scores)
calls[f"Nano, onnxruntime, with the landmarks' second look ({faces} faces)"] = lambda: shipped.detect_arrays(img)
retina = FaceDetector.from_pretrained(str(shared / "peers" / "retinaface_mnet0.25_biubug6.pth"), backend="onnxruntime", **one)
calls["RetinaFace-MobileNet0.25, onnxruntime"] = lambda: retina.detect_arrays(img)
try:
    retina_ov = FaceDetector.from_pretrained(str(shared / "peers" / "retinaface_mnet0.25_biubug6.pth"), backend="openvino", **one)
    calls["RetinaFace-MobileNet0.25, OpenVINO"] = lambda: retina_ov.detect_arrays(img)
except Exception as exc:  # noqa: BLE001
    print(f"OpenVINO skipped: {exc}")
for peer in load_peers(shared / "peers", num_threads=1):
    if peer.name in ("YuNet-n", "SCRFD-0.5G"):
        calls[peer.name] = lambda p=peer: p.detect_arrays(img, p.score_threshold)
times = interleaved_times(calls, 5, a.repeat)
base = statistics.median(times["Nano, onnxruntime (light path)"])
print("| detector, engine | ms (median) | / light path |\n|---|---:|---:|")
for k, v in times.items():
    print(f"| {k} | {statistics.median(v):.1f} | {statistics.median(v) / base:.2f} |")
