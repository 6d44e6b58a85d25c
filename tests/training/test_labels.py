"""Online pseudo-labels: the teacher's own output decoded into targets, merged with human boxes."""
import torch

from featherface.models.anchors import encode, priors
from featherface.training.labels import decode_teacher, merge_online_targets


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

