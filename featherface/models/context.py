"""Context modules: modulated deformable convolution, SSH (V1 and Nano) and channel shuffle.

:func:`deform_conv2d` is a plain-PyTorch DCNv2 with torchvision's semantics (no compiled
extension): offsets ``(N, 2K, Ho, Wo)`` hold ``(dy, dx)`` for kernel tap ``k`` at channels
``2k, 2k+1`` (taps in row-major kernel order), the mask ``(N, K, Ho, Wo)`` scales each tap, and
bilinear sampling reads zero outside the image. All K taps are sampled with ONE ``grid_sample``
call and reduced with one matrix product, so it is vectorised and exports to ONNX (GridSample).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import LEAKY


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 1,
    dilation: int = 1,
) -> torch.Tensor:
    """Modulated deformable convolution (groups = 1, one offset group).

    Args:
        x: ``(N, C, H, W)`` input.
        offset: ``(N, 2*K, Ho, Wo)`` with ``K = kh*kw``; channel ``2k`` is dy, ``2k+1`` is dx.
        weight: ``(O, C, kh, kw)``.
        mask: optional ``(N, K, Ho, Wo)`` modulation per tap.
        bias: optional ``(O,)``.
    Returns:
        ``(N, O, Ho, Wo)``.
    """
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    k = kh * kw
    ho, wo = offset.shape[-2:]
    dtype, device = x.dtype, x.device
    # Sampling position of tap (ky, kx) for output pixel (i, j): i*s - p + ky*d + dy.
    base_y = (torch.arange(ho, device=device, dtype=dtype) * stride - padding)[None, None, :, None]
    base_x = (torch.arange(wo, device=device, dtype=dtype) * stride - padding)[None, None, None, :]
    tap_y = (torch.arange(kh, device=device, dtype=dtype) * dilation).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=device, dtype=dtype) * dilation).repeat(kh)
    off = offset.reshape(n, k, 2, ho, wo)
    py = base_y + tap_y[None, :, None, None] + off[:, :, 0]  # (N, K, Ho, Wo)
    px = base_x + tap_x[None, :, None, None] + off[:, :, 1]
    # grid_sample with align_corners=False maps pixel p to (2p + 1) / size - 1; zeros padding
    # gives torchvision's "each out-of-image corner contributes 0" bilinear rule.
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1).reshape(n, k * ho, wo, 2)
    sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.reshape(n, c, k, ho, wo)
    if mask is not None:
        sampled = sampled * mask.reshape(n, 1, k, ho, wo)
    out = torch.matmul(weight.reshape(o, c * k), sampled.reshape(n, c * k, ho * wo))
    out = out.reshape(n, o, ho, wo)
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


class DeformableConv2d(nn.Module):
    """3x3 DCNv2 block of FeatherFace V1: offset conv (2K ch) and modulator conv (K ch, mask =
    2*sigmoid), both zero-initialised so that a fresh block is an ordinary convolution, and the
    main weight ``regular_conv`` (no bias)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        k = kernel * kernel
        self.stride, self.padding = stride, padding
        self.offset_conv = nn.Conv2d(cin, 2 * k, kernel, stride, padding, bias=True)
        self.modulator_conv = nn.Conv2d(cin, k, kernel, stride, padding, bias=True)
        for conv in (self.offset_conv, self.modulator_conv):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.regular_conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.offset_conv(x)
        mask = 2.0 * torch.sigmoid(self.modulator_conv(x))
        return deform_conv2d(x, offset, self.regular_conv.weight, mask, self.regular_conv.bias,
                             stride=self.stride, padding=self.padding)


def _dcn_bn(cin: int, cout: int, leaky: float | None) -> nn.Sequential:
    layers: list[nn.Module] = [DeformableConv2d(cin, cout), nn.BatchNorm2d(cout)]
    if leaky is not None:
        layers.append(nn.LeakyReLU(negative_slope=leaky, inplace=True))
    return nn.Sequential(*layers)


class SSH(nn.Module):
    """V1 SSH context module with deformable convolutions: ``(N, C, H, W) -> (N, C, H, W)``.

    Branches: 3x3 (C -> C/2), 5x5 = two stacked dconvs (C -> C/4 -> C/4), 7x7 = two more dconvs
    on the 5x5 branch's first output; concatenated and ReLU'd. Names mirror the checkpoint.
    """

    def __init__(self, cin: int = 64, cout: int = 64) -> None:
        super().__init__()
        leaky = LEAKY if cout <= 64 else 0.0
        self.conv3X3 = _dcn_bn(cin, cout // 2, None)
        self.conv5X5_1 = _dcn_bn(cin, cout // 4, leaky)
        self.conv5X5_2 = _dcn_bn(cout // 4, cout // 4, None)
        self.conv7X7_2 = _dcn_bn(cout // 4, cout // 4, leaky)
        self.conv7x7_3 = _dcn_bn(cout // 4, cout // 4, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5X5_1(x)
        out = torch.cat([self.conv3X3(x), self.conv5X5_2(c5_1), self.conv7x7_3(self.conv7X7_2(c5_1))], dim=1)
        return torch.relu(out)


def _gconv_bn(cin: int, cout: int, groups: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, 1, 1, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class GroupedSSH(nn.Module):
    """Nano SSH: the same three-branch topology with grouped 3x3 convolutions (groups 4) and
    plain ReLU; 8,832 parameters at 64 -> 64."""

    def __init__(self, cin: int = 64, cout: int = 64, groups: int = 4) -> None:
        super().__init__()
        self.conv3x3 = _gconv_bn(cin, cout // 2, groups, relu=False)
        self.conv5x5_1 = _gconv_bn(cin, cout // 4, groups, relu=True)
        self.conv5x5_2 = _gconv_bn(cout // 4, cout // 4, groups, relu=False)
        self.conv7x7_2 = _gconv_bn(cout // 4, cout // 4, groups, relu=True)
        self.conv7x7_3 = _gconv_bn(cout // 4, cout // 4, groups, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5x5_1(x)
        out = torch.cat([self.conv3x3(x), self.conv5x5_2(c5_1), self.conv7x7_3(self.conv7x7_2(c5_1))], dim=1)
        return torch.relu(out)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: view channels as ``(groups, C/groups)``, swap, flatten."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ChannelShuffle(nn.Module):
    """Parameter-free channel shuffle.

    ``transposed=True`` is V1's form: the channels are viewed as ``(C/groups, groups)`` before
    the swap, which equals the standard shuffle with ``C/groups`` groups. For the standard form,
    when ``C`` is not divisible by ``groups`` the group count falls back to 2, then to none.
    """

    def __init__(self, channels: int, groups: int, transposed: bool = False) -> None:
        super().__init__()
        if transposed:
            self.groups = channels // groups
        else:
            self.groups = next((g for g in (groups, 2) if channels % g == 0), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.groups == 1 else channel_shuffle(x, self.groups)


def channel_shuffle_block(channels: int = 64) -> nn.Sequential:
    """V1's per-level block: transposed shuffle (2 groups), 1x1 C->C/2 + BN, depthwise 3x3 + BN,
    1x1 C/2->C + BN, ReLU (4,640 parameters at 64 channels). Indices mirror the checkpoint."""
    mid = channels // 2
    return nn.Sequential(
        ChannelShuffle(channels, 2, transposed=True),
        nn.Conv2d(channels, mid, 1, bias=False),
        nn.BatchNorm2d(mid),
        nn.Conv2d(mid, mid, 3, 1, 1, groups=mid, bias=False),
        nn.BatchNorm2d(mid),
        nn.Conv2d(mid, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )
