"""Online pseudo-labels: the teacher's output on the training batch itself, decoded into targets
and merged with whatever human boxes the sample carries.

Contract: ``teacher_out = (loc (N, A, 4), conf logits (N, A, 2), landmark_deltas (N, A, 10))`` for a batch
of ``input_hw = (H, W)`` images; targets hold normalised xyxy
boxes ``(K, 4)``, landmarks ``(K, 10)``, ``has_landmarks (K,)``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..geometry import box_iou
from ..postprocess import PostProcessConfig, postprocess_image


@torch.no_grad()
def decode_teacher(loc: torch.Tensor, conf: torch.Tensor, landmark_deltas: torch.Tensor, input_hw: tuple[int, int],
                   threshold: float = 0.5, nms_iou: float = 0.4) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's teacher detections above ``threshold`` after NMS (the detector's own
    post-processing, :func:`featherface.postprocess.postprocess_image`): ``boxes (K, 4)`` and
    ``landmarks (K, 10)``, normalised by the input size, on the CPU. Plain greedy NMS, without
    box voting: every bundled Nano so far was trained on such targets."""
    h, w = input_hw
    cfg = PostProcessConfig(threshold, nms_iou, box_voting=False)
    d = postprocess_image(loc, conf, landmark_deltas, (h, w), (1.0 / w, 1.0 / h), cfg)
    boxes = torch.from_numpy(d.boxes).reshape(-1, 4)
    ok = ((boxes[:, 2:] - boxes[:, :2]) > 0).all(dim=1)  # boxes clipped away to nothing
    return boxes[ok], torch.from_numpy(d.landmarks).reshape(-1, 10)[ok]


def pair_same_faces(a: torch.Tensor, b: torch.Tensor, min_iou: float) -> list[tuple[int, int]]:
    """One-to-one pairs ``(i, j)`` of boxes ``a[i]``, ``b[j]`` (xyxy) that are the same face:
    greedily by decreasing IoU, each box in at most one pair, IoU >= ``min_iou``."""
    if not len(a) or not len(b):
        return []
    iou = box_iou(a, b)
    pairs, used_a, used_b = [], set(), set()
    for flat in torch.argsort(iou.flatten(), descending=True).tolist():
        i, j = divmod(flat, iou.shape[1])
        if iou[i, j] < min_iou:
            break
        if i not in used_a and j not in used_b:
            pairs.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return pairs


@torch.no_grad()
def merge_online_targets(targets: list[dict], teacher_out, input_hw: tuple[int, int], threshold: float = 0.5,
                         same_face_iou: float = 0.4, label_boxes: bool = False) -> list[dict]:
    """Replace each ``online`` target by the teacher's detections plus the human boxes the teacher
    missed (IoU < ``same_face_iou`` with every teacher box; no landmarks). Where both see a face
    the teacher's box wins by default: it carries landmarks and the teacher's box convention. With
    ``label_boxes`` the labelled box (already mapped to the teacher's convention) replaces the
    teacher's box of the same face (one-to-one pairs, :func:`pair_same_faces`); the teacher's
    landmarks stay. ``added (K,)`` flags the labelled boxes the teacher missed (for
    ``DistillationLoss(label_corrected=True)``). Targets without ``online`` are returned unchanged."""
    loc, conf, landmark_deltas = teacher_out
    out = []
    for i, t in enumerate(targets):
        if not t.get("online"):
            out.append(t)
            continue
        tb, tl = decode_teacher(loc[i], conf[i], landmark_deltas[i], input_hw, threshold)
        hb = t["boxes"].float()
        if len(hb) and len(tb):
            if label_boxes:
                for ti, hi in pair_same_faces(tb, hb, same_face_iou):
                    tb[ti] = hb[hi]
            missed = box_iou(hb, tb).max(dim=1).values < same_face_iou
            hb = hb[missed]
        boxes = torch.cat([tb, hb])
        landmarks = torch.cat([tl, torch.zeros(len(hb), 10)])
        has = torch.cat([torch.ones(len(tb), dtype=torch.bool), torch.zeros(len(hb), dtype=torch.bool)])
        out.append({**t, "boxes": boxes, "landmarks": landmarks, "has_landmarks": has,
                    "added": ~has, "n_teacher": len(tb), "n_human_added": len(hb)})
    return out


def count_faces(targets: list[dict]) -> int:
    return int(np.sum([len(t["boxes"]) for t in targets]))
