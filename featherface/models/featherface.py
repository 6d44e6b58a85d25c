"""The FeatherFace detectors and :func:`build_model`.

Contract shared by every model here:

* input ``(N, 3, H, W)`` float32, BGR, minus the mean (104, 117, 123), no std division; any H, W;
* ``forward`` returns ``(loc, conf, landmark_deltas)``: box regressions ``(N, A, 4)``, class LOGITS
  ``(N, A, 2)`` (index 1 = face; apply softmax for scores) and landmark regressions ``(N, A, 10)``,
  concatenated over strides 8, 16, 32 in anchor order (see :mod:`featherface.models.anchors`);
* ``forward(x, return_features=True)`` also returns the three 64-channel feature maps that feed
  the context modules (post-BiFPN attention), the maps aligned during distillation (a keyword
  argument, so DistributedDataParallel passes it through);
* ``backbone_of(model)`` is the MobileNetV1-0.25 and ``model.from_backbone(c3, c4, c5)`` runs the
  rest: teacher and student can share one backbone pass when they share backbone weights;
* ``components()`` names the parts whose parameter counts ARCHITECTURE.md fixes.
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import CBAM, EfficientCBAMGroup, residual_attention
from .backbone import MobileNetV1
from .bifpn import BiFPNCell, EfficientBiFPNLayer
from .context import SSH, ChannelShuffle, GroupedSSH, channel_shuffle_block
from .heads import EfficientHead, apply_conv1x1_heads, conv1x1_heads, outputs_or_features
from .retinaface import RetinaFaceMobileNet

Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class FeatherFaceV1(nn.Module):
    """The published FeatherFace (592,371 parameters). Attribute names (including the
    reference's ``bacbkbone`` typo) mirror the official checkpoint so conversion only drops the
    profiler entries."""

    name = "v1"
    # NHWC inference layout on CPU: 0.89x the NCHW forward time, outputs within 1e-4
    # (benchmarks/torch_fast_path.py, 640x480, 1 thread, quiet machine)
    prefers_channels_last = True

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.body = MobileNetV1()
        c3, c4, c5 = MobileNetV1.out_channels
        self.bacbkbone_0_cbam = CBAM(c3)
        self.bacbkbone_1_cbam = CBAM(c4)
        self.bacbkbone_2_cbam = CBAM(c5)
        self.bifpn = nn.Sequential(
            BiFPNCell(channels, in_channels=(c3, c4, c5)), BiFPNCell(channels), BiFPNCell(channels)
        )
        self.bif_cbam_0 = CBAM(channels)
        self.bif_cbam_1 = CBAM(channels)
        self.bif_cbam_2 = CBAM(channels)
        self.ssh1, self.ssh2, self.ssh3 = SSH(channels, channels), SSH(channels, channels), SSH(channels, channels)
        self.ssh1_cs = channel_shuffle_block(channels)
        self.ssh2_cs = channel_shuffle_block(channels)
        self.ssh3_cs = channel_shuffle_block(channels)
        self.ClassHead, self.BboxHead, self.LandmarkHead = conv1x1_heads(channels)

    def components(self) -> dict[str, list[nn.Module]]:
        return {
            "backbone": [self.body],
            "backbone CBAM": [self.bacbkbone_0_cbam, self.bacbkbone_1_cbam, self.bacbkbone_2_cbam],
            "BiFPN": [self.bifpn],
            "BiFPN CBAM": [self.bif_cbam_0, self.bif_cbam_1, self.bif_cbam_2],
            "SSH (DCN)": [self.ssh1, self.ssh2, self.ssh3],
            "channel shuffle": [self.ssh1_cs, self.ssh2_cs, self.ssh3_cs],
            "heads": [self.ClassHead, self.BboxHead, self.LandmarkHead],
        }

    def from_backbone(self, feats) -> tuple[Outputs, list[torch.Tensor]]:
        gates = (self.bacbkbone_0_cbam, self.bacbkbone_1_cbam, self.bacbkbone_2_cbam)
        feats = [residual_attention(g, f) for g, f in zip(gates, feats)]
        feats = self.bifpn(feats)
        gates = (self.bif_cbam_0, self.bif_cbam_1, self.bif_cbam_2)
        feats = [residual_attention(g, f) for g, f in zip(gates, feats)]
        ctx = [cs(ssh(f)) for ssh, cs, f in zip((self.ssh1, self.ssh2, self.ssh3),
                                                 (self.ssh1_cs, self.ssh2_cs, self.ssh3_cs), feats)]
        return apply_conv1x1_heads(self, ctx), feats

    def forward(self, x: torch.Tensor, return_features: bool = False):
        return outputs_or_features(self, x, return_features)


class FeatherFaceNano(nn.Module):
    """The Nano student (344,254 parameters): efficient CBAM groups, two efficient BiFPN layers,
    grouped SSH, 4-group channel shuffle and shared-conv heads."""

    name = "nano"
    # NHWC inference layout on CPU: 0.73x the NCHW forward time, outputs within 1e-5
    # (benchmarks/torch_fast_path.py, 640x480, 1 thread, quiet machine)
    prefers_channels_last = True

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.backbone = MobileNetV1()
        in_ch = MobileNetV1.out_channels
        self.backbone_cbam = EfficientCBAMGroup(in_ch)
        self.bifpn = nn.Sequential(EfficientBiFPNLayer(channels, in_channels=in_ch), EfficientBiFPNLayer(channels))
        self.bifpn_cbam = EfficientCBAMGroup((channels,) * 3)
        self.ssh = nn.ModuleList(GroupedSSH(channels, channels) for _ in range(3))
        self.shuffle = ChannelShuffle(channels, 4)
        self.heads = nn.ModuleList(EfficientHead(channels) for _ in range(3))

    def components(self) -> dict[str, list[nn.Module]]:
        return {
            "backbone": [self.backbone],
            "backbone CBAM": [self.backbone_cbam],
            "BiFPN": [self.bifpn],
            "BiFPN CBAM": [self.bifpn_cbam],
            "SSH (grouped)": [self.ssh],
            "channel shuffle": [self.shuffle],
            "heads": [self.heads],
        }

    def from_backbone(self, feats) -> tuple[Outputs, list[torch.Tensor]]:
        feats = self.bifpn_cbam(self.bifpn(self.backbone_cbam(list(feats))))
        outs = [head(self.shuffle(ssh(f))) for ssh, head, f in zip(self.ssh, self.heads, feats)]
        loc, conf, landmark_deltas = (torch.cat([o[i] for o in outs], dim=1) for i in range(3))
        return (loc, conf, landmark_deltas), feats

    def forward(self, x: torch.Tensor, return_features: bool = False):
        return outputs_or_features(self, x, return_features)


# "retinaface" is the paper's baseline (RetinaFace-MobileNet0.25), usable everywhere ours are.
ARCHITECTURES: dict[str, type[nn.Module]] = {"v1": FeatherFaceV1, "nano": FeatherFaceNano, "retinaface": RetinaFaceMobileNet}


def build_model(name: str) -> nn.Module:
    """Build an untrained model by architecture name (``"v1"``, ``"nano"`` or ``"retinaface"``)."""
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}") from None


def backbone_of(model: nn.Module) -> MobileNetV1:
    """The MobileNetV1-0.25 of any model here (``body`` in V1/RetinaFace, ``backbone`` in Nano)."""
    return model.backbone if hasattr(model, "backbone") else model.body


def count_parameters(module: nn.Module | list[nn.Module]) -> int:
    """Trainable parameter count of a module or a list of modules."""
    modules = module if isinstance(module, list) else [module]
    return sum(p.numel() for m in modules for p in m.parameters())


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameters per named component (see ``components()``), plus ``"total"``."""
    out = {name: count_parameters(mods) for name, mods in model.components().items()}
    out["total"] = count_parameters(model)
    return out
