"""Loss terms on crafted targets."""
import math

import pytest
import torch

from featherface.models.anchors import priors
from featherface.training.losses import DistillationLoss, MultiBoxLoss, added_positives, box_iou, match


def _target(boxes, landmarks=None, has=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    g = boxes.shape[0]
    landmarks = torch.zeros(g, 10) if landmarks is None else torch.tensor(landmarks, dtype=torch.float32).reshape(g, 10)
    has = torch.ones(g, dtype=torch.bool) if has is None else torch.tensor(has)
    return {"boxes": boxes, "landmarks": landmarks, "has_landmarks": has}


ANCHORS = priors(64, 64)  # 2*(8*8 + 4*4 + 2*2) = 168 anchors


def test_box_iou_hand():
    a = torch.tensor([[0.0, 0, 2, 2]])
    b = torch.tensor([[1.0, 1, 3, 3], [5, 5, 6, 6]])
    assert torch.allclose(box_iou(a, b), torch.tensor([[1 / 7, 0.0]]))


def test_match_rules():
    # A box exactly equal to anchor 0 (stride 8, size 16 at (4, 4) px): IoU 1 there.
    a0 = ANCHORS[0]
    box = torch.cat([a0[:2] - a0[2:] / 2, a0[:2] + a0[2:] / 2])
    labels, lm_valid, loc_t, _ = match(box[None], torch.zeros(1, 10), torch.tensor([True]), ANCHORS)
    assert labels[0] == 1 and lm_valid[0]
    assert torch.allclose(loc_t[0], torch.zeros(4), atol=1e-5)
    # A tiny face (IoU < 0.2 with every anchor) is ignored entirely.
    labels, *_ = match(torch.tensor([[0.5, 0.5, 0.51, 0.51]]), torch.zeros(1, 10), torch.tensor([True]), ANCHORS)
    assert labels.sum() == 0
    # A face between 0.2 and 0.35 forces its best anchor positive.
    labels, *_ = match(torch.tensor([[0.0, 0.0, 0.3, 0.3]]), torch.zeros(1, 10), torch.tensor([True]), ANCHORS)
    assert labels.sum() >= 1


def _perfect_outputs(target):
    labels, lm_valid, loc_t, landmark_t = match(target["boxes"], target["landmarks"], target["has_landmarks"], ANCHORS)
    conf = torch.stack([torch.where(labels > 0, -20.0, 20.0), torch.where(labels > 0, 20.0, -20.0)], dim=-1)
    return (loc_t[None], conf[None], landmark_t[None]), labels


def test_perfect_prediction_gives_near_zero_loss():
    t = _target([[0.1, 0.1, 0.45, 0.5]], [[0.2, 0.2, 0.35, 0.2, 0.27, 0.3, 0.2, 0.4, 0.35, 0.4]])
    out, labels = _perfect_outputs(t)
    assert labels.sum() > 0
    terms = MultiBoxLoss()(out, [t], ANCHORS)
    assert terms["box"] < 1e-6 and terms["landmark"] < 1e-6 and terms["cls"] < 1e-6


def test_missing_landmarks_contribute_zero_landmark_loss():
    t = _target([[0.1, 0.1, 0.45, 0.5]], [[-1] * 10], has=[False])
    out, labels = _perfect_outputs(t)
    garbage = (out[0], out[1], torch.randn_like(out[2]) * 100)
    terms = MultiBoxLoss()(garbage, [t], ANCHORS)
    assert terms["landmark"] == 0
    # ...but the face still counts for class and box.
    worse_box = (out[0] + 1.0, out[1], out[2])
    assert MultiBoxLoss()(worse_box, [t], ANCHORS)["box"] > 0.1


def test_landmark_loss_counts_only_faces_with_landmarks():
    t = _target([[0.05, 0.05, 0.4, 0.45], [0.55, 0.5, 0.95, 0.95]],
                [[0.2] * 10, [-1] * 10], has=[True, False])
    out, _ = _perfect_outputs(t)
    shifted = (out[0], out[1], out[2] + 0.5)
    labels, lm_valid, *_ = match(t["boxes"], t["landmarks"], t["has_landmarks"], ANCHORS)
    terms = MultiBoxLoss()(shifted, [t], ANCHORS)
    # smooth-L1(0.5) = 0.125 per coordinate, 10 coordinates per valid positive.
    assert terms["landmark"].item() == pytest.approx(1.25, rel=1e-4)
    assert lm_valid.sum() < (labels > 0).sum()


def test_hard_negative_mining_ratio():
    t = _target([[0.1, 0.1, 0.45, 0.5]])
    out, labels = _perfect_outputs(t)
    n_pos = int(labels.sum())
    # Make every background anchor wrong with the same confidence: 7 negatives per positive count.
    conf = torch.zeros(1, ANCHORS.shape[0], 2)
    conf[0, labels > 0, 1] = 20.0
    conf[0, labels == 0, 1] = 1.0
    terms = MultiBoxLoss()((out[0], conf, out[2]), [t], ANCHORS)
    per_neg = torch.nn.functional.cross_entropy(torch.tensor([[0.0, 1.0]]), torch.tensor([0])).item()
    assert terms["cls"].item() == pytest.approx(7 * n_pos * per_neg / n_pos, rel=1e-3)


def test_degenerate_and_empty_targets_never_nan():
    loc = torch.randn(2, ANCHORS.shape[0], 4, requires_grad=True)
    conf = torch.randn(2, ANCHORS.shape[0], 2, requires_grad=True)
    landmark_deltas = torch.randn(2, ANCHORS.shape[0], 10, requires_grad=True)
    degenerate = _target([[0.3, 0.3, 0.3, 0.3], [0.5, 0.5, 0.5, 0.9]])
    empty = _target([])
    terms = MultiBoxLoss()((loc, conf, landmark_deltas), [degenerate, empty], ANCHORS)
    assert all(torch.isfinite(v) for v in terms.values())
    terms["total"].backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(conf.grad).all()


def test_distillation_terms():
    t = _target([[0.1, 0.1, 0.45, 0.5]])
    out, labels = _perfect_outputs(t)
    crit = DistillationLoss(temperature=4.0, alpha=0.7, feature_weight=0.1)
    feats = [torch.randn(1, 64, 8, 8)]
    same = crit(out, out, [t], ANCHORS, feats, feats)
    assert same["kd"].abs() < 1e-6 and same["feature"] == 0
    assert same["total"].item() == pytest.approx(0.3 * same["task"].item(), abs=1e-6)
    # Teacher says 50/50 everywhere, student is confident: KD is T^2 * KL summed over the
    # positives and the 7:1 mined negatives (all anchors tie here), divided by n_pos.
    teacher = (out[0], torch.zeros_like(out[1]), out[2])
    other = [f + 1.0 for f in feats]
    d = crit(out, teacher, [t], ANCHORS, feats, other)
    p = torch.softmax(torch.tensor([20.0, -20.0]) / 4, dim=0)
    kl_one = (0.5 * (math.log(0.5) - torch.log(p))).sum().item()
    n_pos = int(labels.sum())
    assert d["kd"].item() == pytest.approx(16 * kl_one * (n_pos + 7 * n_pos) / n_pos, rel=1e-4)
    assert d["feature"].item() == pytest.approx(1.0)
    assert d["total"].item() == pytest.approx(0.3 * d["task"].item() + 0.7 * d["kd"].item() + 0.1, rel=1e-5)


def test_min_negatives_mines_images_without_faces():
    conf = torch.zeros(2, ANCHORS.shape[0], 2)
    conf[:, :, 1] = torch.linspace(0.0, 5.0, ANCHORS.shape[0])
    labels = torch.zeros(2, ANCHORS.shape[0], dtype=torch.long)
    labels[1, 0] = 1  # the second image has one face anchor
    assert int(MultiBoxLoss().mine(conf, labels)[0].sum()) == 0  # RetinaFace's rule: nothing to learn
    sel = MultiBoxLoss(min_negatives=10).mine(conf, labels)
    assert sel[0].nonzero().flatten().tolist() == list(range(ANCHORS.shape[0] - 10, ANCHORS.shape[0]))  # the hardest
    assert int(sel[1].sum()) == 1 + 10  # 7 per positive, raised to the minimum
    loss = MultiBoxLoss(min_negatives=10)((torch.zeros(2, ANCHORS.shape[0], 4), conf, torch.zeros(2, ANCHORS.shape[0], 10)),
                                          [_target([]), _target([])], ANCHORS)
    assert loss["cls"].item() > 0  # a faceless batch now teaches "background" on its face-like anchors


def test_label_corrected_kd_leaves_out_the_faces_the_teacher_missed():
    t = _target([[0.1, 0.1, 0.45, 0.5], [0.55, 0.5, 0.9, 0.9]])
    out, labels = _perfect_outputs(t)
    # the teacher sees the first face only: background logits on the second face's anchors
    second = match(t["boxes"][1:], t["landmarks"][1:], t["has_landmarks"][1:], ANCHORS)[0] > 0
    teacher = (out[0], out[1].clone(), out[2])
    teacher[1][0, second] = torch.tensor([20.0, -20.0])
    plain = DistillationLoss()(out, teacher, [t], ANCHORS)
    assert plain["kd"].item() > 1.0  # KD pulls the second face towards the teacher's "background"
    flagged = {**t, "added": torch.tensor([False, True])}
    corrected = DistillationLoss(label_corrected=True)(out, teacher, [flagged], ANCHORS)
    assert corrected["kd"].item() == pytest.approx(0.0, abs=1e-5)  # only that face's anchors disagreed
    assert corrected["task"].item() == pytest.approx(plain["task"].item())  # the task term is untouched
    # without the flag (or with nothing added) the correction changes nothing
    none = {**t, "added": torch.tensor([False, False])}
    for target in (t, none):
        assert DistillationLoss(label_corrected=True)(out, teacher, [target], ANCHORS)["kd"].item() == pytest.approx(plain["kd"].item())
    assert added_positives([flagged, t], ANCHORS).sum(dim=1).tolist() == [int(second.sum()), 0]


def test_label_corrected_full_gives_the_missed_faces_kds_share_of_the_weight():
    t = _target([[0.1, 0.1, 0.45, 0.5], [0.55, 0.5, 0.9, 0.9]])
    out, labels = _perfect_outputs(t)
    second = match(t["boxes"][1:], t["landmarks"][1:], t["has_landmarks"][1:], ANCHORS)[0] > 0
    student = (out[0], out[1].clone(), out[2])
    student[1][0, second] = 0.0  # 50/50 on the missed face: cross-entropy ln 2 per anchor
    teacher = (out[0], out[1].clone(), out[2])
    teacher[1][0, second] = torch.tensor([20.0, -20.0])
    flagged = {**t, "added": torch.tensor([False, True])}
    corrected = DistillationLoss(label_corrected=True)(student, teacher, [flagged], ANCHORS)
    full = DistillationLoss(label_corrected=True, label_corrected_full=True)(student, teacher, [flagged], ANCHORS)
    n_pos = int(labels.sum())
    assert full["added_cls"].item() == pytest.approx(int(second.sum()) * math.log(2) / n_pos, rel=1e-5)
    assert full["total"].item() == pytest.approx(corrected["total"].item() + 0.7 * full["added_cls"].item(), rel=1e-5)
    assert corrected["added_cls"].item() == 0.0 and full["kd"].item() == pytest.approx(corrected["kd"].item())
    # nothing added: the same loss as without the option
    none = {**t, "added": torch.tensor([False, False])}
    assert DistillationLoss(label_corrected=True, label_corrected_full=True)(student, teacher, [none], ANCHORS)["total"].item() \
        == pytest.approx(DistillationLoss(label_corrected=True)(student, teacher, [none], ANCHORS)["total"].item())
    with pytest.raises(ValueError):
        DistillationLoss(label_corrected_full=True)


SIZES = [(8, 8), (4, 4), (2, 2)]  # the levels of a 64x64 input (strides 8, 16, 32)


def _anchor_box(i):
    a = ANCHORS[i]
    return torch.cat([a[:2] - a[2:] / 2, a[:2] + a[2:] / 2]).tolist()

