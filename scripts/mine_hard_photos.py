"""Find the pool photos where a detector (by default the bundled Nano) misses labelled faces,
and write per-photo sampling factors for ``featherface distill --image-weights``.

Why: earlier runs tilted whole sources (``--source-weights``) and added synthetic occluders,
yet the faces Nano still misses (half hidden, turned away, small) are spread thinly over the
pool. Sampling the very photos where the current student fails more often puts its training
where its errors are (hard-example mining at the photo level, as in online hard example
mining but decided once, before the run).

For every photo with labels (``--labels``: the same files and ``--min-score`` as the run's
``--pool-labels``, read by :func:`featherface.data.pool.read_pool_labels`, so in V1's box
convention), the detector runs at its default resize (long side 640) and threshold. A label
counts as missed when no detection overlaps it at IoU >= ``--iou``; labels narrower than
``--min-face`` pixels after the resize are not counted (no 640-pixel detector finds them).
A photo with ``m`` misses gets factor ``1 + boost * min(m, cap) / cap``; photos without misses
are not listed (factor 1).

    python scripts/mine_hard_photos.py POOL POOL/labels/hard_nano.json \\
        --labels POOL/labels/groupselfies.json POOL/labels/scrfd_2.5g.json --workers 2

Output (JSON): ``{"images": {photo: factor}, "misses": {photo: m}, "model", "model_sha256",
"labels", "settings", "counts"}``. It names pool photos only; keep it with the pool, out of git.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing as mp
from pathlib import Path

import numpy as np
from tqdm import tqdm

from featherface.data.pool import read_pool_labels
from featherface.core.detector import FaceDetector, long_side_size
from featherface.core.files import atomic_write_text, read_image
from featherface.core.geometry import iou_matrix
from featherface.loading import resolve_weights

log = logging.getLogger("mine_hard_photos")
_det: FaceDetector | None = None


def _init(model: str) -> None:
    global _det
    _det = FaceDetector.from_pretrained(model, num_threads=1)  # one thread per worker process


def count_misses(boxes: np.ndarray, detected: np.ndarray, scale: float, iou: float, min_face: float) -> int:
    """Labels (``(K, 4)`` pixel x1,y1,x2,y2) at least ``min_face`` wide after scaling by ``scale``
    that no detection (``(D, 4)``) overlaps at IoU >= ``iou``."""
    counted = (boxes[:, 2] - boxes[:, 0]) * scale >= min_face
    if not counted.any():
        return 0
    if len(detected) == 0:
        return int(counted.sum())
    found = iou_matrix(boxes, detected).max(1) >= iou
    return int((counted & ~found).sum())


def _mine(job: tuple[str, str, np.ndarray, float, float]) -> tuple[str, int]:
    root, rel, boxes, iou, min_face = job
    try:
        image = read_image(Path(root) / rel)
    except ValueError:  # an unreadable photo is not mined (factor 1), as training reads it as a blank
        return rel, 0
    h, w = image.shape[:2]
    scale = long_side_size(h, w, _det.long_side)[1] / w
    return rel, count_misses(boxes, _det.detect_arrays(image).boxes, scale, iou, min_face)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pool", help="photo pool root")
    ap.add_argument("out", help="output JSON")
    ap.add_argument("--labels", nargs="+", required=True, help="pool labels.json files, human labels first")
    ap.add_argument("--min-score", type=float, default=0.5, help="a detector's labels below this are not used")
    ap.add_argument("--model", default="nano", help="detector whose misses are mined (default: bundled Nano)")
    ap.add_argument("--iou", type=float, default=0.5)
    ap.add_argument("--min-face", type=float, default=10.0, help="labels narrower than this (px, after resize) are ignored")
    ap.add_argument("--boost", type=float, default=2.0, help="factor 1 + boost at cap misses or more")
    ap.add_argument("--cap", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.boost < 0 or args.cap < 1:
        ap.error("--boost must be >= 0 and --cap >= 1")

    labels, summary = read_pool_labels(args.labels, args.min_score)
    jobs = [(args.pool, rel, b, args.iou, args.min_face) for rel, b in sorted(labels.items()) if len(b)]
    misses: dict[str, int] = {}
    with mp.get_context("spawn").Pool(args.workers, _init, (args.model,)) as pool:
        for rel, m in tqdm(pool.imap_unordered(_mine, jobs, chunksize=16), total=len(jobs), desc="mining"):
            if m:
                misses[rel] = m
    factors = {rel: round(1 + args.boost * min(m, args.cap) / args.cap, 4) for rel, m in sorted(misses.items())}
    path = resolve_weights(args.model)
    counts = {"photos_with_labels": len(jobs), "photos_with_misses": len(misses),
              "missed_faces": int(sum(misses.values())),
              "samples_added_per_pass": round(sum(factors.values()) - len(factors), 1)}
    out = {"images": factors, "misses": dict(sorted(misses.items())), "model": str(args.model),
           "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "labels": summary,
           "settings": {k: getattr(args, k) for k in ("min_score", "iou", "min_face", "boost", "cap")},
           "counts": counts}
    atomic_write_text(Path(args.out), json.dumps(out, indent=1))
    log.info("%s: %s", args.out, counts)


if __name__ == "__main__":
    main()
