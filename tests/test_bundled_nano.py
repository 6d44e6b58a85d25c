"""The bundled Nano is a usable detector: many faces on a crowd photo, none on images without
faces (at its own recommended threshold)."""
import cv2
import numpy as np
import pytest

from featherface import FaceDetector
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def nano():
    return FaceDetector.from_pretrained("nano")


def test_threshold_is_recommended_by_the_weights(nano):
    from featherface.loading import load_any, recommended_threshold, resolve_weights

    assert nano.cfg.score_threshold == recommended_threshold(load_any(resolve_weights("nano"))[1]) is not None


@pytest.mark.parametrize("name, image", [
    ("flat grey", np.full((480, 640, 3), 127, np.uint8)),
    ("black", np.zeros((480, 640, 3), np.uint8)),
    ("uniform noise", np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)),
    ("smooth noise", cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 5)),
    ("1x1", np.full((1, 1, 3), 200, np.uint8)),
])
def test_no_faces_where_there_are_none(nano, name, image):
    assert nano.detect(image) == [], name


def test_finds_most_of_the_crowd(nano):
    """Regression floor for the bundled weights: 21 of the 28 faces V1 finds (measured; session 3's file found 22)."""
    faces = nano.detect(cv2.imread(str(shared_file("images/crowd_baseball.jpg"))))
    assert len(faces) >= 20, len(faces)


@pytest.mark.xfail(strict=True, reason="issue 10 target not reached yet: the bundled Nano finds 21 faces at its "
                   "threshold 0.65 (22 at 0.5, 24 at 0.4, 27 at 0.3); remove this mark when it passes")
def test_finds_the_crowd_target(nano):
    faces = nano.detect(cv2.imread(str(shared_file("images/crowd_baseball.jpg"))))
    assert len(faces) >= 25, len(faces)
