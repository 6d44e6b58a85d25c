"""RetinaFace-MobileNet0.25, the FeatherFace paper's baseline (426,608 parameters).

The layout and the attribute names follow the widely used biubug6/Pytorch_Retinaface release so
its ``mobilenet0.25_Final.pth`` loads strictly: the MobileNetV1-0.25 backbone shared with
FeatherFace (``body.stage1..3``), a 3-level FPN with 64 channels (1x1 lateral convs, nearest
upsampling, 3x3 merge convs), one SSH context module per level (3x3 / 5x5 / 7x7 branches built
from stacked 3x3 convs, 32 + 16 + 16 channels), and 1x1 heads. Anchors, box coding and the input
convention (BGR minus (104, 117, 123)) are those of FeatherFace, so the model plugs into the
detector, evaluation, export, benchmark and distillation unchanged.

``forward`` returns ``(loc, conf, landmark_deltas)`` with class LOGITS, like the FeatherFace models (the
release applies softmax inside its test-mode forward; we keep logits so distillation sees them).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import MobileNetV1
from .heads import apply_conv1x1_heads, conv1x1_heads, outputs_or_features

# The release uses LeakyReLU(0.1) everywhere when the channel count is <= 64.
LEAKY = 0.1


def _conv_bn(cin: int, cout: int, k: int, act: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.LeakyReLU(negative_slope=LEAKY, inplace=True))
    return nn.Sequential(*layers)


class FPN(nn.Module):
    """Top-down FPN over three levels: ``output{1,2,3}`` laterals, ``merge{1,2}`` smoothing."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out_channels, 1, act=True)
        self.output2 = _conv_bn(in_channels[1], out_channels, 1, act=True)
        self.output3 = _conv_bn(in_channels[2], out_channels, 1, act=True)
        self.merge1 = _conv_bn(out_channels, out_channels, 3, act=True)
        self.merge2 = _conv_bn(out_channels, out_channels, 3, act=True)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[2:], mode="nearest"))
        return [o1, o2, o3]


class PlainSSH(nn.Module):
    """SSH context module with ordinary convolutions (RetinaFace's; V1 uses deformable ones)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        if cout % 4:
            raise ValueError(f"SSH output channels must be divisible by 4, got {cout}")
        self.conv3X3 = _conv_bn(cin, cout // 2, 3, act=False)
        self.conv5X5_1 = _conv_bn(cin, cout // 4, 3, act=True)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, 3, act=False)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4, 3, act=True)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, 3, act=False)  # sic: lower-case x in the release

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5X5_1(x)
        c7_2 = self.conv7X7_2(c5_1)
        out = torch.cat([self.conv3X3(x), self.conv5X5_2(c5_1), self.conv7x7_3(c7_2)], dim=1)
        return F.relu(out)


class RetinaFaceMobileNet(nn.Module):
    """RetinaFace with a MobileNetV1-0.25 backbone (426,608 parameters at 64 channels)."""

    name = "retinaface"
    # NHWC inference layout on CPU: 0.82x the NCHW forward time (benchmarks/torch_fast_path.py,
    # 640x480, 1 thread, quiet machine)
    prefers_channels_last = True

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.body = MobileNetV1()
        self.fpn = FPN(MobileNetV1.out_channels, channels)
        self.ssh1, self.ssh2, self.ssh3 = PlainSSH(channels, channels), PlainSSH(channels, channels), PlainSSH(channels, channels)
        self.ClassHead, self.BboxHead, self.LandmarkHead = conv1x1_heads(channels)

    def components(self) -> dict[str, list[nn.Module]]:
        return {
            "backbone": [self.body],
            "FPN": [self.fpn],
            "SSH": [self.ssh1, self.ssh2, self.ssh3],
            "heads": [self.ClassHead, self.BboxHead, self.LandmarkHead],
        }

    def from_backbone(self, feats):
        """Outputs and the three FPN maps (64 channels each) that feed the SSH modules."""
        feats = self.fpn(feats)
        ctx = [ssh(f) for ssh, f in zip((self.ssh1, self.ssh2, self.ssh3), feats)]
        return apply_conv1x1_heads(self, ctx), feats

    def forward(self, x: torch.Tensor, return_features: bool = False):
        return outputs_or_features(self, x, return_features)
