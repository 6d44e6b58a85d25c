"""Anchors ("priors") and the RetinaFace box/landmark decoding, in numpy.

Conventions (the same as the torch side's :mod:`featherface.models.anchors`, which training and export use):

* priors are ``(A, 4)`` float32 ``(cx, cy, w, h)`` in INPUT pixels; order: level (strides 8, 16,
  32), row i, column j, anchor size;
* a level's grid is ``ceil(H / stride) x ceil(W / stride)``; anchor centre
  ``((j + 0.5) * stride, (i + 0.5) * stride)``, size ``(s, s)``;
* decoding uses variances ``(0.1, 0.2)``: centre ``a_c + d_c * 0.1 * a_wh``, size
  ``a_wh * exp(d_wh * 0.2)``, each landmark ``a_c + d * 0.1 * a_wh``.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .constants import MIN_SIZES, STEPS, VARIANCES


def feature_map_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """Grid size ``(ceil(H/s), ceil(W/s))`` of each level."""
    return [(math.ceil(height / s), math.ceil(width / s)) for s in STEPS]


@lru_cache(maxsize=32)
def pixel_priors(height: int, width: int) -> np.ndarray:
    """Priors ``(A, 4)`` float32 ``(cx, cy, w, h)`` in input pixels for an ``H x W`` input; cached
    per size (the returned array is read-only and shared)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    levels = []
    for (fh, fw), step, sizes in zip(feature_map_sizes(height, width), STEPS, MIN_SIZES):
        cy, cx = np.meshgrid((np.arange(fh) + 0.5) * step, (np.arange(fw) + 0.5) * step, indexing="ij")
        k = len(sizes)
        grid = np.empty((fh, fw, k, 4), np.float64)
        grid[..., 0] = cx[:, :, None]
        grid[..., 1] = cy[:, :, None]
        grid[..., 2] = grid[..., 3] = np.asarray(sizes, np.float64)
        levels.append(grid.reshape(-1, 4))
    out = np.concatenate(levels).astype(np.float32)
    out.setflags(write=False)
    return out


def decode_boxes(loc: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Regressions ``(K, 4)`` and pixel priors ``(K, 4)`` -> ``(K, 4)`` x1, y1, x2, y2 pixels."""
    c = anchors[:, :2] + loc[:, :2] * VARIANCES[0] * anchors[:, 2:]
    wh = anchors[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1)


def decode_landmarks(deltas: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Landmark regressions ``(K, 10)`` -> ``(K, 5, 2)`` pixels."""
    return anchors[:, None, :2] + deltas.reshape(-1, 5, 2) * VARIANCES[0] * anchors[:, None, 2:]
