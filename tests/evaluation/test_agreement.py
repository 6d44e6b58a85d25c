"""Agreement AP against a reference detector, on hand-computed cases."""
import math

import numpy as np
import pytest

from featherface.evaluation.agreement import agreement_ap, match_image
from featherface.core.postprocess import Detections


def _det(boxes, scores):
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.asarray(scores, np.float32), np.zeros((len(b), 5, 2), np.float32))


def test_identical_detections_give_ap_1():
    ref = [_det([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8]), _det([[5, 5, 15, 15]], [0.7])]
    assert agreement_ap(ref, ref) == 1.0


def test_duplicate_is_a_false_positive_and_matching_is_one_to_one():
    ref = [_det([[0, 0, 10, 10]], [1.0])]
    pred = [_det([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8])]
    assert match_image(pred[0], ref[0]).tolist() == [True, False]
    assert agreement_ap(pred, ref) == 1.0  # recall reaches 1 at precision 1 before the duplicate
    # A false positive ranked first (other image): precision 1/2 at full recall, envelope 0.5.
    ref2 = ref + [_det([], [])]
    pred2 = pred[:1] + [_det([[50, 50, 60, 60]], [0.95])]
    assert agreement_ap(pred2, ref2) == 0.5


def test_unsorted_predictions_are_matched_in_score_order():
    ref = [_det([[0, 0, 10, 10]], [1.0])]
    pred = [_det([[1, 1, 11, 11], [0, 0, 10, 10]], [0.5, 0.9])]  # the exact box has the higher score
    assert agreement_ap(pred, ref) == 1.0


def test_empty_cases():
    assert math.isnan(agreement_ap([_det([[0, 0, 5, 5]], [0.9])], [_det([], [])]))
    assert agreement_ap([_det([], [])], [_det([[0, 0, 5, 5]], [1.0])]) == 0.0


def test_tied_scores_are_one_operating_point():
    # Two reference faces; A (0.8) matches, B (0.6, nowhere) and C (0.6, the second face) tie.
    # Points: (P 1, R 1/2) after A, (P 2/3, R 1) after the tie, in either order inside the tie.
    ref = [_det([[0, 0, 10, 10], [20, 20, 30, 30]], [1.0, 1.0])]
    for boxes in ([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]],
                  [[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]):
        assert agreement_ap([_det(boxes, [0.8, 0.6, 0.6])], ref) == pytest.approx(0.5 + 0.5 * 2 / 3)
