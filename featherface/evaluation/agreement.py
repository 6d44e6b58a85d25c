"""Agreement of one detector with another's detections (no human labels needed).

AP at IoU 0.5 of ``predictions`` against ``references`` treated as ground truth: predictions of
all images are ranked by score, each matched greedily to the unmatched reference box of highest
IoU (continuous coordinates), VOC AP with the precision envelope.
"""
from __future__ import annotations

import numpy as np

from ..core.postprocess import Detections
from .widerface import ranking_precision_recall, tie_group_ends, voc_ap


def match_image(prediction: Detections, reference: Detections, iou: float = 0.5) -> np.ndarray:
    """True-positive flags of one image's predictions (in their given order, which should be
    decreasing score): each is matched greedily to the unmatched reference box of highest IoU
    (:func:`featherface.evaluation.labelled.match_detections`)."""
    from .labelled import match_detections

    return match_detections(prediction, reference, iou=iou)[0] == 1


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
    all_scores = np.concatenate(scores)
    ranked = np.argsort(-all_scores, kind="stable")
    # equal scores: one operating point
    precision, recall = ranking_precision_recall(np.concatenate(flags)[ranked], tie_group_ends(all_scores[ranked]),
                                                 n_ref)
    return voc_ap(recall, precision)
