"""Inference-time folding of BatchNorm into the preceding convolution.

In eval mode ``BN(conv(x)) = conv'(x)`` with ``w' = w * g / sqrt(v + eps)`` (per output channel)
and ``b' = (b - m) * g / sqrt(v + eps) + beta``. Folding removes one pass over every activation
map (about 14 % of Nano's PyTorch CPU time at 640x640). onnxruntime does the same on its own, so
exported graphs keep the plain layers.

Only ``Conv2d -> BatchNorm2d`` pairs inside an ``nn.Sequential`` are folded (the layout of every
conv block here); other BatchNorms stay as they are.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    fused.weight.data = conv.weight.detach() * scale.detach().reshape(-1, 1, 1, 1)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.data = ((bias - bn.running_mean) * scale + bn.bias).detach()
    return fused.to(conv.weight.device, conv.weight.dtype)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (put in eval mode) with Conv2d+BatchNorm2d pairs folded; for inference only."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
            layers = list(seq)
            for i in range(len(layers) - 1):
                conv, bn = layers[i], layers[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                    seq[i] = _fold(conv, bn)
                    seq[i + 1] = nn.Identity()
    return model


def fold_channel_shuffle(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose channel shuffle before each head is folded into the head's first
    convolution (exact: only the order of the sums changes). Nano computes ``head(shuffle(x))``;
    a shuffle is a fixed channel permutation ``P``, and ``conv(W, P x) = conv(W P^T, x)``, so
    the head's first conv takes its input channels in permuted order and the shuffle (a reshape
    + transpose copy of every SSH output) disappears. Models without that layout are returned
    as an unchanged copy."""
    model = copy.deepcopy(model)
    shuffle, heads = getattr(model, "shuffle", None), getattr(model, "heads", None)
    if shuffle is None or heads is None or getattr(shuffle, "groups", 1) == 1:
        return model
    first = [h.shared[0] for h in heads]
    if not all(isinstance(c, nn.Conv2d) and c.groups == 1 for c in first):
        return model
    channels = first[0].in_channels
    # perm[j]: the input channel that lands at position j after the shuffle
    perm = shuffle(torch.arange(channels, dtype=torch.float32).reshape(1, channels, 1, 1)).flatten().long()
    with torch.no_grad():
        for conv in first:
            w = conv.weight.detach().clone()
            conv.weight[:, perm] = w
    model.shuffle = nn.Identity()
    return model
