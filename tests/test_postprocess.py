import numpy as np
import pytest
import torch

from featherface.anchors import encode, encode_landmarks, priors
from featherface.postprocess import PostProcessConfig, nms, postprocess_image


def test_nms_hand_case():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # IoU(3, 0) = 90/100 -> suppressed; IoU(3, 1) = 72/(90+100-72) = 0.61 -> suppressed at 0.4.
    assert nms(boxes, scores, 0.4).tolist() == [3, 2]
    assert nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.4).shape == (0,)


def test_postprocess_recovers_encoded_face():
    h, w = 120, 160
    anchors = priors(h, w)
    a = anchors.shape[0]
    box = torch.tensor([[0.25, 0.25, 0.5, 0.6]])
    lm = torch.tensor([[0.3, 0.35, 0.45, 0.35, 0.37, 0.45, 0.32, 0.52, 0.43, 0.52]])
    loc = encode(box.expand(a, 4), anchors)
    landmark_deltas = encode_landmarks(lm.expand(a, 10), anchors)
    conf = torch.zeros(a, 2)
    conf[:, 0] = 5.0  # background everywhere...
    conf[37, 1] = 10.0  # ...but anchor 37 says "face" with softmax ~0.9933
    out = postprocess_image(loc, conf, landmark_deltas, (h, w), scale_xy=(2.0, 0.5))
    assert len(out) == 1
    np.testing.assert_allclose(out.boxes[0], [0.25 * w * 2, 0.25 * h * 0.5, 0.5 * w * 2, 0.6 * h * 0.5], rtol=1e-4)
    np.testing.assert_allclose(out.landmarks[0, 2], [0.37 * w * 2, 0.45 * h * 0.5], rtol=1e-4)
    assert out.scores[0] == pytest.approx(1 / (1 + np.exp(-5)), rel=1e-4)
    assert len(postprocess_image(loc, conf, landmark_deltas, (h, w), cfg=PostProcessConfig(score_threshold=0.999))) == 0


def test_thresholds_validated():
    with pytest.raises(ValueError, match="score_threshold"):
        PostProcessConfig(score_threshold=1.5)
    with pytest.raises(ValueError, match="nms_iou"):
        PostProcessConfig(nms_iou=0)


def test_boxes_are_clipped_to_the_image():
    import torch

    from featherface.anchors import encode, priors
    from featherface.postprocess import PostProcessConfig, postprocess_image

    anchors = priors(64, 64)
    loc = torch.zeros(anchors.shape[0], 4)
    conf = torch.zeros(anchors.shape[0], 2)
    conf[:, 0] = 5
    loc[0] = encode(torch.tensor([[-0.2, -0.1, 0.3, 0.4]]), anchors[:1])[0]  # sticks out top-left
    conf[0] = torch.tensor([-5.0, 5.0])
    d = postprocess_image(loc, conf, torch.zeros(anchors.shape[0], 10), (64, 64), (2.0, 2.0), PostProcessConfig())
    np.testing.assert_allclose(d.boxes, [[0.0, 0.0, 0.3 * 128, 0.4 * 128]], atol=1e-3)
