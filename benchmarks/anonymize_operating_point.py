"""Choose anonymisation's defaults on the TRAINING pool's human labels (never the benchmarks).

    python benchmarks/anonymize_operating_point.py POOL [--photos 300]

For random photos of POOL/labels/groupselfies.json (human face boxes): per detection setting
(passes at several long sides, a mirrored pass, threshold), the share of labelled faces of 10 px or
more that a mask covers (a detection at IoU >= 0.3), by face width, the share of the image masked
outside the labelled faces (pad 0.15, ellipse), and the detection time per photo (1 thread).
"""
import argparse
import json
import random
import time

import cv2
import numpy as np

from featherface import FaceDetector
from featherface.core.anonymize import masked_fraction
from featherface.core.geometry import iou_matrix

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("pool")
ap.add_argument("--photos", type=int, default=300)
a = ap.parse_args()
labels = json.load(open(f"{a.pool}/labels/groupselfies.json"))["images"]
names = sorted(labels)
random.Random(1).shuffle(names)
photos = [(cv2.imread(f"{a.pool}/{n}"), np.array(labels[n]["boxes"], np.float64).reshape(-1, 4)) for n in names[: a.photos]]
det = FaceDetector.from_pretrained("nano", score_threshold=0.05, num_threads=1)
BANDS = ((10, 20), (20, 40), (40, 1e9))
PASSES = {"640": ((640,), False), "640 + mirrored": ((640,), True), "640 + 1280": ((640, 1280), False),
          "640 + 1280 + mirrored": ((640, 1280), True)}
for name, (sides, flip) in PASSES.items():
    found, seconds = [], 0.0
    for img, _ in photos:
        t0 = time.perf_counter()
        found.append(det.detect_passes(img, sides, flip=flip))
        seconds += time.perf_counter() - t0
    for t in (0.05, 0.1, 0.2, 0.3):
        hit = np.zeros(len(BANDS)), np.zeros(len(BANDS))
        outside = pixels = 0
        for (img, gt), d in zip(photos, found):
            b = d.boxes[d.scores >= t]
            width = gt[:, 2] - gt[:, 0]
            covered = (iou_matrix(gt, b) >= 0.3).any(axis=1) if len(b) and len(gt) else np.zeros(len(gt), bool)
            for k, (lo, hi) in enumerate(BANDS):
                band = (width >= lo) & (width < hi)
                hit[0][k] += covered[band].sum()
                hit[1][k] += band.sum()
            hw = img.shape[:2]
            outside += (masked_fraction(hw, b, 0.15, "ellipse") & ~masked_fraction(hw, gt, 0.15, "box")).sum()
            pixels += hw[0] * hw[1]
        bands = ", ".join(f"{lo}-{hi if hi < 1e9 else ''} px {hit[0][k] / max(hit[1][k], 1):.3f}" for k, (lo, hi) in enumerate(BANDS))
        print(f"{name}, threshold {t}: faces >= 10 px covered {hit[0].sum() / hit[1].sum():.3f} of {int(hit[1].sum())} "
              f"({bands}); masked outside {outside / pixels * 100:.2f} %; {seconds / len(photos) * 1e3:.0f} ms/photo", flush=True)
