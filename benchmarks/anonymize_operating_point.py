"""Choose anonymisation's default threshold on the TRAINING pool's human labels (never the benchmarks).

    python benchmarks/anonymize_operating_point.py POOL [--photos 300]

For 300 random photos of POOL/labels/groupselfies.json (human face boxes): the share of labelled
faces of 10 px or more that a mask covers (a detection at IoU >= 0.3) and the share of the image
masked outside the labelled faces, at several thresholds (Nano, long side 640, pad 0.15, ellipse).
"""
import argparse
import json
import random

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
det = FaceDetector.from_pretrained("nano", score_threshold=0.05)
rows = []
for name in names[: a.photos]:
    img = cv2.imread(f"{a.pool}/{name}")
    d = det.detect_arrays(img)
    rows.append((img.shape[:2], np.array(labels[name]["boxes"]).reshape(-1, 4), d.boxes, d.scores))
for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.65):
    hit = total = 0
    outside = pixels = 0
    for hw, gt, boxes, scores in rows:
        b = boxes[scores >= t]
        big = gt[(gt[:, 2] - gt[:, 0]) >= 10]
        total += len(big)
        if len(b) and len(big):
            hit += int((iou_matrix(big, b) >= 0.3).any(axis=1).sum())
        outside += (masked_fraction(hw, b, 0.15, "ellipse") & ~masked_fraction(hw, gt, 0.15, "box")).sum()
        pixels += hw[0] * hw[1]
    print(f"threshold {t}: faces covered {hit / total:.3f} of {total}, masked outside labelled faces "
          f"{outside / pixels * 100:.2f} %")
