"""A second look at each face: its five landmarks read again from a crop where the face is large.

The first look sees a face at whatever size it has in the resized image, and Nano's points are
least precise on the small and middle faces of its finest feature maps. The second look cuts a
square of ``LOOK.context`` times the face's box side around the box centre from the ORIGINAL image
(a large photo's detail is used), resizes it so the box side becomes ``LOOK.face_px`` pixels,
detects again in the crop and in its mirror image, and takes the mean of the two readings of the
face whose box matches the first look's (IoU >= ``LOOK.min_iou``). Boxes and scores stay the first
look's: only landmarks change, so box accuracy is exactly the first look's.

Measured in ``benchmarks/results/landmark_error.md``; the rules are
:data:`featherface.core.settings.LOOK`. The page's ``faceSquares``, ``cutSquare`` and
``mergeLooks`` (``featherface.js``) are the functions here, checked under Node.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .constants import MIRROR_ORDER
from .geometry import iou_matrix
from .postprocess import Detections
from .settings import LOOK, LookRules

#: ``detect(crops, long_side, score_threshold) -> list[Detections]``: a first look at equal-size
#: square crops (one batch)
Detect = Callable[[list[np.ndarray], int, float], list[Detections]]


def face_squares(boxes: np.ndarray, context: float = LOOK.context) -> np.ndarray:
    """Integer squares ``(N, 3)``: ``x0, y0, side``, centred on each box (x1, y1, x2, y2), ``context``
    times its longer side, at least 1 px; they may reach outside the image. Halves round up, as
    JavaScript's ``Math.round`` does."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    side = np.maximum(1, np.floor(context * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) + 0.5))
    x0 = np.floor((boxes[:, 0] + boxes[:, 2]) / 2 - side / 2 + 0.5)
    y0 = np.floor((boxes[:, 1] + boxes[:, 3]) / 2 - side / 2 + 0.5)
    return np.stack([x0, y0, side], axis=1).astype(np.int64)


def cut_square(image: np.ndarray, x0: int, y0: int, side: int, mirror: bool = False) -> np.ndarray:
    """``image[y0:y0+side, x0:x0+side]`` (``H x W`` or ``H x W x C``), black where the square leaves
    the image; ``mirror``: flipped left to right."""
    h, w = image.shape[:2]
    out = np.zeros((side, side, *image.shape[2:]), image.dtype)
    ya, yb, xa, xb = max(0, y0), min(h, y0 + side), max(0, x0), min(w, x0 + side)
    if ya < yb and xa < xb:
        out[ya - y0:yb - y0, xa - x0:xb - x0] = image[ya:yb, xa:xb]
    return np.ascontiguousarray(out[:, ::-1]) if mirror else out


def merge_looks(found: Detections, squares: np.ndarray, looks: list[Detections], mirror: bool = True,
                rules: LookRules = LOOK) -> Detections:
    """``found`` with each face's landmarks the mean of its second looks: ``looks`` holds, per face,
    the detections in its square (``squares[i]``, crop pixels) and, with ``mirror``, then in the
    mirrored square. A look counts when a detection's box matches the face's (IoU >=
    ``rules.min_iou``, the best one); a face with no look that counts keeps its landmarks."""
    n = len(found.scores)
    per_face = 2 if mirror else 1
    landmarks = found.landmarks.copy()
    for i in range(n):
        x0, y0, side = (float(v) for v in squares[i])
        readings = []
        for k in range(per_face):
            d, mirrored = looks[i * per_face + k], k == 1
            if not len(d.scores):
                continue
            box = found.boxes[i].astype(np.float64) - [x0, y0, x0, y0]  # the first look's box, in crop pixels
            if mirrored:
                box = np.array([side - box[2], box[1], side - box[0], box[3]])
            iou = iou_matrix(box[None], d.boxes.astype(np.float64))[0]
            j = int(np.argmax(iou))
            if iou[j] < rules.min_iou:
                continue
            lm = d.landmarks[j].astype(np.float64)
            if mirrored:  # back from the mirror image: x flipped, left and right swapped
                lm = lm[list(MIRROR_ORDER)]
                lm[:, 0] = side - lm[:, 0]
            readings.append(lm + [x0, y0])
        if readings:
            landmarks[i] = np.mean(readings, axis=0)
    return Detections(found.boxes, found.scores, landmarks.astype(np.float32))


def refine_landmarks(image: np.ndarray, found: Detections, detect: Detect, *, rules: LookRules = LOOK,
                     mirror: bool = True) -> Detections:
    """``found`` (the first look at ``image``, original pixels) with each face's landmarks read
    again at ``rules.face_px`` (module docstring): every face's crops run as one batch."""
    if not len(found.scores):
        return found
    squares = face_squares(found.boxes, rules.context)
    crops = [cut_square(image, int(x0), int(y0), int(side), m)
             for x0, y0, side in squares for m in ((False, True) if mirror else (False,))]
    looks = detect(crops, round(rules.context * rules.face_px), rules.score_threshold)
    return merge_looks(found, squares, looks, mirror, rules)
