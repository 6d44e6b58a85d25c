"""Priors against hand-computed values, and encode/decode round trips."""
import math

import pytest
import torch

from featherface.models.anchors import (decode, decode_landmarks, encode, encode_landmarks, feature_map_sizes,
                                 num_anchors, priors)


def test_counts():
    assert num_anchors(640, 640) == 16_800  # 2 * (80^2 + 40^2 + 20^2)
    # 312 x 500: ceil gives 39x63, 20x32, 10x16 (500/8 = 62.5, 500/32 = 15.6)
    assert feature_map_sizes(312, 500) == [(39, 63), (20, 32), (10, 16)]
    assert num_anchors(312, 500) == 2 * (39 * 63 + 20 * 32 + 10 * 16)
    assert priors(312, 500).shape == (num_anchors(312, 500), 4)


def test_hand_computed_square():
    p = priors(640, 640)
    # First cell of stride 8: centre (4/640, 4/640), sizes 16 and 32.
    assert torch.allclose(p[0], torch.tensor([4 / 640, 4 / 640, 16 / 640, 16 / 640]))
    assert torch.allclose(p[1], torch.tensor([4 / 640, 4 / 640, 32 / 640, 32 / 640]))
    # Next anchor pair moves along the row (column j = 1).
    assert torch.allclose(p[2], torch.tensor([12 / 640, 4 / 640, 16 / 640, 16 / 640]))
    # First anchor of stride 16 comes after 80*80*2 stride-8 anchors.
    assert torch.allclose(p[12_800], torch.tensor([8 / 640, 8 / 640, 64 / 640, 64 / 640]))
    # Last anchor: stride 32, cell (19, 19), size 512.
    assert torch.allclose(p[-1], torch.tensor([624 / 640, 624 / 640, 512 / 640, 512 / 640]))


def test_hand_computed_non_square_non_multiple_of_32():
    h, w = 312, 500
    p = priors(h, w)
    # stride 8, row 1, column 0, first size: index (1 * 63 + 0) * 2.
    assert torch.allclose(p[126], torch.tensor([4 / w, 12 / h, 16 / w, 16 / h]))
    # The last stride-8 cell centre lies outside the image (62.5 cells per row): 500.0/500.
    assert torch.allclose(p[2 * 39 * 63 - 1], torch.tensor([(62 + 0.5) * 8 / w, (38 + 0.5) * 8 / h, 32 / w, 32 / h]))
    # stride 32, row 9, column 15, second size.
    assert torch.allclose(p[-1], torch.tensor([15.5 * 32 / w, 9.5 * 32 / h, 512 / w, 512 / h]))


def test_priors_cached_per_size():
    assert priors(320, 240) is priors(320, 240)
    assert priors(320, 240) is not priors(240, 320)
    with pytest.raises(ValueError):
        priors(0, 10)


def test_encode_hand_computed():
    anchor = torch.tensor([[0.5, 0.5, 0.1, 0.2]])
    box = torch.tensor([[0.45, 0.42, 0.57, 0.62]])  # centre (0.51, 0.52), size (0.12, 0.20)
    t = encode(box, anchor)[0]
    expected = [0.01 / (0.1 * 0.1), 0.02 / (0.1 * 0.2), math.log(1.2) / 0.2, math.log(1.0) / 0.2]
    assert torch.allclose(t, torch.tensor(expected), atol=1e-5)
    lm = torch.tensor([[0.5, 0.5, 0.6, 0.4, 0.55, 0.5, 0.5, 0.6, 0.6, 0.6]])
    tl = encode_landmarks(lm, anchor)[0]
    assert torch.allclose(tl[:4], torch.tensor([0.0, 0.0, 0.1 / 0.01, -0.1 / 0.02]), atol=1e-5)


def test_round_trips_batched():
    g = torch.Generator().manual_seed(0)
    anchors = priors(200, 300)
    xy = torch.rand(2, anchors.shape[0], 2, generator=g)
    wh = torch.rand(2, anchors.shape[0], 2, generator=g) * 0.5 + 0.01
    boxes = torch.cat([xy, xy + wh], dim=-1)
    assert torch.allclose(decode(encode(boxes, anchors), anchors), boxes, atol=1e-5)
    landmarks = torch.rand(2, anchors.shape[0], 10, generator=g)
    assert torch.allclose(decode_landmarks(encode_landmarks(landmarks, anchors), anchors), landmarks, atol=1e-5)


def test_degenerate_box_stays_finite():
    anchor = torch.tensor([[0.5, 0.5, 0.1, 0.1]])
    t = encode(torch.tensor([[0.3, 0.3, 0.3, 0.3]]), anchor)
    assert torch.isfinite(t).all()
