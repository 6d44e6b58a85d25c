"""The bundled Nano is a usable detector: many faces on a crowd photo, none on images without
faces (at its own recommended threshold)."""
import cv2
import numpy as np
import pytest

from featherface import FaceDetector
from featherface.data.transforms import paint_masks
from tests.conftest import shared_file


def _masks_without_faces(style: str) -> np.ndarray:
    """Twenty painted face masks (20-90 px) on flat grey: the training paints such masks over
    faces (``distill --mask-prob --mask-style``); a mask alone must not become a face."""
    boxes = np.array([[20 + j * 120, 20 + i * 110, 20 + j * 120 + s, 20 + i * 110 + 1.2 * s]
                      for i in range(4) for j, s in enumerate((20, 30, 45, 60, 90))], np.float32)
    return paint_masks(np.full((480, 640, 3), 127, np.uint8), boxes, np.random.default_rng(1), 1.0, style=style)


@pytest.fixture(scope="module")
def nano():
    return FaceDetector.from_pretrained("nano")


def test_threshold_is_recommended_by_the_weights(nano):
    from featherface.models.loading import load_any, recommended_threshold, checkpoint_path

    assert nano.cfg.score_threshold == recommended_threshold(load_any(checkpoint_path("nano"))[1]) is not None


@pytest.mark.parametrize("name, image", [
    ("flat grey", np.full((480, 640, 3), 127, np.uint8)),
    ("black", np.zeros((480, 640, 3), np.uint8)),
    ("uniform noise", np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)),
    ("smooth noise", cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 5)),
    ("1x1", np.full((1, 1, 3), 200, np.uint8)),
    ("painted masks, no faces", _masks_without_faces("plain")),
    ("varied painted masks, no faces", _masks_without_faces("varied")),
])
def test_no_faces_where_there_are_none(nano, name, image):
    assert nano.detect(image) == [], name


def test_no_faces_in_large_noise_images(nano):
    """A 720x1280 image is shrunk to 360x640 before the network, which averages uniform noise into
    fine noise of half the contrast; weights trained without faceless images fired on such draws."""
    found = [len(nano.detect(np.random.default_rng(1000 + seed).integers(0, 256, (720, 1280, 3), dtype=np.uint8)))
             for seed in range(20)]
    assert sum(found) == 0, found


def test_finds_most_of_the_crowd(nano):
    """Regression floor for the bundled weights: 21 of the 28 faces V1 finds."""
    faces = nano.detect(cv2.imread(str(shared_file("images/crowd_baseball.jpg"))))
    assert len(faces) >= 20, len(faces)


@pytest.mark.xfail(strict=True, reason="target not reached yet: the bundled Nano finds 21 faces at its "
                   "threshold 0.65 (21 at 0.5 and 0.4, 23 at 0.3); remove this mark when it passes")
def test_finds_the_crowd_target(nano):
    """The target: 25 faces. V1 reports 28 at 0.5, three of them two raised fists and a hand; the
    faces Nano misses are half behind a hand or an arm, or turned away (docs/experiments.md lists
    what training changes were tried for them)."""
    faces = nano.detect(cv2.imread(str(shared_file("images/crowd_baseball.jpg"))))
    assert len(faces) >= 25, len(faces)


def test_eyes_agree_with_scrfd_on_the_portraits(nano):
    """Regression floor for the bundled weights' points, in the usual five-point convention (eye
    centres, nose tip, mouth corners: SCRFD-2.5G's, RetinaFace's, the ArcFace template's): on the
    portrait photos, the eyes of each face both find (second look, the default) lie within 0.055 of
    the inter-ocular distance of SCRFD-2.5G's on average. Nano 1.0.1 gave 0.070, RetinaFace-
    MobileNet0.25 0.059, 1.1 0.044, 1.2 0.041, 1.3 0.039."""
    from featherface.core.geometry import iou_matrix
    from featherface.core.files import read_image
    from featherface.peers.runners import load_peers

    scrfd = next(p for p in load_peers(shared_file("peers"), 1) if p.name == "SCRFD-2.5G")
    errors = []
    for path in sorted(shared_file("images/portraits").glob("*.jpg")):
        image = read_image(path)
        ref, ours = scrfd.detect_arrays(image, score_threshold=0.5), nano.detect_arrays(image)
        if not len(ref.scores) or not len(ours.scores):
            continue
        iou = iou_matrix(ref.boxes, ours.boxes)
        for i, j in enumerate(iou.argmax(axis=1)):
            if iou[i, j] >= 0.5:
                iod = np.linalg.norm(ref.landmarks[i, 1] - ref.landmarks[i, 0])
                errors.append(np.linalg.norm(ours.landmarks[j, :2] - ref.landmarks[i, :2], axis=1).mean() / iod)
    assert len(errors) >= 60 and np.mean(errors) < 0.055, (len(errors), np.mean(errors))
