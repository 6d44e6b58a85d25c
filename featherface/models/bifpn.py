"""Bidirectional feature pyramids over three levels (strides 8, 16, 32).

* :class:`BiFPNCell` is the EfficientDet-style cell of the published FeatherFace V1 (zylo117's
  implementation, trimmed to P3-P5). Module names mirror the official checkpoint.
* :class:`EfficientBiFPNLayer` is Nano's layer: one depthwise-separable node shared by the four
  fusions and one 3-entry fusion vector.

Both take and return a list ``[P3, P4, P5]`` of ``(N, C, H_l, W_l)`` tensors. Up-sampling is
nearest-neighbour to the exact size of the target level, so inputs whose sides are not multiples of
32 work (e.g. 39 -> 20 -> 10 rows for H = 312).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FUSION_EPS = 1e-4


def _same_pad_pool(x: torch.Tensor, kernel: int = 3, stride: int = 2) -> torch.Tensor:
    """TensorFlow "SAME" padding for pooling: total = (ceil(n/s) - 1) * s - n + k per side pair,
    the extra pixel going right/bottom. Written with integer arithmetic and no branches so that
    it stays symbolic (dynamic H/W) when exported to ONNX."""
    h, w = x.shape[-2:]
    extra_w = ((w + stride - 1) // stride - 1) * stride - w + kernel
    extra_h = ((h + stride - 1) // stride - 1) * stride - h + kernel
    left, top = extra_w // 2, extra_h // 2
    return F.pad(x, [left, extra_w - left, top, extra_h - top])


class Conv2dSame(nn.Module):
    """Stride-1 ``nn.Conv2d`` with TensorFlow "SAME" padding (``.conv`` holds the weights).

    For stride 1 and an odd kernel, "SAME" is symmetric padding of ``(k - 1) / 2``, which is what
    ``nn.Conv2d(padding=...)`` does; only stride 1 occurs in FeatherFace.
    """

    def __init__(self, cin: int, cout: int, kernel: int, groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"Conv2dSame supports odd kernels only, got {kernel}")
        self.conv = nn.Conv2d(cin, cout, kernel, 1, (kernel - 1) // 2, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class MaxPool2dSame(nn.Module):
    """3x3 stride-2 max-pool with "SAME" padding. As in the reference code the padding is zeros
    (not -inf), which the trained V1 weights were fitted with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(_same_pad_pool(x), 3, 2)


class SeparableConvBlock(nn.Module):
    """Depthwise 3x3 (no bias) -> pointwise 1x1 (bias) -> BN(eps 1e-3, momentum 0.01), no act."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise_conv = Conv2dSame(channels, channels, 3, groups=channels, bias=False)
        self.pointwise_conv = Conv2dSame(channels, channels, 1)
        self.bn = nn.BatchNorm2d(channels, momentum=0.01, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pointwise_conv(self.depthwise_conv(x)))


def _down_channel(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(Conv2dSame(cin, cout, 1), nn.BatchNorm2d(cout, momentum=0.01, eps=1e-3))


def _fusion_weights(w: torch.Tensor) -> torch.Tensor:
    """Fast normalised fusion: relu(w) / (sum(relu(w)) + 1e-4)."""
    w = torch.relu(w)
    return w / (w.sum() + FUSION_EPS)


def _up_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[-2:], mode="nearest")


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class BiFPNCell(nn.Module):
    """One V1 BiFPN cell. ``in_channels`` is given only for the first cell, which then owns the
    1x1 reductions of the backbone levels, including a second, separate pair for the bottom-up
    inputs of P4 and P5 (``p4_down_channel_2``/``p5_down_channel_2``)."""

    def __init__(self, channels: int = 64, in_channels: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self.first_time = in_channels is not None
        self.p4_w1 = nn.Parameter(torch.ones(2))
        self.p3_w1 = nn.Parameter(torch.ones(2))
        self.p4_w2 = nn.Parameter(torch.ones(3))
        # Reference oddity kept for the checkpoint: 3 entries, only 2 used, all 3 normalise.
        self.p5_w2 = nn.Parameter(torch.ones(3))
        self.conv4_up = SeparableConvBlock(channels)
        self.conv3_up = SeparableConvBlock(channels)
        self.conv4_down = SeparableConvBlock(channels)
        self.conv5_down = SeparableConvBlock(channels)
        self.downsample = MaxPool2dSame()
        if in_channels is not None:
            c3, c4, c5 = in_channels
            self.p5_down_channel = _down_channel(c5, channels)
            self.p4_down_channel = _down_channel(c4, channels)
            self.p3_down_channel = _down_channel(c3, channels)
            self.p4_down_channel_2 = _down_channel(c4, channels)
            self.p5_down_channel_2 = _down_channel(c5, channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = feats
        if self.first_time:
            p3_in, p4_in, p5_in = self.p3_down_channel(p3), self.p4_down_channel(p4), self.p5_down_channel(p5)
        else:
            p3_in, p4_in, p5_in = p3, p4, p5

        w = _fusion_weights(self.p4_w1)
        p4_td = self.conv4_up(_swish(w[0] * p4_in + w[1] * _up_to(p5_in, p4_in)))
        w = _fusion_weights(self.p3_w1)
        p3_out = self.conv3_up(_swish(w[0] * p3_in + w[1] * _up_to(p4_td, p3_in)))

        if self.first_time:
            p4_in, p5_in = self.p4_down_channel_2(p4), self.p5_down_channel_2(p5)
        w = _fusion_weights(self.p4_w2)
        p4_out = self.conv4_down(_swish(w[0] * p4_in + w[1] * p4_td + w[2] * self.downsample(p3_out)))
        w = _fusion_weights(self.p5_w2)
        p5_out = self.conv5_down(_swish(w[0] * p5_in + w[1] * self.downsample(p4_out)))
        return [p3_out, p4_out, p5_out]


class EfficientBiFPNLayer(nn.Module):
    """One Nano BiFPN layer (64 channels).

    A single node ``dw3x3 -> 1x1 -> BN -> ReLU`` (no biases) serves all four fusions, with one
    fusion vector ``w`` of three entries:
    ``P4' = node(w0 P4 + w1 up(P5))``, ``P3o = node(w0 P3 + w2 up(P4'))``,
    ``P4o = node(w0 P4' + w1 pool(P3o))``, ``P5o = node(w0 P5 + w2 pool(P4o))``,
    with ``pool`` a 3x3 stride-2 max-pool with padding 1. The first layer first reduces the
    backbone levels with 1x1 conv (no bias) + BN.
    """

    def __init__(self, channels: int = 64, in_channels: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.ones(3))
        self.node = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.reduce = None
        if in_channels is not None:
            self.reduce = nn.ModuleList(
                nn.Sequential(nn.Conv2d(c, channels, 1, bias=False), nn.BatchNorm2d(channels)) for c in in_channels
            )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.reduce is not None:
            feats = [r(f) for r, f in zip(self.reduce, feats)]
        p3, p4, p5 = feats
        w = _fusion_weights(self.weights)
        p4_td = self.node(w[0] * p4 + w[1] * _up_to(p5, p4))
        p3_out = self.node(w[0] * p3 + w[2] * _up_to(p4_td, p3))
        p4_out = self.node(w[0] * p4_td + w[1] * F.max_pool2d(p3_out, 3, 2, 1))
        p5_out = self.node(w[0] * p5 + w[2] * F.max_pool2d(p4_out, 3, 2, 1))
        return [p3_out, p4_out, p5_out]
