"""Anchors ("priors") and the RetinaFace box/landmark coding.

Conventions:

* priors are ``(A, 4)`` float32 ``(cx, cy, w, h)`` normalised by the image width/height;
  order: level (strides 8, 16, 32), row i, column j, anchor size;
* a level's grid is ``ceil(H / stride) x ceil(W / stride)``; anchor centre
  ``((j + 0.5) * stride / W, (i + 0.5) * stride / H)``, size ``(s / W, s / H)``;
* boxes handed to :func:`encode` and returned by :func:`decode` are normalised ``(x1, y1, x2, y2)``;
* landmarks are ``(..., 10)`` normalised ``(x1, y1, ..., x5, y5)``.

Encoding uses variances ``(0.1, 0.2)``: centre ``(g_c - a_c) / (0.1 a_wh)``, size
``log(g_wh / a_wh) / 0.2``, each landmark ``(p - a_c) / (0.1 a_wh)``. All functions broadcast
over leading batch dimensions.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from ..core.constants import MIN_SIZES, STEPS, VARIANCES


def feature_map_sizes(height: int, width: int, steps: tuple[int, ...] = STEPS) -> list[tuple[int, int]]:
    """Grid size ``(ceil(H/s), ceil(W/s))`` of each level."""
    return [(math.ceil(height / s), math.ceil(width / s)) for s in steps]


def num_anchors(height: int, width: int) -> int:
    """Number of anchors for an ``H x W`` input (16,800 at 640x640)."""
    return sum(h * w * len(ms) for (h, w), ms in zip(feature_map_sizes(height, width), MIN_SIZES))


def pixel_priors(height, width, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Priors ``(A, 4)`` ``(cx, cy, w, h)`` in INPUT pixels, built only from traceable operations
    so that an exported ONNX graph recomputes them for any input size (``height``/``width`` may be
    traced tensors). Order: level (stride 8, 16, 32), then row, column, anchor size."""
    levels = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        fh, fw = (height + step - 1) // step, (width + step - 1) // step
        cy = (torch.arange(fh, dtype=dtype) + 0.5) * step
        cx = (torch.arange(fw, dtype=dtype) + 0.5) * step
        cyy, cxx = torch.meshgrid(cy, cx, indexing="ij")
        k = len(sizes)
        s = torch.tensor(sizes, dtype=dtype)
        ctr = torch.stack([cxx, cyy], dim=-1)[:, :, None, :].expand(-1, -1, k, 2)
        wh = torch.stack([s, s], dim=-1)[None, None].expand(ctr.shape[0], ctr.shape[1], k, 2)
        levels.append(torch.cat([ctr, wh], dim=-1).reshape(-1, 4))
    return torch.cat(levels)


def _build_priors(height: int, width: int) -> torch.Tensor:
    scale = torch.tensor([width, height, width, height], dtype=torch.float64)
    return (pixel_priors(height, width, torch.float64) / scale).float()


@lru_cache(maxsize=32)
def _cached_priors(height: int, width: int) -> torch.Tensor:
    return _build_priors(height, width)


def priors(height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Priors for an ``H x W`` input, ``(A, 4)`` float32 ``(cx, cy, w, h)``; cached per size.

    The cached CPU tensor is shared; callers must not modify it in place.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    p = _cached_priors(int(height), int(width))
    return p if device is None else p.to(device)


def encode(boxes: torch.Tensor, anchors: torch.Tensor, variances: tuple[float, float] = VARIANCES) -> torch.Tensor:
    """Normalised ``(x1, y1, x2, y2)`` boxes -> regression targets ``(..., 4)``.

    Degenerate (zero-size) boxes would give ``log(0)``; sizes are clamped to a tiny positive value
    so that the result stays finite (training drops such boxes before matching anyway).
    """
    g_c = (boxes[..., :2] + boxes[..., 2:]) / 2
    g_wh = (boxes[..., 2:] - boxes[..., :2]).clamp(min=1e-6)
    a_c, a_wh = anchors[..., :2], anchors[..., 2:]
    return torch.cat([(g_c - a_c) / (variances[0] * a_wh), torch.log(g_wh / a_wh) / variances[1]], dim=-1)


def decode(loc: torch.Tensor, anchors: torch.Tensor, variances: tuple[float, float] = VARIANCES) -> torch.Tensor:
    """Regressions ``(..., 4)`` -> normalised ``(x1, y1, x2, y2)`` boxes."""
    a_c, a_wh = anchors[..., :2], anchors[..., 2:]
    c = a_c + loc[..., :2] * variances[0] * a_wh
    wh = a_wh * torch.exp(loc[..., 2:] * variances[1])
    return torch.cat([c - wh / 2, c + wh / 2], dim=-1)


def _tile5(t: torch.Tensor) -> torch.Tensor:
    """``(..., 2) -> (..., 10)`` repeating (x, y) for the five points."""
    return t.repeat(*([1] * (t.dim() - 1)), 5)


def encode_landmarks(landmark_deltas: torch.Tensor, anchors: torch.Tensor, variances: tuple[float, float] = VARIANCES) -> torch.Tensor:
    """Normalised landmarks ``(..., 10)`` -> regression targets ``(..., 10)``."""
    return (landmark_deltas - _tile5(anchors[..., :2])) / (variances[0] * _tile5(anchors[..., 2:]))


def decode_landmarks(pre: torch.Tensor, anchors: torch.Tensor, variances: tuple[float, float] = VARIANCES) -> torch.Tensor:
    """Landmark regressions ``(..., 10)`` -> normalised landmarks ``(..., 10)``."""
    return _tile5(anchors[..., :2]) + pre * variances[0] * _tile5(anchors[..., 2:])


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix ``(len(a), len(b))`` of xyxy box tensors (differentiable, any device)."""
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-12)
