"""Face crops: aligned to the five-point template of ArcFace-style recognisers, or plain with a margin.

The template is the one InsightFace's recognisers were trained with: five ``(x, y)`` points in a
112x112 crop, in :data:`~featherface.core.constants.LANDMARK_NAMES` order (image-left eye first).
Larger crops (224, 336, ...) scale it. The alignment is the least-squares similarity transform
(rotation, uniform scale, translation; Umeyama 1991) from the detected landmarks to the template,
so a crop is only as good as the landmarks it starts from (the README gives each model's
landmark error).
"""
from __future__ import annotations

import numpy as np

from .errors import UsageError
from .imageops import warp_affine
from .settings import MAX_CROP_SIZE

#: ArcFace's five-point template for a 112x112 crop (left eye, right eye, nose, mouth corners).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The ``2 x 3`` similarity (rotation, uniform scale, translation) that maps the points ``src
    (K, 2)`` onto ``dst (K, 2)`` with the least squared error (Umeyama's closed form, no reflection)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection would fit better: forbid it
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    var_s = (s ** 2).sum() / len(src)
    scale = (sig * sign).sum() / var_s if var_s > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def alignment_matrix(landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """``2 x 3`` matrix taking image pixels to a ``size x size`` aligned crop (``size`` a multiple of 112)."""
    if size < 112 or size % 112 or size > MAX_CROP_SIZE:
        raise UsageError(f"aligned crops are 112 px or a multiple of it up to {MAX_CROP_SIZE}, got {size}")
    pts = np.asarray(landmarks, np.float64)
    if pts.size != 10 or not np.isfinite(pts).all():
        raise UsageError(f"landmarks must be five finite (x, y) points, got an array of shape {pts.shape}")
    pts = pts.reshape(5, 2)
    return similarity_transform(pts, ARCFACE_TEMPLATE * (size / 112))


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The ``size x size`` crop of ``image`` whose five landmarks land on the ArcFace template.
    ``landmarks (5, 2)`` pixels in :data:`LANDMARK_NAMES` order (a :class:`Detection`'s)."""
    m = alignment_matrix(landmarks, size)
    return warp_affine(image, m, (size, size))


def crop_box(box: np.ndarray, image_hw: tuple[int, int], margin: float = 0.2, square: bool = True
             ) -> tuple[int, int, int, int]:
    """Integer ``(x1, y1, x2, y2)`` of a face box grown by ``margin`` of its size on every side
    (made square around its centre first with ``square``), clipped to the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    if square:
        w = h = max(w, h)
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    ih, iw = image_hw
    ax1, ay1 = max(0, int(np.floor(cx - w / 2))), max(0, int(np.floor(cy - h / 2)))
    ax2, ay2 = min(iw, int(np.ceil(cx + w / 2))), min(ih, int(np.ceil(cy + h / 2)))
    return ax1, ay1, max(ax1 + 1, ax2), max(ay1 + 1, ay2)


def crop_face(image: np.ndarray, box: np.ndarray, margin: float = 0.2, square: bool = True) -> np.ndarray:
    """A plain (unaligned) crop around ``box`` with ``margin`` (see :func:`crop_box`); a copy."""
    if margin < 0:
        raise UsageError(f"margin must be >= 0, got {margin}")
    x1, y1, x2, y2 = crop_box(box, image.shape[:2], margin, square)
    return image[y1:y2, x1:x2].copy()
