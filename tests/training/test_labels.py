"""Online pseudo-labels: the teacher's own output decoded into targets, merged with human boxes."""
import torch

from featherface.anchors import encode, priors
from featherface.training.labels import KEEP_LARGE_PX, decode_teacher, magnified_targets, merge_online_targets, pair_same_faces


def _teacher_out(anchors, faces):
    """Raw outputs in which anchor ``i`` predicts box ``b`` with face probability ~1 for each
    ``(i, b)`` in ``faces`` and background everywhere else."""
    a = anchors.shape[0]
    loc = torch.zeros(1, a, 4)
    conf = torch.zeros(1, a, 2)
    conf[..., 0] = 5.0
    for i, box in faces:
        loc[0, i] = encode(torch.tensor(box)[None], anchors[i:i + 1])[0]
        conf[0, i] = torch.tensor([-5.0, 5.0])
    return loc, conf, torch.zeros(1, a, 10)


def test_decode_teacher_recovers_encoded_boxes():
    anchors = priors(96, 96)
    box = [0.2, 0.25, 0.45, 0.5]
    boxes, landmarks = decode_teacher(*(t[0] for t in _teacher_out(anchors, [(10, box)])), (96, 96))
    torch.testing.assert_close(boxes, torch.tensor([box]), atol=1e-5, rtol=0)
    assert landmarks.shape == (1, 10)


def test_merge_keeps_teacher_boxes_and_adds_missed_human_faces():
    anchors = priors(96, 96)
    teacher_box = [0.2, 0.2, 0.4, 0.4]
    out = _teacher_out(anchors, [(10, teacher_box)])
    human = torch.tensor([[0.21, 0.2, 0.41, 0.4],   # same face as the teacher's: dropped
                          [0.6, 0.6, 0.8, 0.8]])     # missed by the teacher: added, no landmarks
    targets = [{"boxes": human, "landmarks": torch.zeros(2, 10), "has_landmarks": torch.zeros(2, dtype=torch.bool),
                "online": True}]
    merged = merge_online_targets(targets, out, (96, 96))[0]
    torch.testing.assert_close(merged["boxes"], torch.tensor([teacher_box, [0.6, 0.6, 0.8, 0.8]]), atol=1e-5, rtol=0)
    assert merged["has_landmarks"].tolist() == [True, False] and merged["added"].tolist() == [False, True]
    assert merged["n_teacher"] == 1 and merged["n_human_added"] == 1


def test_merge_leaves_labelled_targets_alone_and_finds_nothing_in_background():
    anchors = priors(96, 96)
    out = _teacher_out(anchors, [])
    fixed = {"boxes": torch.tensor([[0.1, 0.1, 0.3, 0.3]]), "landmarks": torch.zeros(1, 10),
             "has_landmarks": torch.ones(1, dtype=torch.bool)}
    online = {"boxes": torch.zeros(0, 4), "landmarks": torch.zeros(0, 10), "has_landmarks": torch.zeros(0, dtype=torch.bool),
              "online": True}
    a, b = merge_online_targets([fixed, online], tuple(torch.cat([t, t]) for t in out), (96, 96))
    assert a is fixed
    assert b["boxes"].shape == (0, 4)


def test_label_boxes_replace_the_teachers_box_of_the_same_face():
    """With label_boxes the labelled box is the target where both see the face (the teacher's
    landmarks stay); a missed face is still added; each label replaces at most one box."""
    anchors = priors(96, 96)
    teacher_box = [0.2, 0.2, 0.4, 0.4]
    out = _teacher_out(anchors, [(10, teacher_box)])
    human = torch.tensor([[0.22, 0.21, 0.41, 0.42], [0.6, 0.6, 0.8, 0.8]])
    targets = [{"boxes": human, "landmarks": torch.zeros(2, 10), "has_landmarks": torch.zeros(2, dtype=torch.bool),
                "online": True}]
    merged = merge_online_targets(targets, out, (96, 96), label_boxes=True)[0]
    torch.testing.assert_close(merged["boxes"], human, atol=1e-6, rtol=0)
    assert merged["has_landmarks"].tolist() == [True, False] and merged["added"].tolist() == [False, True]
    assert merged["n_teacher"] == 1 and merged["n_human_added"] == 1


def test_magnified_pass_decides_small_faces_and_keeps_large_ones():
    """On a 96x96 view: the view-scale pass finds a small face A, a small "fist" F and a large face
    G (67 px); the pass over the view magnified to 192x192 finds A (slightly shifted) and a small
    face B, not F nor G. Targets: the magnified pass's A and B, plus G (>= 64 px, missed when
    magnified); F is dropped. KD's left-out faces (``added``): B, and a human label C nobody found."""
    view, mag = priors(96, 96), priors(192, 192)
    a, f, g = [0.1, 0.1, 0.25, 0.25], [0.5, 0.1, 0.62, 0.22], [0.2, 0.25, 0.9, 0.95]
    a2, b = [0.11, 0.1, 0.26, 0.25], [0.7, 0.7, 0.8, 0.8]
    view_out = _teacher_out(view, [(40, a), (60, f), (370, g)])
    mag_out = _teacher_out(mag, [(100, a2), (300, b)])
    c = [0.02, 0.8, 0.1, 0.9]
    targets = [{"boxes": torch.tensor([c, [0.11, 0.11, 0.25, 0.26]]), "landmarks": torch.zeros(2, 10),
                "has_landmarks": torch.zeros(2, dtype=torch.bool), "online": True}]
    merged = merge_online_targets(targets, view_out, (96, 96), label_out=mag_out, label_hw=(192, 192))[0]
    torch.testing.assert_close(merged["boxes"], torch.tensor([a2, b, g, c]), atol=1e-5, rtol=0)
    assert merged["has_landmarks"].tolist() == [True, True, True, False]
    assert merged["added"].tolist() == [False, True, False, True] and merged["n_added"] == 2
    # without the magnified pass: the view-scale faces, the unfound label added (unchanged behaviour)
    plain = merge_online_targets(targets, view_out, (96, 96))[0]
    torch.testing.assert_close(plain["boxes"], torch.tensor([a, f, g, c]), atol=1e-5, rtol=0)
    assert plain["added"].tolist() == [False, False, False, True] and plain["n_added"] == 1


def test_magnified_targets_size_cut_is_in_view_pixels():
    """A face the magnified pass missed stays from KEEP_LARGE_PX pixels of the view's width."""
    w = 200
    at = torch.tensor([[0.0, 0.0, KEEP_LARGE_PX / w, 0.5], [0.5, 0.5, 0.5 + (KEEP_LARGE_PX - 1) / w, 0.9]])
    boxes, landmarks = magnified_targets(at, torch.ones(2, 10), torch.zeros(0, 4), torch.zeros(0, 10), w)
    torch.testing.assert_close(boxes, at[:1])
    assert landmarks.shape == (1, 10)
    assert len(magnified_targets(at[:0], torch.zeros(0, 10), at, torch.zeros(2, 10), w)[0]) == 2


def test_pair_same_faces_is_one_to_one_by_decreasing_iou():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.9, 1.0], [5.0, 5.0, 6.0, 6.0]])
    b = torch.tensor([[0.0, 0.0, 0.95, 1.0], [2.0, 2.0, 3.0, 3.0]])
    # b0 overlaps a0 (IoU 0.95) and a1 (0.947): it goes to a0 only; a2 and b1 overlap nothing
    assert pair_same_faces(a, b, 0.4) == [(0, 0)]
    assert pair_same_faces(a, b[:0], 0.4) == [] and pair_same_faces(a[:0], b, 0.4) == []
