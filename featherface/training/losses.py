"""Training criteria. Each returns a dict of named scalar terms plus ``"total"``.

* :func:`match` assigns ground truth to anchors (RetinaFace rules).
* :class:`MultiBoxLoss`: classification with 7:1 hard negative mining, smooth-L1 boxes (weight
  2.0) and landmarks (only for faces that have landmarks), each normalised by its positives.
* :class:`DistillationLoss`: ``(1 - alpha) * task + alpha * T^2 * KL + feature_weight * feature``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.anchors import encode, encode_landmarks
from ..models.anchors import box_iou


def point_form(anchors: torch.Tensor) -> torch.Tensor:
    """``(cx, cy, w, h) -> (x1, y1, x2, y2)``."""
    return torch.cat([anchors[:, :2] - anchors[:, 2:] / 2, anchors[:, :2] + anchors[:, 2:] / 2], dim=1)


def match(boxes: torch.Tensor, landmarks: torch.Tensor, has_landmarks: torch.Tensor, anchors: torch.Tensor,
          pos_iou: float = 0.35, force_iou: float = 0.2):
    """Targets for one image.

    Args:
        boxes ``(G, 4)``, landmarks ``(G, 10)`` normalised; has_landmarks ``(G,)`` bool;
        anchors ``(A, 4)`` ``(cx, cy, w, h)``.
    Returns:
        ``labels (A,)`` long: 1 face, 0 background; ``lm_valid (A,)`` bool (positive and its face
        has landmarks); ``loc_t (A, 4)``; ``landmark_t (A, 10)``.

    Rules: each anchor takes its highest-IoU face and is positive at IoU >= ``pos_iou``; each face
    whose best anchor reaches ``force_iou`` makes that anchor positive (and its own); faces below
    it are ignored. Degenerate (zero-size) boxes must be removed before (they never match here
    but would give log(0) in encoding).
    """
    a = anchors.shape[0]
    device = anchors.device
    if boxes.numel() == 0:
        return (torch.zeros(a, dtype=torch.long, device=device), torch.zeros(a, dtype=torch.bool, device=device),
                torch.zeros(a, 4, device=device), torch.zeros(a, 10, device=device))
    overlaps = box_iou(boxes, point_form(anchors))  # (G, A)
    best_anchor_iou, best_anchor = overlaps.max(dim=1)  # per face
    best_face_iou, best_face = overlaps.max(dim=0)  # per anchor
    valid = best_anchor_iou >= force_iou
    forced = best_anchor[valid]
    best_face_iou[forced] = 2.0  # force positive
    best_face[forced] = torch.arange(boxes.shape[0], device=device)[valid]
    labels = (best_face_iou >= pos_iou).long()
    matched = boxes[best_face]
    loc_t = encode(matched, anchors)
    landmark_t = encode_landmarks(landmarks[best_face], anchors)
    lm_valid = (labels > 0) & has_landmarks[best_face]
    return labels, lm_valid, loc_t, landmark_t


def build_targets(targets: list[dict], anchors: torch.Tensor):
    """Stack :func:`match` over a batch -> ``labels (N, A)``, ``lm_valid (N, A)``,
    ``loc_t (N, A, 4)``, ``landmark_t (N, A, 10)``."""
    out = [match(t["boxes"].to(anchors.device), t["landmarks"].to(anchors.device),
                 t["has_landmarks"].to(anchors.device), anchors) for t in targets]
    return tuple(torch.stack(x) for x in zip(*out))


@torch.no_grad()
def added_positives(targets: list[dict], anchors: torch.Tensor) -> torch.Tensor:
    """``(N, A)`` bool: the anchors that :func:`match` makes positive for the boxes each target
    flags in ``added`` (``(K,)`` bool; a target without the key has none)."""
    rows = []
    for t in targets:
        added = t.get("added")
        if added is None or not bool(added.any()):
            rows.append(torch.zeros(anchors.shape[0], dtype=torch.bool, device=anchors.device))
            continue
        rows.append(match(t["boxes"][added].to(anchors.device), t["landmarks"][added].to(anchors.device),
                          t["has_landmarks"][added].to(anchors.device), anchors)[0] > 0)
    return torch.stack(rows)


class MultiBoxLoss(nn.Module):
    """RetinaFace MultiBox loss. ``forward(outputs, targets, anchors)`` with ``outputs =
    (loc (N,A,4), conf logits (N,A,2), landmark_deltas (N,A,10))``; returns ``{"box", "cls", "landmark",
    "total"}`` where ``total = box_weight * box + cls + landmark``."""

    def __init__(self, neg_pos_ratio: int = 7, box_weight: float = 2.0, min_negatives: int = 0) -> None:
        super().__init__()
        self.neg_pos_ratio = neg_pos_ratio
        self.box_weight = box_weight
        # Per image at least this many negatives are mined. With 0 (RetinaFace's rule) an image
        # without faces mines none: its anchors teach nothing, however face-like they score.
        self.min_negatives = min_negatives

    def forward(self, outputs, targets: list[dict], anchors: torch.Tensor, matched=None,
                selected: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``matched`` (from :func:`build_targets`) and ``selected`` (from :meth:`mine`) may be
        passed when the caller already computed them."""
        loc, conf, landmark_deltas = outputs
        labels, lm_valid, loc_t, landmark_t = matched if matched is not None else build_targets(targets, anchors)
        pos = labels > 0
        n_pos = pos.sum().clamp(min=1).float()
        n_lm = lm_valid.sum().clamp(min=1).float()
        loss_box = F.smooth_l1_loss(loc[pos], loc_t[pos], reduction="sum") / n_pos
        loss_lm = F.smooth_l1_loss(landmark_deltas[lm_valid], landmark_t[lm_valid], reduction="sum") / n_lm
        sel = self.mine(conf, labels) if selected is None else selected
        loss_cls = F.cross_entropy(conf[sel], labels[sel], reduction="sum") / n_pos
        total = self.box_weight * loss_box + loss_cls + loss_lm
        return {"box": loss_box, "cls": loss_cls, "landmark": loss_lm, "total": total}

    @torch.no_grad()
    def mine(self, conf: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Positives plus, per image, the ``neg_pos_ratio`` x #positives (at least
        ``min_negatives``) background anchors with the highest classification loss (``(N, A)``
        bool)."""
        pos = labels > 0
        ce = F.cross_entropy(conf.reshape(-1, 2).float(), labels.reshape(-1), reduction="none").reshape(labels.shape)
        ce[pos] = 0
        candidates = ~pos
        rank = ce.argsort(dim=1, descending=True).argsort(dim=1)
        num_neg = (self.neg_pos_ratio * pos.sum(dim=1, keepdim=True)).clamp(min=self.min_negatives,
                                                                            max=labels.shape[1] - 1)
        return pos | ((rank < num_neg) & candidates)


class DistillationLoss(nn.Module):
    """Knowledge distillation criterion for the student.

    ``total = (1 - alpha) * task + alpha * kd + feature_weight * feature`` where

    * ``task`` is :class:`MultiBoxLoss` on the (pseudo-)labels;
    * ``kd = T^2 * KL(softmax(teacher/T) || softmax(student/T))`` on the class logits, summed over
      the anchors that the classification term also sees (positives and the 7:1 mined hard
      negatives) plus every anchor the teacher scores as a face (p > 0.5), and divided by the
      number of positive anchors: the same anchors and normaliser as the task's classification
      term, so both live on one scale. (The original code's ``batchmean`` over (N, anchors, 2)
      summed over all ~16,800 anchors and divided by the batch size only, which let the KD term
      outweigh the task loss by orders of magnitude.)
    * ``feature`` is the mean squared error between student and teacher feature maps (the three
      post-BiFPN levels, both 64 channels), averaged over levels.

    ``label_corrected`` (off by default): positive anchors of the boxes a target marks as
    ``added`` -- labelled faces the teacher missed (see
    :func:`featherface.training.labels.merge_online_targets`) -- are left out of the KD term.
    There the teacher's soft score says "background" where a label says "face", and KD wins: the
    gradient on the face logit is ``alpha * T * (p_s^T - p_t^T)`` from KD against
    ``(1 - alpha) * (p_s - 1)`` from the task, e.g. 0.65 against 0.15 for a student at p = 0.5 and
    a teacher at p = 0.018 (T = 4, alpha = 0.7). Everywhere else KD is unchanged.

    ``label_corrected_full`` (needs ``label_corrected``): on those left-out anchors the task's
    classification term also takes KD's share of the weight, ``1`` instead of ``1 - alpha``: the
    term ``alpha * CE(added positives) / n_pos`` (reported as ``"added_cls"``) is added to the
    total. Without it a face the teacher missed is learnt at 0.3x the weight of one it found.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.7, feature_weight: float = 0.1,
                 task: MultiBoxLoss | None = None, label_corrected: bool = False,
                 label_corrected_full: bool = False) -> None:
        super().__init__()
        if label_corrected_full and not label_corrected:
            raise ValueError("label_corrected_full needs label_corrected")
        self.temperature, self.alpha, self.feature_weight = temperature, alpha, feature_weight
        self.label_corrected, self.label_corrected_full = label_corrected, label_corrected_full
        self.task = task or MultiBoxLoss()

    def forward(self, student_out, teacher_out, targets: list[dict], anchors: torch.Tensor,
                student_feats: list[torch.Tensor] | None = None, teacher_feats: list[torch.Tensor] | None = None):
        matched = build_targets(targets, anchors)
        mined = self.task.mine(student_out[1], matched[0])
        terms = self.task(student_out, targets, anchors, matched=matched, selected=mined)
        n_pos = (matched[0] > 0).sum().clamp(min=1).float()
        t = self.temperature
        s_logp = F.log_softmax(student_out[1] / t, dim=-1)
        t_logp = F.log_softmax(teacher_out[1].detach() / t, dim=-1)
        kl = (t_logp.exp() * (t_logp - s_logp)).sum(dim=-1)  # (N, A)
        with torch.no_grad():
            t_face = torch.softmax(teacher_out[1].detach().float(), dim=-1)[..., 1]  # (N, A)
            sel = mined | (t_face > 0.5)
            added = added_positives(targets, anchors) if self.label_corrected else None
            if added is not None:
                sel &= ~added
        kd = t ** 2 * kl[sel].sum() / n_pos
        if student_feats is not None and teacher_feats is not None:
            feat = torch.stack([F.mse_loss(s, f.detach()) for s, f in zip(student_feats, teacher_feats)]).mean()
        else:
            feat = kd.new_zeros(())
        total = (1 - self.alpha) * terms["total"] + self.alpha * kd + self.feature_weight * feat
        if self.label_corrected_full:
            logits = student_out[1][added]
            added_cls = F.cross_entropy(logits, torch.ones(len(logits), dtype=torch.long, device=logits.device),
                                        reduction="sum") / n_pos
            total = total + self.alpha * added_cls
        else:
            added_cls = kd.new_zeros(())
        return {"task": terms["total"], "box": terms["box"], "cls": terms["cls"], "landmark": terms["landmark"],
                "kd": kd, "feature": feat, "added_cls": added_cls, "total": total}
