"""MobileNetV1 x0.25 backbone (213,072 parameters) and its ImageNet weight loader.

The layer layout (``stage1``/``stage2``/``stage3`` ``Sequential`` blocks whose inner order is
conv, BN, act, conv, BN, act) is fixed by the released ImageNet checkpoint and by the official
FeatherFace / RetinaFace checkpoints: their keys (``stage1.0.0.weight`` ...) index into it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

LEAKY = 0.1  # LeakyReLU slope used throughout the RetinaFace MobileNet family


def conv_bn(inp: int, oup: int, stride: int, leaky: float = LEAKY) -> nn.Sequential:
    """3x3 conv (padding 1, no bias) + BN + LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


def conv_dw(inp: int, oup: int, stride: int, leaky: float = LEAKY) -> nn.Sequential:
    """Depthwise 3x3 + BN + LeakyReLU, then pointwise 1x1 + BN + LeakyReLU (no biases)."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 with width 0.25, returning the three detection levels.

    Input: ``(N, 3, H, W)`` float. Output: a tuple of feature maps with strides 8, 16, 32 and
    64, 128, 256 channels; spatial sizes are ``ceil(H / s) x ceil(W / s)``.
    """

    out_channels = (64, 128, 256)

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2),
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),
            conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2), *[conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        c5 = self.stage3(c4)
        return c3, c4, c5


def load_imagenet_weights(backbone: MobileNetV1, path: str | Path) -> dict[str, int]:
    """Load the ImageNet-pretrained MobileNetV1-0.25 checkpoint into ``backbone``.

    The released file is a training checkpoint (``{"state_dict": ..., "optimizer": ...}``) saved
    from ``DataParallel`` (keys prefixed ``module.``) with an ``fc`` classifier. The prefix and the
    classifier are stripped; every remaining key must match the backbone exactly (strict load).
    Returns counts of what was loaded and dropped; they are also logged.
    """
    # The archive holds only tensors and plain Python values, so the safe loader suffices.
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else raw
    cleaned: dict[str, torch.Tensor] = {}
    dropped = []
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.startswith("fc."):
            dropped.append(key)
            continue
        cleaned[key] = value
    backbone.load_state_dict(cleaned, strict=True)
    n_params = sum(v.numel() for k, v in cleaned.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    report = {"tensors_loaded": len(cleaned), "parameters_loaded": n_params, "tensors_dropped": len(dropped)}
    log.info("ImageNet backbone from %s: %d tensors (%d parameters) loaded, dropped %s",
             path, len(cleaned), n_params, dropped)
    return report
