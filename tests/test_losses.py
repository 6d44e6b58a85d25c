"""Loss terms on crafted targets."""
import math

import pytest
import torch

from featherface.anchors import priors
from featherface.losses import (DistillationLoss, MultiBoxLoss, added_positives, box_iou, focused_feature_loss,
                               imitation_masks, match)


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


def test_mining_never_picks_excluded_anchors():
    t = _target([[0.1, 0.1, 0.45, 0.5]])
    _, labels = _perfect_outputs(t)
    n_pos = int(labels.sum())
    conf = torch.zeros(1, ANCHORS.shape[0], 2)
    conf[0, :, 1] = torch.linspace(0.0, 5.0, ANCHORS.shape[0])  # the last anchors are the hardest negatives
    lab = labels.reshape(1, -1)
    exclude = torch.zeros_like(lab, dtype=torch.bool)
    exclude[0, -20:] = True
    exclude &= lab == 0
    plain = MultiBoxLoss().mine(conf, lab)
    sel = MultiBoxLoss().mine(conf, lab, exclude=exclude)
    assert plain[exclude].any() and not sel[exclude].any()
    assert int((sel & (lab == 0)).sum()) == 7 * n_pos == int((plain & (lab == 0)).sum())
    assert bool(sel[lab > 0].all())


def test_distillation_ignores_background_the_teacher_is_unsure_of():
    t = _target([[0.1, 0.1, 0.45, 0.5]])
    out, labels = _perfect_outputs(t)
    student = (out[0], out[1].clone(), out[2])
    student[1][0, labels == 0] = torch.tensor([0.0, 1.0])  # every background anchor says "face" a little
    teacher = (out[0], out[1].clone(), out[2])
    teacher[1][0, labels == 0] = torch.tensor([0.0, math.log(0.3 / 0.7)])  # teacher: p(face) = 0.3
    plain = DistillationLoss()(student, teacher, [t], ANCHORS)
    ignoring = DistillationLoss(ignore_below=0.2)(student, teacher, [t], ANCHORS)
    per_neg = torch.nn.functional.cross_entropy(torch.tensor([[0.0, 1.0]]), torch.tensor([0])).item()
    assert plain["cls"].item() == pytest.approx(7 * per_neg, rel=1e-3)
    assert ignoring["cls"].item() == pytest.approx(0.0, abs=1e-3)  # only the (perfect) positives remain
    # KD now covers every unsure background anchor, not only the 7:1 mined ones.
    assert ignoring["kd"].item() > plain["kd"].item() * 2
    with pytest.raises(ValueError):
        DistillationLoss(ignore_below=0.6)


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
    full = DistillationLoss(label_corrected=True, corrected_full=True)(student, teacher, [flagged], ANCHORS)
    n_pos = int(labels.sum())
    assert full["added_cls"].item() == pytest.approx(int(second.sum()) * math.log(2) / n_pos, rel=1e-5)
    assert full["total"].item() == pytest.approx(corrected["total"].item() + 0.7 * full["added_cls"].item(), rel=1e-5)
    assert corrected["added_cls"].item() == 0.0 and full["kd"].item() == pytest.approx(corrected["kd"].item())
    # nothing added: the same loss as without the option
    none = {**t, "added": torch.tensor([False, False])}
    assert DistillationLoss(label_corrected=True, corrected_full=True)(student, teacher, [none], ANCHORS)["total"].item() \
        == pytest.approx(DistillationLoss(label_corrected=True)(student, teacher, [none], ANCHORS)["total"].item())
    with pytest.raises(ValueError):
        DistillationLoss(corrected_full=True)


def test_box_kd_teaches_the_teachers_boxes_where_it_sees_a_face():
    t = _target([[0.1, 0.1, 0.45, 0.5]])
    out, labels = _perfect_outputs(t)
    n_pos = int((labels > 0).sum())
    faint = torch.zeros_like(labels, dtype=torch.bool)
    faint[labels == 0] = True
    faint &= torch.arange(len(labels)) % 5 == 0  # some background anchors: a faint face for the teacher
    teacher = (out[0].clone(), out[1].clone(), out[2])
    teacher[1][0, faint] = torch.tensor([0.0, math.log(0.3 / 0.7)])  # p(face) = 0.3, below the pseudo-label threshold
    teacher[1][0, (labels == 0) & ~faint] = torch.tensor([0.0, math.log(0.05 / 0.95)])  # p = 0.05: not a face
    teacher[0][0, labels == 0] = 0.7  # the teacher's regressions wherever no target is
    student = (out[0].clone(), out[1], out[2])
    student[0][0, labels == 0] = 0.2  # 0.5 off everywhere: smooth-L1 0.5 * 0.5^2 = 0.125 per coordinate
    plain = DistillationLoss()(student, teacher, [t], ANCHORS)
    with_box = DistillationLoss(box_kd_weight=2.0)(student, teacher, [t], ANCHORS)
    # positives agree exactly; of the background anchors only the faint ones (p >= 0.1) count
    assert with_box["box_kd"].item() == pytest.approx(int(faint.sum()) * 4 * 0.125 / n_pos, rel=1e-5)
    assert with_box["total"].item() == pytest.approx(plain["total"].item() + 2.0 * with_box["box_kd"].item(), rel=1e-5)
    assert plain["box_kd"].item() == 0.0
    for bad in ({"box_kd_weight": -1.0}, {"box_kd_min_score": 0.0}, {"box_kd_min_score": 1.0}):
        with pytest.raises(ValueError):
            DistillationLoss(**bad)


SIZES = [(8, 8), (4, 4), (2, 2)]  # the levels of a 64x64 input (strides 8, 16, 32)


def _anchor_box(i):
    a = ANCHORS[i]
    return torch.cat([a[:2] - a[2:] / 2, a[:2] + a[2:] / 2]).tolist()


def test_imitation_masks_mark_the_cells_whose_anchors_fit_the_face():
    # A face equal to anchor 0 (16 px at (4, 4) px, stride 8): IoU 1 there. Its neighbours reach
    # 1/3 (16 px one cell over: 8x16 of 384 px^2), the 32 px anchor of the same cell 1/4, the
    # stride-16 anchors at most 1/16: only cell (0, 0) of level 0 passes 0.5 x 1.
    m = imitation_masks([_target([_anchor_box(0)]), _target([])], ANCHORS, SIZES)
    assert [x.shape for x in m] == [(2, 8, 8), (2, 4, 4), (2, 2, 2)]
    assert m[0][0, 0, 0] and int(m[0].sum()) == 1 and not m[1].any() and not m[2].any()
    # with ratio 0.3 the two neighbours at IoU 1/3 join (the cell right of it and the one below)
    m = imitation_masks([_target([_anchor_box(0)])], ANCHORS, SIZES, ratio=0.3)
    assert m[0][0].nonzero().tolist() == [[0, 0], [0, 1], [1, 0]]
    # a 64 px face at stride 16, cell (1, 1) (anchor index 2 * 64 + 2 * (1 * 4 + 1)): that level
    m = imitation_masks([_target([_anchor_box(128 + 10)])], ANCHORS, SIZES)
    assert m[1][0, 1, 1] and not m[0].any()
    with pytest.raises(ValueError, match="do not fit"):
        imitation_masks([_target([])], ANCHORS, [(8, 8), (4, 4)])


def test_focused_feature_loss_averages_the_selected_cells_only():
    student = [torch.zeros(1, 3, h, w) for h, w in SIZES]
    teacher = [torch.full((1, 3, h, w), 100.0) for h, w in SIZES]  # far off everywhere ...
    teacher[0][0, :, 2, 3] = 2.0  # ... but the two selected cells: squared errors 4 and 16
    teacher[2][0, :, 1, 0] = torch.tensor([4.0, 4.0, -4.0])
    masks = [torch.zeros(1, h, w, dtype=torch.bool) for h, w in SIZES]
    masks[0][0, 2, 3] = masks[2][0, 1, 0] = True
    assert focused_feature_loss(student, teacher, masks).item() == pytest.approx((4 + 16) / 2)
    empty = [torch.zeros_like(m) for m in masks]
    assert focused_feature_loss(student, teacher, empty).item() == 0.0


def test_feature_focus_term_adds_to_the_total():
    t = _target([_anchor_box(0), [0.1, 0.1, 0.45, 0.5]])
    out, _ = _perfect_outputs(t)
    s_feats = [torch.zeros(1, 4, h, w) for h, w in SIZES]
    t_feats = [torch.ones(1, 4, h, w) for h, w in SIZES]  # squared error 1 in every cell
    plain = DistillationLoss()(out, out, [t], ANCHORS, s_feats, t_feats)
    focus = DistillationLoss(feature_focus_weight=0.5)(out, out, [t], ANCHORS, s_feats, t_feats)
    assert plain["feature_focus"].item() == 0.0 and focus["feature_focus"].item() == pytest.approx(1.0)
    assert focus["total"].item() == pytest.approx(plain["total"].item() + 0.5)
    # without feature maps (a plain task run) the term is zero, not an error
    assert DistillationLoss(feature_focus_weight=0.5)(out, out, [t], ANCHORS)["feature_focus"].item() == 0.0
    with pytest.raises(ValueError):
        DistillationLoss(feature_focus_weight=-1.0)


def test_feature_adapter_starts_as_the_identity_and_learns():
    t = _target([_anchor_box(0), [0.1, 0.1, 0.45, 0.5]])
    out, _ = _perfect_outputs(t)
    s_feats = [torch.randn(1, 8, h, w, requires_grad=True) for h, w in SIZES]
    t_feats = [torch.randn(1, 8, h, w) for h, w in SIZES]
    plain = DistillationLoss(feature_focus_weight=1.0, feature_channels=8)
    adapted = DistillationLoss(feature_focus_weight=1.0, feature_adapter=True, feature_channels=8)
    assert list(plain.parameters()) == [] and len(list(adapted.parameters())) == 6  # 3 levels x (weight, bias)
    a = adapted(out, out, [t], ANCHORS, s_feats, t_feats)
    assert a["feature_focus"].item() == pytest.approx(plain(out, out, [t], ANCHORS, s_feats, t_feats)["feature_focus"].item())
    a["total"].backward()
    assert adapted.adapters[0].weight.grad.abs().sum() > 0  # the face cells (level 0 and 1 here) reach it
    with pytest.raises(ValueError, match="feature_adapter"):
        DistillationLoss(feature_adapter=True)
