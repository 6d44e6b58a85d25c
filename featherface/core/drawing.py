"""Drawing detections on images (annotated outputs of ``featherface detect`` and benchmarks)."""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from .postprocess import Detection

# Landmark colours (BGR) in LANDMARK_NAMES order: eyes, nose, mouth corners.
LANDMARK_COLORS = ((255, 0, 0), (0, 255, 255), (255, 0, 255), (0, 255, 0), (0, 128, 255))


def draw_detections(image: np.ndarray, faces: Iterable[Detection]) -> np.ndarray:
    """A copy of ``image`` with boxes, scores and the five landmarks drawn."""
    out = image.copy()
    thick = max(1, round(max(out.shape[:2]) / 600))
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), thick)
        # the score goes inside the box when there is no room above it
        ty = y1 - 3 if y1 >= 12 * thick else y1 + 12 * thick
        cv2.putText(out, f"{f.score:.2f}", (x1, ty), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thick, (255, 255, 255), thick, cv2.LINE_AA)
        for (x, y), c in zip(f.landmarks, LANDMARK_COLORS):
            if not (np.isfinite(x) and np.isfinite(y)):  # detectors without landmarks give NaN
                continue
            cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, c, -1)
    return out
