"""Deformable convolution against an independent per-tap reference, and shuffle semantics."""
import torch
import torch.nn.functional as F

from featherface.models.context import ChannelShuffle, DeformableConv2d, deform_conv2d


def _bilinear_zero(x, py, px):
    """Reference bilinear sample of x (C, H, W) at one point; out-of-image corners read 0."""
    c, h, w = x.shape
    y0, x0 = int(torch.floor(py)), int(torch.floor(px))
    out = torch.zeros(c, dtype=x.dtype)
    for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
        if 0 <= yy < h and 0 <= xx < w:
            wgt = (1 - abs(py - yy)) * (1 - abs(px - xx))
            out += wgt * x[:, yy, xx]
    return out


def _reference_dcn(x, offset, weight, mask):
    """Textbook DCNv2 loop (stride 1, padding 1, 3x3): slow but obviously right."""
    n, c, h, w = x.shape
    o = weight.shape[0]
    out = torch.zeros(n, o, h, w, dtype=x.dtype)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                cols = []
                for k in range(9):
                    ky, kx = divmod(k, 3)
                    py = i - 1 + ky + offset[b, 2 * k, i, j]
                    px = j - 1 + kx + offset[b, 2 * k + 1, i, j]
                    cols.append(mask[b, k, i, j] * _bilinear_zero(x[b], py, px))
                col = torch.stack(cols, dim=1)  # (C, 9)
                out[b, :, i, j] = (weight.reshape(o, c, 9) * col).sum(dim=(1, 2))
    return out


def test_deform_conv_matches_reference_loop():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    # Offsets large enough to leave the image and to land between pixels.
    offset = 2.5 * torch.randn(2, 18, 5, 6, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 9, 5, 6, generator=g, dtype=torch.float64) * 2
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    ours = deform_conv2d(x, offset, weight, mask)
    ref = _reference_dcn(x, offset, weight, mask)
    assert torch.allclose(ours, ref, atol=1e-10)


def test_zero_offsets_equal_plain_convolution():
    x = torch.randn(1, 8, 9, 7)
    weight = torch.randn(5, 8, 3, 3)
    bias = torch.randn(5)
    out = deform_conv2d(x, torch.zeros(1, 18, 9, 7), weight, None, bias)
    assert torch.allclose(out, F.conv2d(x, weight, bias, padding=1), atol=1e-5)


def test_fresh_dcn_block_is_conv_times_unit_mask():
    # Zero-initialised offset/modulator convs: offsets 0 and mask 2*sigmoid(0) = 1.
    block = DeformableConv2d(4, 6)
    x = torch.randn(1, 4, 6, 6)
    assert torch.allclose(block(x), F.conv2d(x, block.regular_conv.weight, padding=1), atol=1e-5)


def test_dcn_gradients_reach_offsets():
    block = DeformableConv2d(2, 2)
    block(torch.randn(1, 2, 5, 5)).sum().backward()
    assert block.offset_conv.weight.grad.abs().sum() > 0


def test_channel_shuffle_orders():
    x = torch.arange(8.0).reshape(1, 8, 1, 1)
    std = ChannelShuffle(8, 4)(x).flatten().tolist()
    assert std == [0, 2, 4, 6, 1, 3, 5, 7]
    # V1's "transposed" form with 2 groups: view as (C/2, 2), swap -> evens then odds.
    v1 = ChannelShuffle(8, 2, transposed=True)(x).flatten().tolist()
    assert v1 == [0, 2, 4, 6, 1, 3, 5, 7]
    # ...which differs from the standard 2-group shuffle.
    assert ChannelShuffle(8, 2)(x).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    # Not divisible by 4 -> falls back to 2 groups; odd -> identity.
    assert ChannelShuffle(6, 4).groups == 2 and ChannelShuffle(5, 4).groups == 1
