"""The landmarks' second look (featherface/core/refine.py): squares, cuts, merging, and the detector
using it (boxes and scores untouched, points read again)."""
import numpy as np
import pytest

from featherface import FaceDetector, read_image
from featherface.core.postprocess import Detections
from featherface.core.refine import cut_square, face_squares, merge_looks, refine_landmarks
from featherface.core.settings import LOOK, LookRules
from featherface.core.weights import EXAMPLES_DIR


def test_face_squares_by_hand():
    # box 40 x 50: side round(1.5 * 50) = 75 around the centre (30, 45): x0 = round(-7.5) = -7
    # (halves up, as the page's Math.round), y0 = round(7.5) = 8
    assert face_squares(np.array([[10, 20, 50, 70]]), 1.5).tolist() == [[-7, 8, 75]]
    # a degenerate box still gets a 1 px square
    assert face_squares(np.array([[5, 5, 5, 5]]), 1.5).tolist() == [[5, 5, 1]]


def test_cut_square_pads_black_and_mirrors():
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    cut = cut_square(img, -1, 2, 3)
    assert cut.shape == (3, 3, 3)
    assert (cut[:, 0] == 0).all() and (cut[2:] == 0).all()  # left of and below the image
    assert np.array_equal(cut[:2, 1:], img[2:4, 0:2])
    assert np.array_equal(cut_square(img, -1, 2, 3, mirror=True), cut[:, ::-1])
    assert cut_square(img[:, :, 0], 1, 1, 2).shape == (2, 2)  # grey images too
    assert not cut_square(img, 10, 10, 4).any()  # wholly outside: black


def _det(boxes, landmarks):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(boxes, np.full(len(boxes), 0.9, np.float32), np.asarray(landmarks, np.float32).reshape(-1, 5, 2))


def test_merge_looks_maps_back_and_averages_by_hand():
    # a face at (10, 20)-(30, 40), its square x0=5, y0=15, side 30; the look finds it at the same
    # place in the crop (box - 5, 15) with points one pixel right of the first look's
    lm = np.array([[14, 26], [26, 26], [20, 31], [15, 36], [25, 36]], np.float64)
    found = _det([10, 20, 30, 40], lm)
    squares = np.array([[5, 15, 30]])
    plain = _det([5, 5, 25, 25], lm - [5, 15] + [1, 0])
    # the mirrored crop: x -> 30 - x, and left/right swapped: the same face read with points one
    # pixel LEFT in the mirror (one pixel right once mirrored back)
    mirrored_pts = (lm - [5, 15])[[1, 0, 2, 4, 3]] * [-1, 1] + [30, 0] - [1, 0]
    mirrored = _det([5, 5, 25, 25], mirrored_pts)
    # a decoy beside the face in the plain look must not be taken
    decoy = _det([[20, 0, 30, 10], [5, 5, 25, 25]], np.stack([np.zeros((5, 2)), lm - [5, 15] + [1, 0]]))
    for looks in ([plain, mirrored], [decoy, mirrored]):
        out = merge_looks(found, squares, looks)
        assert np.allclose(out.landmarks[0], lm + [1, 0], atol=1e-4)
        assert np.array_equal(out.boxes, found.boxes) and np.array_equal(out.scores, found.scores)
    # one look only: its reading; none matching (IoU < min_iou): the first look's points
    assert np.allclose(merge_looks(found, squares, [plain, Detections()]).landmarks[0], lm + [1, 0], atol=1e-4)
    off = _det([18, 18, 28, 28], lm)
    assert np.array_equal(merge_looks(found, squares, [off, off]).landmarks, found.landmarks)
    # without the mirror: one look per face
    assert np.allclose(merge_looks(found, squares, [plain], mirror=False).landmarks[0], lm + [1, 0], atol=1e-4)


def test_refine_landmarks_batches_the_crops_at_face_px():
    seen = {}

    def detect(crops, side, threshold):
        seen.update(n=len(crops), shapes={c.shape for c in crops}, side=side, threshold=threshold)
        return [Detections() for _ in crops]

    img = np.zeros((100, 120, 3), np.uint8)
    found = _det([[10, 10, 30, 40], [60, 50, 100, 90]], np.zeros((2, 5, 2)))
    out = refine_landmarks(img, found, detect)
    assert seen == {"n": 4, "shapes": {(45, 45, 3), (60, 60, 3)}, "side": 144, "threshold": LOOK.score_threshold}
    assert np.array_equal(out.landmarks, found.landmarks)  # nothing found again: unchanged
    refine_landmarks(img, found, detect, rules=LookRules(face_px=64, context=2.0), mirror=False)
    assert seen["n"] == 2 and seen["side"] == 128
    seen.clear()
    assert len(refine_landmarks(img, Detections(), detect).scores) == 0 and not seen  # no face: no look


@pytest.fixture(scope="module")
def nano():
    return FaceDetector.from_pretrained("nano")


def test_detector_reads_landmarks_again_boxes_untouched(nano):
    img = read_image(EXAMPLES_DIR / "astronaut.jpg")
    first = nano.detect_arrays(img, refine_landmarks=False)
    second = nano.detect_arrays(img)
    assert len(first.scores) == 1
    assert np.array_equal(first.boxes, second.boxes) and np.array_equal(first.scores, second.scores)
    iod = np.linalg.norm(first.landmarks[0, 1] - first.landmarks[0, 0])
    moved = np.linalg.norm(second.landmarks - first.landmarks, axis=-1)
    assert 0 < moved.max() < 0.25 * iod  # the same face's points, read again
    # a detector built without it gives the first look; a file path reads the same as the array
    assert np.array_equal(FaceDetector.from_pretrained("nano", refine_landmarks=False).detect_arrays(img).landmarks,
                          first.landmarks)
    assert np.allclose(nano.detect_arrays(str(EXAMPLES_DIR / "astronaut.jpg")).landmarks, second.landmarks)
    # rgb input: the crops keep the caller's colour order
    assert np.allclose(nano.detect_arrays(np.ascontiguousarray(img[:, :, ::-1]), color="rgb").landmarks,
                       second.landmarks, atol=1e-3)


def test_second_look_is_mirror_symmetric(nano):
    """Reading each face plain and mirrored makes the points of a mirrored photo the mirror image
    of the photo's (up to the first look's box, which the crop is centred on)."""
    img = read_image(EXAMPLES_DIR / "astronaut.jpg")
    w = img.shape[1]
    a = nano.detect_arrays(img).landmarks[0]
    b = nano.detect_arrays(np.ascontiguousarray(img[:, ::-1])).landmarks[0][[1, 0, 2, 4, 3]]
    b[:, 0] = w - b[:, 0]
    iod = np.linalg.norm(a[1] - a[0])
    assert np.abs(a - b).max() < 0.05 * iod
