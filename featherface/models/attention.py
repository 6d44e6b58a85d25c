"""Convolutional Block Attention Modules.

* :class:`CBAM` is the module of the published FeatherFace V1 (Woo et al. 2018, reduction 16,
  MLP with biases, spatial gate on ``[max, mean]``). Its sub-module names (``ChannelGate.mlp.1``,
  ``SpatialGate.spatial.conv``...) mirror the official checkpoint so that conversion is a rename.
* :class:`EfficientCBAMGroup` is Nano's variant: one bias-free channel gate (reduction 32, hidden
  width at least 4) per level and a single spatial gate shared by all levels of the group.

All modules map ``(N, C, H, W) -> (N, C, H, W)``; the residual add and ReLU that FeatherFace
applies around every CBAM live in :func:`residual_attention`.
"""
from __future__ import annotations

import torch
from torch import nn


def residual_attention(gate: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``relu(gate(x) + x)``: how both models wrap each CBAM."""
    return torch.relu(gate(x) + x)


def _pooled_mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Channel attention map: sigmoid(mlp(avgpool(x)) + mlp(maxpool(x))) as (N, C, 1, 1)."""
    avg = x.mean(dim=(2, 3))
    mx = x.amax(dim=(2, 3))
    return torch.sigmoid(mlp(avg) + mlp(mx))[:, :, None, None]


class ChannelGate(nn.Module):
    """V1 channel gate: shared MLP ``Linear(C, C/r) -> ReLU -> Linear(C/r, C)`` with biases."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        # Index 0 is a Flatten in the original code; keeping the indices keeps checkpoint keys.
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * _pooled_mlp(self.mlp, x)


class BasicConvBN(nn.Module):
    """7x7 conv 2->1 (padding 3, no bias) + BN(eps 1e-5, momentum 0.01): the spatial-gate body."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, 1, 3, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SpatialGate(nn.Module):
    """Spatial gate. ``mean_first`` picks the order of the stacked channel statistics:
    V1 stacks ``[max, mean]``; Nano stacks ``[mean, max]``."""

    def __init__(self, mean_first: bool = False) -> None:
        super().__init__()
        self.mean_first = mean_first
        self.spatial = BasicConvBN()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mx = x.amax(dim=1, keepdim=True)
        mean = x.mean(dim=1, keepdim=True)
        pooled = torch.cat([mean, mx] if self.mean_first else [mx, mean], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """V1 CBAM: channel gate then spatial gate (no residual; see :func:`residual_attention`)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.ChannelGate = ChannelGate(channels, reduction)
        self.SpatialGate = SpatialGate(mean_first=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class EfficientChannelGate(nn.Module):
    """Nano channel gate: bias-free ``Linear(C, max(C/32, 4)) -> ReLU -> Linear(., C)``."""

    def __init__(self, channels: int, reduction: int = 32, min_hidden: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, min_hidden)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, channels, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * _pooled_mlp(self.mlp, x)


class EfficientCBAMGroup(nn.Module):
    """Nano's CBAM for a set of pyramid levels: one channel gate per level, ONE shared spatial gate.

    ``forward`` takes and returns a list of tensors, one per level, already wrapped with the
    residual add and ReLU.
    """

    def __init__(self, channels: tuple[int, ...], reduction: int = 32) -> None:
        super().__init__()
        self.channel_gates = nn.ModuleList(EfficientChannelGate(c, reduction) for c in channels)
        self.spatial_gate = SpatialGate(mean_first=True)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.relu(self.spatial_gate(gate(f)) + f) for gate, f in zip(self.channel_gates, feats)]
