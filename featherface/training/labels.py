"""Online pseudo-labels: the teacher's output on the training batch itself, decoded into targets
and merged with whatever human boxes the sample carries.

Contract: ``teacher_out = (loc (N, A, 4), conf logits (N, A, 2), landmark_deltas (N, A, 10))`` for a batch
of ``input_hw = (H, W)`` images; targets hold normalised xyxy
boxes ``(K, 4)``, landmarks ``(K, 10)``, ``has_landmarks (K,)``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..anchors import box_iou
from ..core.postprocess import PostProcessConfig, RawOutputs, postprocess_image


@torch.no_grad()
def decode_teacher(loc: torch.Tensor, conf: torch.Tensor, landmark_deltas: torch.Tensor, input_hw: tuple[int, int],
                   threshold: float = 0.5, nms_iou: float = 0.4) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's teacher detections above ``threshold`` after NMS (the detector's own
    post-processing, :func:`featherface.core.postprocess.postprocess_image`): ``boxes (K, 4)`` and
    ``landmarks (K, 10)``, normalised by the input size, on the CPU. Plain greedy NMS, without
    box voting: every bundled Nano so far was trained on such targets."""
    h, w = input_hw
    cfg = PostProcessConfig(threshold, nms_iou, box_voting=False)
    raw = RawOutputs(*(t.detach().float().cpu().numpy() for t in (loc, conf, landmark_deltas)))
    d = postprocess_image(raw, (h, w), (1.0 / w, 1.0 / h), cfg)
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


def unmatched(a: torch.Tensor, b: torch.Tensor, min_iou: float) -> torch.Tensor:
    """``(len(a),)`` bool: the boxes of ``a`` (xyxy) that overlap no box of ``b`` at IoU >=
    ``min_iou`` (all of them when ``b`` is empty)."""
    if not len(a) or not len(b):
        return torch.ones(len(a), dtype=torch.bool)
    return box_iou(a, b).max(dim=1).values < min_iou


# With a magnified labelling pass (merge_online_targets' label_out), a face the view-scale pass
# finds and the magnified one misses stays a target when it is at least this wide (pixels of the
# view): magnified 2x, such faces outgrow the largest anchor (512 px) or the view itself, and the
# magnified pass is there for the small faces, where V1 at the view's own scale is unsure
# (crowd_baseball.jpg's half-covered faces: V1 0.59-0.89 at a long side of 640, 0.67-1.00 at
# 1280, where the fists it also reports at 640 drop to 0.03-0.21).
KEEP_LARGE_PX = 64


def magnified_targets(view_boxes: torch.Tensor, view_landmarks: torch.Tensor, mag_boxes: torch.Tensor,
                      mag_landmarks: torch.Tensor, view_width: int, same_face_iou: float = 0.4
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's faces when it also ran on the view magnified: every face of the magnified
    pass, plus the view-scale pass's faces at least :data:`KEEP_LARGE_PX` wide that the magnified
    pass missed (IoU < ``same_face_iou``). Boxes ``(K, 4)`` and landmarks ``(K, 10)``, normalised
    (so both passes' are directly comparable); the small faces only the view-scale pass found
    are dropped."""
    keep = unmatched(view_boxes, mag_boxes, same_face_iou) & ((view_boxes[:, 2] - view_boxes[:, 0]) * view_width >= KEEP_LARGE_PX)
    return torch.cat([mag_boxes, view_boxes[keep]]), torch.cat([mag_landmarks, view_landmarks[keep]])


@torch.no_grad()
def merge_online_targets(targets: list[dict], teacher_out, input_hw: tuple[int, int], threshold: float = 0.5,
                         same_face_iou: float = 0.4, label_boxes: bool = False, label_out=None,
                         label_hw: tuple[int, int] | None = None) -> list[dict]:
    """Replace each ``online`` target by the teacher's detections plus the human boxes the teacher
    missed (IoU < ``same_face_iou`` with every teacher box; no landmarks). Where both see a face
    the teacher's box wins by default: it carries landmarks and the teacher's box convention. With
    ``label_boxes`` the labelled box (already mapped to the teacher's convention) replaces the
    teacher's box of the same face (one-to-one pairs, :func:`pair_same_faces`); the teacher's
    landmarks stay.

    ``label_out`` (optional, same layout as ``teacher_out``): the teacher's output on the batch
    magnified to ``label_hw``; the teacher's faces are then :func:`magnified_targets`'.

    ``added (K,)`` flags the targets the teacher at the view's own scale (``teacher_out``) does
    not report (IoU < ``same_face_iou`` with each of its faces): labelled faces it missed and,
    with ``label_out``, faces only the magnified pass found (for
    ``DistillationLoss(label_corrected=True)``: there the teacher's soft score says
    "background"). Targets without ``online`` are returned unchanged."""
    loc, conf, landmark_deltas = teacher_out
    out = []
    for i, t in enumerate(targets):
        if not t.get("online"):
            out.append(t)
            continue
        tb, tl = decode_teacher(loc[i], conf[i], landmark_deltas[i], input_hw, threshold)
        seen = tb
        if label_out is not None:
            mb, ml = decode_teacher(label_out[0][i], label_out[1][i], label_out[2][i], label_hw, threshold)
            tb, tl = magnified_targets(tb, tl, mb, ml, input_hw[1], same_face_iou)
        hb = t["boxes"].float()
        if label_boxes:
            for ti, hi in pair_same_faces(tb, hb, same_face_iou):
                tb[ti] = hb[hi]
        hb = hb[unmatched(hb, tb, same_face_iou)]
        boxes = torch.cat([tb, hb])
        landmarks = torch.cat([tl, torch.zeros(len(hb), 10)])
        has = torch.cat([torch.ones(len(tb), dtype=torch.bool), torch.zeros(len(hb), dtype=torch.bool)])
        added = ~has if label_out is None else unmatched(boxes, seen, same_face_iou)
        out.append({**t, "boxes": boxes, "landmarks": landmarks, "has_landmarks": has,
                    "added": added, "n_teacher": len(tb), "n_human_added": len(hb),
                    "n_added": int(added.sum())})
    return out


def count_faces(targets: list[dict]) -> int:
    return int(np.sum([len(t["boxes"]) for t in targets]))
