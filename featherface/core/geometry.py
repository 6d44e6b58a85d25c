"""Box geometry shared by training, post-processing and evaluation: one IoU implementation for
NumPy arrays (the torch one, for training, is
:func:`featherface.models.anchors.box_iou`).

Boxes are ``(N, 4)`` ``x1, y1, x2, y2`` in continuous coordinates (no +1 pixel; the WIDER FACE
protocol's +1 variant lives in :mod:`featherface.evaluation.widerface` because that protocol
defines it).
"""
from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` (float64) of NumPy xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    # per-coordinate (len(a), len(b)) arrays, no (len(a), len(b), 2) temporaries: the same values,
    # ~5x faster for box voting over thousands of candidates
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)

