"""WIDER FACE AP: hand-computed crafted cases and agreement with the reference transcription."""
import copy
import time

import numpy as np
import pytest

from featherface.data.annotations import MatGroundTruth, load_mat_ground_truth
from featherface.evaluation.widerface import (bbox_overlaps, evaluate_predictions, read_prediction_folder,
                                              write_prediction_file)
from tests.conftest import shared_file
from tests.evaluation import reference_eval as ref


def _gt(boxes_per_image, keep_per_image):
    """A one-event ground truth with the same keep-list for all three settings."""
    names = [f"img{i}" for i in range(len(boxes_per_image))]
    boxes = [[np.asarray(b, np.float64).reshape(-1, 4) for b in boxes_per_image]]
    keep = [[np.asarray(k, np.int64) for k in keep_per_image]]
    return MatGroundTruth(["ev"], [names], boxes, {s: copy.deepcopy(keep) for s in ("easy", "medium", "hard")})


def test_perfect_predictions_give_ap_1():
    faces = [[10, 10, 20, 20], [50, 50, 30, 40]]
    gt = _gt([faces, [[0, 0, 15, 15]]], [[1, 2], [1]])
    preds = {"ev": {"img0": np.array([[10, 10, 20, 20, 0.9], [50, 50, 30, 40, 0.8]]),
                    "img1": np.array([[0, 0, 15, 15, 0.7]])}}
    res = evaluate_predictions(preds, gt)
    assert res.ap == {"easy": pytest.approx(1.0), "medium": pytest.approx(1.0), "hard": pytest.approx(1.0)}
    assert res.missing == []


def test_predictions_on_ignored_faces_are_not_false_positives():
    # Face 2 is outside the keep-list: a confident detection on it must not lower precision.
    gt = _gt([[[10, 10, 20, 20], [100, 100, 20, 20]]], [[1]])
    preds = {"ev": {"img0": np.array([[100, 100, 20, 20, 0.95], [10, 10, 20, 20, 0.9], [300, 300, 5, 5, 0.1]])}}
    res = evaluate_predictions(preds, gt)
    # normalised scores: 1.0 (ignored), 0.941 (TP), 0.0 (FP, below every threshold but t=999's 0.0)
    # precision 1 up to recall 1 -> AP 1.
    assert res.ap["hard"] == pytest.approx(1.0)


def test_duplicates_are_false_positives():
    gt = _gt([[[10, 10, 20, 20], [100, 100, 20, 20]]], [[1, 2]])
    # TP on face 1 (score 1.0 after normalisation), duplicate on face 1 (0.5), TP on face 2 (0.0).
    preds = {"ev": {"img0": np.array([[10, 10, 20, 20, 0.9], [11, 10, 20, 20, 0.5], [100, 100, 20, 20, 0.1]])}}
    res = evaluate_predictions(preds, gt)
    # Envelope: precision 1 for recall in (0, 0.5]; at recall 1.0 the precision is 2/3.
    assert res.ap["easy"] == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))


def test_empty_sets():
    gt = _gt([[[10, 10, 20, 20]], [[5, 5, 10, 10]]], [[1], [1]])
    res = evaluate_predictions({}, gt)
    assert res.ap["easy"] == 0.0 and res.missing == ["ev/img0", "ev/img1"]
    res = evaluate_predictions({"ev": {"img0": np.zeros((0, 5)), "img1": np.zeros((0, 5))}}, gt)
    assert res.ap["hard"] == 0.0 and res.missing == []


def test_overlaps_match_cython_transcription():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 50, (30, 4))
    a[:, 2:] += a[:, :2]
    b = rng.uniform(0, 50, (20, 4))
    b[:, 2:] += b[:, :2]
    assert np.array_equal(bbox_overlaps(a, b), ref.bbox_overlaps(a, b))


def _raw_mats():
    from scipy.io import loadmat

    d = shared_file("widerface/ground_truth")
    g = loadmat(str(d / "wider_face_val.mat"))
    lists = [loadmat(str(d / f"wider_{s}_val.mat"))["gt_list"] for s in ("hard", "medium", "easy")]
    return g["face_bbx_list"], g["event_list"], g["file_list"], *lists


def _random_predictions(gt, rng, n_events=None, sort=True):
    """Jittered copies of ground-truth faces plus random false positives, per image."""
    preds = {}
    for e, event in enumerate(gt.events[:n_events]):
        preds[event] = {}
        for i, name in enumerate(gt.images[e]):
            g = gt.boxes[e][i]
            keep = rng.random(len(g)) < 0.7
            tp = g[keep] + rng.normal(0, 1, (keep.sum(), 4)) * np.maximum(g[keep, 2:3], 1) * 0.05
            k = rng.integers(0, 6)
            fp = np.column_stack([rng.uniform(0, 900, (k, 2)), rng.uniform(5, 80, (k, 2))])
            boxes = np.vstack([tp, fp]) if len(tp) else fp
            s = np.round(rng.uniform(0.02, 1.0, len(boxes)), 3)
            p = np.column_stack([np.round(boxes, 1), s])
            if sort:
                p = p[np.argsort(-p[:, 4], kind="stable")]
            preds[event][name] = p
    return preds


@pytest.mark.parametrize("sort", [True, False])
def test_agrees_with_reference_on_a_subset(sort):
    raw = _raw_mats()
    gt = load_mat_ground_truth(shared_file("widerface/ground_truth"))
    rng = np.random.default_rng(1 if sort else 2)
    preds = _random_predictions(gt, rng, sort=sort)
    # The literal reference is slow (Python loops): restrict to 4 events for the default run.
    events = gt.events[:4]
    sub = MatGroundTruth(events, gt.images[:4], gt.boxes[:4], {k: v[:4] for k, v in gt.keep.items()})
    sub_preds = {e: preds[e] for e in events}
    ours = evaluate_predictions(sub_preds, sub)
    face, ev, files, hard, medium, easy = raw
    ref_aps = ref.evaluation(copy.deepcopy(sub_preds), face[:4], ev[:4], files[:4], hard[:4], medium[:4], easy[:4])
    for s, r in zip(("easy", "medium", "hard"), ref_aps):
        assert abs(ours.ap[s] - r) < 1e-9, (s, ours.ap[s], r)


@pytest.mark.slow
def test_agrees_with_reference_on_full_val():
    raw = _raw_mats()
    gt = load_mat_ground_truth(shared_file("widerface/ground_truth"))
    preds = _random_predictions(gt, np.random.default_rng(3), sort=True)
    ours = evaluate_predictions(preds, gt)
    ref_aps = ref.evaluation(copy.deepcopy(preds), *raw[:3], *raw[3:])
    for s, r in zip(("easy", "medium", "hard"), ref_aps):
        assert abs(ours.ap[s] - r) < 1e-9


def test_full_val_is_fast_and_files_round_trip(tmp_path):
    gt = load_mat_ground_truth(shared_file("widerface/ground_truth"))
    preds = _random_predictions(gt, np.random.default_rng(4))
    for event, images in preds.items():
        for name, p in images.items():
            write_prediction_file(tmp_path / event / f"{name}.txt", f"{name}.jpg", p)
    t0 = time.perf_counter()
    back = read_prediction_folder(tmp_path)
    res = evaluate_predictions(back, gt)
    elapsed = time.perf_counter() - t0
    direct = evaluate_predictions(preds, gt)
    assert res.ap == pytest.approx(direct.ap, abs=1e-4)  # files round scores to 5 decimals
    assert 0.1 < res.ap["easy"] < 1.0 and res.missing == []
    print(f"3,226 images: read + evaluated in {elapsed:.2f}s")
    assert elapsed < 60, f"3,226 images took {elapsed:.1f}s"
