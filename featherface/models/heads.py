"""Prediction heads. Every head maps a ``(N, C, H, W)`` level to three tensors laid out in anchor
order (row, column, anchor): boxes ``(N, H*W*A, 4)``, class logits ``(N, H*W*A, 2)`` and
landmarks ``(N, H*W*A, 10)``, with ``A = 2`` anchors per cell."""
from __future__ import annotations

import torch
from torch import nn

NUM_ANCHORS = 2


def _flatten(t: torch.Tensor, k: int) -> torch.Tensor:
    """``(N, A*k, H, W) -> (N, H*W*A, k)``."""
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, k)


class Conv1x1Head(nn.Module):
    """A 1x1 conv with bias predicting ``k`` values per anchor (``.conv1x1`` as in the checkpoint)."""

    def __init__(self, cin: int, k: int, num_anchors: int = NUM_ANCHORS) -> None:
        super().__init__()
        self.k = k
        self.conv1x1 = nn.Conv2d(cin, num_anchors * k, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _flatten(self.conv1x1(x), self.k)


def conv1x1_heads(cin: int, levels: int = 3) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
    """Per-level 1x1 heads ``(ClassHead, BboxHead, LandmarkHead)`` of V1 and RetinaFace."""
    return tuple(nn.ModuleList(Conv1x1Head(cin, k) for _ in range(levels)) for k in (2, 4, 10))  # type: ignore[return-value]


def apply_conv1x1_heads(model: nn.Module, ctx: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loc, conf, landmark_deltas)`` from a model's ``BboxHead``/``ClassHead``/``LandmarkHead`` over
    the levels ``ctx``, concatenated in anchor order."""
    loc = torch.cat([h(f) for h, f in zip(model.BboxHead, ctx)], dim=1)
    conf = torch.cat([h(f) for h, f in zip(model.ClassHead, ctx)], dim=1)
    landmark_deltas = torch.cat([h(f) for h, f in zip(model.LandmarkHead, ctx)], dim=1)
    return loc, conf, landmark_deltas


def outputs_or_features(model: nn.Module, x: torch.Tensor, return_features: bool = False):
    """``forward`` of every detector here: backbone, then ``model.from_backbone``; outputs only,
    or ``(outputs, features)`` with ``return_features=True``."""
    out, feats = model.from_backbone(model.body(x) if hasattr(model, "body") else model.backbone(x))
    return (out, feats) if return_features else out


class EfficientHead(nn.Module):
    """Nano head: a 3x3 conv C->C/2 (no bias) + BN + ReLU shared by three 1x1 convs with bias
    (class 2*2, box 2*4, landmarks 2*10); 19,552 parameters at C = 64."""

    def __init__(self, cin: int = 64, num_anchors: int = NUM_ANCHORS) -> None:
        super().__init__()
        mid = cin // 2
        self.shared = nn.Sequential(nn.Conv2d(cin, mid, 3, 1, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True))
        self.cls = nn.Conv2d(mid, num_anchors * 2, 1)
        self.box = nn.Conv2d(mid, num_anchors * 4, 1)
        self.landmark = nn.Conv2d(mid, num_anchors * 10, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.shared(x)
        return _flatten(self.box(h), 4), _flatten(self.cls(h), 2), _flatten(self.landmark(h), 10)
