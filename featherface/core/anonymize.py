"""Masking faces: blur, pixelate or fill, with the mask and its strength scaled to each face.

A face's mask is its box grown by ``pad`` of the box's width and height on every side; with
``shape="ellipse"`` the ellipse inscribed in that grown box, with ``"box"`` the box itself.
Strength follows the face: a blurred face is rebuilt from at most ``detail`` samples across
(downsample, Gaussian, upsample; its cost does not grow with the face), and a pixelated face shows
``detail`` blocks across, so a 20 px face and a 400 px face are equally unrecognisable.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from .errors import InputError, UsageError
from .imageops import fill_ellipse, fill_ellipses, gaussian_blur, resize
from .settings import ANONYMIZE, MODES, PASSES, SHAPES

if TYPE_CHECKING:
    from .detector import FaceDetector
    from .postprocess import Detections

def anonymize_passes(image_hw: tuple[int, int], first: int | None, second: int | str | None) -> tuple:
    """The long sides an anonymiser detects at (``None``: the image's own size): ``first``, then
    ``second`` when given; ``"full"`` is the image's own size, only when that is more than
    ``PASSES.full_pass_above`` times ``first``."""
    if second == "full":
        large = first is not None and max(image_hw) > PASSES.full_pass_above * first
        return (first, None) if large else (first,)
    return (first, second) if second else (first,)


@lru_cache(maxsize=1)
def _recall_first_nano() -> "FaceDetector":
    from .detector import FaceDetector

    return FaceDetector.from_pretrained("nano", score_threshold=ANONYMIZE.score_threshold)


def detect_for_anonymizing(image: np.ndarray, detector: "FaceDetector | None" = None,
                           second_pass: int | str | None = ANONYMIZE.second_pass, flip: bool = ANONYMIZE.flip) -> "Detections":
    """The faces to mask in a BGR image, found recall first as ``featherface anonymize`` finds
    them: bundled Nano at ``ANONYMIZE.score_threshold`` (:mod:`featherface.core.settings`; or ``detector`` at its own settings), at its long
    side and, for a large image, at the image's own size (:func:`anonymize_passes`)."""
    det = detector if detector is not None else _recall_first_nano()
    return det.detect_passes(image, anonymize_passes(image.shape[:2], det.long_side, second_pass), flip=flip)


def _boxes_of(faces) -> np.ndarray:
    """``(N, 4)`` boxes from a :class:`Detections`, a list of :class:`Detection` or an array."""
    if hasattr(faces, "boxes"):
        return np.asarray(faces.boxes, np.float64).reshape(-1, 4)
    items = list(faces)
    if items and hasattr(items[0], "box"):
        return np.asarray([f.box for f in items], np.float64).reshape(-1, 4)
    return np.asarray(items, np.float64).reshape(-1, 4)


def check_mask_options(mode: str, shape: str, pad: float, detail: int = 1,
                       color: Sequence[int] = (0, 0, 0)) -> None:
    """:class:`UsageError` naming the first bad mask option (a bad call, not a bad image)."""
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if shape not in SHAPES:
        raise UsageError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    if not pad >= 0:
        raise UsageError(f"pad must be >= 0, got {pad}")
    if detail < 1:
        raise UsageError(f"detail must be >= 1, got {detail}")
    if len(color) != 3 or not all(0 <= int(c) <= 255 for c in color):
        raise UsageError(f"color must be three values in 0..255, got {tuple(color)}")


def mask_regions(boxes: np.ndarray, image_hw: tuple[int, int], pad: float) -> list[tuple[int, int, int, int, int, int, int, int]]:
    """Per face, the integer corners of its grown box clipped to the image (may be empty), then
    unclipped: ``(cx1, cy1, cx2, cy2, gx1, gy1, gx2, gy2)``."""
    h, w = image_hw
    out = []
    for x1, y1, x2, y2 in boxes:
        bw, bh = x2 - x1, y2 - y1
        gx1, gy1 = int(np.floor(x1 - pad * bw)), int(np.floor(y1 - pad * bh))
        gx2, gy2 = int(np.ceil(x2 + pad * bw)), int(np.ceil(y2 + pad * bh))
        out.append((max(0, gx1), max(0, gy1), min(w, gx2), min(h, gy2), gx1, gy1, gx2, gy2))
    return out


def anonymize(image: np.ndarray, faces=None, mode: str = ANONYMIZE.mode, shape: str = ANONYMIZE.shape,
              pad: float = ANONYMIZE.pad, color: Sequence[int] = ANONYMIZE.color, detail: int = ANONYMIZE.detail) -> np.ndarray:
    """A copy of ``image`` (``H x W x C`` uint8) with every face masked.

    Args:
        faces: :class:`Detections`, a list of :class:`Detection`, or boxes ``(N, 4)`` x1, y1, x2, y2
            pixels; None: found in the (BGR) image by :func:`detect_for_anonymizing`, recall first
            (a detector's own default threshold, 0.65 for Nano, misses more faces).
        mode: ``"blur"``, ``"pixelate"`` or ``"solid"`` (filled with ``color``, in the image's channel order).
        shape: ``"ellipse"`` or ``"box"``.
        pad: mask growth on every side, as a share of the face box's width / height.
        detail: samples (blur) or blocks (pixelate) across a face; lower hides more.
    """
    check_mask_options(mode, shape, pad, detail)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise InputError("image must be an H x W (x C) uint8 array")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"image is empty: shape {image.shape}")
    if faces is None:
        faces = detect_for_anonymizing(image)
    out = image.copy()
    regions = mask_regions(_boxes_of(faces), image.shape[:2], pad)
    if mode == "solid":
        # one colour: the union of the masks, drawn at once (the same pixels as face by face)
        fill = np.asarray(color, np.uint8)[: out.shape[2]] if out.ndim == 3 else color[0]
        out[_union(regions, image.shape[:2], shape)] = fill
        return out
    for cx1, cy1, cx2, cy2, gx1, gy1, gx2, gy2 in regions:
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        roi = out[cy1:cy2, cx1:cx2]
        rh, rw = roi.shape[:2]
        # the face's own size (not the clipped region's) sets the strength
        n = max(1, min(detail, gx2 - gx1, gy2 - gy1))
        sw, sh = max(1, round(n * rw / (gx2 - gx1))), max(1, round(n * rh / (gy2 - gy1)))
        small = resize(roi, (sw, sh), "area")
        if mode == "blur":
            small = gaussian_blur(small, 0.8)
            filled = resize(small, (rw, rh), "cubic")
        else:
            filled = resize(small, (rw, rh), "nearest")
        if shape == "box":
            roi[...] = filled
            continue
        m = np.zeros((rh, rw), np.uint8)
        # the ellipse of the unclipped grown box, drawn in the clipped region's coordinates
        fill_ellipse(m, (gx1 - cx1, gy1 - cy1, gx2 - cx1, gy2 - cy1))
        sel = m > 0
        roi[sel] = filled[sel]
    return out


def masked_fraction(image_hw: tuple[int, int], boxes: Iterable, pad: float, shape: str) -> np.ndarray:
    """Boolean ``H x W`` map of the pixels :func:`anonymize` changes for these boxes (benchmarks)."""
    return _union(mask_regions(_boxes_of(boxes), image_hw, pad), image_hw, shape)


def _union(regions: list, image_hw: tuple[int, int], shape: str) -> np.ndarray:
    """Boolean ``H x W`` union of the masks of :func:`mask_regions`' regions."""
    if shape != "box":
        return fill_ellipses(image_hw, [r[4:] for r in regions])
    m = np.zeros(image_hw, bool)
    for cx1, cy1, cx2, cy2, *_ in regions:
        m[cy1:cy2, cx1:cx2] = True
    return m
