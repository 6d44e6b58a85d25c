"""Agreement of one detector with another's detections (no human labels needed).

AP at IoU 0.5 of ``predictions`` against ``references`` treated as ground truth: predictions of
all images are ranked by score, each matched greedily to the unmatched reference box of highest
IoU (continuous coordinates), VOC AP with the precision envelope.
"""
from __future__ import annotations

import numpy as np

from ..postprocess import Detections
from .widerface import voc_ap


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(axis=1)
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-12)


def agreement_ap(predictions: list[Detections], references: list[Detections], iou: float = 0.5) -> float:
    """AP of ``predictions`` against ``references`` (one entry per image)."""
    n_ref = sum(len(r) for r in references)
    if n_ref == 0:
        return float("nan")
    records = []  # (score, image, box)
    for i, p in enumerate(predictions):
        records += [(float(s), i, b) for s, b in zip(p.scores, p.boxes)]
    if not records:
        return 0.0
    records.sort(key=lambda r: -r[0])
    used = [np.zeros(len(r), bool) for r in references]
    tp = np.zeros(len(records))
    for k, (_, i, box) in enumerate(records):
        ref = references[i]
        if len(ref) == 0:
            continue
        ov = _iou(box[None], ref.boxes)[0]
        ov[used[i]] = -1
        j = int(ov.argmax())
        if ov[j] >= iou:
            used[i][j] = True
            tp[k] = 1
    ctp = np.cumsum(tp)
    recall = ctp / n_ref
    precision = ctp / np.arange(1, len(records) + 1)
    return voc_ap(recall, precision)
