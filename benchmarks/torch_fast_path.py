"""Fastest exact PyTorch path: layout and graph variants of each model, one interleaved run.

    python benchmarks/torch_fast_path.py [SHARED] [--threads 1]

For Nano, V1 and RetinaFace-MobileNet0.25 (640x480 crowd photo, network forward only, BatchNorm
folded as the detector does) it times: the contiguous (NCHW) layout, channels_last (NHWC), and
channels_last + ``torch.jit.freeze``/``optimize_for_inference``; prints each median, its ratio to
NCHW and the largest output difference from NCHW. Close other CPU-heavy programs first.
"""
import argparse
import statistics
from pathlib import Path

import cv2
import torch

from featherface.benchmarks.speed import interleaved_times
from featherface.models.loading import load_any, checkpoint_path
from featherface.models.fuse import fold_batchnorm

ap = argparse.ArgumentParser()
ap.add_argument("shared", nargs="?", default="../shared")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--repeat", type=int, default=30)
args = ap.parse_args()
torch.set_num_threads(args.threads)
shared = Path(args.shared)
img = cv2.resize(cv2.imread(str(shared / "images" / "crowd_baseball.jpg")), (640, 480))
x = torch.from_numpy(cv2.dnn.blobFromImage(img, 1.0, None, (104, 117, 123)))
weights = {"nano": checkpoint_path("nano"),
           "v1": shared / "weights" / "featherface_v1_official.pth",
           "retinaface": shared / "peers" / "retinaface_mnet0.25_biubug6.pth"}
fns, outs = {}, {}
for name, path in weights.items():
    if not Path(path).is_file():
        print(f"{name}: {path} not found, skipped")
        continue
    model = fold_batchnorm(load_any(Path(path), "cpu")[0].eval())
    nhwc = fold_batchnorm(load_any(Path(path), "cpu")[0].eval()).to(memory_format=torch.channels_last)
    x_nhwc = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(nhwc, x_nhwc).eval()))
    variants = {"nchw": (model, x), "channels_last": (nhwc, x_nhwc), "channels_last+freeze": (frozen, x_nhwc)}
    for v, (m, inp) in variants.items():
        with torch.inference_mode():
            outs[name, v] = [o.clone() for o in m(inp)]
        fns[f"{name} {v}"] = lambda m=m, inp=inp: torch.inference_mode()(m)(inp)
times = interleaved_times(fns, 3, args.repeat)
for key, ts in times.items():
    name, v = key.split(" ", 1)
    base = statistics.median(times[f"{name} nchw"])
    diff = max(float((a - b).abs().max()) for a, b in zip(outs[name, v], outs[name, "nchw"]))
    print(f"{key:32s} median {statistics.median(ts):7.2f} ms  / nchw {statistics.median(ts) / base:.2f}  max |diff| {diff:.2e}")
