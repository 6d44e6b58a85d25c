"""Online pseudo-labels: the teacher's output on the training batch itself, decoded into targets
and merged with whatever human boxes the sample carries.

Contract: ``teacher_out = (loc (N, A, 4), conf logits (N, A, 2), landmark_deltas (N, A, 10))`` for a batch
of ``input_hw = (H, W)`` images; targets hold normalised xyxy
boxes ``(K, 4)``, landmarks ``(K, 10)``, ``has_landmarks (K,)``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..models.anchors import box_iou
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


def unmatched(a: torch.Tensor, b: torch.Tensor, min_iou: float) -> torch.Tensor:
    """``(len(a),)`` bool: the boxes of ``a`` (xyxy) that overlap no box of ``b`` at IoU >=
    ``min_iou`` (all of them when ``b`` is empty)."""
    if not len(a) or not len(b):
        return torch.ones(len(a), dtype=torch.bool)
    return box_iou(a, b).max(dim=1).values < min_iou


@torch.no_grad()
def merge_online_targets(targets: list[dict], teacher_out, input_hw: tuple[int, int], threshold: float = 0.5,
                         same_face_iou: float = 0.4) -> list[dict]:
    """Replace each ``online`` target by the teacher's detections plus the human boxes the teacher
    missed (IoU < ``same_face_iou`` with every teacher box; no landmarks). Where both see a face
    the teacher's box wins: it carries landmarks and the teacher's box convention.

    ``added (K,)`` flags the labelled faces the teacher missed (for
    ``DistillationLoss(label_corrected=True)``: there the teacher's soft score says
    "background"). Targets without ``online`` are returned unchanged."""
    loc, conf, landmark_deltas = teacher_out
    out = []
    for i, t in enumerate(targets):
        if not t.get("online"):
            out.append(t)
            continue
        tb, tl = decode_teacher(loc[i], conf[i], landmark_deltas[i], input_hw, threshold)
        hb = t["boxes"].float()
        hb = hb[unmatched(hb, tb, same_face_iou)]
        boxes = torch.cat([tb, hb])
        landmarks = torch.cat([tl, torch.zeros(len(hb), 10)])
        has = torch.cat([torch.ones(len(tb), dtype=torch.bool), torch.zeros(len(hb), dtype=torch.bool)])
        added = ~has
        out.append({**t, "boxes": boxes, "landmarks": landmarks, "has_landmarks": has,
                    "added": added, "n_teacher": len(tb), "n_human_added": len(hb),
                    "n_added": int(added.sum())})
    return out


def count_faces(targets: list[dict]) -> int:
    return int(np.sum([len(t["boxes"]) for t in targets]))
