"""Choose anonymisation's defaults on the TRAINING pool's human labels (never the benchmarks).

    python benchmarks/anonymize_operating_point.py POOL [--photos 600] [--shrink-to 400] [--write-sample DIR]

For random photos of POOL/labels/groupselfies.json (human face boxes), at their own size or shrunk
to a long side of ``--shrink-to`` px (the small photos people often anonymise): per detection
setting (passes at several long sides, a mirrored pass) and threshold, the share of labelled faces
of 10 px or more left visible (under half of the face box masked) by face width, the share of the
image masked outside the labelled faces (pad 0.15, ellipse), and the detection time per photo (1
thread). The settings that look best are then run as whole commands against deface with
``benchmarks/anonymize_vs_deface.py DIR``, on the same photos written by ``--write-sample DIR``
(``images/`` and ``labels.json``; training photos: never commit them).
"""
import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from featherface import FaceDetector, read_image
from featherface.core.anonymize import masked_fraction
from featherface.core.files import atomic_write_image, write_json
from featherface.core.imageops import resize
from featherface.core.postprocess import nms

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("pool")
ap.add_argument("--photos", type=int, default=600)
ap.add_argument("--shrink-to", type=int, help="shrink every photo to this long side first")
ap.add_argument("--write-sample", type=Path, metavar="DIR", help="write the photos and their labels as a SET and stop")
a = ap.parse_args()
labels = json.load(open(f"{a.pool}/labels/groupselfies.json"))["images"]
names = sorted(labels)
random.Random(7).shuffle(names)
photos = []
for n in names[: a.photos]:
    img, gt = read_image(f"{a.pool}/{n}"), np.array(labels[n]["boxes"], np.float64).reshape(-1, 4)
    if a.shrink_to:
        s = a.shrink_to / max(img.shape[:2])
        img, gt = resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), "area"), gt * s
    photos.append((img, gt))
if a.write_sample:
    (a.write_sample / "images").mkdir(parents=True, exist_ok=True)
    for n, (img, _) in zip(names, photos):
        atomic_write_image(a.write_sample / "images" / Path(n).name, img)
    write_json(a.write_sample / "labels.json", {"name": f"pool sample of {len(photos)}", "images": {
        Path(n).name: {"boxes": gt.round(2).tolist()} for n, (_, gt) in zip(names, photos)}})
    raise SystemExit(0)
det = FaceDetector.from_pretrained("nano", score_threshold=0.01, num_threads=1)
BANDS = ((10, 20), (20, 40), (40, 1e9))
PASSES = {"640": ((640,), False), "560": ((560,), False), "720": ((720,), False), "800": ((800,), False),
          "640 + 800": ((640, 800), False), "640 + mirrored": ((640,), True)}
for name, (sides, flip) in PASSES.items():
    found, seconds = [], 0.0
    for img, _ in photos:
        t0 = time.perf_counter()
        found.append(det.detect_passes(img, sides, flip=flip))
        seconds += time.perf_counter() - t0
    for t in (0.02, 0.025, 0.03, 0.035, 0.04, 0.05):
        visible, total = np.zeros(len(BANDS)), np.zeros(len(BANDS))
        outside = pixels = 0
        for (img, gt), d in zip(photos, found):
            hw = img.shape[:2]
            keep = d.scores >= t
            boxes = d.boxes[keep][nms(d.boxes[keep], d.scores[keep], 0.4)]
            m = masked_fraction(hw, boxes, 0.15, "ellipse")
            outside += (m & ~masked_fraction(hw, gt, 0.15, "box")).sum()
            pixels += m.size
            for x1, y1, x2, y2 in gt:
                k = next((i for i, (lo, hi) in enumerate(BANDS) if lo <= x2 - x1 < hi), None)
                if k is not None:
                    total[k] += 1
                    visible[k] += m[max(0, int(y1)):int(np.ceil(y2)), max(0, int(x1)):int(np.ceil(x2))].mean() < 0.5
        bands = ", ".join(f"{lo}-{hi if hi < 1e9 else ''} px {visible[k] / max(total[k], 1) * 100:.1f} %"
                          for k, (lo, hi) in enumerate(BANDS))
        print(f"{name}, threshold {t}: faces of 10 px or more visible {visible.sum() / total.sum() * 100:.2f} % of "
              f"{int(total.sum())} ({bands}); masked outside {outside / pixels * 100:.2f} %; "
              f"{seconds / len(photos) * 1e3:.0f} ms/photo", flush=True)
