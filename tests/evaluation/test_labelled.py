"""AP against human labels: hand-computed cases of the protocol in featherface.evaluation.labelled."""
import numpy as np
import pytest

from featherface.data.annotations import ImageAnnotation
from featherface.evaluation.labelled import evaluate_labelled, match_detections, resize_long_side, scale_detections
from featherface.core.postprocess import Detections


def gt(boxes, landmarks=None):
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    lm = np.zeros((len(b), 5, 2), np.float32)
    has = np.zeros(len(b), bool)
    if landmarks is not None:
        for i, p in enumerate(landmarks):
            if p is not None:
                lm[i], has[i] = np.asarray(p, np.float32).reshape(5, 2), True
    return ImageAnnotation("x", b, lm, has)


def dets(boxes, scores, landmarks=None):
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    lm = np.zeros((len(b), 5, 2), np.float32) if landmarks is None else np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
    return Detections(b, np.asarray(scores, np.float32), lm)


def test_perfect_detections_score_one():
    g = gt([[0, 0, 20, 20], [40, 40, 80, 80]])
    r = evaluate_labelled({"a": dets(g.boxes, [0.9, 0.8])}, {"a": g})
    assert r.ap == pytest.approx(1.0) and r.precision == 1.0 and r.recall == 1.0 and r.f1 == 1.0
    assert r.nme is None


def test_duplicate_detection_is_a_false_positive_and_ap_by_hand():
    # Two faces. Ranked: TP (0.9), duplicate of the same face (0.8) -> FP, miss the second face.
    g = gt([[0, 0, 20, 20], [100, 100, 140, 140]])
    r = evaluate_labelled({"a": dets([[0, 0, 20, 20], [1, 1, 21, 21]], [0.9, 0.8])}, {"a": g}, threshold=0.5)
    # precision/recall along the ranking: (1, 0.5), (0.5, 0.5) -> AP = 0.5 * 1.0
    assert r.ap == pytest.approx(0.5)
    assert r.precision == pytest.approx(0.5) and r.recall == pytest.approx(0.5)
    assert r.f1 == pytest.approx(0.5)


def test_ap_over_two_images_hand_computed():
    # Image a: one face, detections 0.9 (FP, far away) and 0.6 (TP). Image b: one face, 0.8 (TP).
    labels = {"a": gt([[0, 0, 30, 30]]), "b": gt([[0, 0, 30, 30]])}
    preds = {"a": dets([[200, 200, 230, 230], [0, 0, 30, 30]], [0.9, 0.6]), "b": dets([[2, 0, 32, 30]], [0.8])}
    r = evaluate_labelled(preds, labels, threshold=0.7)
    # ranking: FP(0.9) P=0, R=0; TP(0.8) P=1/2, R=1/2; TP(0.6) P=2/3, R=1.
    # envelope: precision 2/3 for recall in (0, 1] -> AP = 2/3.
    assert r.ap == pytest.approx(2 / 3)
    # at threshold 0.7: detections 0.9 (FP) and 0.8 (TP): precision 1/2, recall 1/2.
    assert (r.precision, r.recall) == (pytest.approx(0.5), pytest.approx(0.5))


def test_iou_just_below_half_is_a_miss():
    g = gt([[0, 0, 10, 10]])
    # [0, 0, 10, 5]: IoU = 50 / 100 = 0.5 -> match; [0, 0, 10, 4.9]: 0.49 -> miss
    assert match_detections(dets([[0, 0, 10, 5]], [1]), g)[0].tolist() == [1]
    assert match_detections(dets([[0, 0, 10, 4.9]], [1]), g)[0].tolist() == [0]


def test_detection_goes_to_the_unmatched_face_of_highest_iou():
    # Two overlapping faces; the first detection takes face 0, the second (which overlaps face
    # 0 most) goes to the unmatched face 1 when that still reaches IoU 0.5.
    g = gt([[0, 0, 10, 10], [2, 0, 12, 10]])
    flags, matched = match_detections(dets([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8]), g)
    assert flags.tolist() == [1, 1] and matched.tolist() == [0, 1]


def test_small_faces_are_ignored_in_ap16():
    # A 10 px face (ignored for AP16) and a 40 px face. Detections: the small face (0.9),
    # the big face (0.8), a false positive (0.7).
    g = gt([[0, 0, 10, 10], [50, 50, 90, 90]])
    d = dets([[0, 0, 10, 10], [50, 50, 90, 90], [200, 200, 240, 240]], [0.9, 0.8, 0.7])
    r = evaluate_labelled({"a": d}, {"a": g})
    assert r.num_faces == 2 and r.num_faces_16 == 1
    assert r.ap == pytest.approx(1.0)  # both faces found before the FP
    assert r.ap_16 == pytest.approx(1.0)  # the small-face detection is dropped, not a FP
    # a duplicate on the ignored face is dropped too (ignored faces never become "used")
    d2 = dets([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 90, 90]], [0.9, 0.85, 0.8])
    assert evaluate_labelled({"a": d2}, {"a": g}).ap_16 == pytest.approx(1.0)
    # the same duplicate counts as a false positive for AP over all faces: P at R=1 is 2/3
    assert evaluate_labelled({"a": d2}, {"a": g}).ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_missing_image_counts_as_no_detections():
    labels = {"a": gt([[0, 0, 30, 30]]), "b": gt([[0, 0, 30, 30]])}
    r = evaluate_labelled({"a": dets([[0, 0, 30, 30]], [0.9])}, labels)
    assert r.ap == pytest.approx(0.5) and r.recall == pytest.approx(0.5)


def test_landmark_nme_hand_computed():
    pts = [[10, 10], [30, 10], [20, 20], [12, 30], [28, 30]]  # inter-ocular distance 20
    g = gt([[0, 0, 40, 40]], [pts])
    moved = np.asarray(pts, np.float32) + [2, 0]  # every point 2 px off -> NME = 2 / 20
    r = evaluate_labelled({"a": dets([[0, 0, 40, 40]], [0.9], [moved])}, {"a": g})
    assert r.nme == pytest.approx(0.1)


def test_resize_and_scale_back_round_trip():
    img = np.zeros((300, 500, 3), np.uint8)
    small, (sx, sy) = resize_long_side(img, 640)
    assert small.shape[:2] == (384, 640)
    d = scale_detections(dets([[64, 64, 128, 128]], [1]), sx, sy)
    np.testing.assert_allclose(d.boxes, [[50, 50, 100, 100]], rtol=1e-5)


def _two_image_case():
    # the case of test_ap_over_two_images_hand_computed: AP 2/3
    labels = {"a": gt([[0, 0, 30, 30]]), "b": gt([[0, 0, 30, 30]])}
    preds = {"a": dets([[200, 200, 230, 230], [0, 0, 30, 30]], [0.9, 0.6]), "b": dets([[2, 0, 32, 30]], [0.8])}
    return preds, labels


def test_weighted_ap_by_hand():
    from featherface.evaluation.labelled import weighted_ap

    preds, labels = _two_image_case()
    r = evaluate_labelled(preds, labels)
    assert weighted_ap(r, np.array([1, 1])) == pytest.approx(r.ap) == pytest.approx(2 / 3)
    # only b, twice: its one detection is a TP on each copy -> AP 1
    assert weighted_ap(r, np.array([0, 2])) == pytest.approx(1.0)
    # only a: FP (0.9) then TP (0.6) -> precision 1/2 at recall 1 -> AP 1/2
    assert weighted_ap(r, np.array([3, 0])) == pytest.approx(0.5)
    # no image drawn: no faces -> nan
    assert np.isnan(weighted_ap(r, np.array([0, 0])))


def test_weighted_ap_equals_scoring_the_duplicated_set():
    from featherface.evaluation.labelled import weighted_ap

    preds, labels = _two_image_case()
    labels["c"] = gt([[0, 0, 30, 30], [50, 50, 80, 80]])
    preds["c"] = dets([[0, 0, 30, 30], [300, 0, 330, 30], [51, 50, 81, 80]], [0.7, 0.85, 0.3])
    r = evaluate_labelled(preds, labels)
    counts = np.array([2, 1, 3])
    dup_labels, dup_preds = {}, {}
    for (name, g), c in zip(labels.items(), counts):
        for k in range(c):
            dup_labels[f"{name}{k}"], dup_preds[f"{name}{k}"] = g, preds[name]
    assert weighted_ap(r, counts) == pytest.approx(evaluate_labelled(dup_preds, dup_labels).ap)


def test_bootstrap_is_paired_seeded_and_checks_its_inputs():
    from featherface.evaluation.labelled import bootstrap_ap, interval

    preds, labels = _two_image_case()
    r = evaluate_labelled(preds, labels)
    worse = evaluate_labelled({"a": preds["a"]}, labels)  # nothing on b
    samples = bootstrap_ap([r, worse, r], resamples=200, seed=3)
    assert samples.shape == (200, 3)
    assert np.array_equal(samples[:, 0], samples[:, 2], equal_nan=True)  # same draws for every result
    assert np.array_equal(samples, bootstrap_ap([r, worse, r], resamples=200, seed=3), equal_nan=True)
    # on every resample the detector that misses b is no better
    assert (samples[:, 1] <= samples[:, 0] + 1e-12).all()
    # only 4 distinct resamples of 2 images exist: AP 1/2 (a, a), 1 (b, b) or 2/3 (a, b)
    assert set(np.round(samples[:, 0], 6)) <= {0.5, 1.0, round(2 / 3, 6)}
    lo, hi = interval(samples[:, 0])
    assert 0.5 <= lo <= r.ap <= hi <= 1.0
    other = evaluate_labelled(preds, {"a": labels["a"]})
    with pytest.raises(ValueError, match="ONE labelled set"):
        bootstrap_ap([r, other])


def test_tied_scores_are_one_operating_point():
    # Two faces. A (0.8) TP; B (0.6) FP and C (0.6) TP tie. Whatever the order inside the tie, the
    # points are (P 1, R 1/2) after A and (P 2/3, R 1) after the tie: AP = 1/2 + 1/2 * 2/3.
    # Split in the order C, B, the tie would add (P 1, R 1) and give AP 1.
    from featherface.evaluation.labelled import bootstrap_ap, weighted_ap

    g = gt([[0, 0, 20, 20], [100, 100, 140, 140]])
    for order in ([0, 1, 2], [0, 2, 1]):
        boxes = np.array([[0, 0, 20, 20], [300, 300, 320, 320], [100, 100, 140, 140]])[order]
        r = evaluate_labelled({"a": dets(boxes, np.array([0.8, 0.6, 0.6])[order])}, {"a": g})
        assert r.ap == pytest.approx(0.5 + 0.5 * 2 / 3)
        assert weighted_ap(r, np.array([2])) == pytest.approx(r.ap)
        assert bootstrap_ap([r], resamples=5)[:, 0] == pytest.approx([r.ap] * 5)
