"""RetinaFace-MobileNet0.25: parameter count, strict load of the released weights, a stored output."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from featherface import FaceDetector
from featherface.models.checkpoint import CheckpointError, load_model
from featherface.models.convert import clean_official_state_dict, convert_official, load_official
from featherface.models import build_model, parameter_breakdown
from tests.conftest import shared_file

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "retinaface_crowd.json"


def test_parameter_count():
    b = parameter_breakdown(build_model("retinaface"))
    assert b == {"backbone": 213_072, "FPN": 103_040, "SSH": 104_256, "heads": 6_240, "total": 426_608}


@pytest.mark.parametrize("hw", [(640, 640), (312, 512), (479, 641)])
def test_output_shapes_match_priors(hw):
    from featherface.models.anchors import priors

    with torch.no_grad():
        loc, conf, landmark_deltas = build_model("retinaface").eval()(torch.zeros(1, 3, *hw))
    n = priors(*hw).shape[0]
    assert loc.shape == (1, n, 4) and conf.shape == (1, n, 2) and landmark_deltas.shape == (1, n, 10)


def test_released_weights_load_strictly_and_convert(tmp_path):
    src = shared_file("peers/retinaface_mnet0.25_biubug6.pth")
    model, arch = load_official(src)
    assert arch == "retinaface"
    raw = torch.load(src, map_location="cpu", weights_only=True)
    state, dropped = clean_official_state_dict(raw)
    assert dropped == [] and set(state) == set(model.state_dict())
    meta = convert_official(src, tmp_path / "retina.pt")
    assert meta["arch"] == "retinaface" and meta["source_sha256"].startswith("2979b33f")
    m2, ck = load_model(tmp_path / "retina.pt")
    assert ck["arch"] == "retinaface"
    # A V1 state_dict is not accepted as RetinaFace (strict).
    with pytest.raises(CheckpointError, match="does not match the retinaface architecture"):
        load_official(shared_file("weights/featherface_v1_official.pth"), "retinaface")


def test_reproduces_stored_output_on_crowd_photo():
    """The stored output is the released code's post-processing (greedy NMS) on the photo resized
    by OpenCV; this package's resize matches OpenCV's to within one level of rounding, which moves
    the faint faces' scores by up to about 0.01: the same 26 faces, each within 1 px. Box voting
    keeps the same faces and scores and moves boxes by a few pixels at most."""
    img = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    # as released: greedy NMS, and the landmarks of the one look (no second look)
    det = FaceDetector.from_pretrained(shared_file("peers/retinaface_mnet0.25_biubug6.pth"), box_voting=False,
                                       refine_landmarks=False)
    assert det.arch == "retinaface"
    d = det.detect_arrays(img)
    ref = json.loads(FIXTURE.read_text())
    assert len(d) == len(ref["scores"]) == 26
    dist = np.abs(np.array(ref["boxes"])[:, None, :] - d.boxes[None]).max(axis=2)
    match = dist.argmin(axis=1)
    assert len(set(match.tolist())) == 26 and dist.min(axis=1).max() < 1.0
    np.testing.assert_allclose(d.scores[match], ref["scores"], atol=0.02)
    np.testing.assert_allclose(d.landmarks[match], ref["landmarks"], atol=2.0)
    voted = FaceDetector.from_pretrained(shared_file("peers/retinaface_mnet0.25_biubug6.pth"),
                                         refine_landmarks=False).detect_arrays(img)
    np.testing.assert_array_equal(voted.scores, d.scores)
    moved = np.abs(voted.boxes - d.boxes).max(axis=1) / (d.boxes[:, 2] - d.boxes[:, 0])
    assert 0 < moved.max() < 0.1  # measured: 0.054 at most, median 0.02
