"""Drawing detections on images (annotated outputs of ``featherface detect`` and benchmarks)."""
from __future__ import annotations

from typing import Iterable

import numpy as np
from PIL import ImageFont

from .imageops import canvas, to_array
from .postprocess import Detection

# Landmark colours (BGR) in LANDMARK_NAMES order: eyes, nose, mouth corners.
LANDMARK_COLORS = ((255, 0, 0), (0, 255, 255), (255, 0, 255), (0, 255, 0), (0, 128, 255))


def draw_detections(image: np.ndarray, faces: Iterable[Detection]) -> np.ndarray:
    """A copy of ``image`` (BGR) with boxes, scores and the five landmarks drawn."""
    img, pen = canvas(image)
    thick = max(1, round(max(image.shape[:2]) / 600))
    font = ImageFont.load_default(size=11 * thick)
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        pen.rectangle([x1, y1, x2, y2], outline=(0, 0, 255), width=thick)
        # the score goes inside the box when there is no room above it
        ty = y1 - 13 * thick if y1 >= 13 * thick else y1 + thick
        pen.text((x1 + thick, ty), f"{f.score:.2f}", fill=(255, 255, 255), font=font)
        for (x, y), c in zip(f.landmarks, LANDMARK_COLORS):
            if not (np.isfinite(x) and np.isfinite(y)):  # detectors without landmarks give NaN
                continue
            r = thick + 1
            pen.ellipse([x - r, y - r, x + r, y + r], fill=c)
    return to_array(img, image)
