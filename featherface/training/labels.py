"""Online pseudo-labels: the teacher's output on the training batch itself, decoded into targets
and merged with whatever human boxes the sample carries.

Contract: ``teacher_out = (loc (N, A, 4), conf logits (N, A, 2), landms (N, A, 10))`` for a batch
whose anchors are ``anchors (A, 4)`` (normalised ``cx, cy, w, h``); targets hold normalised xyxy
boxes ``(K, 4)``, landmarks ``(K, 10)``, ``has_landmarks (K,)``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..anchors import decode, decode_landmarks
from ..geometry import box_iou
from ..postprocess import nms


@torch.no_grad()
def decode_teacher(loc: torch.Tensor, conf: torch.Tensor, landms: torch.Tensor, anchors: torch.Tensor,
                   threshold: float = 0.5, nms_iou: float = 0.4) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's teacher detections above ``threshold`` after NMS: ``boxes (K, 4)`` and
    ``landmarks (K, 10)``, normalised, on the CPU."""
    scores = torch.softmax(conf.float(), dim=-1)[:, 1]
    idx = torch.nonzero(scores > threshold).flatten()
    if idx.numel() == 0:
        return torch.zeros(0, 4), torch.zeros(0, 10)
    boxes = decode(loc[idx].float(), anchors[idx]).cpu()
    lms = decode_landmarks(landms[idx].float(), anchors[idx]).cpu()
    keep = torch.from_numpy(nms(boxes.numpy(), scores[idx].cpu().numpy(), nms_iou))
    boxes = boxes[keep]
    wh = boxes[:, 2:] - boxes[:, :2]
    ok = (wh > 0).all(dim=1)
    return boxes[ok].clamp(0, 1), lms[keep][ok]


@torch.no_grad()
def merge_online_targets(targets: list[dict], teacher_out, anchors: torch.Tensor, threshold: float = 0.5,
                         same_face_iou: float = 0.4) -> list[dict]:
    """Replace each ``online`` target by the teacher's detections plus the human boxes the teacher
    missed (IoU < ``same_face_iou`` with every teacher box; no landmarks). Where both see a face
    the teacher's box wins: it carries landmarks and the teacher's box convention, which the KD
    term teaches anyway. Targets without ``online`` are returned unchanged."""
    loc, conf, landms = teacher_out
    out = []
    for i, t in enumerate(targets):
        if not t.get("online"):
            out.append(t)
            continue
        tb, tl = decode_teacher(loc[i], conf[i], landms[i], anchors, threshold)
        hb = t["boxes"].float()
        if len(hb) and len(tb):
            missed = box_iou(hb, tb).max(dim=1).values < same_face_iou
            hb = hb[missed]
        boxes = torch.cat([tb, hb])
        lms = torch.cat([tl, torch.zeros(len(hb), 10)])
        has = torch.cat([torch.ones(len(tb), dtype=torch.bool), torch.zeros(len(hb), dtype=torch.bool)])
        out.append({**t, "boxes": boxes, "landmarks": lms, "has_landmarks": has,
                    "n_teacher": len(tb), "n_human_added": len(hb)})
    return out


def count_faces(targets: list[dict]) -> int:
    return int(np.sum([len(t["boxes"]) for t in targets]))
