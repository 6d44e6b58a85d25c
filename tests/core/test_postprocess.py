import numpy as np
import pytest
import torch

from featherface.models.anchors import encode, encode_landmarks, priors
from featherface.core.postprocess import PostProcessConfig, RawOutputs, box_vote, nms, postprocess_image


def raw(loc, conf, landmark_deltas) -> RawOutputs:
    return RawOutputs(loc.numpy(), conf.numpy(), landmark_deltas.numpy())


def test_nms_hand_case():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # IoU(3, 0) = 90/100 -> suppressed; IoU(3, 1) = 72/(90+100-72) = 0.61 -> suppressed at 0.4.
    assert nms(boxes, scores, 0.4).tolist() == [3, 2]
    assert nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.4).shape == (0,)


def test_box_vote_hand_case():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 16]], np.float32)
    scores = np.array([0.9, 0.3, 0.7, 0.5], np.float32)
    landmarks = np.stack([np.full((5, 2), v, np.float32) for v in (1.0, 5.0, 25.0, 9.0)])
    keep = nms(boxes, scores, 0.4)
    # IoU(1, 0) = 90/110 -> suppressed, voted in; IoU(3, 0) = 100/160 = 0.625 -> suppressed, voted in
    assert keep.tolist() == [0, 2]
    voted, voted_lm = box_vote(boxes, scores, landmarks, keep, 0.4)
    # (0.9 * box0 + 0.3 * box1 + 0.5 * box3) / 1.7; box 2 overlaps nothing and stays as it was
    np.testing.assert_allclose(voted, [[0.3 / 1.7, 0, (9 + 3.3 + 5) / 1.7, (9 + 3 + 8) / 1.7], [20, 20, 30, 30]], rtol=1e-6)
    np.testing.assert_allclose(voted_lm[0], np.full((5, 2), (0.9 + 1.5 + 4.5) / 1.7), rtol=1e-6)
    np.testing.assert_allclose(voted_lm[1], landmarks[2])
    # a box voted only with itself (nothing above the IoU) is unchanged, even a degenerate one
    flat = np.array([[5, 5, 5, 9]], np.float32)
    np.testing.assert_array_equal(box_vote(flat, np.ones(1), np.zeros((1, 5, 2)), np.array([0]), 0.4)[0], flat)


def test_postprocess_votes_unless_told_not_to():
    h, w = 64, 64
    anchors = priors(h, w)
    a = anchors.shape[0]
    loc = torch.zeros(a, 4)
    conf = torch.zeros(a, 2)
    conf[:, 0] = 5.0
    # the two anchors of one stride-8 cell (sizes 16 and 32) see one face, 0.02 of the width apart
    same = torch.nonzero((anchors[:, :2] - anchors[9, :2]).abs().sum(dim=1) < 1e-6).flatten()
    i, j = int(same[0]), int(same[1])
    loc[i] = encode(torch.tensor([[0.10, 0.10, 0.40, 0.40]]), anchors[i:i + 1])[0]
    loc[j] = encode(torch.tensor([[0.12, 0.10, 0.42, 0.40]]), anchors[j:j + 1])[0]
    conf[i] = torch.tensor([0.0, 3.0])
    conf[j] = torch.tensor([0.0, 1.0])
    p_i, p_j = 1 / (1 + np.exp(-3)), 1 / (1 + np.exp(-1))
    lm = torch.zeros(a, 10)
    greedy = postprocess_image(raw(loc, conf, lm), (h, w), cfg=PostProcessConfig(box_voting=False))
    voted = postprocess_image(raw(loc, conf, lm), (h, w))
    assert len(greedy) == len(voted) == 1 and voted.scores[0] == greedy.scores[0] == pytest.approx(p_i, rel=1e-5)
    np.testing.assert_allclose(greedy.boxes[0], [6.4, 6.4, 25.6, 25.6], rtol=1e-4)
    x1 = (0.10 * p_i + 0.12 * p_j) / (p_i + p_j) * w
    np.testing.assert_allclose(voted.boxes[0], [x1, 6.4, x1 + 0.30 * w, 25.6], rtol=1e-4)


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
    out = postprocess_image(raw(loc, conf, landmark_deltas), (h, w), scale_xy=(2.0, 0.5))
    assert len(out) == 1
    np.testing.assert_allclose(out.boxes[0], [0.25 * w * 2, 0.25 * h * 0.5, 0.5 * w * 2, 0.6 * h * 0.5], rtol=1e-4)
    np.testing.assert_allclose(out.landmarks[0, 2], [0.37 * w * 2, 0.45 * h * 0.5], rtol=1e-4)
    assert out.scores[0] == pytest.approx(1 / (1 + np.exp(-5)), rel=1e-4)
    assert len(postprocess_image(raw(loc, conf, landmark_deltas), (h, w), cfg=PostProcessConfig(score_threshold=0.999))) == 0


def test_thresholds_validated():
    with pytest.raises(ValueError, match="score_threshold"):
        PostProcessConfig(score_threshold=1.5)
    with pytest.raises(ValueError, match="nms_iou"):
        PostProcessConfig(nms_iou=0)


def test_boxes_are_clipped_to_the_image():
    import torch

    from featherface.models.anchors import encode, priors

    anchors = priors(64, 64)
    loc = torch.zeros(anchors.shape[0], 4)
    conf = torch.zeros(anchors.shape[0], 2)
    conf[:, 0] = 5
    loc[0] = encode(torch.tensor([[-0.2, -0.1, 0.3, 0.4]]), anchors[:1])[0]  # sticks out top-left
    conf[0] = torch.tensor([-5.0, 5.0])
    d = postprocess_image(raw(loc, conf, torch.zeros(anchors.shape[0], 10)), (64, 64), (2.0, 2.0), PostProcessConfig())
    np.testing.assert_allclose(d.boxes, [[0.0, 0.0, 0.3 * 128, 0.4 * 128]], atol=1e-3)


def test_numpy_priors_equal_the_torch_priors():
    from featherface.core.priors import pixel_priors

    for h, w in ((64, 64), (120, 160), (481, 333)):
        ref = (priors(h, w) * torch.tensor([w, h, w, h])).numpy()
        np.testing.assert_allclose(pixel_priors(h, w), ref, atol=1e-3)
        assert not pixel_priors(h, w).flags.writeable  # the cached array is shared


def _torch_reference(outputs, hw, scale, cfg):
    """The post-processing as the package did it in torch before the core moved to numpy: softmax,
    threshold, decode with featherface.models.anchors, NMS and voting (numpy, as then)."""
    from featherface.models.anchors import decode, decode_landmarks

    loc, conf, lm = (torch.from_numpy(o) for o in outputs)
    h, w = hw
    scores = torch.softmax(conf.float(), dim=-1)[:, 1]
    idx = torch.nonzero(scores > cfg.score_threshold).flatten()
    a = priors(h, w)[idx]
    sx, sy = scale
    to_px = torch.tensor([w * sx, h * sy])
    boxes = (decode(loc[idx], a).reshape(-1, 2, 2) * to_px).reshape(-1, 4).numpy()
    np.clip(boxes, 0.0, [w * sx, h * sy, w * sx, h * sy], out=boxes)
    lms = (decode_landmarks(lm[idx], a).reshape(-1, 5, 2) * to_px).numpy()
    s = scores[idx].numpy()
    keep = nms(boxes, s, cfg.nms_iou)[: cfg.keep_top_k]
    vb, vl = box_vote(boxes, s, lms, keep, cfg.nms_iou)
    return vb, s[keep], vl


@pytest.mark.parametrize("arch", ["nano", "v1", "retinaface"])
@pytest.mark.parametrize("photo", ["golden", "crowd"])
def test_numpy_postprocessing_gives_the_torch_paths_faces(arch, photo, official_v1_path):
    """V1, Nano and RetinaFace on the golden image and the crowd photo: the numpy post-processing
    gives the torch path's faces (boxes and landmarks within 1e-3 px)."""
    import cv2

    from featherface.core.detector import preprocess
    from featherface.models.loading import checkpoint_path, load_any
    from featherface.export.torch_runner import TorchRunner
    from tests.conftest import shared_file

    weights = {"nano": checkpoint_path("nano"), "v1": official_v1_path,
               "retinaface": shared_file("peers/retinaface_mnet0.25_biubug6.pth")}[arch]
    runner = TorchRunner(load_any(weights)[0])
    img = cv2.imread(str(shared_file("golden/v1_input.png" if photo == "golden" else "images/crowd_baseball.jpg")))
    x, scale = preprocess(img, long_side=640)
    out = runner(x[None]).image(0)
    cfg = PostProcessConfig(score_threshold=0.5)
    got = postprocess_image(out, x.shape[1:], scale, cfg)
    boxes, scores, lms = _torch_reference(out, x.shape[1:], scale, cfg)
    assert len(got) == len(boxes) > 0
    np.testing.assert_allclose(got.scores, scores, atol=1e-6)
    np.testing.assert_allclose(got.boxes, boxes, atol=1e-3)
    np.testing.assert_allclose(got.landmarks, lms, atol=1e-3)


def test_box_vote_in_blocks_equals_the_dense_weighted_mean(monkeypatch):
    """Voting block by block over the overlapping candidates (bounded memory, no BLAS call) gives
    the dense score-weighted mean, with a block of 256 and of 7."""
    import featherface.core.postprocess as pp
    from featherface.core.geometry import iou_matrix

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 300, (400, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 40, (400, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0.1, 1, 400).astype(np.float32)
    landmarks = rng.uniform(0, 300, (400, 5, 2)).astype(np.float32)
    keep = nms(boxes, scores, 0.4)
    w = (iou_matrix(boxes[keep], boxes) > 0.4) * scores.astype(np.float64)[None, :]
    w /= w.sum(axis=1, keepdims=True)
    dense = (w @ boxes.astype(np.float64), (w @ landmarks.reshape(400, -1).astype(np.float64)).reshape(-1, 5, 2))
    assert len(keep) > 7
    for block in (256, 7):
        monkeypatch.setattr(pp, "VOTE_BLOCK", block)
        for got, want in zip(box_vote(boxes, scores, landmarks, keep, 0.4), dense):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)
