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


def match_image(prediction: Detections, reference: Detections, iou: float = 0.5) -> np.ndarray:
    """True-positive flags of one image's predictions (in their given order, which should be
    decreasing score): each is matched greedily to the unmatched reference box of highest IoU."""
    tp = np.zeros(len(prediction), bool)
    if len(prediction) == 0 or len(reference) == 0:
        return tp
    overlaps = _iou(prediction.boxes, reference.boxes)
    used = np.zeros(len(reference), bool)
    for k, ov in enumerate(overlaps):
        ov = np.where(used, -1.0, ov)
        j = int(ov.argmax())
        if ov[j] >= iou:
            used[j] = tp[k] = True
    return tp


def agreement_ap(predictions: list[Detections], references: list[Detections], iou: float = 0.5) -> float:
    """AP of ``predictions`` against ``references`` (one entry per image)."""
    n_ref = sum(len(r) for r in references)
    if n_ref == 0:
        return float("nan")
    scores, flags = [], []
    for p, r in zip(predictions, references):
        order = np.argsort(-p.scores, kind="stable")  # matching follows decreasing score
        scores.append(p.scores[order])
        flags.append(match_image(Detections(p.boxes[order], p.scores[order], p.landmarks[order]), r, iou))
    if not scores or sum(len(s) for s in scores) == 0:
        return 0.0
    ranked = np.argsort(-np.concatenate(scores), kind="stable")
    ctp = np.cumsum(np.concatenate(flags)[ranked])
    recall = ctp / n_ref
    precision = ctp / np.arange(1, len(ranked) + 1)
    return voc_ap(recall, precision)
